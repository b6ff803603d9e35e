//! A message as the archive sees it: an identity derived from its bytes, and the
//! handful of fields that listing and search need.

use mail_parser::{Address, MessageParser, MimeHeaders};
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

/// What the archive extracts from a message for its catalog and index. Extraction
/// never fails: malformed MIME yields whatever parsed, and the raw bytes stay as
/// they were.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MessageSummary {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    /// Unix seconds from the Date header, if it parsed.
    pub date: Option<i64>,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub message_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub size: usize,
}

/// Dates outside 1900..2200 are spam or typos, and would overflow the index's
/// nanosecond clock; such a message is archived as undated.
const DATE_RANGE: std::ops::Range<i64> = -2_208_988_800..7_258_118_400;

/// Bodies longer than this are indexed only up to it: the index is for finding
/// mail, and a 20 MB log attachment rendered as text would drown it.
const MAX_BODY_CHARS: usize = 256 * 1024;

impl MessageSummary {
    /// Never fails and never panics: a parser bug on hostile input must not stop an
    /// import, so a panic inside the MIME parser falls back to lossy text.
    pub fn extract(raw: &[u8]) -> Self {
        std::panic::catch_unwind(|| Self::parse(raw)).unwrap_or_else(|_| {
            tracing::warn!("MIME parser panicked; indexing the message as plain text");
            Self::fallback(raw)
        })
    }

    fn parse(raw: &[u8]) -> Self {
        // A message cut off inside its header has no empty line; the parser then
        // sees no header at all. Parse a terminated copy (the archive keeps `raw`).
        let terminated;
        let raw = if has_header_end(raw) {
            raw
        } else {
            terminated = [raw, b"\r\n\r\n"].concat();
            &terminated
        };
        let Some(msg) = MessageParser::default().parse(raw) else {
            return Self::fallback(raw);
        };
        let mut body = String::new();
        for i in 0..msg.text_body_count().max(1) {
            if let Some(text) = msg.body_text(i) {
                push_limited(&mut body, &text);
            }
        }
        if body.is_empty() && msg.text_body_count() == 0 && msg.html_body_count() == 0 {
            // No part the parser recognises as text (say, a multipart without a
            // boundary): index what follows the header as it stands.
            let offset = (msg.root_part().offset_body as usize).min(raw.len());
            push_limited(&mut body, &String::from_utf8_lossy(&raw[offset..]));
        }
        let attachments = msg
            .attachments()
            .filter_map(|part| {
                part.attachment_name().map(|name| Attachment {
                    name: name.to_string(),
                    size: part.len(),
                })
            })
            .collect();
        MessageSummary {
            subject: msg.subject().unwrap_or_default().to_string(),
            from: addresses(msg.from()),
            to: addresses(msg.to()),
            cc: addresses(msg.cc()),
            date: msg
                .date()
                .map(|d| d.to_timestamp())
                .filter(|t| DATE_RANGE.contains(t)),
            body,
            attachments,
            message_id: msg.message_id().map(str::to_string),
        }
    }

    /// For bytes the MIME parser gives up on: index them as lossy text, so the
    /// message stays findable by the words it contains.
    fn fallback(raw: &[u8]) -> Self {
        let mut body = String::new();
        push_limited(&mut body, &String::from_utf8_lossy(raw));
        MessageSummary {
            body,
            ..Default::default()
        }
    }
}

fn has_header_end(raw: &[u8]) -> bool {
    raw.windows(2).any(|w| w == b"\n\n") || raw.windows(4).any(|w| w == b"\r\n\r\n")
}

fn push_limited(body: &mut String, text: &str) {
    let room = MAX_BODY_CHARS.saturating_sub(body.len());
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if !body.is_empty() && end > 0 {
        body.push('\n');
    }
    body.push_str(&text[..end]);
}

fn addresses(addr: Option<&Address<'_>>) -> String {
    let Some(addr) = addr else {
        return String::new();
    };
    addr.iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why some bytes are not a mail message, if they are not. A message must begin
/// with a header field (`Name: value`); anything else — an empty file, a picture,
/// a stray text file — is reported instead of being archived as if it were mail.
pub fn not_mail_reason(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("empty: not a mail message".into());
    }
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(colon) = first_line.iter().position(|&b| b == b':') else {
        return Some("not a mail message: the first line is not a header field".into());
    };
    let name = &first_line[..colon];
    let valid_name = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
    if !valid_name {
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
    }
}
