//! The Mailbox Manager: every mailbox with its repository, size and offline
//! state, and the form that adds one.

use super::{Fields, attempt, done, field, flash_of, mailbox_url, optional};
use crate::console::page::{Flash, Nav, csrf_field, frame};
use crate::console::{AdminSession, Console, PageResult, Session};
use crate::http::blocking;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use indicatif::HumanBytes;
use maud::{Markup, html};
use satchel_api as api;
use std::collections::HashMap;

pub async fn mailboxes(
    State(st): State<Console>,
    s: Session,
    Query(q): Query<Fields>,
) -> PageResult {
    s.require_admin()?;
    render(&st, &s, flash_of(&q).as_ref(), StatusCode::OK).await
}

async fn render(
    st: &Console,
    s: &Session,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let (list, repos, offline) = blocking(&st.service, move |svc| {
        Ok((
            svc.mailboxes(&c)?,
            svc.repositories(&c)?,
            svc.offline_status(&c, None)?,
        ))
    })
    .await?;
    let enabled: HashMap<&str, bool> = offline
        .mailboxes
        .iter()
        .map(|m| (m.mailbox.as_str(), m.enabled))
        .collect();
    let on = |m: &api::Mailbox| enabled.get(m.address.as_str()).copied().unwrap_or(false);
    let body = html! {
        section.card {
            table.grid #mailboxes {
                thead { tr {
                    th { "Address" } th { "Default repository" }
                    th.num { "Archived messages" } th.num { "Archived bytes" }
                    th { "Offline sync" }
                } }
                tbody {
                    @for m in &list {
                        tr data-mailbox=(m.address) {
                            td { a href=(mailbox_url(&m.address)) { (m.address) } }
                            td { (m.repo) }
                            td.num { (m.messages) }
                            td.num { (HumanBytes(m.bytes)) }
                            td.offline { (on_off(on(m))) }
                        }
                    }
                    @if list.is_empty() {
                        tr { td colspan="5" .muted { "No mailboxes yet." } }
                    }
                }
            }
        }
        (add_form(s, &repos))
    };
    let page = frame(s, Nav::Mailboxes, "Mailbox Manager", flash, body);
    Ok((status, page).into_response())
}

/// `on` or `off`, styled.
pub(super) fn on_off(on: bool) -> Markup {
    html! {
        @if on { span.on { "on" } } @else { span.off { "off" } }
    }
}

fn add_form(s: &Session, repos: &[api::Repository]) -> Markup {
    html! {
        section.card {
            h2 { "Add mailbox" }
            form.row method="post" action="/console/mailboxes" #add-mailbox {
                (csrf_field(s))
                label { "Address"
                    input type="text" name="address" #address required placeholder="alice@example.com";
                }
                label { "Default repository"
                    select name="repo" #repo {
                        @for r in repos {
                            option value=(r.name) { (r.name) " (" (r.kind) ": " (r.path) ")" }
                        }
                    }
                }
                label { "IMAP URL (optional)"
                    input type="text" name="imap_url" placeholder="imaps://mail.example.com";
                }
                label { "IMAP user" input type="text" name="imap_user"; }
                label { "IMAP password"
                    input type="password" name="imap_password" autocomplete="new-password";
                }
                button type="submit" #add { "Add mailbox" }
            }
        }
    }
}

pub async fn add_mailbox(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    let new = api::NewMailbox {
        address: field(&f, "address"),
        repo: optional(&f, "repo"),
        imap_url: optional(&f, "imap_url"),
        imap_user: optional(&f, "imap_user"),
        imap_password: f.get("imap_password").cloned().filter(|p| !p.is_empty()),
    };
    match attempt(&st, &s, &f, move |svc, c| svc.add_mailbox(c, &new)).await? {
        Ok(m) => Ok(done(
            &mailbox_url(&m.address),
            &format!("Mailbox {} added.", m.address),
        )),
        Err(e) => {
            let status = e.status();
            render(&st, &s, Some(&Flash::Error(e.to_string())), status).await
        }
    }
}
