//! Administrator pages, one module each: the Mailbox Manager
//! ([`mailboxes`]), a mailbox's Properties (repository, grants, offline
//! synchronization, flush: [`properties`]) and Status (the offline archive's
//! schedule, defaults, repositories and jobs: [`status`]) and the Audit
//! trail ([`audit`]). What they share:
//! form fields, post/redirect/get, limits as text.

mod audit;
mod delete;
mod holds;
mod mailboxes;
mod properties;
mod status;

pub use audit::audit;
pub use delete::{delete as delete_message, delete_confirm as delete_message_confirm};
pub use holds::{
    holds, place as place_hold, release as release_hold, release_confirm as release_hold_confirm,
};
pub use mailboxes::{add_mailbox, mailboxes};
pub use properties::{disable, enable, flush, flush_confirm, grant, properties, set_repository};
pub use status::{set_defaults, set_schedule, status, sync_now};

use super::page::Flash;
use super::{Console, PageError, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use crate::{Caller, Service};
use axum::response::{IntoResponse, Redirect, Response};
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

/// A change sent by a form: checks the form's token and the administrator
/// right (a refusal is the outer error, shown as an error page), then runs
/// `call` off the async workers. The inner result is the service's answer,
/// for the caller to show: a notice on success, the form again with the
/// reason on failure.
async fn attempt<T, F>(
    st: &Console,
    s: &Session,
    f: &Fields,
    call: F,
) -> Result<Result<T, ServiceError>, PageError>
where
    T: Send + 'static,
    F: FnOnce(&Service, &Caller) -> Result<T, ServiceError> + Send + 'static,
{
    s.check_csrf(f)?;
    s.require_admin()?;
    let c = s.caller.clone();
    Ok(blocking(&st.service, move |svc| call(svc, &c)).await)
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

/// A form's limit: a number, `none`, or (left empty) `empty`.
fn parse_limit(
    f: &Fields,
    name: &str,
    empty: Option<api::Limit>,
) -> Result<Option<api::Limit>, crate::error::ServiceError> {
    let v = field(f, name);
    if v.is_empty() {
        return Ok(empty);
    }
    v.parse::<api::Limit>()
        .map(Some)
        .map_err(|e| ServiceError::BadRequest(format!("{name}: {e}")))
}
