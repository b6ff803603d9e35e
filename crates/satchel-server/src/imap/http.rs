//! `/api/v1/mailboxes/{address}/archive-runs`, `/api/v1/archive-runs` and
//! `/api/v1/mailboxes/{address}/archive-schedule` (docs/api.md).

use crate::error::ServiceError;
use crate::http::{Admin, Authenticated, blocking};
use crate::service::Service;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use satchel_api as api;
use serde::Deserialize;
use std::sync::Arc;

type AppState = Arc<Service>;
type Result<T, E = ServiceError> = std::result::Result<T, E>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/mailboxes/{address}/archive-runs",
            get(mailbox_runs).post(start),
        )
        .route("/api/v1/archive-runs", get(all_runs))
        .route(
            "/api/v1/mailboxes/{address}/archive-schedule",
            get(schedule).put(set_schedule),
        )
}

async fn start(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path(address): Path<String>,
    body: Option<Json<api::ArchivePolicy>>,
) -> Result<Json<api::ArchiveRunSummary>> {
    let policy = body.map(|Json(b)| b).unwrap_or_default();
    let a = address.clone();
    blocking(&s, move |s| {
        s.audit(
            &c,
            crate::audit::action::ARCHIVE_RUN,
            serde_json::json!({ "mailbox": a }),
        )
    })
    .await?;
    super::start_run(s, address, policy, crate::jobs::Trigger::Request)
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct RunsParams {
    limit: Option<usize>,
    mailbox: Option<String>,
}

async fn mailbox_runs(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
    Query(p): Query<RunsParams>,
) -> Result<Json<Vec<api::JobView>>> {
    let limit = p.limit.unwrap_or(20);
    blocking(&s, move |s| s.archive_runs(&c, Some(&address), limit))
        .await
        .map(Json)
}

async fn all_runs(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Query(p): Query<RunsParams>,
) -> Result<Json<Vec<api::JobView>>> {
    let limit = p.limit.unwrap_or(20);
    blocking(&s, move |s| s.archive_runs(&c, p.mailbox.as_deref(), limit))
        .await
        .map(Json)
}

async fn schedule(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
) -> Result<Json<api::ArchiveScheduleView>> {
    blocking(&s, move |s| s.archive_schedule(&c, &address))
        .await
        .map(Json)
}

async fn set_schedule(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path(address): Path<String>,
    Json(body): Json<api::SetArchiveSchedule>,
) -> Result<Json<api::ArchiveScheduleView>> {
    blocking(&s, move |s| s.set_archive_schedule(&c, &address, &body))
        .await
        .map(Json)
}
