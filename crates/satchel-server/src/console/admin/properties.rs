//! A mailbox's Properties: its default repository, who may search it, its
//! offline synchronization (enable, limits, disable) and the flush behind a
//! confirmation page.

use super::{Fields, attempt, done, field, flash_of, limit_text, mailbox_url, parse_limit};
use crate::console::page::{Flash, Nav, csrf_field, frame};
use crate::console::{AdminSession, Console, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use indicatif::HumanBytes;
use maud::{Markup, html};
use satchel_api as api;

pub async fn properties(
    State(st): State<Console>,
    s: Session,
    Path(address): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    s.require_admin()?;
    render(&st, &s, address, flash_of(&q).as_ref(), StatusCode::OK).await
}

async fn render(
    st: &Console,
    s: &Session,
    address: String,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let a = address.clone();
    let (m, repos, users, report, retention) = blocking(&st.service, move |svc| {
        Ok((
            svc.mailbox(&c, &a)?,
            svc.repositories(&c)?,
            svc.users(&c)?,
            svc.offline_status(&c, Some(&a))?,
            svc.mailbox_retention(&c, &a)?,
        ))
    })
    .await?;
    let o = report
        .mailboxes
        .first()
        .ok_or_else(|| ServiceError::Internal("no offline status for the mailbox".into()))?;
    let body = html! {
        section.card {
            table.kv {
                tr { th { "Address" } td #mb-address { (m.address) } }
                tr { th { "Archived" } td { (m.messages) " messages, " (HumanBytes(m.bytes)) } }
                tr { th { "Retention" } td #retention { (retention_text(&retention)) } }
                tr { th { "IMAP" } td {
                    @if let (Some(u), Some(n)) = (&m.imap_url, &m.imap_user) {
                        (u) " as " (n)
                    } @else {
                        span.muted { "none (import only)" }
                    }
                } }
            }
        }
        (repository_form(s, &m, &repos))
        (grants(s, &m, &users))
        (offline(s, &m.address, o, &report.defaults))
    };
    let title = format!("Properties of {}", m.address);
    Ok((status, frame(s, Nav::Mailboxes, &title, flash, body)).into_response())
}

/// The effective period and where it comes from (`satchel retention show`).
fn retention_text(r: &api::Retention) -> String {
    let days = match r.days {
        Some(n) => format!("{n} days"),
        None => "kept forever".to_string(),
    };
    let from = if r.source == api::FROM_MAILBOX {
        "this mailbox's setting"
    } else {
        "the default"
    };
    format!("{days} ({from})")
}

fn repository_form(s: &Session, m: &api::Mailbox, repos: &[api::Repository]) -> Markup {
    html! {
        section.card {
            h2 { "Default repository" }
            p.src { "New mail is stored there; mail archived earlier stays where it is, reachable." }
            form.row method="post" action={ (mailbox_url(&m.address)) "/repository" } #set-repo {
                (csrf_field(s))
                label { "Repository"
                    select name="repo" #repo {
                        @for r in repos {
                            option value=(r.name) selected[r.name == m.repo] {
                                (r.name) " (" (r.kind) ": " (r.path) ")"
                            }
                        }
                    }
                }
                button type="submit" { "Change" }
            }
        }
    }
}

/// Who may search the mailbox, and a form to allow one more user (anyone
/// who is neither an administrator nor already allowed).
fn grants(s: &Session, m: &api::Mailbox, users: &[api::User]) -> Markup {
    let candidates: Vec<&api::User> = users
        .iter()
        .filter(|u| !u.admin && !m.grants.contains(&u.name))
        .collect();
    html! {
        section.card {
            h2 { "Who may search it" }
            p #grants {
                @if m.grants.is_empty() {
                    span.muted { "nobody but administrators" }
                }
                @for (i, g) in m.grants.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (g) }
                }
            }
            @if candidates.is_empty() {
                p.muted { "Every user already may search it (administrators always may)." }
            } @else {
                form.row method="post" action={ (mailbox_url(&m.address)) "/grants" } #grant {
                    (csrf_field(s))
                    label { "User"
                        select name="user" #grant-user {
                            @for u in &candidates { option value=(u.name) { (u.name) } }
                        }
                    }
                    button type="submit" { "Allow to search" }
                }
            }
        }
    }
}

