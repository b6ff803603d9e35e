//! Stubs: what replaces an archived message in its IMAP folder
//! (docs/stub-format.md).
//!
//! The header fields that clients thread and list by are copied **raw** from the
//! original (only line endings become CRLF, as IMAP requires), not re-encoded by a
//! builder: a re-encoded Subject or a re-folded References line would differ
//! byte-wise from the original, and clients match Message-ID/References textually,
//! while non-ASCII or malformed headers survive a copy but not a parse-and-print.

use satchel_message::{DEFAULT_AGENT_ADDR, MessageId, MessageLink, MessageSummary};

/// The header that marks a stub; its value is the archived message's id.
pub const STUB_HEADER: &str = "X-Satchel-Archived";
/// The header that carries the message link.
pub const LINK_HEADER: &str = "X-Satchel-Link";

/// Copied from the original, in the original's order, first occurrence of each.
pub const COPIED_FIELDS: [&str; 8] = [
    "Subject",
    "From",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];

const PREVIEW_CHARS: usize = 400;
const WRAP: usize = 72;

/// The message link the laptop agent resolves, on the agent's default
/// address (the link format is satchel-message's [`MessageLink`]).
pub fn message_link(address: &str, id: &MessageId) -> String {
    MessageLink::new(address, *id).http_url(DEFAULT_AGENT_ADDR)
}

/// The header block of a message (without the blank line), whatever its line ends.
pub fn header_block(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        // A line starting at i: empty line ends the header.
        if raw[i] == b'\n' {
            return &raw[..i];
        }
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            return &raw[..i];
        }
        match raw[i..].iter().position(|&b| b == b'\n') {
            Some(p) => i += p + 1,
            None => return raw,
        }
    }
    raw
}

/// The header fields of a header block: (name, the whole raw field including its
/// name and continuation lines, without the final line end).
pub fn fields(header: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    let mut end_of_prev = 0;
    while i < header.len() {
        let line_end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p)
            .unwrap_or(header.len());
        let line = &header[i..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if let Some(s) = start.take() {
                push_field(&mut out, &header[s..end_of_prev]);
            }
            start = Some(i);
        }
        let mut e = line_end;
        if e > i && header[e - 1] == b'\r' {
            e -= 1;
        }
        end_of_prev = e;
        i = line_end + 1;
    }
    if let Some(s) = start {
        push_field(&mut out, &header[s..end_of_prev.max(s)]);
    }
    out
}

fn push_field<'a>(out: &mut Vec<(String, &'a [u8])>, field: &'a [u8]) {
    if let Some(colon) = field.iter().position(|&b| b == b':') {
        let name = String::from_utf8_lossy(&field[..colon]).trim().to_string();
        if !name.is_empty() && !name.contains(' ') {
            out.push((name, field));
        }
    }
}

/// The value of the first field named `name` (unfolded, trimmed).
pub fn field_value(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, f)| {
            let colon = f.iter().position(|&b| b == b':').unwrap_or(0);
            let v = String::from_utf8_lossy(&f[colon + 1..]);
            v.split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

/// The archived id a stub points to, if this message (or header block) is a
/// stub whose header holds an id (in either case: a server may not keep it).
pub fn stub_id(raw: &[u8]) -> Option<MessageId> {
    field_value(header_block(raw), STUB_HEADER)?.parse().ok()
}

pub fn is_stub(raw: &[u8]) -> bool {
    fields(header_block(raw))
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(STUB_HEADER))
}

/// Bare LF (and lone CR) to CRLF.
fn crlf(bytes: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
}

/// A size as docs/stub-format.md shows it: decimal units (`12.30 kB`).
fn human_size(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}

fn wrap(text: &str, indent: &str, out: &mut String) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WRAP {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
}

/// The short text preview of a message body: whitespace collapsed, cut at a word.
pub fn preview(body: &str) -> String {
    let text = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= PREVIEW_CHARS {
        return text;
    }
    let cut: String = text.chars().take(PREVIEW_CHARS).collect();
    let cut = match cut.rfind(' ') {
        Some(p) if p > PREVIEW_CHARS / 2 => cut[..p].to_string(),
        _ => cut,
    };
    format!("{cut} …")
}

