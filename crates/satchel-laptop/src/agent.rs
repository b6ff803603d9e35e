//! The agent (`satchel laptop run`): checks regularly whether the service is
//! reachable and syncs when it is; serves message links on 127.0.0.1:8481.
//!
//! * Checks: every `interval` (default 5 min) with ±25 % random jitter, so a
//!   thousand laptops coming online together spread out; while offline the
//!   retry delay starts at `min_retry` and doubles up to `interval`.
//! * `GET /m/ADDRESS/ID`: the message as a safe page ([`crate::viewer`]),
//!   from the service when online, else from the local copy.
//!   `/m/ADDRESS/ID.eml`: the raw message. `/m/ADDRESS/ID/attachments/N`:
//!   attachment N as a download. `/`: status page; `/status.json`.
//! * Only this home's user's mail: online, the service checks the home's
//!   token; offline, only this home's local copies exist. On Linux the agent
//!   also refuses loopback connections from processes of other local users
//!   (looked up in /proc/net/tcp), so another account on the laptop cannot
//!   read this user's copy through the agent.
//! * Only requests addressed to the agent by its own name: the `Host` must be
//!   `localhost`, `127.0.0.1`, `[::1]` or the address it listens on, with its
//!   port. A web page whose own name resolves to 127.0.0.1 (DNS rebinding)
//!   sends its name instead and gets 421, so it cannot read mail through the
//!   user's browser.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use satchel_api::ApiError;
use satchel_offline::{Manifest, MessageId, ReplicaIndex};
use tokio::sync::Notify;

use crate::config::{Config, Home};
use crate::error::{Error, Result};
use crate::replica::{NoProgress, Replica};
use crate::service::Service;
use crate::status::local_status;
use crate::viewer::{self, CSP, Source, escape, page};
use crate::{fsutil, read_checked};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub listen: String,
    /// Time between checks while online (before jitter).
    pub interval: Duration,
    /// First retry delay while offline (doubles up to `interval`).
    pub min_retry: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            listen: crate::link::DEFAULT_AGENT_ADDR.into(),
            interval: Duration::from_secs(300),
            min_retry: Duration::from_secs(15),
        }
    }
}

/// The delay before the next check: `interval` while online; while offline
/// `min_retry * 2^(failures-1)`, capped at `interval`; both with jitter
/// (uniform in [0.75, 1.25)).
pub fn next_delay(options: &AgentOptions, failures: u32) -> Duration {
    let base = if failures == 0 {
        options.interval
    } else {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        options
            .min_retry
            .saturating_mul(factor)
            .min(options.interval)
    };
    base.mul_f64(rand::random_range(0.75..1.25))
}

const UNKNOWN: u8 = 0;
const ONLINE: u8 = 1;
const OFFLINE: u8 = 2;

struct Agent {
    home: Home,
    config: Config,
    service: Service,
    online: AtomicU8,
    /// Open local copies, keyed by mailbox, with the manifest they were opened with.
    copies: Mutex<HashMap<String, (Manifest, Arc<ReplicaIndex>)>>,
    wake: Notify,
    uid: Option<u32>,
    /// The address the agent listens on (for the `Host` check).
    local: SocketAddr,
}

/// Runs the agent until the process is stopped.
pub async fn run(home: Home, options: AgentOptions) -> Result<()> {
    let config = home.config()?;
    let service = Service::new(&config)?;
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: options.listen.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Listen {
        addr: options.listen.clone(),
        source,
    })?;
    let agent = Arc::new(Agent {
        home,
        config,
        service,
        online: AtomicU8::new(UNKNOWN),
        copies: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        uid: own_uid(),
        local,
    });
    tracing::info!(
        "satchel laptop agent for {} on http://{local}",
        agent.config.user,
    );
    tokio::spawn(checker(agent.clone(), options));
    let app = Router::new()
        .route("/", get(status_page))
        .route("/status.json", get(status_json))
        .route("/m/{mailbox}/{id}", get(message))
        .route("/m/{mailbox}/{id}/attachments/{n}", get(attachment))
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            same_user_only,
        ))
        .layer(middleware::from_fn_with_state(agent.clone(), own_name_only))
        .with_state(agent);
    // No Nagle delay on small responses; the peer's owner is looked up once
    // per connection (see `AgentListener`).
    axum::serve(
        AgentListener(listener),
        app.into_make_service_with_connect_info::<Peer>(),
    )
    .await
    .map_err(|e| Error::io("agent", e))
}

