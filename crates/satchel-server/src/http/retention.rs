//! `/api/v1/retention…`: retention periods, their schedule and expiry
//! (docs/api.md, docs/compliance.md).

use super::{Admin, AppState, Authenticated, Result, blocking};
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use satchel_api as api;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/retention", get(report))
        .route("/api/v1/retention/default", put(set_default))
        .route("/api/v1/retention/schedule", put(set_schedule))
        .route("/api/v1/retention/apply", post(apply))
        .route(
            "/api/v1/retention/mailboxes/{address}",
            get(mailbox).put(set_mailbox).delete(inherit),
        )
}

async fn report(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<api::RetentionReport>> {
    blocking(&s, move |s| s.retention_report(&c))
        .await
        .map(Json)
}

async fn mailbox(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
) -> Result<Json<api::Retention>> {
    blocking(&s, move |s| s.mailbox_retention(&c, &address))
        .await
        .map(Json)
}

async fn set_mailbox(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path(address): Path<String>,
    Json(body): Json<api::SetRetention>,
) -> Result<Json<api::Retention>> {
    blocking(&s, move |s| {
        s.set_mailbox_retention(&c, &address, Some(body.days))
    })
    .await
    .map(Json)
}

async fn inherit(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path(address): Path<String>,
) -> Result<Json<api::Retention>> {
    blocking(&s, move |s| s.set_mailbox_retention(&c, &address, None))
        .await
        .map(Json)
}

async fn set_default(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::SetRetention>,
) -> Result<Json<api::RetentionReport>> {
    blocking(&s, move |s| s.set_default_retention(&c, body.days))
        .await
        .map(Json)
}

async fn set_schedule(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::SetRetentionSchedule>,
) -> Result<Json<api::RetentionSchedule>> {
    blocking(&s, move |s| s.set_retention_schedule(&c, &body.cron))
        .await
        .map(Json)
}

async fn apply(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::ApplyRetention>,
) -> Result<Json<api::RetentionApplied>> {
    blocking(&s, move |s| s.apply_retention(&c, &body))
        .await
        .map(Json)
}
