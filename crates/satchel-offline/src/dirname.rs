//! The one folder name a mailbox address becomes, on the service (its offline
//! repository) and on laptops (its local copy).

use std::path::{Path, PathBuf};

/// Percent-encodes `address` into one file name that cannot leave its folder:
/// only `[a-z0-9@_-]` and dots other than a leading one stay, every other byte
/// (capitals too, so two addresses never share a folder on a case-insensitive
/// file system) becomes `%XX`. So the name is never empty, `.`, `..` or hidden,
/// and holds no separator; and two addresses never share a name (decoding
/// gives the address back). The empty address, which no mailbox has, is `%`.
pub fn mailbox_dir_name(address: &str) -> String {
    if address.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(address.len());
    for (i, b) in address.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'@' | b'_' | b'-' => out.push(b as char),
            b'.' if i > 0 => out.push('.'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Moves the folder `legacy` (named by an earlier version) to `dir` when
/// there is one and nothing at `dir` yet, so data written before stays
/// readable. Returns the folder to use: `dir`, or `legacy` with the error
/// when it could not be moved (it is still read where it is).
pub fn adopt_legacy_dir(legacy: &Path, dir: &Path) -> (PathBuf, Option<std::io::Error>) {
    if legacy == dir || dir.exists() || !legacy.is_dir() {
        return (dir.to_path_buf(), None);
    }
    match std::fs::rename(legacy, dir) {
        Ok(()) => (dir.to_path_buf(), None),
        // Another process moved it first.
        Err(_) if dir.exists() => (dir.to_path_buf(), None),
        Err(e) => (legacy.to_path_buf(), Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_their_folder() {
        for a in [
            "", ".", "..", "../x", "..\\x", "/etc", "a/b", ".hidden", "x/../..", "C:x", "%2E%2E",
        ] {
            let n = mailbox_dir_name(a);
            assert!(!n.is_empty() && !n.starts_with('.'), "{a:?} -> {n}");
            assert!(!n.contains(['/', '\\', ':']), "{a:?} -> {n}");
            let p = std::path::Path::new("root").join(&n);
            assert_eq!(p.parent(), Some(std::path::Path::new("root")), "{n}");
            assert_eq!(p.components().count(), 2, "{n}");
        }
    }

    #[test]
    fn names_of_ordinary_addresses_are_unchanged_and_distinct() {
        // The service's offline repositories were named this way before.
        assert_eq!(mailbox_dir_name("alice@example.com"), "alice@example.com");
        assert_eq!(mailbox_dir_name("a.b-c_d@x.org"), "a.b-c_d@x.org");
        assert_eq!(mailbox_dir_name("Bob+x@ex.org"), "%42ob%2Bx@ex.org");
        assert_ne!(mailbox_dir_name("A@x"), mailbox_dir_name("a@x"));
        assert_eq!(mailbox_dir_name(".."), "%2E.");
        assert_ne!(mailbox_dir_name("%"), mailbox_dir_name(""));
    }

    #[test]
    fn a_legacy_folder_is_moved_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (legacy, dir) = (tmp.path().join("Old"), tmp.path().join("%4Fld"));
        assert_eq!(adopt_legacy_dir(&legacy, &dir).0, dir, "nothing to move");
        std::fs::create_dir(&legacy).unwrap();
        std::fs::write(legacy.join("manifest.json"), b"{}").unwrap();
        assert_eq!(adopt_legacy_dir(&legacy, &dir).0, dir);
        assert!(dir.join("manifest.json").exists() && !legacy.exists());
        std::fs::create_dir(&legacy).unwrap();
        assert_eq!(adopt_legacy_dir(&legacy, &dir).0, dir, "the new one wins");
        assert!(legacy.exists());
    }
}
