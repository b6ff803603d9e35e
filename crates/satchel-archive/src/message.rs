//! A message as the archive sees it: an identity derived from its bytes. What
//! listing and search take from it is satchel-message's [`MessageSummary`].

pub use satchel_message::MessageSummary;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A message's identity: the SHA-256 (lowercase hex) of its raw RFC 5322 bytes.
/// Identical bytes are one message, however many mailboxes hold it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(String);

impl MessageId {
    pub fn of(raw: &[u8]) -> Self {
        MessageId(hex::encode(Sha256::digest(raw)))
    }

    /// Accepts only 64 lowercase hex digits, so an id taken from a URL can never be
    /// anything else (a path, a wildcard).
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| MessageId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why some bytes are not a mail message, if they are not: they must begin
/// with a header field as RFC 5322 writes one, obsolete syntax included, and
/// nothing stricter is asked ([`satchel_message::begins_with_header_field`]).
/// An empty file, a picture, a stray text file are reported instead of being
/// archived as if they were mail. (An IMAP server's messages are mail whatever
/// their bytes, and skip this test: [`crate::Archive::add_server_messages`].)
pub fn not_mail_reason(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("empty: not a mail message".into());
    }
    if !satchel_message::begins_with_header_field(raw) {
        return Some("not a mail message: the first line is not a header field".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sha256_hex() {
        let id = MessageId::of(b"abc");
        assert_eq!(
            id.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(MessageId::parse(id.as_str()).is_some());
        assert!(MessageId::parse("../etc/passwd").is_none());
        assert!(MessageId::parse(&id.as_str().to_uppercase()).is_none());
    }

    #[test]
    fn recognises_non_mail() {
        assert!(not_mail_reason(b"").is_some());
        assert!(not_mail_reason(b"\x89PNG\r\n\x1a\n").is_some());
        assert!(not_mail_reason(b"hello world\n").is_some());
        assert!(not_mail_reason(b"Subject: hi\n\nbody").is_none());
        assert!(not_mail_reason(b": no name\n").is_some());
        assert!(not_mail_reason(b" Subject: folded first\n").is_some());
        assert!(not_mail_reason(b"From alice@example.com Mon Jan 1 00:00:00 2024\n").is_some());
    }

    #[test]
    fn accepts_rfc5322_obsolete_syntax() {
        // obs-optional and friends: field-name *WSP ":" (RFC 5322, 4.5.6).
        assert!(not_mail_reason(b"Subject : hi\r\n\r\nbody").is_none());
        assert!(not_mail_reason(b"Subject\t: hi\n").is_none());
        assert!(not_mail_reason(b"Received:from x\n").is_none());
        assert!(not_mail_reason(b"X-Odd!#$%&'*+-.^_`{|}~: 1\n").is_none());
    }
}
