//! Mailbox addresses are names: checked once, when a mailbox is created, and
//! never used as paths as they stand (folders named after a mailbox go through
//! `satchel_offline::mailbox_dir_name`, which cannot escape its folder).

use crate::error::{ArchiveError, Result};

/// The longest address (RFC 5321, 4.5.3.1.3: 256 octets with the brackets).
pub const MAX_ADDRESS_BYTES: usize = 254;
/// The longest local part (RFC 5321, 4.5.3.1.1).
pub const MAX_LOCAL_BYTES: usize = 64;

/// Accepts `local@domain`: one `@`, at most 254 bytes (the local part at most
/// 64), no white space, control character or path separator (`/`, `\`), and
/// no empty piece between dots on either side (no leading, trailing or doubled
/// dot), so neither half can be `.` or `..`. Refuses anything else with the
/// reason, as [`ArchiveError::Invalid`].
pub fn check_address(address: &str) -> Result<()> {
    match address_problem(address) {
        None => Ok(()),
        Some(why) => Err(ArchiveError::Invalid {
            what: "mailbox address",
            why: format!("{address:?} is not a mailbox address (local@domain): {why}"),
        }),
    }
}

fn address_problem(address: &str) -> Option<&'static str> {
    if address.len() > MAX_ADDRESS_BYTES {
        return Some("longer than 254 bytes");
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '\\')
    {
        return Some("white space, control characters and / or \\ are not allowed");
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Some("no @");
    };
    if domain.contains('@') {
        return Some("more than one @");
    }
    if local.is_empty() || domain.is_empty() {
        return Some("empty local part or domain");
    }
    if local.len() > MAX_LOCAL_BYTES {
        return Some("local part longer than 64 bytes");
    }
    if local.split('.').chain(domain.split('.')).any(str::is_empty) {
        return Some("a leading, trailing or doubled dot");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_local_at_domain() {
        for ok in [
            "alice@example.com",
            "bob+tag@ex.org",
            "first.last@sub.example.co.uk",
            "Alice@Example.COM",
            "j%x@münchen.de",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            ".",
            "..",
            "alice",
            "@example.com",
            "alice@",
            "..@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "a..b@example.com",
            "alice@..",
            "alice@.",
            "alice@example..com",
            "alice@example.com.",
            "a/b@example.com",
            "a\\b@example.com",
            "alice@ex/..",
            "a b@example.com",
            "a\0b@example.com",
            "a@b@example.com",
            long_local.as_str(),
            long.as_str(),
        ] {
            let e = check_address(bad).expect_err(bad);
            assert!(e.to_string().contains("not a mailbox address"), "{e}");
        }
    }
}
