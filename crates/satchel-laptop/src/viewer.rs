//! Renders an archived message as a safe, readable page.
//!
//! Archived mail is untrusted. HTML bodies go through ammonia (scripts,
//! styles, event handlers, forms, frames removed; links get
//! `rel="noopener noreferrer"`); images are kept only as inline `data:` URIs
//! so the page never loads remote content. Text bodies are shown escaped.
//! The agent also sends a strict Content-Security-Policy (see [`CSP`]).

use std::borrow::Cow;
use std::collections::HashSet;

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};

/// Content-Security-Policy for viewer pages: nothing is fetched from
/// anywhere (only inline `data:` images and the page's own inline style).
pub const CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Where the bytes shown came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Service,
    LocalCopy,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Service => "from the archive service",
            Source::LocalCopy => "from the local copy (offline)",
        }
    }
}

/// An attachment ready for download.
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
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

/// Cleans untrusted HTML: no scripts, styles, event handlers, forms,
/// frames or remote images.
pub fn sanitize_html(html: &str) -> String {
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    ammonia::Builder::default()
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_relative(ammonia::UrlRelative::Deny)
        .attribute_filter(|element, attribute, value| {
            if element == "img" && attribute == "src" {
                // Only inline images: a remote image is a tracking beacon.
                if value.starts_with("data:image/") {
                    Some(Cow::Borrowed(value))
                } else {
                    None
                }
            } else {
                Some(Cow::Borrowed(value))
            }
        })
        .clean(html)
        .to_string()
}

/// Page wrapper with the viewer's style.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>\
body{{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}}\
header,main,footer{{max-width:60rem;margin:0 auto;padding:0.8rem 1.2rem}}\
header{{background:#fff;border-bottom:1px solid #ddd}}\
table.h th{{text-align:right;color:#666;font-weight:normal;padding-right:0.8rem;vertical-align:top}}\
pre{{white-space:pre-wrap;word-wrap:break-word;font-family:ui-monospace,monospace}}\
.src{{color:#666;font-size:0.9em}} .body{{background:#fff;padding:1rem;border:1px solid #ddd}}\
table.s td,table.s th{{padding:0.2rem 0.8rem;text-align:left}}\
</style></head><body>{}</body></html>\n",
        escape(title),
        body
    )
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    a.iter()
        .map(
            |addr| match (addr.name.as_deref(), addr.address.as_deref()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (Some(n), None) => n.to_string(),
                (None, Some(e)) => e.to_string(),
                (None, None) => String::new(),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message page: headers, body (sanitized HTML or escaped text),
/// attachment links and a link to the raw `.eml`.
pub fn render_message(mailbox: &str, id: &str, raw: &[u8], source: Source) -> String {
    let base = format!("/m/{}/{}", satchel_api::client::segment(mailbox), id);
    let parsed = MessageParser::default().parse(raw);
    let mut out = String::new();
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .unwrap_or("(no subject)")
        .to_string();
    out.push_str("<header><h2>");
    out.push_str(&escape(&subject));
    out.push_str("</h2><table class=\"h\">");
    if let Some(m) = &parsed {
        let mut row = |name: &str, value: String| {
            if !value.is_empty() {
                out.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>",
                    name,
                    escape(&value)
                ));
            }
        };
        row("From", addresses(m.from()));
        row("To", addresses(m.to()));
        row("Cc", addresses(m.cc()));
        row("Date", m.date().map(|d| d.to_rfc822()).unwrap_or_default());
    }
    out.push_str(&format!(
        "<tr><th>Mailbox</th><td>{}</td></tr></table>\
<p class=\"src\">Shown {} &middot; <a href=\"{base}.eml\" download>Original message (.eml)</a></p>",
        escape(mailbox),
        source.label()
    ));
    if let Some(m) = &parsed {
        let names: Vec<String> = m
            .attachments()
            .enumerate()
            .map(|(i, a)| {
                let name = attachment_name(a, i);
                format!(
                    "<li><a href=\"{base}/attachments/{i}\" download=\"{}\">{}</a> ({} bytes)</li>",
                    escape(&name),
                    escape(&name),
                    a.contents().len()
                )
            })
            .collect();
        if !names.is_empty() {
            out.push_str("<p>Attachments:</p><ul>");
            out.push_str(&names.concat());
            out.push_str("</ul>");
        }
    }
    out.push_str("</header><main><div class=\"body\">");
    match &parsed {
        Some(m) => {
            let html: Option<String> = m.html_bodies().find_map(|p| match &p.body {
                PartType::Html(h) => Some(h.to_string()),
                _ => None,
            });
            if let Some(h) = html {
                out.push_str(&sanitize_html(&h));
            } else {
                let mut text = String::new();
                let mut i = 0;
                while let Some(t) = m.body_text(i) {
                    text.push_str(&t);
                    i += 1;
                }
                out.push_str("<pre>");
                out.push_str(&escape(&text));
                out.push_str("</pre>");
            }
        }
        None => {
            out.push_str("<pre>");
            out.push_str(&escape(&String::from_utf8_lossy(raw)));
            out.push_str("</pre>");
        }
    }
    out.push_str("</div></main>");
    page(&subject, &out)
}

fn attachment_name(part: &mail_parser::MessagePart<'_>, index: usize) -> String {
    part.attachment_name()
        .map(|n| n.replace(['/', '\\', '\0'], "_"))
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("attachment-{}", index + 1))
}

/// Attachment `n` (0-based, in message order) of the message.
pub fn attachment(raw: &[u8], n: usize) -> Option<Attachment> {
    let m = MessageParser::default().parse(raw)?;
    let part = m.attachments().nth(n)?;
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    Some(Attachment {
        filename: attachment_name(part, n),
        content_type,
        bytes: part.contents().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_sanitized() {
        let raw = b"From: Eve <eve@example.org>\r\nSubject: <b>hi</b>\r\nContent-Type: text/html\r\n\r\n\
<p onclick=\"steal()\">Hello <script>alert(1)</script><img src=\"http://tracker.example/x.png\" onerror=\"alert(2)\">\
<a href=\"javascript:alert(3)\">x</a><a href=\"https://ok.example/\">ok</a><style>p{}</style></p>\r\n";
        let page = render_message("a@b.c", "00", raw, Source::LocalCopy);
        for bad in [
            "<script",
            "onerror",
            "onclick",
            "tracker.example",
            "javascript:",
            "<style>p",
        ] {
            assert!(!page.contains(bad), "{bad} in {page}");
        }
        assert!(page.contains("Hello"));
        assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;"));
        assert!(page.contains("https://ok.example/"));
    }

    #[test]
    fn text_is_escaped_and_attachments_listed() {
        let raw = b"From: a@b.c\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
--XX\r\nContent-Type: text/plain\r\n\r\n<script>x</script> 1 < 2\r\n\
--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
        let page = render_message("a@b.c", "00", raw, Source::Service);
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt; 1 &lt; 2"));
        assert!(page.contains("/m/a@b.c/00/attachments/0"));
        let a = attachment(raw, 0).unwrap();
        assert_eq!(a.filename, "r.pdf");
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.bytes, b"%PDF-");
        assert!(attachment(raw, 1).is_none());
    }
}
