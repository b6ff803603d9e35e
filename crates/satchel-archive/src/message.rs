//! A message as the archive sees it: its identity ([`MessageId`], the SHA-256 of
//! its bytes) and what listing and search take from it ([`MessageSummary`]) are
//! satchel-message's; what is not mail at all is decided here.

pub use satchel_message::{InvalidMessageId, MessageId, MessageSummary};

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
