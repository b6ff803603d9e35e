//! What the archive's catalog and index, the laptop's index and the stubs take
//! from a message.

use crate::addresses;
use crate::parsed::Parsed;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The handful of fields listing and search need. Extraction never fails:
/// malformed MIME yields whatever parsed, and the raw bytes stay as they were.
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
    /// Why the body is the raw text rather than the parts' text, if it is
    /// (see [`crate::Limit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
pub const MAX_BODY_CHARS: usize = 256 * 1024;

impl MessageSummary {
    /// Never fails and never panics: a parser bug on hostile input must not stop
    /// an import, so a panic falls back to lossy text.
    pub fn extract(raw: &[u8]) -> Self {
        catch_unwind(AssertUnwindSafe(|| with_header_end(raw, Self::from_bytes))).unwrap_or_else(
            |_| {
                tracing::warn!("extracting a message summary panicked; indexing it as plain text");
                Self::fallback(raw)
            },
        )
    }

    fn from_bytes(raw: &[u8]) -> Self {
        let parsed = Parsed::new(raw);
        let Some(headers) = parsed.headers() else {
            return Self::fallback(raw);
        };
        let mut summary = MessageSummary {
            subject: headers.subject().unwrap_or_default().to_string(),
            from: addresses(headers.from()),
            to: addresses(headers.to()),
            cc: addresses(headers.cc()),
            date: headers
                .date()
                .map(|d| d.to_timestamp())
                .filter(|t| DATE_RANGE.contains(t)),
            message_id: headers.message_id().map(str::to_string),
            note: parsed.limit().map(|l| l.to_string()),
            ..Default::default()
        };
        match parsed.message() {
            Some(msg) => summary.add_parts(msg, &parsed),
            None => push_limited(&mut summary.body, &String::from_utf8_lossy(raw)),
        }
        if summary.body.trim().is_empty() && !crate::begins_with_header_field(raw) {
            // No header field first (a mail server's message with no header
            // at all): the parser took the text for a header; index it as text.
            summary.body.clear();
            push_limited(&mut summary.body, &String::from_utf8_lossy(raw));
        }
        summary
    }

    fn add_parts(&mut self, msg: &mail_parser::Message<'_>, parsed: &Parsed<'_>) {
        use mail_parser::MimeHeaders;
        for i in 0..msg.text_body_count().max(1) {
            if let Some(text) = msg.body_text(i) {
                push_limited(&mut self.body, &text);
            }
        }
        if self.body.is_empty() && msg.text_body_count() == 0 && msg.html_body_count() == 0 {
            // No part the parser recognises as text (say, a multipart without a
            // boundary): index what follows the header as it stands.
            let raw = parsed.raw();
            push_limited(
                &mut self.body,
                &String::from_utf8_lossy(&raw[parsed.body_offset()..]),
            );
        }
        self.attachments = msg
            .attachments()
            .filter_map(|part| {
                part.attachment_name().map(|name| Attachment {
                    name: name.to_string(),
                    size: part.len(),
                })
            })
            .collect();
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

/// Runs `f` on `raw`, or on a copy ending in an empty line when `raw` has
/// none: a message cut off inside its header would otherwise be seen by the
/// parser as having no header at all (the archive keeps `raw` as it is).
pub(crate) fn with_header_end<R>(raw: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let ends = raw.windows(2).any(|w| w == b"\n\n") || raw.windows(4).any(|w| w == b"\r\n\r\n");
    if ends {
        f(raw)
    } else {
        f(&[raw, b"\r\n\r\n"].concat())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_an_ordinary_message() {
        let s = MessageSummary::extract(
            b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nCc: c@example.org\r\n\
Subject: Report\r\nDate: Tue, 1 Oct 2002 10:00:00 +0000\r\n\r\nthe words\r\n",
        );
        assert_eq!(s.subject, "Report");
        assert_eq!(s.from, "Ann <ann@example.org>");
        assert_eq!(s.to, "bob@example.org");
        assert_eq!(s.cc, "c@example.org");
        assert_eq!(s.date, Some(1_033_466_400));
        assert!(s.body.contains("the words"));
        assert_eq!(s.note, None);
    }

    #[test]
    fn mail_without_a_header_is_indexed_as_text() {
        let s =
            MessageSummary::extract(b"Just a note, no header: hdrlessword.\r\nSecond line.\r\n");
        assert!(s.body.contains("hdrlessword"), "{s:?}");
        // An mbox envelope line first, white space before the colon, no
        // field at all before the body: the parser reads each as it is.
        let s = MessageSummary::extract(
            b"From alice@example.org Mon Jan  1 00:00:00 2024\r\nFrom: Alice <a@example.org>\r\n\
Subject: envelope fromlinesubject\r\n\r\nBody fromlinebody.\r\n",
        );
        assert_eq!(s.subject, "envelope fromlinesubject");
        assert!(s.body.contains("fromlinebody"), "{s:?}");
        let s = MessageSummary::extract(b"\r\nOnly a body: emptyheadword.\r\n");
        assert!(s.body.contains("emptyheadword"), "{s:?}");
        let s = MessageSummary::extract(
            b"Subject : obsolete obsword\r\nFrom : b@example.org\r\n\r\nBody.\r\n",
        );
        assert_eq!(
            (s.subject.as_str(), s.from.as_str()),
            ("obsolete obsword", "b@example.org")
        );
    }

    #[test]
    fn a_cut_off_header_still_has_its_fields() {
        let s = MessageSummary::extract(b"Subject: cut\r\nFrom: a@example.org");
        assert_eq!(s.subject, "cut");
    }

    #[test]
    fn a_too_deep_message_is_found_by_its_headers_and_text() {
        let mut raw = b"Subject: deep one\r\nFrom: x@example.org\r\n".to_vec();
        for _ in 0..100_000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: inner\r\n\r\nneedle\r\n");
        let s = MessageSummary::extract(&raw);
        assert_eq!(s.subject, "deep one");
        assert!(s.note.as_deref().is_some_and(|n| n.contains("too deep")));
        assert!(s.body.starts_with("Subject: deep one"));
    }
}
