//! The search page (every signed-in user) and the message view: archived HTML
//! sanitized by ammonia (no script, no event handlers, no remote images),
//! text escaped, attachments and the raw .eml downloadable.

use super::page::{self, Flash, Nav, frame};
use super::{Console, PageResult, Session};
use crate::audit::Read;
use crate::error::ServiceError;
use crate::http::blocking;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use indicatif::HumanBytes;
use maud::{Markup, PreEscaped, html};
use satchel_api::SearchResults;
use satchel_api::client::segment;
use satchel_message::{MessageId, MessageView};
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
    let form = search_form(&query, mailbox.as_deref(), &boxes);
    let (flash, hits) = match results {
        // Back from a change (a deletion), saying what it did.
        None => (q.get("notice").map(|n| Flash::Notice(n.clone())), None),
        Some(Err(e)) => (Some(Flash::Error(e.to_string())), None),
        Some(Ok(r)) => (None, Some(hit_table(&query, &r))),
    };
    let body = html! { (form) @if let Some(h) = hits { (h) } };
    Ok(frame(&s, Nav::Search, "Search", flash.as_ref(), body).into_response())
}

/// The query box and the mailbox choice (all the caller's mailboxes, or one).
fn search_form(query: &str, mailbox: Option<&str>, boxes: &[satchel_api::Mailbox]) -> Markup {
    html! {
        section.card {
            form.row method="get" action="/console/search" #search {
                label { "Search"
                    input type="search" name="q" #q value=(query) size="50"
                        placeholder="words, from:bob, subject:report, after:2024-01-01";
                }
                label { "Mailbox"
                    select name="mailbox" {
                        option value="" { "all my mailboxes (" (boxes.len()) ")" }
                        @for b in boxes {
                            option value=(b.address) selected[mailbox == Some(b.address.as_str())] { (b.address) }
                        }
                    }
                }
                button type="submit" #go { "Search" }
            }
        }
    }
}

/// The hits, newest first as the service ranks them, each linking to its view.
fn hit_table(query: &str, r: &SearchResults) -> Markup {
    let n = r.hits.len();
    html! {
        section.card {
            p.src #hit-count {
                (n) " result" @if n != 1 { "s" } " for " code { (query) }
                @if n >= LIMIT { " (the first ones; narrow the search for more)" }
            }
            table.grid #results {
                thead { tr {
                    th { "Date" } th { "From" } th { "Subject" } th { "Mailbox" }
                    th.num { "Size" }
                } }
                tbody {
                    @for h in &r.hits {
                        // A hit names only mailboxes the caller may search (Service::search).
                        @if let Some(mb) = h.mailboxes.first() {
                            tr.hit {
                                td { (page::unix_time(h.date)) }
                                td { (h.from) }
                                td {
                                    a href={ "/console/messages/" (segment(mb)) "/" (h.id) } {
                                        @if h.subject.trim().is_empty() { "(no subject)" } @else { (h.subject) }
                                    }
                                    div.src { (h.snippet) }
                                }
                                td { (mb) }
                                td.num { (HumanBytes(h.size)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn fetch(
    st: &Console,
    s: &Session,
    address: &str,
    id: &str,
    read: Read,
) -> Result<Vec<u8>, ServiceError> {
    let c = s.caller.clone();
    let (a, i) = (address.to_string(), id.parse::<MessageId>()?);
    blocking(&st.service, move |svc| svc.read_message(&c, &a, &i, read)).await
}

pub async fn message(
    State(st): State<Console>,
    s: Session,
    Path((address, id)): Path<(String, String)>,
) -> PageResult {
    let raw = fetch(&st, &s, &address, &id, Read::ConsoleView).await?;
    let size = raw.len() as u64;
    // Parsing is CPU work bounded by the message budget: off the async workers.
    let view = blocking(&st.service, move |_| Ok(MessageView::of(&raw))).await?;
    let base = format!("/console/messages/{}/{}", segment(&address), segment(&id));
    let subject = view
        .subject
        .clone()
        .unwrap_or_else(|| "(no subject)".into());
    let body = html! {
        section.card {
            table.kv #headers {
                @for (name, value) in view.header_rows() {
                    tr { th { (name) } td { (value) } }
                }
                tr { th { "Mailbox" } td { (address) } }
                tr { th { "Size" } td { (HumanBytes(size)) } }
            }
            p.src {
                a href={ (base) "/raw" } #raw download={ (id) ".eml" } { "Original message (.eml)" }
                // Administrators only: the confirmation page (admin/delete.rs) asks why.
                @if s.admin() {
                    " · " a href={ (base) "/delete" } #delete-link { "Delete from this mailbox…" }
                }
            }
            @if let Some(note) = &view.note {
                p.flash #note { (note) }
            }
            @if !view.attachments.is_empty() {
                p { "Attachments:" }
                ul #attachments {
                    @for a in &view.attachments {
                        li {
                            a href={ (base) "/attachments/" (a.index) } download=(a.name) { (a.name) }
                            " (" (HumanBytes(a.size as u64)) ")"
                        }
                    }
                }
            }
        }
        // The one raw insertion on this page: the body as satchel-message
        // rendered it (HTML sanitized by its one ammonia configuration,
        // text escaped).
        div.mailbody #mailbody { (PreEscaped(view.body.to_html())) }
    };
    Ok(frame(&s, Nav::Search, &subject, None, body).into_response())
}

pub async fn raw(
    State(st): State<Console>,
    s: Session,
    Path((address, id)): Path<(String, String)>,
) -> PageResult {
    let raw = fetch(&st, &s, &address, &id, Read::ConsoleRaw).await?;
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
    let raw = fetch(&st, &s, &address, &id, Read::ConsoleAttachment(n)).await?;
    let part = blocking(&st.service, move |_| Ok(MessageView::attachment(&raw, n)))
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("the message has no attachment {n}")))?;
    let disposition = part.content_disposition();
    Ok((
        [
            // Never rendered by the browser: whatever it claims to be, it downloads.
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        part.bytes,
    )
        .into_response())
}
