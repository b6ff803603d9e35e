//! The archive service: one [`Service`] holding the archive, with the HTTP API
//! (`/api/v1`) in front of it. Every way in — API, and later the console and the
//! scheduler — calls the same `Service` functions, so they cannot disagree.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod console;
pub mod directory;
pub mod error;
pub mod hold;
pub mod http;
pub mod imap;
pub mod jobs;
pub mod metrics;
pub mod offline;
pub mod removal;
pub mod retention;
pub mod service;
pub mod signin;
pub mod throttle;
pub mod tls;

pub use error::ServiceError;
pub use service::{Caller, KeySource, Service, default_key_file};
/// Connections a node keeps to a PostgreSQL catalog unless told.
pub const DEFAULT_CATALOG_CONNECTIONS: usize = satchel_archive::catalog::pool::DEFAULT_CONNECTIONS;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub struct ServeConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// The first administrator's password; generated and printed once if absent.
    pub admin_password: Option<String>,
    /// Password hashes computed at once (default: half the cores, at least 1).
    pub password_checks: Option<usize>,
    /// The largest request body accepted (an import batch); larger is 413.
    pub max_request_bytes: u64,
    /// Message bytes read from S3 repositories kept in memory (0: none).
    pub s3_cache_bytes: u64,
    /// The key that seals IMAP passwords in the catalog.
    pub key: KeySource,
    /// A PostgreSQL catalog URL; None keeps the catalog in the data folder
    /// (SQLite).
    pub catalog: Option<String>,
    /// Connections to a PostgreSQL catalog (SQLite keeps one).
    pub catalog_connections: usize,
    /// Serve HTTPS with this certificate and key (re-read on SIGHUP); None
    /// serves plain HTTP.
    pub tls: Option<tls::TlsFiles>,
    /// The networks whose addresses may read `/metrics` (others get 403).
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// Sign in directory users too (`[ldap]`); None: local users only.
    pub directory: Option<directory::DirectoryConfig>,
}

/// Opens the data folder and serves until SIGINT/SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    // A bad certificate stops the start before the data folder is opened.
    let tls = config.tls.clone().map(tls::Https::prepare).transpose()?;
    let data = config.data.clone();
    let admin_password = config.admin_password.clone();
    let key = config.key.clone();
    let catalog = config.catalog.clone();
    let connections = config.catalog_connections;
    let cache = config.s3_cache_bytes;
    let service = tokio::task::spawn_blocking(move || {
        Service::open_pooled(
            &data,
            catalog.as_deref(),
            connections,
            admin_password,
            &key,
            cache,
        )
    })
    .await??;
    let slots = config
        .password_checks
        .unwrap_or_else(signin::default_hash_slots);
    let service = Arc::new(
        service
            .with_hash_slots(slots)
            .with_directory(config.directory.clone())?,
    );
    let listener = listen(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, data = %config.data.display(), password_checks = slots, "satchel service listening");
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "satchel: serving {} on {scheme}://{local}",
        config.data.display()
    );
    let scheduler = tokio::spawn(jobs::schedule::run(service.clone()));
    let committer = tokio::spawn(commit_index_every_second(service.clone()));
    // The client address (ConnectInfo) is what sign-in throttling counts by.
    let app = http::router(service.clone(), config.max_request_bytes)
        .merge(console::router(service.clone()))
        .merge(metrics::routes(
            service.clone(),
            config.metrics_allow.clone(),
        ));
    let app = metrics::layered(app);
    let served = match tls {
        Some(https) => tls::serve(listener, app, https, shutdown_signal()).await,
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
        }
    };
    scheduler.abort();
    committer.abort();
    // What was imported but not yet committed to the index would be re-indexed at
    // the next start anyway; committing now just saves that work.
    let last = service.clone();
    let _ = tokio::task::spawn_blocking(move || last.archive().commit_index()).await;
    served?;
    Ok(())
}

/// Connections the kernel completes and queues before the service accepts
/// them. The default of Rust and tokio, 128, is less than a storm of laptops
/// refreshing at once; past it the kernel drops new connections without a
/// word, their connect times out and each laptop believes the service
/// offline (tests/connection_storm.rs). The kernel caps it at
/// `net.core.somaxconn` (4,096 by default since Linux 5.4).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` as `TcpListener::bind` does (address reuse on Unix), with a
/// backlog of [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Imports leave index commits to this task (and to searches, which commit
/// first). A failed commit (a full disk) is retried with a doubling pause, up to
/// [`MAX_COMMIT_RETRY`]: each retry reads every unindexed message again, and
/// once a second would keep a full disk's server busy for nothing.
async fn commit_index_every_second(service: Arc<Service>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    let mut pause = EVERY;
    loop {
        tokio::time::sleep(pause).await;
        let s = service.clone();
        match tokio::task::spawn_blocking(move || s.archive().commit_index()).await {
            Ok(Ok(_)) => pause = EVERY,
            Ok(Err(e)) => {
                pause = (pause * 2).min(MAX_COMMIT_RETRY);
                tracing::error!(error = %e, retry_in_s = pause.as_secs(), "committing the search index");
            }
            Err(e) => tracing::error!(error = %e, "index committer failed"),
        }
    }
}

/// The longest pause between retries of a failed index commit.
const MAX_COMMIT_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
