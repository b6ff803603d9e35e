//! Audit: the trail's entries, newest first, filtered by user, mailbox and
//! time and paged by seq, under whether the chain verifies and its head
//! (docs/compliance.md). A view verifies only the entries after the last
//! one a view verified (`Service::audit_verify_page`), and says so; "Verify
//! the whole chain" reads it all. Read-only: nothing here changes the trail.

use super::{Fields, field, optional};
use crate::audit::PageVerification;
use crate::console::page::{self, Nav, frame};
use crate::console::{Console, PageResult, Session};
use crate::http::blocking;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::{Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use satchel_api as api;

/// Entries on one page.
const PAGE: usize = 50;

pub async fn audit(State(st): State<Console>, s: Session, Query(q): Query<Fields>) -> PageResult {
    s.require_admin()?;
    let filter = api::AuditFilter {
        user: optional(&q, "user"),
        mailbox: optional(&q, "mailbox"),
        since: optional(&q, "since"),
        limit: Some(PAGE),
        before: field(&q, "before").parse().ok(),
    };
    // `full`: the "Verify the whole chain" link; otherwise only the entries
    // after the last one a view verified are read.
    let full = q.contains_key("full");
    let c = s.caller.clone();
    let f = filter.clone();
    let (verification, entries) = blocking(&st.service, move |svc| {
        Ok((svc.audit_verify_page(&c, full)?, svc.audit_list(&c, &f)))
    })
    .await?;
    let body = html! {
        (chain(&verification))
        (filters(&filter))
        @match &entries {
            Ok(list) => (table(list, verification.result.first_bad, &filter)),
            // A filter the service refuses (a --since it cannot read): the form again, with why.
            Err(e) => div.error #filter-error { (e) },
        }
    };
    Ok(frame(&s, Nav::Audit, "Audit trail", None, body).into_response())
}

/// Whether the chain verifies, through which entry, what this view read
/// and when the whole chain was last verified.
fn chain(p: &PageVerification) -> Markup {
    let v = &p.result;
    html! {
        section.card #chain {
            @if v.ok {
                p.on #chain-state {
                    "The chain verifies through entry " span #verified-through { (v.head.seq) }
                    " at " span #verified-at { (page::rfc3339(Some(&p.at))) } "."
                }
            } @else {
                div.error #chain-state {
                    "The chain does NOT verify: "
                    (v.problem.as_deref().unwrap_or("an entry does not match"))
                    ". " (v.entries) " entries verified before it."
                }
            }
            p.src #verified-scope data-from=(p.from) {
                (scope(p))
                " Last whole-chain check on this service: "
                @match &p.full_at { Some(t) => (page::rfc3339(Some(t))), None => "none since it started" }
                ". " a href="/console/audit?full=1" #verify-all { "Verify the whole chain" }
                " (as " code { "satchel audit verify" } " does)."
            }
            p.src {
                @if v.ok { "Head: entry " } @else { "Last entry that verified: " }
                span #head-seq { (v.head.seq) } ", hash " code #head-hash { (v.head.hash) }
            }
            p.src {
                "Record the head elsewhere now and then (or run " code { "satchel audit head" }
                "): a trail that still verifies and still holds that entry with that hash "
                "proves nothing up to it was touched."
            }
        }
    }
}

/// What this view read: the whole chain, or only the entries since an
/// earlier view (the ones before it are not re-read: a change to them
/// shows at the next whole-chain check).
fn scope(p: &PageVerification) -> Markup {
    let earlier = page::rfc3339(p.earlier_at.as_deref());
    html! {
        @if p.from == 1 {
            "This view read the whole chain."
        } @else if !p.result.ok {
            "This view read the entries from entry " (p.from) " on; entries 1 to " (p.from - 1)
            " were verified by an earlier view at " (earlier) "."
        } @else if p.from > p.result.head.seq {
            "This view found no entry after entry " (p.from - 1) ", which an earlier view verified at "
            (earlier) "; entries already verified are not re-read on each view, so a change to them "
            "shows at the next whole-chain check."
        } @else {
            "This view read entries " (p.from) " to " (p.result.head.seq) "; entries 1 to " (p.from - 1)
            " were verified by an earlier view at " (earlier) " and are not re-read on each view, so "
            "a change to them shows at the next whole-chain check."
        }
    }
}

/// The filter form (a GET: nothing changes, so no CSRF token).
fn filters(f: &api::AuditFilter) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        section.card {
            form.row method="get" action="/console/audit" #audit-filter {
                label { "User"
                    input type="text" name="user" #filter-user value=(value(&f.user));
                }
                label { "Mailbox"
                    input type="text" name="mailbox" #filter-mailbox value=(value(&f.mailbox));
                }
                label { "Since (YYYY-MM-DD or RFC 3339)"
                    input type="text" name="since" #filter-since value=(value(&f.since));
                }
                button type="submit" #filter-apply { "Filter" }
                a href="/console/audit" { "Clear" }
            }
        }
    }
}

/// The page's entries, newest first, with links to older and newest ones.
fn table(list: &[api::AuditEntry], first_bad: Option<i64>, f: &api::AuditFilter) -> Markup {
    let older = (list.len() == PAGE)
        .then(|| list.first().map(|e| e.seq))
        .flatten();
    html! {
        section.card {
            @if list.is_empty() {
                p.muted #no-entries { "No entry matches." }
            } @else {
                table.grid #audit {
                    thead { tr {
                        th.num { "Seq" } th { "Time (UTC)" } th { "User" } th { "From" }
                        th { "Action" } th { "What" }
                    } }
                    tbody {
                        @for e in list.iter().rev() {
                            tr data-seq=(e.seq) class=[(first_bad == Some(e.seq)).then_some("bad")] {
                                td.num { (e.seq) }
                                td.time { (e.time) }
                                td { (e.actor) }
                                td { (e.source) }
                                td { code { (e.action) } }
                                td.detail { (e.target) }
                            }
                        }
                    }
                }
            }
            p {
                @if f.before.is_some() { a href=(page_url(f, None)) #newest { "Newest entries" } " " }
                @if let Some(seq) = older { a href=(page_url(f, Some(seq))) #older { "Older entries" } }
            }
        }
    }
}

/// This page's filters, with entries before `before` (none: the newest).
fn page_url(f: &api::AuditFilter, before: Option<i64>) -> String {
    let mut url = String::from("/console/audit?");
    let params = [
        ("user", f.user.clone()),
        ("mailbox", f.mailbox.clone()),
        ("since", f.since.clone()),
        ("before", before.map(|b| b.to_string())),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            url.push_str(&format!(
                "{name}={}&",
                utf8_percent_encode(&v, NON_ALPHANUMERIC)
            ));
        }
    }
    url.pop();
    url
}
