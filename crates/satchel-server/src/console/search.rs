//! The search page (every signed-in user) and the message view: archived HTML
//! sanitized by ammonia (no script, no event handlers, no remote images),
//! text escaped, attachments and the raw .eml downloadable.

use super::page::{self, Nav, escape, frame};
use super::{Console, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use indicatif::HumanBytes;
use satchel_api::client::segment;
use satchel_message::MessageView;
use std::collections::HashMap;

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
                    mbe = segment(mb),
                    id = escape(&h.id),
                    subject = escape(subject),
                    snippet = escape(&h.snippet),
                    mb = escape(mb),
                    size = HumanBytes(h.size),
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
    let size = raw.len() as u64;
    // Parsing is CPU work bounded by the message budget: off the async workers.
    let view = blocking(&st.service, move |_| Ok(MessageView::of(&raw))).await?;
    let base = format!("/console/messages/{}/{}", segment(&address), escape(&id));
    let subject = view
        .subject
        .clone()
        .unwrap_or_else(|| "(no subject)".into());
    let mut out = String::from("<section class=\"card\"><table class=\"kv\" id=\"headers\">");
    for (name, value) in view.header_rows() {
        out.push_str(&format!(
            "<tr><th>{name}</th><td>{}</td></tr>",
            escape(value)
        ));
    }
    out.push_str(&format!(
        "<tr><th>Mailbox</th><td>{}</td></tr><tr><th>Size</th><td>{}</td></tr></table>\
<p class=\"src\"><a href=\"{base}/raw\" id=\"raw\" download=\"{id}.eml\">Original message (.eml)</a></p>",
        escape(&address),
        HumanBytes(size),
        id = escape(&id),
    ));
    if let Some(note) = &view.note {
        out.push_str(&format!(
            "<p class=\"flash\" id=\"note\">{}</p>",
            escape(note)
        ));
    }
    let items: Vec<String> = view
        .attachments
        .iter()
        .map(|a| {
            format!(
                "<li><a href=\"{base}/attachments/{i}\" download=\"{n}\">{n}</a> ({})</li>",
                HumanBytes(a.size as u64),
                i = a.index,
                n = escape(&a.name),
            )
        })
        .collect();
    if !items.is_empty() {
        out.push_str("<p>Attachments:</p><ul id=\"attachments\">");
        out.push_str(&items.concat());
        out.push_str("</ul>");
    }
    out.push_str("</section><div class=\"mailbody\" id=\"mailbody\">");
    out.push_str(&view.body.to_html());
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
    let part = blocking(&st.service, move |_| Ok(MessageView::attachment(&raw, n)))
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("the message has no attachment {n}")))?;
    let name = part.filename;
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
                    segment(&name)
                ),
            ),
        ],
        part.bytes,
    )
        .into_response())
}
