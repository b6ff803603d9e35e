//! Bytes to MIME structure, within the budget, panic-safe, dropped without recursion.

use crate::budget::{Budget, Limit};
use mail_parser::{Message, MessageParser, PartType};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A message parsed as far as the [`Budget`] allows.
///
/// Either the whole MIME structure ([`Parsed::message`]), or, for a message
/// beyond the budget or one the parser failed on, only its top-level header
/// ([`Parsed::headers`]) and the [`Limit`] that stopped it. A message with no
/// header at all has neither.
pub struct Parsed<'a> {
    raw: &'a [u8],
    message: Option<Message<'a>>,
    structured: bool,
    limit: Option<Limit>,
}

impl<'a> Parsed<'a> {
    /// Parses `raw` within [`Budget::DEFAULT`].
    pub fn new(raw: &'a [u8]) -> Self {
        Self::with_budget(raw, &Budget::DEFAULT)
    }

    pub fn with_budget(raw: &'a [u8], budget: &Budget) -> Self {
        if let Some(limit) = budget.check(raw) {
            return Self::headers_only(raw, limit);
        }
        match catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(raw))) {
            Ok(Some(message)) if exceeds_depth(&message, budget.max_depth) => {
                drop_flat(message);
                Self::headers_only(
                    raw,
                    Limit::TooDeep {
                        max: budget.max_depth,
                    },
                )
            }
            Ok(message) => Parsed {
                raw,
                structured: message.is_some(),
                message,
                limit: None,
            },
            Err(_) => {
                tracing::warn!("MIME parser panicked; the message is kept as raw text");
                Self::headers_only(raw, Limit::ParserFailed)
            }
        }
    }

    /// Only the top-level header: parsing it reads no part and nests nothing.
    fn headers_only(raw: &'a [u8], limit: Limit) -> Self {
        let message = catch_unwind(AssertUnwindSafe(|| {
            MessageParser::default().parse_headers(raw)
        }))
        .ok()
        .flatten();
        Parsed {
            raw,
            message,
            structured: false,
            limit: Some(limit),
        }
    }

    /// The bytes as archived.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The whole MIME structure, when the message is within the budget.
    pub fn message(&self) -> Option<&Message<'a>> {
        self.message.as_ref().filter(|_| self.structured)
    }

    /// The top-level header fields (subject, addresses, date), whenever the
    /// message has a header.
    pub fn headers(&self) -> Option<&Message<'a>> {
        self.message.as_ref()
    }

    /// Why the structure was not parsed, if it was not.
    pub fn limit(&self) -> Option<&Limit> {
        self.limit.as_ref()
    }

    /// Offset of the body that follows the top-level header.
    pub fn body_offset(&self) -> usize {
        self.message
            .as_ref()
            .map_or(0, |m| m.root_part().offset_body as usize)
            .min(self.raw.len())
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            drop_flat(message);
        }
    }
}

/// Whether the structure nests deeper than `max` levels of parts, counted
/// without recursion (multipart children and encapsulated messages alike).
fn exceeds_depth(message: &Message<'_>, max: usize) -> bool {
    let mut stack: Vec<(&Message<'_>, usize, usize)> = vec![(message, 0, 1)];
    while let Some((m, part, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        match m.parts.get(part).map(|p| &p.body) {
            Some(PartType::Multipart(children)) => {
                // Children always follow their parent in the part list, so
                // this walk ends even on a structure that claims otherwise.
                let children = children.iter().map(|&c| c as usize).filter(|&c| c > part);
                stack.extend(children.map(|c| (m, c, depth + 1)));
            }
            Some(PartType::Message(inner)) => stack.push((inner, 0, depth + 1)),
            _ => {}
        }
    }
    false
}

/// Drops a message level by level: the derived drop recurses once per
/// encapsulated message and would overflow the stack on deep nesting.
fn drop_flat(message: Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut m) = pending.pop() {
        for part in &mut m.parts {
            if matches!(part.body, PartType::Message(_))
                && let PartType::Message(inner) = std::mem::take(&mut part.body)
            {
                pending.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize, kind: &str) -> Vec<u8> {
        let mut m = b"From: a@example.org\r\nSubject: deep\r\n".to_vec();
        for i in 0..levels {
            let multipart = kind == "multipart" || (kind == "both" && i % 2 == 0);
            if multipart {
                m.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                        .as_bytes(),
                );
            } else {
                m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
            }
        }
        m.extend_from_slice(b"Subject: bottom\r\n\r\nhello\r\n");
        m
    }

    #[test]
    fn shallow_messages_are_parsed_whole() {
        for kind in ["message", "multipart", "both"] {
            let raw = nested(5, kind);
            let p = Parsed::new(&raw);
            assert!(p.message().is_some(), "{kind}");
            assert_eq!(p.limit(), None);
        }
    }

    #[test]
    fn deep_messages_keep_their_headers_only() {
        for kind in ["message", "multipart", "both"] {
            let raw = nested(100_000, kind);
            // A small stack, as on a runtime's worker thread.
            let (subject, limit, whole) = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let p = Parsed::new(&raw);
                    let subject = p.headers().and_then(|m| m.subject()).map(str::to_string);
                    (subject, p.limit().cloned(), p.message().is_some())
                })
                .expect("thread")
                .join()
                .expect("no stack overflow");
            assert_eq!(subject.as_deref(), Some("deep"), "{kind}");
            assert_eq!(limit, Some(Limit::TooDeep { max: 64 }), "{kind}");
            assert!(!whole, "{kind}");
        }
    }

    #[test]
    fn depth_beyond_budget_but_few_declarations_is_caught_after_parsing() {
        let raw = nested(200, "message");
        let p = Parsed::new(&raw);
        assert_eq!(p.limit(), Some(&Limit::TooDeep { max: 64 }));
        assert!(p.message().is_none());
        assert!(p.headers().is_some());
    }

    /// Kept regression input found by tests/props.rs: two nested messages in a
    /// multipart trip an assertion inside mail-parser (a panic in builds with
    /// debug assertions, as the test suite's). It stays one message's problem.
    #[test]
    fn a_parser_panic_is_contained_to_the_message() {
        let raw = b"From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\
Content-Type: text/plain\r\n\r\n\r\n--a--\r\n";
        let p = Parsed::new(raw);
        assert_eq!(p.headers().and_then(|m| m.subject()), Some("s"));
        if cfg!(debug_assertions) {
            assert_eq!(p.limit(), Some(&Limit::ParserFailed));
        }
        let s = crate::MessageSummary::extract(raw);
        assert_eq!(s.subject, "s");
        assert!(s.body.contains("Subject: inner"));
    }

    #[test]
    fn headerless_bytes_have_no_structure() {
        let p = Parsed::new(b"just some words\r\n");
        assert!(p.message().is_none() || p.message().is_some_and(|m| m.subject().is_none()));
    }
}
