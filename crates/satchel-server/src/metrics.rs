//! What an operator watches (docs/serve.md, "Metrics and health"):
//! `/metrics` in the Prometheus (OpenMetrics) text format, answered only to
//! the addresses of `[metrics] allow`; `/healthz` (the process answers) and
//! `/readyz` (catalog, index and every repository usable); the request id and
//! span every request's log lines carry.
//!
//! The metrics live in one process-wide [`Metrics`] (prometheus-client), so
//! the parts of the service that do the work (import, IMAP runs, offline
//! updates, sign-in) count it where it happens without a handle passed down
//! to them. Sizes (catalog, index) are read when scraped, from file sizes.

use crate::service::Service;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// The addresses `[metrics] allow` lets scrape by default: loopback only.
pub fn default_allow() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// `route`: the matched route template (`/api/v1/mailboxes/{address}`), never
/// the raw path, so a scrape has one series per route, not per mailbox.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LockLabel {
    locked: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latencies: 1 ms to about 33 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Run lengths (import batches, IMAP runs, offline updates): 10 ms to about
/// 1.5 h.
fn run_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 3.0, 13))
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    messages_archived: Family<SourceLabel, Counter>,
    bytes_archived: Counter,
    import_batches: Histogram,
    imap_runs: Timings<OutcomeLabel>,
    offline_updates: Timings<OutcomeLabel>,
    offline_bytes_served: Counter,
    signin_failures: Counter,
    signin_lockouts: Family<LockLabel, Counter>,
    http: Timings<HttpLabels>,
    catalog_bytes: Gauge,
    index_bytes: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            messages_archived: Family::default(),
            bytes_archived: Counter::default(),
            import_batches: run_buckets(),
            imap_runs: Family::new_with_constructor(run_buckets),
            offline_updates: Family::new_with_constructor(run_buckets),
            offline_bytes_served: Counter::default(),
            signin_failures: Counter::default(),
            signin_lockouts: Family::default(),
            http: Family::new_with_constructor(request_buckets),
            catalog_bytes: Gauge::default(),
            index_bytes: Gauge::default(),
        };
        m.registered()
    }

    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "satchel_messages_archived",
            "Messages newly stored, by source (import, imap)",
            self.messages_archived.clone(),
        );
        r.register(
            "satchel_bytes_archived",
            "Bytes of the messages newly stored by imports",
            self.bytes_archived.clone(),
        );
        r.register(
            "satchel_import_batch_duration_seconds",
            "Import requests (one batch of messages each) and their durations",
            self.import_batches.clone(),
        );
        r.register(
            "satchel_imap_run_duration_seconds",
            "IMAP archive runs by outcome and their durations",
            self.imap_runs.clone(),
        );
        r.register(
            "satchel_offline_update_duration_seconds",
            "Offline repository updates by outcome and their durations",
            self.offline_updates.clone(),
        );
        r.register(
            "satchel_offline_bytes_served",
            "Bytes of offline manifests and segments sent to laptops",
            self.offline_bytes_served.clone(),
        );
        r.register(
            "satchel_signin_failures",
            "Password sign-ins refused for a wrong user name or password",
            self.signin_failures.clone(),
        );
        r.register(
            "satchel_signin_lockouts",
            "Lockouts imposed after repeated sign-in failures, by what was locked (address, user)",
            self.signin_lockouts.clone(),
        );
        r.register(
            "satchel_http_request_duration_seconds",
            "HTTP requests by method, route template and status, and their time to the answer's head",
            self.http.clone(),
        );
        r.register(
            "satchel_catalog_bytes",
            "Size of the catalog (SQLite file and its WAL, or the PostgreSQL database)",
            self.catalog_bytes.clone(),
        );
        r.register(
            "satchel_index_bytes",
            "Size of this node's search index folder",
            self.index_bytes.clone(),
        );
        self
    }

    /// An import request stored `new` messages of `bytes` bytes in `took`.
    pub fn imported(&self, new: u64, bytes: u64, took: Duration) {
        self.messages_archived
            .get_or_create(&SourceLabel { source: "import" })
            .inc_by(new);
        self.bytes_archived.inc_by(bytes);
        self.import_batches.observe(took.as_secs_f64());
    }

    /// An IMAP archive run ended (`outcome`: ok, failed) having stored
    /// `archived` messages.
    pub fn imap_run(&self, outcome: &'static str, archived: u64, took: Duration) {
        self.messages_archived
            .get_or_create(&SourceLabel { source: "imap" })
            .inc_by(archived);
        self.imap_runs
            .get_or_create(&OutcomeLabel { outcome })
            .observe(took.as_secs_f64());
    }

    /// An offline update ended (`outcome`: ok, failed).
    pub fn offline_update(&self, outcome: &'static str, took: Duration) {
        self.offline_updates
            .get_or_create(&OutcomeLabel { outcome })
            .observe(took.as_secs_f64());
    }

    /// A password sign-in failed; `address`/`user`: whether it locked them.
    pub fn signin_failed(&self, address: bool, user: bool) {
        self.signin_failures.inc();
        for (locked, yes) in [("address", address), ("user", user)] {
            if yes {
                self.signin_lockouts
                    .get_or_create(&LockLabel { locked })
                    .inc();
            }
        }
    }

    /// The text of a scrape, sizes read now.
    fn render(&self, service: &Service) -> Result<String, std::fmt::Error> {
        let root = service.archive().root();
        self.catalog_bytes.set(catalog_bytes(service, root));
        self.index_bytes.set(folder_bytes(&root.join("index")));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The SQLite catalog's files, or the PostgreSQL database's size.
fn catalog_bytes(service: &Service, root: &Path) -> i64 {
    let sqlite = root.join("catalog.sqlite");
    if sqlite.exists() {
        return ["catalog.sqlite", "catalog.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(root.join(f)).ok())
            .map(|m| i64::try_from(m.len()).unwrap_or(i64::MAX))
            .sum();
    }
    let size = service.archive().catalog().ok().and_then(|cat| {
        cat.db()
            .query_one("SELECT pg_database_size(current_database())", &[])
            .ok()?
            .get::<i64>(0)
            .ok()
    });
    size.unwrap_or(0)
}

/// The bytes of the files in `dir` and below (a few hundred index files).
fn folder_bytes(dir: &Path) -> i64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some(if meta.is_dir() {
                folder_bytes(&e.path())
            } else {
                i64::try_from(meta.len()).unwrap_or(i64::MAX)
            })
        })
        .sum()
}

