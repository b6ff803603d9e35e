//! `/api/v1/holds…`: legal holds (administrators; docs/api.md,
//! docs/compliance.md).

use super::{Admin, AppState, Authenticated, Result, blocking};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use satchel_api as api;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/holds", get(list).post(add))
        .route("/api/v1/holds/{name}", get(show).delete(release))
}

async fn list(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<Vec<api::Hold>>> {
    blocking(&s, move |s| s.holds(&c)).await.map(Json)
}

async fn add(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::NewHold>,
) -> Result<Json<api::Hold>> {
    blocking(&s, move |s| s.add_hold(&c, &body)).await.map(Json)
}

async fn show(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<api::Hold>> {
    blocking(&s, move |s| s.hold(&c, &name)).await.map(Json)
}

async fn release(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<api::Hold>> {
    blocking(&s, move |s| s.release_hold(&c, &name))
        .await
        .map(Json)
}
