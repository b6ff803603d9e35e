//! How far Satchel parses a message: a size and depth budget checked before the
//! MIME parser sees the bytes.
//!
//! mail-parser parses nesting iteratively, but the structure it returns nests one
//! `Message` inside another for every `message/rfc822` level, and turning that
//! structure owned, walking it or dropping it recurses once per level: a message
//! nested 25,000 levels deep overflowed the stack of the service. So the depth is
//! bounded *before* parsing, by a linear scan that counts every declaration that
//! can open a level (an upper bound on the real depth), and checked again on the
//! parsed structure.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use std::fmt;

/// The limits one message is parsed within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Larger messages are not parsed into parts at all.
    pub max_bytes: usize,
    /// More declarations of `multipart/*` or `message/rfc822` than this (anywhere
    /// in the message, and in the transfer-encoded messages it carries) and the
    /// message is not handed to the parser.
    pub max_containers: usize,
    /// The deepest structure, in levels of parts, that is shown as parts.
    pub max_depth: usize,
}

impl Budget {
    /// The budget every part of Satchel uses. Real mail nests a handful of levels
    /// (a forward of a forward inside a multipart/mixed); 64 leaves room for
    /// every honest message and 1,000 declarations for the widest digests, while
    /// keeping any recursion over the structure a few hundred kilobytes of stack.
    pub const DEFAULT: Budget = Budget {
        max_bytes: 128 * 1024 * 1024,
        max_containers: 1_000,
        max_depth: 64,
    };

    /// The reason `raw` must not be parsed into parts, if any (size and the
    /// declared structure; the parsed depth is checked by [`crate::Parsed`]).
    pub fn check(&self, raw: &[u8]) -> Option<Limit> {
        if raw.len() > self.max_bytes {
            return Some(Limit::TooLarge {
                bytes: raw.len(),
                max: self.max_bytes,
            });
        }
        let mut scan = Scan::default();
        scan.run(raw, ENCODED_LEVELS, self.max_containers);
        (scan.containers > self.max_containers).then_some(Limit::TooDeep {
            max: self.max_depth,
        })
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::DEFAULT
    }
}

/// Why a message is shown and indexed as raw text instead of as its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Nested deeper (or declares more nested parts) than the budget allows.
    TooDeep { max: usize },
    /// Larger than the budget allows for parsing.
    TooLarge { bytes: usize, max: usize },
    /// The MIME parser failed on this message (a bug in it, contained here).
    ParserFailed,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::TooDeep { max } => write!(
                f,
                "the message's structure is too deep to show (more than {max} nested parts); \
                 shown as its raw text"
            ),
            Limit::TooLarge { bytes, max } => write!(
                f,
                "the message is too large to show its parts ({bytes} bytes, more than {max}); \
                 shown as its raw text"
            ),
            Limit::ParserFailed => write!(
                f,
                "the message's structure could not be parsed; shown as its raw text"
            ),
        }
    }
}

/// mail-parser decodes a transfer-encoded `message/rfc822` body and parses it in
/// turn, up to three encodings deep; the scan follows it as far.
const ENCODED_LEVELS: usize = 3;

/// A line-by-line count of the declarations that can open a nesting level.
#[derive(Default)]
struct Scan {
    containers: usize,
    digest: bool,
}

/// What the header-like block being read has declared so far.
#[derive(Default)]
struct Block {
    content_type: bool,
    message: bool,
    encoding: Option<Encoding>,
}

#[derive(Clone, Copy)]
enum Encoding {
    Base64,
    QuotedPrintable,
}

impl Scan {
    /// Counts declarations in `raw`, and in the decoded bodies of encoded
    /// messages `levels` deep; stops counting once past `max`.
    fn run(&mut self, raw: &[u8], levels: usize, max: usize) {
        let mut lines = Lines::new(raw);
        let mut block = Block::default();
        while let Some(line) = lines.next_line() {
            if self.containers > max {
                return;
            }
            if line.is_empty() {
                self.end_block(&block, &mut lines, levels, max);
                block = Block::default();
                continue;
            }
            // Only `Content-*` fields matter; every other line is passed over
            // without a copy (this scan runs before every parse).
            if line.len() < 12 || !line[..8].eq_ignore_ascii_case(b"content-") {
                continue;
            }
            let line = lines.unfold(line);
            if let Some(value) = header_value(&line, b"content-type") {
                self.content_type(value, &mut block);
            } else if let Some(value) = header_value(&line, b"content-transfer-encoding") {
                let value = value.trim_ascii();
                if value.eq_ignore_ascii_case(b"base64") {
                    block.encoding = Some(Encoding::Base64);
                } else if value.eq_ignore_ascii_case(b"quoted-printable") {
                    block.encoding = Some(Encoding::QuotedPrintable);
                }
            }
        }
    }

