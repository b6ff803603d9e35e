//! `/api/v1` over axum: thin handlers that authenticate, call [`Service`], and
//! shape the answer. docs/api.md is the reference.

use crate::auth::parse_authorization;
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, Extension, FromRequestParts, Multipart, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router, middleware};
use satchel_api as api;
use satchel_archive::MessageId;
use serde::Deserialize;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

mod audit;
mod backup;
mod export;
mod hold;
mod offline;
mod removal;
mod retention;
mod upload;

type AppState = Arc<Service>;
type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The default largest request (`satchel serve --max-request-bytes`): an
/// import batch, so the largest importable message. The client cuts batches at
/// 16 MiB; mail with attachments rarely passes 150 MB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 256 * 1024 * 1024;

/// Largest body of every other request: they carry a few lines of JSON.
const JSON_BODY_LIMIT: u64 = 1024 * 1024;

/// The configured largest request (`GET /limits`).
#[derive(Clone, Copy)]
pub struct MaxRequest(pub u64);

/// The largest body of the route a request is for: what the extractors
/// check a declared `Content-Length` against, and name in their 413.
#[derive(Clone, Copy)]
struct BodyLimit {
    bytes: u64,
    what: &'static str,
}

pub fn router(service: Arc<Service>, max_request_bytes: u64) -> Router {
    let json_limit = JSON_BODY_LIMIT.min(max_request_bytes);
    // The inner layers of the import route override the router's.
    let import_route = post(import)
        .layer::<_, Infallible>(DefaultBodyLimit::max(as_usize(max_request_bytes)))
        .layer::<_, Infallible>(Extension(BodyLimit {
            bytes: max_request_bytes,
            what: IMPORT,
        }));
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/limits", get(limits))
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
        .route("/api/v1/mailboxes/{address}/messages", import_route)
        .route("/api/v1/mailboxes/{address}/messages/{id}", get(message))
        .route("/api/v1/search", get(search))
        .merge(offline::routes())
        .merge(audit::routes())
        .merge(backup::routes())
        .merge(export::routes())
        .merge(retention::routes())
        .merge(hold::routes())
        .merge(removal::routes())
        .merge(crate::imap::http::routes())
        .layer(DefaultBodyLimit::max(as_usize(json_limit)))
        .layer(Extension(BodyLimit {
            bytes: json_limit,
            what: OTHER,
        }))
        .layer(middleware::map_response(move |r: Response| {
            explain_too_large(r, json_limit)
        }))
        .layer(Extension(MaxRequest(max_request_bytes)))
        .with_state(service)
}

fn as_usize(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// The 413 of a request body that is too large, saying the limit (and, for
/// imports, where it is set).
pub fn too_large(limit: u64, what: &str) -> ServiceError {
    let mib = limit as f64 / (1024.0 * 1024.0);
    let setting = if what == IMPORT {
        "; set by satchel serve --max-request-bytes, SATCHEL_MAX_REQUEST_BYTES \
         or limits.max_request_bytes in its configuration file"
    } else {
        ""
    };
    ServiceError::PayloadTooLarge(format!(
        "the request is larger than the service accepts for {what}: \
         at most {limit} bytes ({mib:.1} MiB){setting}"
    ))
}

/// What [`too_large`] names for an import request, and for any other.
pub const IMPORT: &str = "an import";
const OTHER: &str = "this request";

/// Refuses a request whose declared `Content-Length` passes its route's
/// limit, before a byte of its body is read.
fn check_declared_length(parts: &Parts) -> Result<()> {
    let Some(limit) = parts.extensions.get::<BodyLimit>() else {
        return Ok(());
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit.bytes => Err(too_large(limit.bytes, limit.what)),
        _ => Ok(()),
    }
}

/// Axum's own 413 (a JSON body over its limit) is plain text; this gives it
/// the API's error shape and says the limit.
async fn explain_too_large(resp: Response, json_limit: u64) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return too_large(json_limit, OTHER).into_response();
    }
    resp
}

/// Runs a blocking service call off the async workers.
pub async fn blocking<T, F>(service: &AppState, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Service) -> Result<T> + Send + 'static,
{
    let service = service.clone();
    // The request's span goes along, so lines logged there carry its id.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&service))).await?
}

/// The authenticated caller of a request (401 if none or wrong, 429 after
/// too many failed passwords). Extractors of the request's parts run before
/// its body is read: a refused caller, or a declared body over the route's
/// limit (413), is answered unread.
pub struct Authenticated(pub Caller);

/// An authenticated administrator (401, or 403 for anyone else). Handlers of
/// administrators' requests with a body take this, so that nobody else gets
/// as far as having the body read.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = caller_of(parts, state).await?;
        check_declared_length(parts)?;
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

impl FromRequestParts<AppState> for Admin {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = caller_of(parts, state).await?;
        caller.require_admin()?;
        check_declared_length(parts)?;
        Ok(Admin(caller))
    }
}

async fn caller_of(parts: &mut Parts, state: &AppState) -> Result<Caller> {
    let creds = match parts.headers.get(header::AUTHORIZATION) {
        Some(v) => Some(parse_authorization(v.to_str().map_err(|_| {
            ServiceError::Unauthorized("malformed Authorization header".into())
        })?)?),
        None => None,
    };
    let ClientAddress(client) = ClientAddress::from_request_parts(parts, state).await?;
    crate::signin::authenticate(state, creds, client, "api").await
}

async fn whoami(Authenticated(c): Authenticated) -> Json<api::Whoami> {
    Json(api::Whoami {
        name: c.user.name,
        admin: c.user.admin,
    })
}

async fn limits(
    Authenticated(_): Authenticated,
    Extension(MaxRequest(max)): Extension<MaxRequest>,
) -> Json<api::Limits> {
    Json(api::Limits {
        max_request_bytes: max,
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

async fn set_password(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(name): Path<String>,
    Json(body): Json<api::SetPassword>,
) -> Result<Json<api::PasswordChanged>> {
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
    Admin(c): Admin,
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
    Admin(c): Admin,
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
    Admin(c): Admin,
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
    Admin(c): Admin,
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
    c.require_admin()?;
    crate::signin::provision_grantee(&s, &user).await?;
    blocking(&s, move |s| s.grant(&c, &address, &user))
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct ImportParams {
    #[serde(default)]
    folder: String,
}

/// Who may import, the declared size ([`Admin`]) and the mailbox are all
/// checked before the body is read; the body then streams to a file, never
/// whole into memory (see [`upload`]).
async fn import(
    State(s): State<AppState>,
    Admin(c): Admin,
    Extension(limit): Extension<BodyLimit>,
    Path(address): Path<String>,
    Query(params): Query<ImportParams>,
    form: Multipart,
) -> Result<Json<api::ImportReport>> {
    let (c2, a2) = (c.clone(), address.clone());
    blocking(&s, move |s| s.require_import(&c2, &a2)).await?;
    let spool = upload::receive(&s, form, limit.bytes).await?;
    blocking(&s, move |s| {
        upload::archive(s, &c, &address, &params.folder, spool)
    })
    .await
    .map(Json)
}

async fn message(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path((address, id)): Path<(String, String)>,
) -> Result<Response> {
    let id: MessageId = id.parse()?;
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