/// A mailbox's own setting as the form shows it: a number, `none`, or
/// `default` when the global default applies.
fn setting(v: &api::SettingValue) -> String {
    match (v.source.as_str(), v.value) {
        ("mailbox", Some(n)) => n.to_string(),
        ("mailbox", None) => "none".to_string(),
        _ => "default".to_string(),
    }
}

/// The effective value and where it comes from.
fn source(v: &api::SettingValue, unit: &str) -> String {
    let from = if v.source == "mailbox" {
        "this mailbox's setting"
    } else {
        "global default"
    };
    format!("effective: {} ({from})", limit_text(v.value, unit))
}

/// Offline synchronization: state, repository, the settings form, the flush link.
fn offline(
    s: &Session,
    address: &str,
    o: &api::OfflineMailboxStatus,
    d: &api::OfflineDefaults,
) -> Markup {
    let url = mailbox_url(address);
    html! {
        section.card {
            h2 { "Offline archive synchronization" }
            p {
                @if o.enabled {
                    span.on #offline-state { "Enabled" } " "
                    form.inline method="post" action={ (url) "/offline/disable" } #disable {
                        (csrf_field(s))
                        button type="submit" .secondary { "Disable" }
                    }
                } @else {
                    span.off #offline-state { "Disabled" } " "
                }
            }
            p.src { "Offline repository: "
                @if let Some(e) = &o.epoch {
                    "epoch " code #epoch { (e) } ", generation " span #generation { (o.generation) }
                    ", " (o.messages) " messages, " (HumanBytes(o.bytes)) " to download"
                } @else {
                    "not built yet (the schedule or Synchronize now builds it)"
                }
            }
            h2 { "Configure" }
            p.src {
                "Each setting is a number, " code { "none" } " (no limit) or " code { "default" }
                " (the global defaults: how far back " (limit_text(d.since_days, "days"))
                "; size cap " (limit_text(d.max_bytes, "bytes")) ")."
            }
            form.row method="post" action={ (url) "/offline" } #configure {
                (csrf_field(s))
                label { "How far back (days)"
                    input type="text" name="since_days" #since_days value=(setting(&o.since_days));
                    span.muted #since-source { (source(&o.since_days, "days")) }
                }
                label { "Size cap (bytes)"
                    input type="text" name="max_bytes" #max_bytes value=(setting(&o.max_bytes));
                    span.muted #max-source { (source(&o.max_bytes, "bytes")) }
                }
                button type="submit" #enable { @if o.enabled { "Save settings" } @else { "Enable" } }
            }
            h2 { "Flush Offline Repository" }
            p.src {
                "Clears the offline repository under a new epoch and rebuilds it; every laptop "
                "drops its copy and downloads it again."
            }
            p { a href={ (url) "/flush" } #flush-link { "Flush Offline Repository…" } }
        }
    }
}

/// Runs a change to a mailbox; on success back to its Properties with
/// `notice`, on failure its Properties with the reason.
async fn mailbox_change<T, F>(
    st: Console,
    s: Session,
    address: String,
    f: &Fields,
    notice: impl FnOnce(T) -> String,
    call: F,
) -> PageResult
where
    T: Send + 'static,
    F: FnOnce(&crate::Service, &crate::Caller) -> Result<T, ServiceError> + Send + 'static,
{
    match attempt(&st, &s, f, call).await? {
        Ok(v) => Ok(done(&mailbox_url(&address), &notice(v))),
        Err(e) => {
            let status = e.status();
            render(&st, &s, address, Some(&Flash::Error(e.to_string())), status).await
        }
    }
}

pub async fn set_repository(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let repo = field(&f, "repo");
    let a = address.clone();
    mailbox_change(
        st,
        s,
        address,
        &f,
        |m: api::Mailbox| format!("Default repository is now {}.", m.repo),
        move |svc, c| svc.set_repository(c, &a, &repo),
    )
    .await
}

