//! Message links: `http://HOST:PORT/m/ADDRESS/ID` (served by the laptop agent,
//! written into IMAP stubs) and `satchel://ADDRESS/ID` (the URL scheme the
//! desktop entry registers). One format, built and parsed here, so the stub
//! that writes a link and the laptop that opens it cannot disagree.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::MessageId;

/// The bytes a URL path segment keeps as they are: letters, digits and
/// `- . _ ~` (RFC 3986 unreserved), plus `@` and `+` so that a mailbox address
/// reads as itself. Everything else is percent-encoded. The one set Satchel
/// uses for path segments (message links and `satchel_api::client::segment`).
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'+');

/// Where the laptop agent listens unless told otherwise, and so the host of the
/// links stubs carry unless the run is given another.
pub const DEFAULT_AGENT_ADDR: &str = "127.0.0.1:8481";

/// `text` as one URL path segment (see [`SEGMENT`]).
pub fn encode_segment(text: &str) -> Cow<'_, str> {
    utf8_percent_encode(text, SEGMENT).into()
}

/// The inverse of [`encode_segment`] (and of any percent-encoding of UTF-8):
/// `None` for a `%` not followed by two hex digits or bytes that are not UTF-8,
/// so malformed text is an error rather than a different name.
pub fn decode_segment(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// Text that is not a message link, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid message link {link:?}: {reason} (expected http://HOST:PORT/m/ADDRESS/ID or satchel://ADDRESS/ID)"
)]
pub struct InvalidLink {
    pub link: String,
    pub reason: String,
}

/// A message link: which message of which mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageLink {
    pub mailbox: String,
    pub id: MessageId,
}

impl MessageLink {
    pub fn new(mailbox: &str, id: MessageId) -> Self {
        MessageLink {
            mailbox: mailbox.to_string(),
            id,
        }
    }

    /// `http://AGENT/m/ADDRESS/ID`, the form stubs carry; `agent` is the
    /// agent's `HOST:PORT` (usually [`DEFAULT_AGENT_ADDR`]).
    pub fn http_url(&self, agent: &str) -> String {
        format!("http://{agent}{}", self.path())
    }

    /// `/m/ADDRESS/ID`: the path of the message on the agent.
    pub fn path(&self) -> String {
        format!("/m/{}/{}", encode_segment(&self.mailbox), self.id)
    }

    /// `satchel://ADDRESS/ID`.
    pub fn satchel_url(&self) -> String {
        format!("satchel://{}/{}", encode_segment(&self.mailbox), self.id)
    }

    /// Parses `ADDRESS/ID` (the part after `/m/` or `satchel://`).
    fn from_path(link: &str, path: &str) -> Result<Self, InvalidLink> {
        let bad = |reason: &str| InvalidLink {
            link: link.to_string(),
            reason: reason.to_string(),
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        let (mailbox, id) = path
            .rsplit_once('/')
            .ok_or_else(|| bad("no message id after the mailbox"))?;
        let id = id.strip_suffix(".eml").unwrap_or(id);
        let mailbox = decode_segment(mailbox).ok_or_else(|| bad("bad percent-encoding"))?;
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
    type Err = InvalidLink;

    /// Either form, scheme in any case, with or without a query or fragment; an
    /// `.eml` suffix on the id is ignored (the agent's raw-message link).
    fn from_str(link: &str) -> Result<Self, InvalidLink> {
        let bad = |reason: &str| InvalidLink {
            link: link.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = link.trim();
        if let Some(rest) = strip_prefix_ignore_case(trimmed, "satchel:") {
            return MessageLink::from_path(link, rest.trim_start_matches('/'));
        }
        let rest = strip_prefix_ignore_case(trimmed, "http://")
            .or_else(|| strip_prefix_ignore_case(trimmed, "https://"))
            .ok_or_else(|| bad("not an http:// or satchel:// link"))?;
        let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
        match path.strip_prefix("/m/") {
            Some(p) => MessageLink::from_path(link, p),
            None => Err(bad("the path does not start with /m/")),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

impl fmt::Display for MessageLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.satchel_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        let http = l.http_url(DEFAULT_AGENT_ADDR);
        assert_eq!(http.parse::<MessageLink>().unwrap(), l);
    }

    #[test]
    fn rejects_garbage() {
        for link in [
            "ftp://x/m/a/b".to_string(),
            "http://127.0.0.1:8481/x/alice@example.com/abc".into(),
            "satchel://alice@example.com/abc".into(),
            format!("satchel://{ID}"),
            format!("http://127.0.0.1:8481/m//{ID}"),
            format!("satchel://a%zz@x.org/{ID}"),
            format!("satchel://a%4@x.org/{ID}"),
            format!("satchel://a%ff@x.org/{ID}"),
            format!("satchel://a%2Fb@x.org/{ID}"),
        ] {
            assert!(link.parse::<MessageLink>().is_err(), "{link}");
        }
    }

    /// The form stubs have always carried: `+` and `@` as they are.
    #[test]
    fn the_stub_form_is_unchanged() {
        let id: MessageId = ID.parse().unwrap();
        let l = MessageLink::new("a+b c/d@example.com", id);
        assert_eq!(
            l.http_url(DEFAULT_AGENT_ADDR),
            format!("http://127.0.0.1:8481/m/a+b%20c%2Fd@example.com/{ID}")
        );
        assert_eq!(encode_segment("\u{e9}"), "%C3%A9");
    }

    /// Mailbox addresses as the service accepts them, and worse.
    fn mailbox() -> impl Strategy<Value = String> {
        prop_oneof![
            (
                "[A-Za-z0-9._%+~!$&'*=^`{|}-]{1,20}",
                "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,8}){0,3}"
            )
                .prop_map(|(local, domain)| format!("{local}@{domain}")),
            "[^/]{1,40}",
        ]
    }

    proptest! {
        #[test]
        fn links_round_trip(mailbox in mailbox(), bytes in any::<[u8; 32]>(), port in 1u16..) {
            let link = MessageLink::new(&mailbox, MessageId(bytes));
            for text in [
                link.satchel_url(),
                link.http_url(DEFAULT_AGENT_ADDR),
                link.http_url(&format!("localhost:{port}")),
                link.to_string(),
            ] {
                prop_assert_eq!(text.parse::<MessageLink>(), Ok(link.clone()), "{}", text);
            }
        }

        #[test]
        fn segments_round_trip(text in "\\PC{0,40}") {
            let enc = encode_segment(&text);
            prop_assert!(!enc.contains('/'));
            prop_assert_eq!(decode_segment(&enc), Some(text));
        }

        #[test]
        fn any_text_is_a_link_or_an_error(text in "\\PC{0,120}") {
            let _ = text.parse::<MessageLink>();
        }
    }
}