/// Who may scrape `/metrics` (`[metrics] allow`).
#[derive(Clone)]
pub struct Allow(pub Arc<Vec<IpNet>>);

/// `/metrics`, `/healthz`, `/readyz`.
pub fn routes(service: Arc<Service>, allow: Vec<IpNet>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(Extension(Allow(Arc::new(allow))))
        .with_state(service)
}

/// Whether `peer` is inside one of `allow`'s networks (an IPv4 address
/// arriving on an IPv6 socket as `::ffff:a.b.c.d` counts as IPv4).
pub fn allowed(allow: &[IpNet], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    allow.iter().any(|net| net.contains(&peer))
}

async fn scrape(
    State(service): State<Arc<Service>>,
    Extension(Allow(allow)): Extension<Allow>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !allowed(&allow, peer.ip()) {
        let why = format!(
            "{} may not read the metrics: allow it in [metrics] allow of the configuration file\n",
            peer.ip()
        );
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let text = tokio::task::spawn_blocking(move || global().render(&service)).await;
    match text {
        Ok(Ok(text)) => {
            let kind = HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            );
            ([(header::CONTENT_TYPE, kind)], text).into_response()
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot render the metrics\n",
        )
            .into_response(),
    }
}

/// The process is up and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

/// How long each readiness check may take before it counts as not ready.
pub const READY_BUDGET: Duration = Duration::from_secs(2);

