//! Message links: `http://127.0.0.1:8481/m/ADDRESS/ID` (served by the agent)
//! and `satchel://ADDRESS/ID` (the URL scheme the desktop entry registers).

use std::fmt;
use std::str::FromStr;

use satchel_offline::MessageId;

use crate::error::Error;
use crate::fsutil::decode_percent;

/// The default address of the agent (and host of message links).
pub const DEFAULT_AGENT_ADDR: &str = "127.0.0.1:8481";

/// A parsed message link: which message of which mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageLink {
    pub mailbox: String,
    pub id: MessageId,
}

impl MessageLink {
    /// The agent URL of this message on the default address.
    pub fn http_url(&self) -> String {
        format!(
            "http://{DEFAULT_AGENT_ADDR}/m/{}/{}",
            satchel_api::client::segment(&self.mailbox),
            self.id
        )
    }

    /// The `satchel://` form.
    pub fn satchel_url(&self) -> String {
        format!(
            "satchel://{}/{}",
            satchel_api::client::segment(&self.mailbox),
            self.id
        )
    }

    /// Parses `ADDRESS/ID` (the part after `/m/` or `satchel://`).
    fn from_path(link: &str, path: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidLink {
            link: link.to_string(),
            reason: reason.to_string(),
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        let (mailbox, id) = path
            .rsplit_once('/')
            .ok_or_else(|| bad("no message id after the mailbox"))?;
        let id = id.strip_suffix(".eml").unwrap_or(id);
        let mailbox = decode_percent(mailbox).ok_or_else(|| bad("bad percent-encoding"))?;
        if mailbox.is_empty() || mailbox.contains('/') {
            return Err(bad("no mailbox address"));
        }
        let id = id
            .parse()
            .map_err(|_| bad("the message id is not 64 hex digits"))?;
        Ok(MessageLink { mailbox, id })
    }
}

impl FromStr for MessageLink {
    type Err = Error;
    fn from_str(link: &str) -> Result<Self, Error> {
        let trimmed = link.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("satchel:") {
            let rest = trimmed["satchel:".len()..].trim_start_matches('/');
            return MessageLink::from_path(link, rest);
        }
        let rest = if lower.starts_with("http://") {
            &trimmed["http://".len()..]
        } else if lower.starts_with("https://") {
            &trimmed["https://".len()..]
        } else {
            return Err(Error::InvalidLink {
                link: link.to_string(),
                reason: "not an http:// or satchel:// link".into(),
            });
        };
        let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
        match path.strip_prefix("/m/") {
            Some(p) => MessageLink::from_path(link, p),
            None => Err(Error::InvalidLink {
                link: link.to_string(),
                reason: "the path does not start with /m/".into(),
            }),
        }
    }
}

impl fmt::Display for MessageLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.satchel_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    #[test]
    fn parses_both_forms() {
        for link in [
            format!("http://127.0.0.1:8481/m/alice@example.com/{ID}"),
            format!("http://localhost:9000/m/alice%40example.com/{ID}?x=1"),
            format!("satchel://alice@example.com/{ID}"),
            format!("satchel:alice@example.com/{ID}/"),
            format!("SATCHEL://alice@example.com/{}", ID.to_uppercase()),
            format!("http://127.0.0.1:8481/m/alice@example.com/{ID}.eml"),
        ] {
            let l: MessageLink = link.parse().unwrap_or_else(|e| panic!("{link}: {e}"));
            assert_eq!(l.mailbox, "alice@example.com");
            assert_eq!(l.id.to_hex(), ID);
        }
        let l: MessageLink = format!("satchel://a%2Bb%40x.org/{ID}").parse().unwrap();
        assert_eq!(l.mailbox, "a+b@x.org");
        assert_eq!(l.satchel_url().parse::<MessageLink>().unwrap(), l);
        assert_eq!(l.http_url().parse::<MessageLink>().unwrap(), l);
    }

    #[test]
    fn rejects_garbage() {
        for link in [
            "ftp://x/m/a/b".to_string(),
            "http://127.0.0.1:8481/x/alice@example.com/abc".into(),
            "satchel://alice@example.com/abc".into(),
            format!("satchel://{ID}"),
            format!("http://127.0.0.1:8481/m//{ID}"),
        ] {
            assert!(link.parse::<MessageLink>().is_err(), "{link}");
        }
    }
}
