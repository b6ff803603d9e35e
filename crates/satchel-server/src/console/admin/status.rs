//! Status: the offline archive's schedule and global defaults, every offline
//! repository (with Synchronize), and the recent jobs.

use super::mailboxes::on_off;
use super::{
    Fields, attempt, done, field, flash_of, limit_text, mailbox_url, optional, parse_limit,
};
use crate::console::page::{self, Flash, Nav, csrf_field, frame};
use crate::console::{AdminSession, Console, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use indicatif::HumanBytes;
use maud::{Markup, html};
use satchel_api as api;

pub async fn status(State(st): State<Console>, s: Session, Query(q): Query<Fields>) -> PageResult {
    s.require_admin()?;
    render(&st, &s, flash_of(&q).as_ref(), None, StatusCode::OK).await
}

async fn render(
    st: &Console,
    s: &Session,
    flash: Option<&Flash>,
    cron_input: Option<String>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let (report, jobs) = blocking(&st.service, move |svc| {
        Ok((svc.offline_status(&c, None)?, svc.jobs(&c, 25, None)?))
    })
    .await?;
    let body = html! {
        (settings(s, &report, cron_input.as_deref()))
        (repositories(s, &report.mailboxes))
        (job_table(&jobs))
    };
    let page = frame(s, Nav::Status, "Status: offline archive", flash, body);
    Ok((status, page).into_response())
}

/// The schedule and the global defaults, each with its form.
fn settings(s: &Session, report: &api::OfflineStatusReport, cron_input: Option<&str>) -> Markup {
    let d = &report.defaults;
    let limit_value = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    html! {
        section.card {
            h2 { "Offline archive schedule" }
            p.src {
                "Cron syntax (minute hour day-of-month month day-of-week, service local time). "
                "Next run: " span #next-run { (page::rfc3339(report.schedule.next_run.as_deref())) }
            }
            form.row method="post" action="/console/status/schedule" #schedule {
                (csrf_field(s))
                label { "Schedule"
                    input type="text" name="cron" #cron value=(cron_input.unwrap_or(&report.schedule.cron));
                }
                button type="submit" #save-schedule { "Save schedule" }
            }
            h2 { "Global defaults" }
            form.row method="post" action="/console/status/defaults" #defaults {
                (csrf_field(s))
                label { "How far back (days, or none)"
                    input type="text" name="since_days" value=(limit_value(d.since_days));
                }
                label { "Size cap (bytes, or none)"
                    input type="text" name="max_bytes" value=(limit_value(d.max_bytes));
                }
                button type="submit" .secondary { "Save defaults" }
            }
        }
    }
}

/// Every offline repository, each with its own Synchronize button.
fn repositories(s: &Session, mailboxes: &[api::OfflineMailboxStatus]) -> Markup {
    html! {
        section.card {
            h2 { "Offline repositories" }
            form method="post" action="/console/status/sync" #sync-all {
                (csrf_field(s))
                button type="submit" #sync-now { "Synchronize now" }
            }
            table.grid #offline {
                thead { tr {
                    th { "Mailbox" } th { "Sync" } th.num { "Generation" } th { "Epoch" }
                    th.num { "Size" } th.num { "Messages" } th { "Last update" } th { "Next run" } th {}
                } }
                tbody {
                    @for m in mailboxes {
                        tr data-mailbox=(m.mailbox) {
                            td { a href=(mailbox_url(&m.mailbox)) { (m.mailbox) } }
                            td { (on_off(m.enabled)) }
                            td.num.generation { (m.generation) }
                            td { code.epoch { (m.epoch.as_deref().unwrap_or("—")) } }
                            td.num { (HumanBytes(m.bytes)) }
                            td.num.messages { (m.messages) }
                            td.time { (page::rfc3339(m.last_update.as_deref())) }
                            td.time { (page::rfc3339(m.next_run.as_deref())) }
                            td {
                                form.inline method="post" action="/console/status/sync" {
                                    (csrf_field(s))
                                    input type="hidden" name="mailbox" value=(m.mailbox);
                                    button type="submit" .secondary disabled[!m.enabled] { "Synchronize" }
                                }
                            }
                        }
                    }
                    @if mailboxes.is_empty() {
                        tr { td colspan="9" .muted {
                            "No mailbox is enabled for offline synchronization "
                            "(Mailbox Manager → Properties → Enable)."
                        } }
                    }
                }
            }
        }
    }
}