pub async fn grant(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let user = field(&f, "user");
    // A directory user not seen yet is looked up, so that the grant can name them.
    crate::signin::provision_grantee(&st.service, &user).await?;
    let a = address.clone();
    let u = user.clone();
    mailbox_change(
        st,
        s,
        address,
        &f,
        move |_: api::Mailbox| format!("{u} may now search this mailbox."),
        move |svc, c| svc.grant(c, &a, &user),
    )
    .await
}

pub async fn enable(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let default = Some(api::Limit::Default);
    let body = parse_limit(&f, "since_days", default).and_then(|since_days| {
        Ok(api::OfflineEnable {
            since_days,
            max_bytes: parse_limit(&f, "max_bytes", default)?,
        })
    });
    let a = address.clone();
    mailbox_change(
        st,
        s,
        address,
        &f,
        |o: api::OfflineMailboxStatus| {
            format!(
                "Offline synchronization enabled for {}: since {}, size cap {}.",
                o.mailbox,
                limit_text(o.since_days.value, "days"),
                limit_text(o.max_bytes.value, "bytes")
            )
        },
        move |svc, c| svc.offline_enable(c, &a, &body?),
    )
    .await
}

pub async fn disable(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let a = address.clone();
    mailbox_change(
        st,
        s,
        address,
        &f,
        |o: api::OfflineMailboxStatus| {
            format!(
                "Offline synchronization disabled for {}; its repository stays as it is.",
                o.mailbox
            )
        },
        move |svc, c| svc.offline_disable(c, &a),
    )
    .await
}

// ---- Flush, behind a confirmation ----

pub async fn flush_confirm(
    State(st): State<Console>,
    s: Session,
    Path(address): Path<String>,
) -> PageResult {
    s.require_admin()?;
    render_flush(&st, &s, address, None, StatusCode::OK).await
}

async fn render_flush(
    st: &Console,
    s: &Session,
    address: String,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let a = address.clone();
    let report = blocking(&st.service, move |svc| svc.offline_status(&c, Some(&a))).await?;
    let o = report
        .mailboxes
        .first()
        .ok_or_else(|| ServiceError::Internal("no offline status for the mailbox".into()))?;
    let url = mailbox_url(&address);
    let body = html! {
        section.card {
            p {
                "Flushing clears the offline repository of " strong { (address) }
                " (now epoch " code { (o.epoch.as_deref().unwrap_or("none")) } ", generation "
                (o.generation) ", " (o.messages) " messages) under a new epoch and rebuilds it"
                @if !o.enabled { " (not rebuilt while synchronization is disabled)" }
                ". Every laptop client drops its local copy and downloads it again from scratch."
            }
            form method="post" action={ (url) "/flush" } #flush {
                (csrf_field(s))
                p { label.check {
                    input type="checkbox" name="confirm" value="yes" #confirm required;
                    " Yes, flush the offline repository of " (address)
                } }
                p {
                    button type="submit" .danger #flush-button { "Flush Offline Repository" }
                    " " a href=(url) { "Cancel" }
                }
            }
        }
    };
    let title = format!("Flush Offline Repository of {address}");
    Ok((status, frame(s, Nav::Mailboxes, &title, flash, body)).into_response())
}

pub async fn flush(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    s.check_csrf(&f)?;
    s.require_admin()?;
    if field(&f, "confirm") != "yes" {
        let e = Flash::Error("Tick the confirmation box to flush.".into());
        return render_flush(&st, &s, address, Some(&e), StatusCode::BAD_REQUEST).await;
    }
    let c = s.caller.clone();
    let a = address.clone();
    match blocking(&st.service, move |svc| svc.offline_flush(&c, &a)).await {
        Ok(r) => Ok(done(
            &mailbox_url(&address),
            &format!(
                "Flushed: new epoch {}, generation {}, {} messages.",
                r.epoch, r.generation, r.messages
            ),
        )),
        Err(e) => {
            let status = e.status();
            render_flush(&st, &s, address, Some(&Flash::Error(e.to_string())), status).await
        }
    }
}