/// Builds the stub of `raw` (archived as `id` in mailbox `address`).
pub fn build_stub(address: &str, id: &MessageId, raw: &[u8]) -> Vec<u8> {
    let summary = MessageSummary::extract(raw);
    let link = message_link(address, id);
    let mut out = Vec::with_capacity(2048);

    let header = header_block(raw);
    let mut copied: Vec<&str> = Vec::new();
    for (name, field) in fields(header) {
        let Some(want) = COPIED_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&name)) else {
            continue;
        };
        if copied.contains(want) {
            continue;
        }
        copied.push(want);
        crlf(field, &mut out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("{STUB_HEADER}: {id}\r\n").as_bytes());
    out.extend_from_slice(format!("{LINK_HEADER}: {link}\r\n").as_bytes());
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    out.extend_from_slice(b"\r\n");

    let mut body = String::new();
    body.push_str("This message was archived by Satchel.\n");
    body.push_str(&format!("Open the original: {link}\n\n"));
    if !summary.subject.is_empty() {
        body.push_str(&format!("Subject: {}\n", one_line(&summary.subject)));
    }
    if !summary.from.is_empty() {
        body.push_str(&format!("From: {}\n", one_line(&summary.from)));
    }
    body.push_str(&format!("Size: {}\n", human_size(raw.len() as u64)));
    if let Some(note) = &summary.note {
        body.push_str(&format!("Note: {}\n", one_line(note)));
    }
    let text = preview(&summary.body);
    if !text.is_empty() {
        body.push_str("\nPreview:\n");
        wrap(&text, "  ", &mut body);
    }
    if summary.attachments.is_empty() {
        body.push_str("\nAttachments: none\n");
    } else {
        body.push_str(&format!(
            "\nAttachments ({}, not kept in this mailbox):\n",
            summary.attachments.len()
        ));
        for a in &summary.attachments {
            let name = if a.name.is_empty() {
                "(unnamed)"
            } else {
                a.name.as_str()
            };
            body.push_str(&format!(
                "  - {} ({})\n",
                one_line(name),
                human_size(a.size as u64)
            ));
        }
    }
    body.push_str(&format!("\nArchive id: {id}\n"));
    crlf(body.as_bytes(), &mut out);
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from x\nSubject: Hello\n  world\nFrom: A <a@x>\nTo: b@y\nMessage-ID: <1@x>\nReferences: <0@x>\n\t<00@x>\nX-Other: 1\n\nBody text here.\n";

    #[test]
    fn copies_fields_raw_and_marks_the_stub() {
        let id: MessageId = "a".repeat(64).parse().unwrap();
        let stub = build_stub("alice@example.com", &id, MSG);
        let s = String::from_utf8(stub.clone()).unwrap();
        assert!(s.starts_with("Subject: Hello\r\n  world\r\nFrom: A <a@x>\r\nTo: b@y\r\nMessage-ID: <1@x>\r\nReferences: <0@x>\r\n\t<00@x>\r\nX-Satchel-Archived: aaaa"), "{s}");
        assert!(!s.contains("Received"));
        assert!(!s.contains("X-Other"));
        assert!(s.contains("http://127.0.0.1:8481/m/alice@example.com/aaaa"));
        assert!(s.contains("Body text here."));
        assert!(!s.replace("\r\n", "").contains('\n'), "only CRLF line ends");
        assert!(is_stub(&stub));
        assert_eq!(stub_id(&stub), Some(id));
        assert!(!is_stub(MSG));
        assert_eq!(
            field_value(header_block(MSG), "subject").as_deref(),
            Some("Hello world")
        );
    }

    #[test]
    fn header_block_ends_at_the_first_empty_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_block(b"A: 1\n\nbody\n\nmore"), b"A: 1\n");
        assert_eq!(header_block(b"A: 1"), b"A: 1");
    }
}
