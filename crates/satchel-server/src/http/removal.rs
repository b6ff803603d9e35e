//! `DELETE /api/v1/mailboxes/{address}/messages/{id}` and
//! `POST /api/v1/repositories/gc` (docs/api.md).

use super::{Admin, AppState, Result, blocking};
use axum::extract::{Path, State};
use axum::routing::{delete, post};
use axum::{Json, Router};
use satchel_api as api;
use satchel_archive::MessageId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/mailboxes/{address}/messages/{id}",
            delete(delete_message),
        )
        .route("/api/v1/repositories/gc", post(collect_garbage))
}

/// Administrators only, checked before the body is read ([`Admin`]).
async fn delete_message(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path((address, id)): Path<(String, String)>,
    Json(body): Json<api::DeleteMessage>,
) -> Result<Json<api::MessageDeleted>> {
    let id: MessageId = id.parse()?;
    blocking(&s, move |s| {
        s.delete_message(&c, &address, &id, &body.reason)
    })
    .await
    .map(Json)
}

async fn collect_garbage(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::GcRequest>,
) -> Result<Json<api::GcReport>> {
    blocking(&s, move |s| s.collect_garbage(&c, &body))
        .await
        .map(Json)
}
