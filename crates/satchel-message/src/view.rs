//! A message as a person reads it, shared by the console and the laptop viewer
//! so that both show the same thing: headers, sanitized HTML or text, and
//! attachments with names safe to save.

use crate::addresses;
use crate::parsed::Parsed;
use crate::summary::with_header_end;
use mail_parser::{MessagePart, MimeHeaders, PartType};
use std::borrow::Cow;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Raw text shown for a message whose parts are not shown: enough to read any
/// real message; the whole of it is the `.eml` download.
const MAX_RAW_SHOWN: usize = 1024 * 1024;

/// What a viewer shows of one message. Every string is plain text except
/// [`Body::Html`], which is already sanitized.
#[derive(Clone, Debug, Default)]
pub struct MessageView {
    pub subject: Option<String>,
    pub from: String,
    pub to: String,
    pub cc: String,
    /// The Date header as RFC 822 text, if it parsed.
    pub date: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    pub body: Body,
    /// Why the message is shown as raw text, if it is.
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Body {
    /// Sanitized by [`sanitize_html`]: safe to put in a page as it is.
    Html(String),
    /// Plain text, to be escaped by the page.
    Text(String),
}

impl Body {
    /// The body as page content: sanitized HTML as it is, text escaped in a
    /// `<pre>`.
    pub fn to_html(&self) -> String {
        match self {
            Body::Html(h) => h.clone(),
            Body::Text(t) => format!("<pre>{}</pre>", escape_html(t)),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::Text(String::new())
    }
}

/// An attachment as listed: its position (what [`MessageView::attachment`]
/// takes), a safe file name and its decoded size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub index: usize,
    pub name: String,
    pub size: usize,
}

/// An attachment ready for download.
#[derive(Clone, Debug)]
pub struct AttachmentFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl AttachmentFile {
    /// The `Content-Disposition` of its download, the same wherever it is
    /// served (console, laptop agent): always `attachment`, an ASCII
    /// `filename` (other characters, quotes and backslashes as `_`) for old
    /// clients, and the exact name as `filename*` (RFC 6266, UTF-8).
    pub fn content_disposition(&self) -> String {
        let ascii: String = self
            .filename
            .chars()
            .map(|c| match c {
                '"' | '\\' => '_',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '_',
            })
            .collect();
        format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
            crate::link::encode_segment(&self.filename)
        )
    }
}

impl MessageView {
    /// The view of `raw`. Never fails and never panics: what cannot be shown
    /// as parts is shown as raw text with a note saying why.
    pub fn of(raw: &[u8]) -> MessageView {
        catch_unwind(AssertUnwindSafe(|| with_header_end(raw, Self::build))).unwrap_or_else(|_| {
            tracing::warn!("building a message view panicked; showing raw text");
            MessageView::raw_text(raw, Some(crate::Limit::ParserFailed.to_string()))
        })
    }

    fn build(raw: &[u8]) -> MessageView {
        let parsed = Parsed::new(raw);
        let Some(headers) = parsed.headers() else {
            return MessageView::raw_text(raw, None);
        };
        let mut view = MessageView::raw_text(raw, parsed.limit().map(|l| l.to_string()));
        view.subject = headers.subject().map(str::to_string);
        view.from = addresses(headers.from());
        view.to = addresses(headers.to());
        view.cc = addresses(headers.cc());
        view.date = headers.date().map(|d| d.to_rfc822());
        if let Some(m) = parsed.message() {
            view.attachments = m
                .attachments()
                .enumerate()
                .map(|(index, part)| AttachmentInfo {
                    index,
                    name: safe_file_name(part, index),
                    size: part.contents().len(),
                })
                .collect();
            view.body = body_of(m);
        }
        view
    }

    /// The header rows a viewer shows, in order, leaving out empty ones.
    pub fn header_rows(&self) -> Vec<(&'static str, &str)> {
        let date = self.date.as_deref().unwrap_or_default();
        [
            ("From", self.from.as_str()),
            ("To", &self.to),
            ("Cc", &self.cc),
            ("Date", date),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// The raw bytes as text (the first [`MAX_RAW_SHOWN`] of them).
    fn raw_text(raw: &[u8], note: Option<String>) -> MessageView {
        let shown = &raw[..raw.len().min(MAX_RAW_SHOWN)];
        let mut text = String::from_utf8_lossy(shown).into_owned();
        if raw.len() > MAX_RAW_SHOWN {
            text.push_str(&format!(
                "\n[... {} more bytes: download the original message]",
                raw.len() - MAX_RAW_SHOWN
            ));
        }
        MessageView {
            body: Body::Text(text),
            note,
            ..Default::default()
        }
    }

    /// Attachment `n` (0-based, in the order [`MessageView::attachments`]
    /// lists them) of `raw`.
    pub fn attachment(raw: &[u8], n: usize) -> Option<AttachmentFile> {
        catch_unwind(AssertUnwindSafe(|| {
            with_header_end(raw, |raw| {
                let parsed = Parsed::new(raw);
                let part = parsed.message()?.attachments().nth(n)?;
                Some(AttachmentFile {
                    filename: safe_file_name(part, n),
                    content_type: content_type(part),
                    bytes: part.contents().to_vec(),
                })
            })
        }))
        .ok()
        .flatten()
    }
}

/// The first HTML body, sanitized; else the text bodies.
fn body_of(m: &mail_parser::Message<'_>) -> Body {
    let html = m.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.to_string()),
        _ => None,
    });
    if let Some(h) = html {
        return Body::Html(sanitize_html(&h));
    }
    let mut text = String::new();
    let mut i = 0;
    while let Some(t) = m.body_text(i) {
        text.push_str(&t);
        i += 1;
    }
    Body::Text(text)
}