/// The periodic loop: check, sync when reachable, sleep with jitter/backoff.
async fn checker(agent: Arc<Agent>, options: AgentOptions) {
    let mut failures: u32 = 0;
    loop {
        let now = fsutil::now_unix();
        match agent.service.whoami().await {
            Ok(_) => {
                agent.online.store(ONLINE, Ordering::SeqCst);
                failures = 0;
                match crate::sync::sync_all(&agent.home, &NoProgress).await {
                    Ok(r) => {
                        tracing::info!(
                            "sync: {} mailbox(es), {} bytes downloaded",
                            r.mailboxes.len(),
                            r.bytes_downloaded
                        );
                        for e in &r.errors {
                            tracing::warn!("sync {}: {}", e.mailbox, e.error);
                        }
                    }
                    Err(e) if e.is_offline() => {
                        agent.online.store(OFFLINE, Ordering::SeqCst);
                        failures = 1;
                    }
                    Err(e) => tracing::warn!("sync failed: {e}"),
                }
            }
            Err(e) => {
                let offline = e.is_offline();
                agent
                    .online
                    .store(if offline { OFFLINE } else { ONLINE }, Ordering::SeqCst);
                if offline {
                    failures = failures.saturating_add(1);
                }
                if matches!(e, Error::TokenRevoked { .. }) {
                    tracing::warn!("check: {e}");
                } else {
                    tracing::info!("check: {e}");
                }
                let msg = e.to_string();
                let _ = agent.home.update_state(|s| {
                    s.last_check = Some(now);
                    s.online = Some(!offline);
                    s.last_error = Some(msg);
                });
            }
        }
        let delay = next_delay(&options, failures);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = agent.wake.notified() => {}
        }
    }
}

impl Agent {
    fn is_offline(&self) -> bool {
        self.online.load(Ordering::SeqCst) == OFFLINE
    }

    /// An open reader on the current local copy of `mailbox` (reopened
    /// when its manifest changed, or when `fresh`).
    fn copy(&self, mailbox: &str, fresh: bool) -> Result<Arc<ReplicaIndex>> {
        let not_here = |reason: &str| Error::NotInLocalCopy {
            server: self.config.server.clone(),
            mailbox: mailbox.to_string(),
            id: String::new(),
            reason: reason.to_string(),
        };
        let replica = Replica::new(self.home.replica_dir(mailbox), mailbox);
        if !replica.dir().exists() {
            return Err(not_here("this home has no local copy of that mailbox"));
        }
        let manifest = replica
            .manifest()?
            .ok_or_else(|| not_here("the first sync has not completed"))?;
        let mut copies = self.copies.lock().expect("copies lock");
        if !fresh
            && let Some((m, r)) = copies.get(mailbox)
            && *m == manifest
        {
            return Ok(r.clone());
        }
        let reader = Arc::new(replica.open()?);
        copies.insert(
            mailbox.to_string(),
            (reader.manifest().clone(), reader.clone()),
        );
        Ok(reader)
    }

    fn read_local(&self, mailbox: &str, id: &MessageId) -> Result<Vec<u8>> {
        let attempt = |fresh: bool| -> Result<Vec<u8>> {
            let reader = self.copy(mailbox, fresh)?;
            read_checked(&reader, mailbox, id)
        };
        let result = match attempt(false) {
            // A repaired segment replaced the file under an open handle: reopen once.
            Err(Error::Damaged { .. }) => attempt(true),
            other => other,
        };
        result.map_err(|e| match e {
            Error::Replica(satchel_offline::Error::MessageNotFound(_)) => Error::NotInLocalCopy {
                server: self.config.server.clone(),
                mailbox: mailbox.to_string(),
                id: id.to_hex(),
                reason: "the local copy does not hold it".into(),
            },
            Error::NotInLocalCopy {
                server,
                mailbox,
                reason,
                ..
            } => Error::NotInLocalCopy {
                server,
                mailbox,
                id: id.to_hex(),
                reason,
            },
            other => other,
        })
    }