/// The recent jobs, newest first, each detail cut to 160 bytes.
fn job_table(jobs: &[api::JobView]) -> Markup {
    html! {
        section.card {
            h2 { "Recent jobs" }
            table.grid #jobs {
                thead { tr {
                    th.num { "Job" } th { "Kind" } th { "Mailbox" } th { "Started" }
                    th { "Finished" } th { "Outcome" } th { "Detail" }
                } }
                tbody {
                    @for j in jobs {
                        tr {
                            td.num { (j.id) }
                            td { (j.kind) }
                            td { (j.mailbox.as_deref().unwrap_or("all")) }
                            td.time { (page::rfc3339(Some(&j.started))) }
                            td.time { (page::rfc3339(j.finished.as_deref())) }
                            td class={ "outcome " (j.outcome) } { (j.outcome) }
                            td.detail { (short(job_detail(&j.detail), 160)) }
                        }
                    }
                    @if jobs.is_empty() {
                        tr { td colspan="7" .muted { "No jobs yet." } }
                    }
                }
            }
        }
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn short(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

async fn status_change<T, F>(
    st: Console,
    s: Session,
    f: &Fields,
    cron_input: Option<String>,
    notice: impl FnOnce(T) -> String,
    call: F,
) -> PageResult
where
    T: Send + 'static,
    F: FnOnce(&crate::Service, &crate::Caller) -> Result<T, ServiceError> + Send + 'static,
{
    match attempt(&st, &s, f, call).await? {
        Ok(v) => Ok(done("/console/status", &notice(v))),
        Err(e) => {
            let status = e.status();
            let flash = Flash::Error(e.to_string());
            render(&st, &s, Some(&flash), cron_input, status).await
        }
    }
}

pub async fn set_schedule(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    let cron = field(&f, "cron");
    let c2 = cron.clone();
    status_change(
        st,
        s,
        &f,
        Some(cron.clone()),
        |sch: api::OfflineSchedule| {
            format!(
                "Schedule is now \"{}\"; next run {}.",
                sch.cron,
                page::rfc3339(sch.next_run.as_deref())
            )
        },
        move |svc, c| svc.set_offline_schedule(c, &c2),
    )
    .await
}

pub async fn set_defaults(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    let body = parse_limit(&f, "since_days", None).and_then(|since_days| {
        Ok(api::SetOfflineDefaults {
            since_days,
            max_bytes: parse_limit(&f, "max_bytes", None)?,
            store: None,
            segment_bytes: None,
        })
    });
    status_change(
        st,
        s,
        &f,
        None,
        |d: api::OfflineDefaults| {
            format!(
                "Global defaults: since {}, size cap {}.",
                limit_text(d.since_days, "days"),
                limit_text(d.max_bytes, "bytes")
            )
        },
        move |svc, c| svc.set_offline_defaults(c, &body?),
    )
    .await
}

pub async fn sync_now(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    let mailbox = optional(&f, "mailbox");
    status_change(
        st,
        s,
        &f,
        None,
        |r: api::OfflineSyncReport| {
            if r.results.is_empty() {
                return "Nothing to synchronize: no mailbox is enabled.".to_string();
            }
            let parts: Vec<String> = r
                .results
                .iter()
                .map(|u| match &u.error {
                    Some(e) => format!("{}: failed ({e})", u.mailbox),
                    None => format!(
                        "{}: {} (generation {}, {} messages)",
                        u.mailbox, u.outcome, u.generation, u.messages
                    ),
                })
                .collect();
            format!("Synchronized: {}.", parts.join("; "))
        },
        move |svc, c| svc.offline_sync(c, mailbox.as_deref()),
    )
    .await
}

/// A job's detail as short `key value` pairs (what it did, not every field).
fn job_detail(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "mailbox" | "job" | "segment" | "epoch"))
            .filter_map(|(k, v)| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(format!("{k} {s}")),
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => None,
                other => Some(format!("{k} {other}")),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
