//! The agent's routes: message links (`/m/ADDRESS/ID`, `.eml`, attachments),
//! the status page and `/status.json`, behind two guards checked before
//! anything is read: the client must be this user's process (same-user) and
//! the request must name the agent itself (own-name, against DNS rebinding).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use satchel_api::ApiError;
use satchel_offline::MessageId;

use super::listener::Peer;
use super::{Agent, pages};
use crate::error::{Error, Result};
use crate::viewer::{self, CSP, Source};

/// The agent's routes with their guards (own-name first, then same-user).
pub(super) fn app(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/status.json", get(status_json))
        .route("/m/{mailbox}/{id}", get(message))
        .route("/m/{mailbox}/{id}/attachments/{n}", get(attachment))
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            same_user_only,
        ))
        .layer(middleware::from_fn_with_state(agent.clone(), own_name_only))
        .with_state(agent)
}

fn error_response(e: &Error) -> Response {
    let status = match e {
        Error::NotInLocalCopy { .. } | Error::InvalidLink { .. } => StatusCode::NOT_FOUND,
        Error::Api(ApiError::Status { status, .. }) => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Error::Damaged { .. } | Error::Offline { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    with_safety_headers((status, pages::error(e)).into_response())
}

fn with_safety_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn parse_id(id: &str) -> Result<MessageId> {
    id.parse().map_err(|_| Error::InvalidLink {
        link: id.to_string(),
        reason: "the message id is not 64 hex digits".into(),
    })
}

async fn message(
    State(agent): State<Arc<Agent>>,
    Path((mailbox, id)): Path<(String, String)>,
) -> Response {
    let (id, raw_wanted) = match id.strip_suffix(".eml") {
        Some(i) => (i.to_string(), true),
        None => (id, false),
    };
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_response(&e),
    };
    let (raw, source) = match agent.fetch(&mailbox, &id).await {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    if raw_wanted {
        let mut resp = Response::new(Body::from(raw));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("message/rfc822"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.eml\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert("x-satchel-source", source_header(source));
        return with_safety_headers(resp);
    }
    let html = viewer::render_message(&mailbox, &id, &raw, source);
    let mut resp = Html(html).into_response();
    resp.headers_mut()
        .insert("x-satchel-source", source_header(source));
    with_safety_headers(resp)
}

fn source_header(s: Source) -> HeaderValue {
    HeaderValue::from_static(match s {
        Source::Service => "service",
        Source::LocalCopy => "local-copy",
    })
}

async fn attachment(
    State(agent): State<Arc<Agent>>,
    Path((mailbox, id, n)): Path<(String, String, usize)>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_response(&e),
    };
    let raw = match agent.fetch(&mailbox, &id).await {
        Ok((raw, _)) => raw,
        Err(e) => return error_response(&e),
    };
    let Some(a) = viewer::attachment(&raw, n) else {
        return error_response(&Error::InvalidLink {
            link: format!("attachment {n}"),
            reason: "the message has no such attachment".into(),
        });
    };
    let disposition = a.content_disposition();
    let mut resp = Response::new(Body::from(a.bytes));
    let h = resp.headers_mut();
    // Always a download, never rendered in the agent's origin.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    let mut resp = with_safety_headers(resp);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    resp
}

async fn status_json(State(agent): State<Arc<Agent>>) -> Response {
    match agent.status() {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn status_page(State(agent): State<Arc<Agent>>) -> Response {
    match agent.status() {
        Ok(s) => with_safety_headers(pages::status(&s).into_response()),
        Err(e) => error_response(&e),
    }
}

/// Refuses connections from other local users' processes (Linux).
async fn same_user_only(
    State(agent): State<Arc<Agent>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if let (Some(me), Some(them)) = (agent.uid, peer.uid)
        && me != them
        && me != 0
    {
        return (
            StatusCode::FORBIDDEN,
            "this Satchel agent serves only its own user\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// Refuses requests whose `Host` is not one of the agent's own names (see
/// [`is_own_name`]) with 421 Misdirected Request, before anything is read.
async fn own_name_only(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| is_own_name(h, agent.local)) {
        return next.run(req).await;
    }
    tracing::warn!("refused a request for host {host:?}: not this agent's name");
    (
        StatusCode::MISDIRECTED_REQUEST,
        "this Satchel agent answers only to localhost, 127.0.0.1, [::1] or its listening address\n",
    )
        .into_response()
}

/// Whether `host` (a `Host` header: name and optional port) names the agent
/// listening on `local`: a loopback name or `local`'s address, and `local`'s
/// port (a missing port means 80). Case does not matter in names.
fn is_own_name(host: &str, local: SocketAddr) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    if authority.port_u16().unwrap_or(80) != local.port() || host.contains('@') {
        return false;
    }
    let name = authority.host().to_ascii_lowercase();
    let listening = match local.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]") || name == listening
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_are_loopback_names_and_the_listening_address_with_its_port() {
        let local: SocketAddr = "127.0.0.1:8481".parse().unwrap();
        for ok in [
            "localhost:8481",
            "LocalHost:8481",
            "127.0.0.1:8481",
            "[::1]:8481",
        ] {
            assert!(is_own_name(ok, local), "{ok}");
        }
        for bad in [
            "evil.example:8481",
            "localhost.evil.example:8481",
            "127.0.0.1.nip.io:8481",
            "localhost:8482",
            "localhost",
            "user@localhost:8481",
            "",
            "[::1",
        ] {
            assert!(!is_own_name(bad, local), "{bad}");
        }
        let lan: SocketAddr = "192.168.1.20:80".parse().unwrap();
        assert!(is_own_name("192.168.1.20", lan));
        assert!(is_own_name("localhost:80", lan));
        let v6: SocketAddr = "[fe80::1]:8481".parse().unwrap();
        assert!(is_own_name("[FE80::1]:8481", v6));
    }
}