    /// The raw message: from the service unless it is known to be offline
    /// (or turns out to be), else from the local copy.
    async fn fetch(&self, mailbox: &str, id: &MessageId) -> Result<(Vec<u8>, Source)> {
        if !self.is_offline() {
            match self.service.message(mailbox, &id.to_hex()).await {
                Ok(raw) if MessageId::of(&raw) == *id => return Ok((raw, Source::Service)),
                Ok(_) => {
                    return Err(Error::Protocol {
                        what: format!("message {id}"),
                        reason: "the bytes do not hash to the id".into(),
                    });
                }
                Err(e) if e.is_offline() => {
                    self.online.store(OFFLINE, Ordering::SeqCst);
                    self.wake.notify_one();
                }
                // Until the user sets up again, the local copy answers.
                Err(e @ Error::TokenRevoked { .. }) => tracing::warn!("{e}"),
                Err(Error::Api(ApiError::Status { status, .. })) if status >= 500 => {}
                Err(e) => return Err(e),
            }
        }
        let raw = self.read_local(mailbox, id)?;
        Ok((raw, Source::LocalCopy))
    }
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
    let body = page(
        "Satchel",
        &format!(
            "<main><h2>Cannot show this message</h2><p>{}</p><p><a href=\"/\">Status</a></p></main>",
            escape(&e.to_string())
        ),
    );
    with_safety_headers((status, Html(body)).into_response())
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
    MessageId::from_hex(&id.to_ascii_lowercase()).map_err(|_| Error::InvalidLink {
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
    let html = viewer::render_message(&mailbox, &id.to_hex(), &raw, source);
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
    let mut resp = Response::new(Body::from(a.bytes));
    let h = resp.headers_mut();
    // Always a download, never rendered in the agent's origin.
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let filename: String = a
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
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
    match local_status(&agent.home) {
        Ok(mut s) => {
            s.online = match agent.online.load(Ordering::SeqCst) {
                ONLINE => Some(true),
                OFFLINE => Some(false),
                _ => s.online,
            };
            axum::Json(s).into_response()
        }
        Err(e) => error_response(&e),
    }
}

async fn status_page(State(agent): State<Arc<Agent>>) -> Response {
    let mut s = match local_status(&agent.home) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    s.online = match agent.online.load(Ordering::SeqCst) {
        ONLINE => Some(true),
        OFFLINE => Some(false),
        _ => s.online,
    };
    let online = match s.online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "not checked yet",
    };
    let mut body = format!(
        "<header><h2>Satchel laptop</h2><p>User <b>{}</b> &middot; service {} &middot; <b id=\"online\">{}</b></p>\
<p>Last check: {} &middot; last sync: {}</p>",
        escape(&s.user),
        escape(&s.server),
        online,
        escape(s.last_check.as_deref().unwrap_or("never")),
        escape(s.last_sync.as_deref().unwrap_or("never")),
    );
    if let Some(e) = &s.last_error {
        body.push_str(&format!("<p>Last error: {}</p>", escape(e)));
    }
    body.push_str(
        "</header><main><table class=\"s\"><tr><th>Mailbox</th><th>Messages</th><th>Size</th>\
<th>Generation</th><th>Updated on the service</th></tr>",
    );
    for m in &s.mailboxes {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.mailbox),
            m.messages,
            indicatif::DecimalBytes(m.bytes),
            m.generation,
            escape(if m.complete {
                &m.updated
            } else {
                "(first sync incomplete)"
            }),
        ));
    }
    body.push_str("</table></main>");
    with_safety_headers(Html(page("Satchel laptop", &body)).into_response())
}

/// The client of a connection: the uid owning its socket (Linux), looked
/// up once when the connection is accepted.
#[derive(Clone, Debug)]
struct Peer {
    uid: Option<u32>,
}

/// The agent's listener: TCP with TCP_NODELAY (small pages, no Nagle
/// delay) that identifies each client's owner at accept time.
struct AgentListener(tokio::net::TcpListener);

impl axum::serve::Listener for AgentListener {
    type Io = tokio::net::TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        stream,
                        Peer {
                            uid: peer_uid(addr),
                        },
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr().map(|_| Peer { uid: own_uid() })
    }
}

impl Connected<IncomingStream<'_, AgentListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, AgentListener>) -> Self {
        stream.remote_addr().clone()
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

fn own_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    None
}

/// The uid owning the client end of a loopback connection, from
/// /proc/net/tcp{,6} (None where that is not available).
fn peer_uid(peer: SocketAddr) -> Option<u32> {
    let mut wanted = Vec::new();
    match peer {
        SocketAddr::V4(a) => {
            wanted.push(format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(a.ip().octets()),
                a.port()
            ));
            let mapped = a.ip().to_ipv6_mapped();
            wanted.push(v6_hex(&mapped.octets(), a.port()));
        }
        SocketAddr::V6(a) => {
            wanted.push(v6_hex(&a.ip().octets(), a.port()));
            if let Some(v4) = a.ip().to_ipv4_mapped() {
                wanted.push(format!(
                    "{:08X}:{:04X}",
                    u32::from_ne_bytes(v4.octets()),
                    a.port()
                ));
            }
        }
    }
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 7 && wanted.iter().any(|w| w == cols[1]) {
                return cols[7].parse().ok();
            }
        }
    }
    None
}

fn v6_hex(octets: &[u8; 16], port: u16) -> String {
    let mut s = String::with_capacity(37);
    for chunk in octets.chunks(4) {
        let w = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        s.push_str(&format!("{w:08X}"));
    }
    format!("{s}:{port:04X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_interval_with_jitter() {
        let o = AgentOptions {
            interval: Duration::from_secs(300),
            min_retry: Duration::from_secs(10),
            ..AgentOptions::default()
        };
        for _ in 0..100 {
            let d = next_delay(&o, 0).as_secs_f64();
            assert!((225.0..375.0).contains(&d), "{d}");
            let d = next_delay(&o, 1).as_secs_f64();
            assert!((7.5..12.5).contains(&d), "{d}");
            let d = next_delay(&o, 3).as_secs_f64();
            assert!((30.0..50.0).contains(&d), "{d}");
            let d = next_delay(&o, 40).as_secs_f64();
            assert!((225.0..375.0).contains(&d), "{d}");
        }
    }

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

    #[test]
    fn finds_own_loopback_connection_uid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(peer_uid(peer), own_uid());
        }
    }
}