/// 200 "ready" when the catalog answers a query, the index a search, and
/// every repository is reachable, each within [`READY_BUDGET`]; otherwise
/// 503 with one line per part that is not.
async fn readyz(State(service): State<Arc<Service>>) -> Response {
    let problems = not_ready(service).await;
    if problems.is_empty() {
        "ready\n".into_response()
    } else {
        let text = format!("not ready:\n{}\n", problems.join("\n"));
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

/// What is not ready, one line each (empty: ready).
async fn not_ready(service: Arc<Service>) -> Vec<String> {
    let s = service.clone();
    let mut problems = Vec::new();
    let catalog = within("catalog", move || {
        let cat = s.archive().catalog().map_err(|e| e.to_string())?;
        cat.db()
            .query_one("SELECT 1", &[])
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    problems.extend(catalog.err());
    let s = service.clone();
    let index = within("index", move || {
        let nobody = satchel_archive::UserInfo::internal("", false);
        let req = satchel_archive::SearchRequest {
            query: "readyz".into(),
            mailbox: None,
            limit: 1,
        };
        s.archive()
            .search(&nobody, &req)
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    problems.extend(index.err());
    let s = service.clone();
    let repos = within("repositories", move || {
        let repos = s
            .archive()
            .catalog()
            .and_then(|c| c.repositories())
            .map_err(|e| e.to_string())?;
        Ok(repos)
    })
    .await;
    match repos {
        Ok(repos) => {
            for repo in repos {
                let what = format!("repository {}", repo.name);
                let s = service.clone();
                let checked = within(&what, move || reachable(&s, &repo)).await;
                problems.extend(checked.err());
            }
        }
        Err(e) => problems.push(e),
    }
    problems
}

/// Runs `check` on the blocking pool, giving it [`READY_BUDGET`]; the error
/// names `what`.
async fn within<T, F>(what: &str, check: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    match tokio::time::timeout(READY_BUDGET, tokio::task::spawn_blocking(check)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(format!("{what}: {e}")),
        Ok(Err(e)) => Err(format!("{what}: the check failed: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {} s",
            READY_BUDGET.as_secs()
        )),
    }
}

/// A disk repository's folder can be listed; an S3 repository's endpoint
/// accepts a connection (the provider's own endpoint is not probed).
fn reachable(service: &Service, repo: &satchel_archive::RepositoryInfo) -> Result<(), String> {
    if repo.kind == "disk" {
        let folder = service.archive().resolve(&repo.path);
        return std::fs::read_dir(&folder)
            .map(drop)
            .map_err(|e| format!("cannot read {}: {e}", folder.display()));
    }
    let Some(endpoint) = &repo.endpoint else {
        return Ok(());
    };
    let url = url_host_port(endpoint).ok_or_else(|| format!("unusable endpoint {endpoint}"))?;
    let addrs = std::net::ToSocketAddrs::to_socket_addrs(&url)
        .map_err(|e| format!("cannot resolve {endpoint}: {e}"))?;
    let mut last = format!("{endpoint} resolves to no address");
    for addr in addrs {
        match std::net::TcpStream::connect_timeout(&addr, READY_BUDGET) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {endpoint}: {e}"),
        }
    }
    Err(last)
}

/// "host:port" of an `http(s)://host[:port]/...` endpoint.
fn url_host_port(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let port = url.port_or_known_default()?;
    match url.host()? {
        url::Host::Ipv6(a) => Some(format!("[{a}]:{port}")),
        host => Some(format!("{host}:{port}")),
    }
}

/// Wraps the whole application: every request gets an id (`x-request-id`,
/// kept when a proxy set one, sent back in the answer), a span carrying it
/// (so each log line of the request names it: text and JSON logs alike), an
/// access line at `info` when it ends, and its count and latency in
/// [`Metrics`].
pub fn layered(app: Router) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
        .on_failure(());
    app.layer(axum::middleware::from_fn(track))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span of one request: its id, method and route template (never the
/// raw path, which holds mailbox addresses and queries).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
}

/// The routes whose answers are offline copies sent to laptops.
const OFFLINE_DOWNLOADS: [&str; 2] = [
    "/api/v1/offline/repositories/{address}/manifest",
    "/api/v1/offline/repositories/{address}/segments/{name}",
];

/// Middleware: counts each request by method, matched route and status, with
/// its time to the answer's head, and the bytes of offline downloads.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = known_method(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    let took = started.elapsed().as_secs_f64();
    let status = resp.status();
    if status.is_success() && OFFLINE_DOWNLOADS.contains(&route.as_str()) {
        global().offline_bytes_served.inc_by(answer_bytes(&resp));
    }
    let labels = HttpLabels {
        method: method.to_string(),
        route,
        status: status.as_u16().to_string(),
    };
    global().http.get_or_create(&labels).observe(took);
    resp
}

/// The method as a label; any other method is "other" (a client cannot add
/// series by inventing methods).
fn known_method(m: &axum::http::Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|k| *k == m.as_str())
        .unwrap_or("other")
}

/// An answer's length: its Content-Length, else its body's exact size.
fn answer_bytes(resp: &Response) -> u64 {
    resp.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| axum::body::HttpBody::size_hint(resp.body()).exact())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_networks_and_mapped_addresses() {
        let allow = default_allow();
        assert!(allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&allow, "::1".parse().unwrap()));
        assert!(allowed(&allow, "::ffff:127.0.0.2".parse().unwrap()));
        assert!(!allowed(&allow, "10.0.0.1".parse().unwrap()));
        assert!(!allowed(&[], "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn endpoints_give_host_and_port() {
        assert_eq!(
            url_host_port("http://127.0.0.1:8333").as_deref(),
            Some("127.0.0.1:8333")
        );
        assert_eq!(
            url_host_port("https://s3.example.com/x").as_deref(),
            Some("s3.example.com:443")
        );
        assert_eq!(url_host_port("[::1]").as_deref(), None);
    }
}
