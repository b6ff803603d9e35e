//! The search page (every signed-in user) and the message view: archived HTML
//! sanitized by ammonia (no script, no event handlers, no remote images),
//! text escaped, attachments and the raw .eml downloadable.

use super::page::{self, Nav, bytes, enc, escape, frame};
use super::{Console, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

const LIMIT: usize = 100;

pub async fn search(
    State(st): State<Console>,
    s: Session,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let query = q.get("q").map(|v| v.trim().to_string()).unwrap_or_default();
    let mailbox = q.get("mailbox").cloned().filter(|m| !m.is_empty());
    let c = s.caller.clone();
    let (qq, mm) = (query.clone(), mailbox.clone());
    let (boxes, results) = blocking(&st.service, move |svc| {
        let boxes = svc.mailboxes(&c)?;
        let results = if qq.is_empty() {
            None
        } else {
            Some(svc.search(&c, &qq, mm.as_deref(), LIMIT))
        };
        Ok((boxes, results))
    })
    .await?;
    let options: String = std::iter::once(format!(
        "<option value=\"\">all my mailboxes ({})</option>",
        boxes.len()
    ))
    .chain(boxes.iter().map(|b| {
        format!(
            "<option value=\"{a}\"{sel}>{a}</option>",
            a = escape(&b.address),
            sel = if mailbox.as_deref() == Some(b.address.as_str()) {
                " selected"
            } else {
                ""
            }
        )
    }))
    .collect();
    let mut body = format!(
        "<section class=\"card\"><form class=\"row\" method=\"get\" action=\"/console/search\" id=\"search\">\
<label>Search<input type=\"search\" name=\"q\" id=\"q\" value=\"{}\" size=\"50\" \
placeholder=\"words, from:bob, subject:report, after:2024-01-01\"></label>\
<label>Mailbox<select name=\"mailbox\">{options}</select></label>\
<button type=\"submit\" id=\"go\">Search</button></form></section>",
        escape(&query)
    );
    let flash;
    match results {
        None => flash = None,
        Some(Err(e)) => flash = Some(page::Flash::Error(e.to_string())),
        Some(Ok(r)) => {
            flash = None;
            let mut rows = String::new();
            for h in &r.hits {
                // A hit names only mailboxes the caller may search (Service::search).
                let Some(mb) = h.mailboxes.first() else {
                    continue;
                };
                let subject = if h.subject.trim().is_empty() {
                    "(no subject)"
                } else {
                    h.subject.as_str()
                };
                rows.push_str(&format!(
                    "<tr class=\"hit\"><td>{date}</td><td>{from}</td>\
<td><a href=\"/console/messages/{mbe}/{id}\">{subject}</a><div class=\"src\">{snippet}</div></td>\
<td>{mb}</td><td class=\"num\">{size}</td></tr>",
                    date = page::unix_time(h.date),
                    from = escape(&h.from),
                    mbe = enc(mb),
                    id = escape(&h.id),
                    subject = escape(subject),
                    snippet = escape(&h.snippet),
                    mb = escape(mb),
                    size = bytes(h.size),
                ));
            }
            body.push_str(&format!(
                "<section class=\"card\"><p class=\"src\" id=\"hit-count\">{} result{} for <code>{}</code>{}</p>\
<table class=\"grid\" id=\"results\"><thead><tr><th>Date</th><th>From</th><th>Subject</th><th>Mailbox</th>\
<th class=\"num\">Size</th></tr></thead><tbody>{rows}</tbody></table></section>",
                r.hits.len(),
                if r.hits.len() == 1 { "" } else { "s" },
                escape(&query),
                if r.hits.len() >= LIMIT {
                    " (the first ones; narrow the search for more)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(Html(frame(&s, Nav::Search, "Search", flash.as_ref(), &body)).into_response())
}

/// Cleans untrusted HTML: no scripts, styles, event handlers, forms, frames
/// or remote images (only inline `data:image/` sources survive).
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
                // Only inline images: a remote image is a tracking beacon.
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

fn attachment_name(part: &mail_parser::MessagePart<'_>, index: usize) -> String {
    part.attachment_name()
        .map(|n| n.replace(['/', '\\', '\0', '"', '\r', '\n'], "_"))
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("attachment-{}", index + 1))
}

async fn fetch(
    st: &Console,
    s: &Session,
    address: &str,
    id: &str,
) -> Result<Vec<u8>, ServiceError> {
    let c = s.caller.clone();
    let (a, i) = (address.to_string(), id.to_string());
    blocking(&st.service, move |svc| svc.message(&c, &a, &i)).await
}

pub async fn message(
    State(st): State<Console>,
    s: Session,
    Path((address, id)): Path<(String, String)>,
) -> PageResult {
    let raw = fetch(&st, &s, &address, &id).await?;
    let base = format!("/console/messages/{}/{}", enc(&address), escape(&id));
    let parsed = MessageParser::default().parse(&raw[..]);
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .unwrap_or("(no subject)")
        .to_string();
    let mut out = String::from("<section class=\"card\"><table class=\"kv\" id=\"headers\">");
    if let Some(m) = &parsed {
        let mut row = |name: &str, value: String| {
            if !value.is_empty() {
                out.push_str(&format!(
                    "<tr><th>{name}</th><td>{}</td></tr>",
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
        "<tr><th>Mailbox</th><td>{}</td></tr><tr><th>Size</th><td>{}</td></tr></table>\
<p class=\"src\"><a href=\"{base}/raw\" id=\"raw\" download=\"{id}.eml\">Original message (.eml)</a></p>",
        escape(&address),
        bytes(raw.len() as u64),
        id = escape(&id),
    ));
    if let Some(m) = &parsed {
        let items: Vec<String> = m
            .attachments()
            .enumerate()
            .map(|(i, a)| {
                let name = attachment_name(a, i);
                format!(
                    "<li><a href=\"{base}/attachments/{i}\" download=\"{n}\">{n}</a> ({})</li>",
                    bytes(a.contents().len() as u64),
                    n = escape(&name),
                )
            })
            .collect();
        if !items.is_empty() {
            out.push_str("<p>Attachments:</p><ul id=\"attachments\">");
            out.push_str(&items.concat());
            out.push_str("</ul>");
        }
    }
    out.push_str("</section><div class=\"mailbody\" id=\"mailbody\">");
    match &parsed {
        Some(m) => {
            let html = m.html_bodies().find_map(|p| match &p.body {
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
            out.push_str(&escape(&String::from_utf8_lossy(&raw)));
            out.push_str("</pre>");
        }
    }
    out.push_str("</div>");
    Ok(Html(frame(&s, Nav::Search, &subject, None, &out)).into_response())
}

pub async fn raw(
    State(st): State<Console>,
    s: Session,
    Path((address, id)): Path<(String, String)>,
) -> PageResult {
    let raw = fetch(&st, &s, &address, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.eml\""),
            ),
        ],
        raw,
    )
        .into_response())
}

pub async fn attachment(
    State(st): State<Console>,
    s: Session,
    Path((address, id, n)): Path<(String, String, usize)>,
) -> PageResult {
    let raw = fetch(&st, &s, &address, &id).await?;
    let m = MessageParser::default()
        .parse(&raw[..])
        .ok_or_else(|| ServiceError::NotFound("the message could not be parsed".into()))?;
    let part = m
        .attachments()
        .nth(n)
        .ok_or_else(|| ServiceError::NotFound(format!("the message has no attachment {n}")))?;
    let name = attachment_name(part, n);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            // Never rendered by the browser: whatever it claims to be, it downloads.
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
                    enc(&name)
                ),
            ),
        ],
        part.contents().to_vec(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::sanitize_html;

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
}