    /// At the empty line that ends a header block: an encoded message's body
    /// follows, and is decoded and scanned as the parser would.
    fn end_block(&mut self, block: &Block, lines: &mut Lines<'_>, levels: usize, max: usize) {
        let encoded = block
            .encoding
            .filter(|_| block.message || (!block.content_type && self.digest));
        if let (Some(encoding), true) = (encoded, levels > 0) {
            let body = lines.until_boundary();
            if let Some(decoded) = decode(encoding, body) {
                self.run(&decoded, levels - 1, max);
            }
        }
    }

    fn content_type(&mut self, value: &[u8], block: &mut Block) {
        block.content_type = true;
        let value = value.trim_ascii_start();
        let starts = |prefix: &[u8]| {
            value
                .get(..prefix.len())
                .is_some_and(|v| v.eq_ignore_ascii_case(prefix))
        };
        if starts(b"multipart/") {
            self.containers += 1;
            self.digest |= starts(b"multipart/digest");
        } else if starts(b"message/rfc822") || starts(b"message/global") {
            self.containers += 1;
            block.message = true;
        }
    }
}

fn decode(encoding: Encoding, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Base64 => base64_decode(body),
        Encoding::QuotedPrintable => quoted_printable_decode(body),
    }
}

/// The value of header `name` (lowercase) if `line` is that header field
/// (`Name: value`, white space before the colon allowed as RFC 5322's obsolete
/// syntax does).
fn header_value<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    let head = line.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    let rest = line[name.len()..].trim_ascii_start();
    rest.strip_prefix(b":")
}

/// Lines of a message, with folded header lines joined.
struct Lines<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Lines { raw, pos: 0 }
    }

    /// The next physical line without its line ending.
    fn next_line(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.raw.len() {
            return None;
        }
        let rest = &self.raw[self.pos..];
        let len = memchr::memchr(b'\n', rest);
        let line = &rest[..len.unwrap_or(rest.len())];
        self.pos += len.map_or(rest.len(), |n| n + 1);
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn peek_is_continuation(&self) -> bool {
        matches!(self.raw.get(self.pos), Some(b' ' | b'\t'))
    }

    /// `line` with the continuation lines that follow it, joined.
    fn unfold(&mut self, line: &[u8]) -> Vec<u8> {
        let mut line = line.to_vec();
        while self.peek_is_continuation() {
            if let Some(more) = self.next_line() {
                line.push(b' ');
                line.extend_from_slice(more.trim_ascii_start());
            }
        }
        line
    }

    /// The bytes from here to the next MIME boundary line (`--...`) or the end:
    /// the extent of an encoded body, which cannot itself contain such a line.
    fn until_boundary(&mut self) -> &'a [u8] {
        let start = self.pos;
        let mut end = start;
        while self.pos < self.raw.len() && !self.raw[self.pos..].starts_with(b"--") {
            self.next_line();
            end = self.pos;
        }
        &self.raw[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_messages(levels: usize) -> Vec<u8> {
        let mut m = b"From: a@example.org\r\nSubject: deep\r\n".to_vec();
        for _ in 0..levels {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"Subject: bottom\r\n\r\nhello\r\n");
        m
    }

    #[test]
    fn honest_nesting_is_within_budget() {
        assert_eq!(Budget::DEFAULT.check(&nested_messages(10)), None);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        assert_eq!(
            Budget::DEFAULT.check(&nested_messages(100_000)),
            Some(Limit::TooDeep { max: 64 })
        );
    }

    #[test]
    fn nesting_hidden_in_base64_is_counted() {
        let inner = nested_messages(5_000);
        let mut m = b"From: a@example.org\r\nContent-Type: message/rfc822\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        let encoded = base64_lines(&inner);
        m.extend_from_slice(&encoded);
        assert_eq!(Budget::DEFAULT.check(&m), Some(Limit::TooDeep { max: 64 }));
    }

    #[test]
    fn folded_and_spaced_headers_are_seen() {
        let mut m = b"From: a@example.org\r\n".to_vec();
        for _ in 0..2_000 {
            m.extend_from_slice(b"Content-Type :\r\n message/rfc822\r\n\r\n");
        }
        assert!(Budget::DEFAULT.check(&m).is_some());
    }

    #[test]
    fn size_is_bounded() {
        let b = Budget {
            max_bytes: 10,
            ..Budget::DEFAULT
        };
        assert_eq!(
            b.check(b"Subject: twelve bytes"),
            Some(Limit::TooLarge { bytes: 21, max: 10 })
        );
    }

    pub(crate) fn base64_lines(data: &[u8]) -> Vec<u8> {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        for (i, chunk) in data.chunks(3).enumerate() {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]);
                } else {
                    out.push(b'=');
                }
            }
            if i % 19 == 18 {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}
