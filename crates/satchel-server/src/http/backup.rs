//! `POST /api/v1/backup`: the service writes a backup into a folder on its
//! machine (administrators; docs/api.md, docs/backup.md).

use super::{AppState, Authenticated, Result, blocking};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use satchel_api as api;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/backup", post(backup))
}

/// Answers once the backup is complete (it may take minutes).
async fn backup(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Json(req): Json<api::BackupRequest>,
) -> Result<Json<api::BackupReport>> {
    Ok(Json(blocking(&s, move |s| s.backup(&c, &req.dir)).await?))
}
