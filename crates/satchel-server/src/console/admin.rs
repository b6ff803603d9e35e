//! Administrator pages: Mailbox Manager, a mailbox's Properties (repository,
//! grants, offline synchronization, flush) and Status (offline archive).

use super::page::{self, Flash, Nav, csrf_field, escape, frame};
use super::{AdminSession, Console, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use indicatif::HumanBytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use satchel_api as api;
use satchel_api::client::segment;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

fn field(f: &Fields, name: &str) -> String {
    f.get(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn optional(f: &Fields, name: &str) -> Option<String> {
    Some(field(f, name)).filter(|v| !v.is_empty())
}

fn flash_of(q: &Fields) -> Option<Flash> {
    q.get("notice").map(|n| Flash::Notice(n.clone()))
}

/// After a change: back to `url`, saying what happened (post/redirect/get).
fn done(url: &str, notice: &str) -> Response {
    Redirect::to(&format!(
        "{url}?notice={}",
        utf8_percent_encode(notice, NON_ALPHANUMERIC)
    ))
    .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

fn mailbox_url(address: &str) -> String {
    format!("/console/mailboxes/{}", segment(address))
}

fn limit_text(v: Option<u64>, unit: &str) -> String {
    match v {
        None => "no limit".to_string(),
        Some(n) if unit == "bytes" => format!("{n} bytes ({})", HumanBytes(n)),
        Some(n) => format!("{n} {unit}"),
    }
}

// ---- Mailbox Manager ----

pub async fn mailboxes(
    State(st): State<Console>,
    s: Session,
    Query(q): Query<Fields>,
) -> PageResult {
    s.require_admin()?;
    render_mailboxes(&st, &s, flash_of(&q).as_ref(), StatusCode::OK).await
}

async fn render_mailboxes(
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
    let mut rows = String::new();
    for m in &list {
        let on = enabled.get(m.address.as_str()).copied().unwrap_or(false);
        rows.push_str(&format!(
            "<tr data-mailbox=\"{a}\"><td><a href=\"{url}\">{a}</a></td><td>{repo}</td>\
<td class=\"num\">{msgs}</td><td class=\"num\">{size}</td><td class=\"offline\">{state}</td></tr>",
            a = escape(&m.address),
            url = mailbox_url(&m.address),
            repo = escape(&m.repo),
            msgs = m.messages,
            size = HumanBytes(m.bytes),
            state = if on {
                "<span class=\"on\">on</span>"
            } else {
                "<span class=\"off\">off</span>"
            },
        ));
    }
    if list.is_empty() {
        rows.push_str("<tr><td colspan=\"5\" class=\"muted\">No mailboxes yet.</td></tr>");
    }
    let options: String = repos
        .iter()
        .map(|r| {
            format!(
                "<option value=\"{n}\">{n} ({k}: {p})</option>",
                n = escape(&r.name),
                k = escape(&r.kind),
                p = escape(&r.path)
            )
        })
        .collect();
    let body = format!(
        "<section class=\"card\"><table class=\"grid\" id=\"mailboxes\"><thead><tr>\
<th>Address</th><th>Default repository</th><th class=\"num\">Archived messages</th>\
<th class=\"num\">Archived bytes</th><th>Offline sync</th></tr></thead><tbody>{rows}</tbody></table></section>\
<section class=\"card\"><h2>Add mailbox</h2>\
<form class=\"row\" method=\"post\" action=\"/console/mailboxes\" id=\"add-mailbox\">{csrf}\
<label>Address<input type=\"text\" name=\"address\" id=\"address\" required placeholder=\"alice@example.com\"></label>\
<label>Default repository<select name=\"repo\" id=\"repo\">{options}</select></label>\
<label>IMAP URL (optional)<input type=\"text\" name=\"imap_url\" placeholder=\"imaps://mail.example.com\"></label>\
<label>IMAP user<input type=\"text\" name=\"imap_user\"></label>\
<label>IMAP password<input type=\"password\" name=\"imap_password\" autocomplete=\"new-password\"></label>\
<button type=\"submit\" id=\"add\">Add mailbox</button></form></section>",
        csrf = csrf_field(s),
    );
    Ok(html(
        status,
        frame(s, Nav::Mailboxes, "Mailbox Manager", flash, &body),
    ))
}

pub async fn add_mailbox(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    s.check_csrf(&f)?;
    s.require_admin()?;
    let new = api::NewMailbox {
        address: field(&f, "address"),
        repo: optional(&f, "repo"),
        imap_url: optional(&f, "imap_url"),
        imap_user: optional(&f, "imap_user"),
        imap_password: f.get("imap_password").cloned().filter(|p| !p.is_empty()),
    };
    let c = s.caller.clone();
    match blocking(&st.service, move |svc| svc.add_mailbox(&c, &new)).await {
        Ok(m) => Ok(done(
            &mailbox_url(&m.address),
            &format!("Mailbox {} added.", m.address),
        )),
        Err(e) => {
            let status = e.status();
            render_mailboxes(&st, &s, Some(&Flash::Error(e.to_string())), status).await
        }
    }
}

// ---- Properties ----

pub async fn properties(
    State(st): State<Console>,
    s: Session,
    Path(address): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    s.require_admin()?;
    render_properties(&st, &s, address, flash_of(&q).as_ref(), StatusCode::OK).await
}

async fn render_properties(
    st: &Console,
    s: &Session,
    address: String,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let a = address.clone();
    let (m, repos, users, report) = blocking(&st.service, move |svc| {
        Ok((
            svc.mailbox(&c, &a)?,
            svc.repositories(&c)?,
            svc.users(&c)?,
            svc.offline_status(&c, Some(&a))?,
        ))
    })
    .await?;
    let o = report
        .mailboxes
        .first()
        .ok_or_else(|| ServiceError::Internal("no offline status for the mailbox".into()))?;
    let d = &report.defaults;
    let url = mailbox_url(&m.address);
    let csrf = csrf_field(s);

    let repo_options: String = repos
        .iter()
        .map(|r| {
            format!(
                "<option value=\"{n}\"{sel}>{n} ({k}: {p})</option>",
                n = escape(&r.name),
                k = escape(&r.kind),
                p = escape(&r.path),
                sel = if r.name == m.repo { " selected" } else { "" }
            )
        })
        .collect();
    let grants = if m.grants.is_empty() {
        "<span class=\"muted\">nobody but administrators</span>".to_string()
    } else {
        m.grants
            .iter()
            .map(|g| format!("<code>{}</code>", escape(g)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let user_options: String = users
        .iter()
        .filter(|u| !u.admin && !m.grants.contains(&u.name))
        .map(|u| format!("<option value=\"{n}\">{n}</option>", n = escape(&u.name)))
        .collect();
    let grant_form = if user_options.is_empty() {
        "<p class=\"muted\">Every user already may search it (administrators always may).</p>"
            .to_string()
    } else {
        format!(
            "<form class=\"row\" method=\"post\" action=\"{url}/grants\" id=\"grant\">{csrf}\
<label>User<select name=\"user\" id=\"grant-user\">{user_options}</select></label>\
<button type=\"submit\">Allow to search</button></form>"
        )
    };

    let setting = |v: &api::SettingValue| -> String {
        if v.source == "mailbox" {
            match v.value {
                Some(n) => n.to_string(),
                None => "none".to_string(),
            }
        } else {
            "default".to_string()
        }
    };
    let source = |v: &api::SettingValue, unit: &str| -> String {
        format!(
            "effective: {} ({})",
            limit_text(v.value, unit),
            if v.source == "mailbox" {
                "this mailbox's setting"
            } else {
                "global default"
            }
        )
    };
    let state = if o.enabled {
        "<span class=\"on\" id=\"offline-state\">Enabled</span>"
    } else {
        "<span class=\"off\" id=\"offline-state\">Disabled</span>"
    };
    let disable = if o.enabled {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"{url}/offline/disable\" id=\"disable\">{csrf}\
<button type=\"submit\" class=\"secondary\">Disable</button></form>"
        )
    } else {
        String::new()
    };
    let repo_state = match &o.epoch {
        Some(e) => format!(
            "epoch <code id=\"epoch\">{}</code>, generation <span id=\"generation\">{}</span>, \
{} messages, {} to download",
            escape(e),
            o.generation,
            o.messages,
            HumanBytes(o.bytes)
        ),
        None => "not built yet (the schedule or Synchronize now builds it)".to_string(),
    };
    let body = format!(
        "<section class=\"card\"><table class=\"kv\">\
<tr><th>Address</th><td id=\"mb-address\">{addr}</td></tr>\
<tr><th>Archived</th><td>{msgs} messages, {size}</td></tr>\
<tr><th>IMAP</th><td>{imap}</td></tr></table></section>\
<section class=\"card\"><h2>Default repository</h2>\
<p class=\"src\">New mail is stored there; mail archived earlier stays where it is, reachable.</p>\
<form class=\"row\" method=\"post\" action=\"{url}/repository\" id=\"set-repo\">{csrf}\
<label>Repository<select name=\"repo\" id=\"repo\">{repo_options}</select></label>\
<button type=\"submit\">Change</button></form></section>\
<section class=\"card\"><h2>Who may search it</h2><p id=\"grants\">{grants}</p>{grant_form}</section>\
<section class=\"card\"><h2>Offline archive synchronization</h2>\
<p>{state} {disable}</p><p class=\"src\">Offline repository: {repo_state}</p>\
<h2>Configure</h2>\
<p class=\"src\">Each setting is a number, <code>none</code> (no limit) or <code>default</code> \
(the global defaults: how far back {gsince}; size cap {gmax}).</p>\
<form class=\"row\" method=\"post\" action=\"{url}/offline\" id=\"configure\">{csrf}\
<label>How far back (days)<input type=\"text\" name=\"since_days\" id=\"since_days\" value=\"{since}\">\
<span class=\"muted\" id=\"since-source\">{since_src}</span></label>\
<label>Size cap (bytes)<input type=\"text\" name=\"max_bytes\" id=\"max_bytes\" value=\"{max}\">\
<span class=\"muted\" id=\"max-source\">{max_src}</span></label>\
<button type=\"submit\" id=\"enable\">{enable_label}</button></form>\
<h2>Flush Offline Repository</h2>\
<p class=\"src\">Clears the offline repository under a new epoch and rebuilds it; every laptop \
drops its copy and downloads it again.</p>\
<p><a href=\"{url}/flush\" id=\"flush-link\">Flush Offline Repository…</a></p></section>",
        addr = escape(&m.address),
        msgs = m.messages,
        size = HumanBytes(m.bytes),
        imap = match (&m.imap_url, &m.imap_user) {
            (Some(u), Some(n)) => format!("{} as {}", escape(u), escape(n)),
            _ => "<span class=\"muted\">none (import only)</span>".to_string(),
        },
        gsince = limit_text(d.since_days, "days"),
        gmax = limit_text(d.max_bytes, "bytes"),
        since = escape(&setting(&o.since_days)),
        max = escape(&setting(&o.max_bytes)),
        since_src = escape(&source(&o.since_days, "days")),
        max_src = escape(&source(&o.max_bytes, "bytes")),
        enable_label = if o.enabled { "Save settings" } else { "Enable" },
    );
    Ok(html(
        status,
        frame(
            s,
            Nav::Mailboxes,
            &format!("Properties of {}", m.address),
            flash,
            &body,
        ),
    ))
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
    s.check_csrf(f)?;
    s.require_admin()?;
    let c = s.caller.clone();
    match blocking(&st.service, move |svc| call(svc, &c)).await {
        Ok(v) => Ok(done(&mailbox_url(&address), &notice(v))),
        Err(e) => {
            let status = e.status();
            render_properties(&st, &s, address, Some(&Flash::Error(e.to_string())), status).await
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

fn parse_limit(f: &Fields, name: &str) -> Result<api::Limit, ServiceError> {
    let v = field(f, name);
    if v.is_empty() {
        return Ok(api::Limit::Default);
    }
    v.parse::<api::Limit>()
        .map_err(|e| ServiceError::BadRequest(format!("{name}: {e}")))
}

pub async fn enable(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(address): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let body = parse_limit(&f, "since_days").and_then(|since| {
        Ok(api::OfflineEnable {
            since_days: Some(since),
            max_bytes: Some(parse_limit(&f, "max_bytes")?),
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
    let body = format!(
        "<section class=\"card\"><p>Flushing clears the offline repository of <strong>{a}</strong> \
(now epoch <code>{epoch}</code>, generation {generation}, {messages} messages) under a new epoch and \
rebuilds it{rebuild}. Every laptop client drops its local copy and downloads it again from scratch.</p>\
<form method=\"post\" action=\"{url}/flush\" id=\"flush\">{csrf}\
<p><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" id=\"confirm\" required> \
Yes, flush the offline repository of {a}</label></p>\
<p><button type=\"submit\" class=\"danger\" id=\"flush-button\">Flush Offline Repository</button> \
<a href=\"{url}\">Cancel</a></p></form></section>",
        a = escape(&address),
        epoch = escape(o.epoch.as_deref().unwrap_or("none")),
        generation = o.generation,
        messages = o.messages,
        rebuild = if o.enabled {
            ""
        } else {
            " (not rebuilt while synchronization is disabled)"
        },
        csrf = csrf_field(s),
    );
    Ok(html(
        status,
        frame(
            s,
            Nav::Mailboxes,
            &format!("Flush Offline Repository of {address}"),
            flash,
            &body,
        ),
    ))
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

// ---- Status: the offline archive ----

pub async fn status(State(st): State<Console>, s: Session, Query(q): Query<Fields>) -> PageResult {
    s.require_admin()?;
    render_status(&st, &s, flash_of(&q).as_ref(), None, StatusCode::OK).await
}

async fn render_status(
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
    let csrf = csrf_field(s);
    let mut rows = String::new();
    for m in &report.mailboxes {
        rows.push_str(&format!(
            "<tr data-mailbox=\"{a}\"><td><a href=\"{url}\">{a}</a></td><td>{state}</td>\
<td class=\"num generation\">{generation}</td><td><code class=\"epoch\">{epoch}</code></td>\
<td class=\"num\">{size}</td><td class=\"num messages\">{messages}</td><td class=\"time\">{last}</td><td class=\"time\">{next}</td>\
<td><form class=\"inline\" method=\"post\" action=\"/console/status/sync\">{csrf}\
<input type=\"hidden\" name=\"mailbox\" value=\"{a}\"><button type=\"submit\" class=\"secondary\"{dis}>Synchronize</button></form></td></tr>",
            a = escape(&m.mailbox),
            url = mailbox_url(&m.mailbox),
            state = if m.enabled {
                "<span class=\"on\">on</span>"
            } else {
                "<span class=\"off\">off</span>"
            },
            generation = m.generation,
            epoch = escape(m.epoch.as_deref().unwrap_or("—")),
            size = HumanBytes(m.bytes),
            messages = m.messages,
            last = page::rfc3339(m.last_update.as_deref()),
            next = page::rfc3339(m.next_run.as_deref()),
            dis = if m.enabled { "" } else { " disabled" },
        ));
    }
    if report.mailboxes.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"9\" class=\"muted\">No mailbox is enabled for offline \
synchronization (Mailbox Manager → Properties → Enable).</td></tr>",
        );
    }
    let mut job_rows = String::new();
    for j in &jobs {
        let mut detail = job_detail(&j.detail);
        if detail.len() > 160 {
            let mut cut = 160;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        job_rows.push_str(&format!(
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td>\
<td class=\"outcome {o}\">{o}</td><td class=\"detail\">{}</td></tr>",
            j.id,
            escape(&j.kind),
            escape(j.mailbox.as_deref().unwrap_or("all")),
            page::rfc3339(Some(&j.started)),
            page::rfc3339(j.finished.as_deref()),
            escape(&detail),
            o = escape(&j.outcome),
        ));
    }
    if jobs.is_empty() {
        job_rows.push_str("<tr><td colspan=\"7\" class=\"muted\">No jobs yet.</td></tr>");
    }
    let d = &report.defaults;
    let limit_value = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    let body = format!(
        "<section class=\"card\"><h2>Offline archive schedule</h2>\
<p class=\"src\">Cron syntax (minute hour day-of-month month day-of-week, service local time). \
Next run: <span id=\"next-run\">{next}</span></p>\
<form class=\"row\" method=\"post\" action=\"/console/status/schedule\" id=\"schedule\">{csrf}\
<label>Schedule<input type=\"text\" name=\"cron\" id=\"cron\" value=\"{cron}\"></label>\
<button type=\"submit\" id=\"save-schedule\">Save schedule</button></form>\
<h2>Global defaults</h2>\
<form class=\"row\" method=\"post\" action=\"/console/status/defaults\" id=\"defaults\">{csrf}\
<label>How far back (days, or none)<input type=\"text\" name=\"since_days\" value=\"{gsince}\"></label>\
<label>Size cap (bytes, or none)<input type=\"text\" name=\"max_bytes\" value=\"{gmax}\"></label>\
<button type=\"submit\" class=\"secondary\">Save defaults</button></form></section>\
<section class=\"card\"><h2>Offline repositories</h2>\
<form method=\"post\" action=\"/console/status/sync\" id=\"sync-all\">{csrf}\
<button type=\"submit\" id=\"sync-now\">Synchronize now</button></form>\
<table class=\"grid\" id=\"offline\"><thead><tr><th>Mailbox</th><th>Sync</th><th class=\"num\">Generation</th>\
<th>Epoch</th><th class=\"num\">Size</th><th class=\"num\">Messages</th><th>Last update</th><th>Next run</th><th></th>\
</tr></thead><tbody>{rows}</tbody></table></section>\
<section class=\"card\"><h2>Recent jobs</h2><table class=\"grid\" id=\"jobs\"><thead><tr>\
<th class=\"num\">Job</th><th>Kind</th><th>Mailbox</th><th>Started</th><th>Finished</th><th>Outcome</th>\
<th>Detail</th></tr></thead><tbody>{job_rows}</tbody></table></section>",
        next = page::rfc3339(report.schedule.next_run.as_deref()),
        cron = escape(cron_input.as_deref().unwrap_or(&report.schedule.cron)),
        gsince = limit_value(d.since_days),
        gmax = limit_value(d.max_bytes),
    );
    Ok(html(
        status,
        frame(s, Nav::Status, "Status: offline archive", flash, &body),
    ))
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
    s.check_csrf(f)?;
    s.require_admin()?;
    let c = s.caller.clone();
    match blocking(&st.service, move |svc| call(svc, &c)).await {
        Ok(v) => Ok(done("/console/status", &notice(v))),
        Err(e) => {
            let status = e.status();
            render_status(
                &st,
                &s,
                Some(&Flash::Error(e.to_string())),
                cron_input,
                status,
            )
            .await
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
    let parse = |name: &str| -> Result<Option<api::Limit>, ServiceError> {
        let v = field(&f, name);
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<api::Limit>()
            .map(Some)
            .map_err(|e| ServiceError::BadRequest(format!("{name}: {e}")))
    };
    let body = parse("since_days").and_then(|since_days| {
        Ok(api::SetOfflineDefaults {
            since_days,
            max_bytes: parse("max_bytes")?,
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
