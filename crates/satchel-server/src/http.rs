//! `/api/v1` over axum: thin handlers that authenticate, call [`Service`], and
//! shape the answer. docs/api.md is the reference.

use crate::auth::{Credentials, parse_authorization};
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, Multipart, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use satchel_api as api;
use satchel_archive::BatchItem;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

mod offline;

type AppState = Arc<Service>;
type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Largest import request: batches are cut well below this by the client.
const MAX_BODY: usize = 256 * 1024 * 1024;

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}", delete(remove_user))
        .route("/api/v1/users/{name}/password", put(set_password))
        .route(
            "/api/v1/repositories",
            get(repositories).post(add_repository),
        )
        .route("/api/v1/mailboxes", get(mailboxes).post(add_mailbox))
        .route("/api/v1/mailboxes/{address}", get(mailbox))
        .route(
            "/api/v1/mailboxes/{address}/repository",
            put(set_repository),
        )
        .route(
            "/api/v1/mailboxes/{address}/grants/{user}",
            put(grant).delete(revoke),
        )
        .route("/api/v1/mailboxes/{address}/messages", post(import))
        .route("/api/v1/mailboxes/{address}/messages/{id}", get(message))
        .route("/api/v1/search", get(search))
        .merge(offline::routes())
        .merge(crate::imap::http::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
}

/// Runs a blocking service call off the async workers.
pub async fn blocking<T, F>(service: &AppState, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Service) -> Result<T> + Send + 'static,
{
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service)).await?
}

/// The authenticated caller of a request (401 if none or wrong, 429 after
/// too many failed passwords).
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let creds = match parts.headers.get(header::AUTHORIZATION) {
            Some(v) => Some(parse_authorization(v.to_str().map_err(|_| {
                ServiceError::Unauthorized("malformed Authorization header".into())
            })?)?),
            None => None,
        };
        let ClientAddress(client) = ClientAddress::from_request_parts(parts, state).await?;
        let caller = crate::signin::authenticate(state, creds, client).await?;
        Ok(Authenticated(caller))
    }
}

/// The peer address of the connection, which sign-in throttling counts by.
/// A router served without connect info (in-process tests) sees one client,
/// 0.0.0.0.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

async fn whoami(Authenticated(c): Authenticated) -> Json<api::Whoami> {
    Json(api::Whoami {
        name: c.user.name,
        admin: c.user.admin,
    })
}

async fn create_token(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Json(body): Json<api::NewToken>,
) -> Result<Json<api::Token>> {
    blocking(&s, move |s| s.create_token(&c, &body.label))
        .await
        .map(Json)
}

async fn tokens(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<Vec<api::TokenListing>>> {
    blocking(&s, move |s| s.tokens(&c)).await.map(Json)
}

async fn revoke_token(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<api::TokenListing>> {
    blocking(&s, move |s| s.revoke_token(&c, &id))
        .await
        .map(Json)
}

/// A password change needs a password sign-in: a stolen API token must not
/// lead to the account itself.
async fn set_password(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Authenticated(c): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<api::SetPassword>,
) -> Result<Json<api::PasswordChanged>> {
    let by_password = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(parse_authorization(v), Ok(Credentials::Basic { .. })));
    if !by_password {
        return Err(ServiceError::Forbidden(
            "changing a password needs a user and password, not an API token".into(),
        ));
    }
    blocking(&s, move |s| s.set_password(&c, &name, &body.password))
        .await
        .map(Json)
}

async fn remove_user(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<api::UserRemoved>> {
    blocking(&s, move |s| s.remove_user(&c, &name))
        .await
        .map(Json)
}

async fn users(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<Vec<api::User>>> {
    blocking(&s, move |s| s.users(&c)).await.map(Json)
}

async fn add_user(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Json(body): Json<api::NewUser>,
) -> Result<Json<api::User>> {
    blocking(&s, move |s| s.add_user(&c, &body)).await.map(Json)
}

async fn repositories(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<Vec<api::Repository>>> {
    blocking(&s, move |s| s.repositories(&c)).await.map(Json)
}

async fn add_repository(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Json(body): Json<api::NewRepository>,
) -> Result<Json<api::Repository>> {
    blocking(&s, move |s| s.add_repository(&c, &body))
        .await
        .map(Json)
}

async fn mailboxes(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<Vec<api::Mailbox>>> {
    blocking(&s, move |s| s.mailboxes(&c)).await.map(Json)
}

async fn add_mailbox(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Json(body): Json<api::NewMailbox>,
) -> Result<Json<api::Mailbox>> {
    blocking(&s, move |s| s.add_mailbox(&c, &body))
        .await
        .map(Json)
}

async fn mailbox(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
) -> Result<Json<api::Mailbox>> {
    blocking(&s, move |s| s.mailbox(&c, &address))
        .await
        .map(Json)
}

async fn set_repository(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
    Json(body): Json<api::SetRepository>,
) -> Result<Json<api::Mailbox>> {
    blocking(&s, move |s| s.set_repository(&c, &address, &body.repo))
        .await
        .map(Json)
}

async fn revoke(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path((address, user)): Path<(String, String)>,
) -> Result<Json<api::Mailbox>> {
    blocking(&s, move |s| s.revoke(&c, &address, &user))
        .await
        .map(Json)
}

async fn grant(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path((address, user)): Path<(String, String)>,
) -> Result<Json<api::Mailbox>> {
    blocking(&s, move |s| s.grant(&c, &address, &user))
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct ImportParams {
    #[serde(default)]
    folder: String,
}

async fn import(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
    Query(params): Query<ImportParams>,
    mut form: Multipart,
) -> Result<Json<api::ImportReport>> {
    let mut items = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ServiceError::BadRequest(format!("reading the upload: {e}")))?
    {
        let origin = field
            .file_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("part {}", items.len() + 1));
        let raw = field
            .bytes()
            .await
            .map_err(|e| ServiceError::BadRequest(format!("reading {origin}: {e}")))?;
        items.push(BatchItem {
            origin,
            folder: params.folder.clone(),
            raw: raw.to_vec(),
        });
    }
    blocking(&s, move |s| s.import(&c, &address, items))
        .await
        .map(Json)
}

async fn message(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path((address, id)): Path<(String, String)>,
) -> Result<Response> {
    let raw = blocking(&s, move |s| s.message(&c, &address, &id)).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("message/rfc822"),
        )],
        raw,
    )
        .into_response())
}

#[derive(Deserialize)]
struct SearchParams {
    #[serde(default)]
    q: String,
    mailbox: Option<String>,
    limit: Option<usize>,
}

async fn search(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Query(p): Query<SearchParams>,
) -> Result<Json<api::SearchResults>> {
    let limit = p.limit.unwrap_or(50);
    blocking(&s, move |s| s.search(&c, &p.q, p.mailbox.as_deref(), limit))
        .await
        .map(Json)
}
