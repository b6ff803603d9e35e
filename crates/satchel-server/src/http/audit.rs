//! `/api/v1/audit`, `/api/v1/audit/head` and `/api/v1/audit/verify`
//! (administrators only; docs/api.md).

use super::{AppState, Authenticated, Result, blocking};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use satchel_api as api;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(list))
        .route("/api/v1/audit/head", get(head))
        .route("/api/v1/audit/verify", get(verify))
}

async fn list(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Query(filter): Query<api::AuditFilter>,
) -> Result<Json<Vec<api::AuditEntry>>> {
    blocking(&s, move |s| s.audit_list(&c, &filter))
        .await
        .map(Json)
}

async fn head(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<api::AuditHead>> {
    blocking(&s, move |s| s.audit_head(&c)).await.map(Json)
}

async fn verify(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<api::AuditVerification>> {
    blocking(&s, move |s| s.audit_verify(&c)).await.map(Json)
}