fn content_type(part: &MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// An attachment's name fit to save and to put in a header: no path
/// separators, quotes or control characters; `attachment-N` when it has none.
pub fn safe_file_name(part: &MessagePart<'_>, index: usize) -> String {
    part.attachment_name()
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c == '/' || c == '\\' || c == '"' || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect::<String>()
        })
        .filter(|n| !n.trim().trim_matches('.').is_empty())
        .unwrap_or_else(|| format!("attachment-{}", index + 1))
}

/// Escapes text for HTML element content and attribute values (the one
/// escaper of message text, for the console and the laptop alike).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Cleans untrusted HTML: no scripts, styles, event handlers, forms, frames or
/// remote images (only inline `data:image/` sources survive; a remote image is
/// a tracking beacon). The one sanitizer of Satchel.
pub fn sanitize_html(html: &str) -> String {
    // `data:` passes the scheme check only for inline images (filtered below).
    let schemes: HashSet<&str> = ["http", "https", "mailto", "data"].into_iter().collect();
    ammonia::Builder::default()
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::Deny)
        .attribute_filter(|element, attribute, value| {
            let inline = value
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("data:"));
            if element == "img" && attribute == "src" {
                value
                    .starts_with("data:image/")
                    .then_some(Cow::Borrowed(value))
            } else if inline {
                None
            } else {
                Some(Cow::Borrowed(value))
            }
        })
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_remote_images_are_removed() {
        let out = sanitize_html(
            "<p onclick=\"x()\">hi</p><script>alert(1)</script>\
             <img src=\"x\" onerror=\"alert(2)\"><img src=\"https://t.example/p.gif\">\
             <img src=\"data:image/png;base64,iVBORw0KGgo=\"><a href=\"javascript:alert(3)\">j</a>\
             <a href=\"data:text/html,x\">d</a><a href=\"https://example.org/\">ok</a><style>body{display:none}</style>\
             <iframe src=\"https://example.org/\"></iframe><form action=\"/x\"><input></form>",
        );
        for bad in [
            "<script",
            "onclick",
            "onerror",
            "alert",
            "t.example",
            "javascript:",
            "<style",
            "display:none",
            "<iframe",
            "<form",
            "<input",
            "src=\"x\"",
            "data:text",
        ] {
            assert!(!out.contains(bad), "{bad} survived: {out}");
        }
        assert!(out.contains("data:image/png;base64"), "{out}");
        assert!(out.contains("href=\"https://example.org/\""), "{out}");
        assert!(out.contains("noopener"), "{out}");
    }

    #[test]
    fn text_and_attachments() {
        let raw = b"From: a@b.c\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
--XX\r\nContent-Type: text/plain\r\n\r\n<script>x</script> 1 < 2\r\n\
--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../r\\\".pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
        let v = MessageView::of(raw);
        assert_eq!(v.subject.as_deref(), Some("t"));
        assert!(matches!(&v.body, Body::Text(t) if t.contains("<script>x</script> 1 < 2")));
        assert_eq!(v.attachments.len(), 1);
        assert!(!v.attachments[0].name.contains('/'), "{:?}", v.attachments);
        let a = MessageView::attachment(raw, 0).expect("attachment 0");
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.bytes, b"%PDF-");
        assert!(MessageView::attachment(raw, 1).is_none());
    }

    #[test]
    fn too_deep_is_raw_text_with_a_note() {
        let mut raw = b"Subject: deep\r\n".to_vec();
        for i in 0..100_000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let v = MessageView::of(&raw);
        assert_eq!(v.subject.as_deref(), Some("deep"));
        assert!(v.note.as_deref().is_some_and(|n| n.contains("too deep")));
        assert!(matches!(&v.body, Body::Text(t) if t.starts_with("Subject: deep")));
        assert!(MessageView::attachment(&raw, 0).is_none());
    }
}
