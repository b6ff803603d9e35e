//! Renders an archived message as a safe, readable page.
//!
//! Archived mail is untrusted. The message is parsed and its HTML sanitized by
//! satchel-message (the same view the console shows: scripts, styles, event
//! handlers, forms, frames removed; images kept only as inline `data:` URIs so
//! the page never loads remote content). Text bodies are shown escaped.
//! The agent also sends a strict Content-Security-Policy (see [`CSP`]).

use maud::{DOCTYPE, Markup, PreEscaped, html};
pub use satchel_message::AttachmentFile as Attachment;
use satchel_message::{AttachmentFile, MessageId, MessageLink, MessageView};

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

/// The viewer's style, shared by every agent page.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}\
header,main,footer{max-width:60rem;margin:0 auto;padding:0.8rem 1.2rem}\
header{background:#fff;border-bottom:1px solid #ddd}\
table.h th{text-align:right;color:#666;font-weight:normal;padding-right:0.8rem;vertical-align:top}\
pre{white-space:pre-wrap;word-wrap:break-word;font-family:ui-monospace,monospace}\
.src{color:#666;font-size:0.9em} .body{background:#fff;padding:1rem;border:1px solid #ddd}\
table.s td,table.s th{padding:0.2rem 0.8rem;text-align:left}";

/// Page frame with the viewer's style around `body` (already markup: maud
/// escaped every value spliced into it).
pub fn page(title: &str, body: Markup) -> String {
    let page = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    page.into_string() + "\n"
}

/// The message page: headers, body (sanitized HTML or escaped text),
/// attachment links and a link to the raw `.eml`. The same
/// [`MessageView`] the console shows, so both show the same thing.
pub fn render_message(mailbox: &str, id: &MessageId, raw: &[u8], source: Source) -> String {
    let base = MessageLink::new(mailbox, *id).path();
    let view = MessageView::of(raw);
    let subject = view
        .subject
        .clone()
        .unwrap_or_else(|| "(no subject)".into());
    let body = html! {
        header {
            h2 { (subject) }
            table.h {
                @for (name, value) in view.header_rows() {
                    tr { th { (name) } td { (value) } }
                }
                tr { th { "Mailbox" } td { (mailbox) } }
            }
            p.src {
                "Shown " (source.label()) " · "
                a href={ (base) ".eml" } download { "Original message (.eml)" }
            }
            @if let Some(note) = &view.note {
                p.src #note { (note) }
            }
            @if !view.attachments.is_empty() {
                p { "Attachments:" }
                ul {
                    @for a in &view.attachments {
                        li {
                            a href={ (base) "/attachments/" (a.index) } download=(a.name) { (a.name) }
                            " (" (a.size) " bytes)"
                        }
                    }
                }
            }
        }
        // The one raw insertion: the body satchel-message has sanitized (the
        // console inserts the same string the same way).
        main { div.body { (PreEscaped(view.body.to_html())) } }
    };
    page(&subject, body)
}

/// Attachment `n` (0-based, in message order) of the message.
pub fn attachment(raw: &[u8], n: usize) -> Option<AttachmentFile> {
    MessageView::attachment(raw, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_sanitized() {
        let raw = b"From: Eve <eve@example.org>\r\nSubject: <b>hi</b>\r\nContent-Type: text/html\r\n\r\n\
<p onclick=\"steal()\">Hello <script>alert(1)</script><img src=\"http://tracker.example/x.png\" onerror=\"alert(2)\">\
<a href=\"javascript:alert(3)\">x</a><a href=\"https://ok.example/\">ok</a><style>p{}</style></p>\r\n";
        let page = render_message("a@b.c", &MessageId([0; 32]), raw, Source::LocalCopy);
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
        let page = render_message("a@b.c", &MessageId([0; 32]), raw, Source::Service);
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt; 1 &lt; 2"));
        assert!(page.contains(&format!("/m/a@b.c/{}/attachments/0", "0".repeat(64))));
        let a = attachment(raw, 0).unwrap();
        assert_eq!(a.filename, "r.pdf");
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.bytes, b"%PDF-");
        assert!(attachment(raw, 1).is_none());
    }
}
