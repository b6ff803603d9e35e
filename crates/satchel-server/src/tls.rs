//! HTTPS: the service's certificate and key (`satchel serve --tls-cert
//! --tls-key`), served with rustls (the ring provider, as the IMAP client
//! uses) through axum-server, whose configuration can be swapped while it
//! serves: SIGHUP re-reads both files, and a bad new pair keeps the old one.
//! Over HTTPS every cookie is `Secure` and HSTS is sent.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::cookie::Cookie;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and private key files (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("TLS key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate {cert} and key {key} cannot be used together: {source}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// What `Strict-Transport-Security` says: use HTTPS for a year.
const HSTS: &str = "max-age=31536000";

/// How long open connections may finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(30);

/// Reads and checks the certificate chain and key of `files` (the key must
/// match the certificate) into a server configuration offering HTTP/2 and
/// HTTP/1.1.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: files.cert.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| cert_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_error(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let pair = |source| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pair)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// HTTPS ready to serve: the loaded certificate, and SIGHUP already caught
/// (before the service says it listens, so an early SIGHUP cannot kill it).
pub struct Https {
    config: Arc<ServerConfig>,
    files: TlsFiles,
    #[cfg(unix)]
    hangups: Option<tokio::signal::unix::Signal>,
}

impl Https {
    /// Loads `files` and starts catching SIGHUP. Needs a tokio runtime.
    pub fn prepare(files: TlsFiles) -> Result<Https, TlsError> {
        let config = load(&files)?;
        #[cfg(unix)]
        let hangups = {
            use tokio::signal::unix::{SignalKind, signal};
            signal(SignalKind::hangup())
                .inspect_err(|e| {
                    tracing::error!(error = %e, "cannot catch SIGHUP: the TLS certificate will not be reloaded")
                })
                .ok()
        };
        Ok(Https {
            config,
            files,
            #[cfg(unix)]
            hangups,
        })
    }
}

/// Serves `app` over HTTPS on `listener` until `shutdown` completes, then
/// lets open requests finish (up to [`GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    https: Https,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rustls = RustlsConfig::from_config(https.config);
    #[cfg(unix)]
    let reloader = tokio::spawn(reload_on_hangup(https.hangups, https.files, rustls.clone()));
    #[cfg(not(unix))]
    let reloader = tokio::spawn(async move { drop(https.files) });
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    let app = app.layer(axum::middleware::map_response(secure_response));
    let served = axum_server::Server::<SocketAddr>::from_listener(listener)
        .acceptor(RustlsAcceptor::new(rustls))
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await;
    reloader.abort();
    served
}

/// On every SIGHUP, reads the certificate and key again and serves new
/// connections with them; a pair that does not load is reported and the one
/// in use stays.
#[cfg(unix)]
async fn reload_on_hangup(
    hangups: Option<tokio::signal::unix::Signal>,
    files: TlsFiles,
    rustls: RustlsConfig,
) {
    let Some(mut hangups) = hangups else {
        return;
    };
    {
        while hangups.recv().await.is_some() {
            let f = files.clone();
            match tokio::task::spawn_blocking(move || load(&f)).await {
                Ok(Ok(config)) => {
                    rustls.reload_from_config(config);
                    tracing::warn!(cert = %files.cert.display(), "SIGHUP: reloaded the TLS certificate");
                }
                Ok(Err(e)) => tracing::error!("SIGHUP: kept the previous TLS certificate: {e}"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: reloading the TLS certificate failed")
                }
            }
        }
    }
}

/// Over HTTPS: every cookie `Secure` (a browser then never sends the session
/// over plain HTTP), and `Strict-Transport-Security`.
async fn secure_response(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if !cookies.is_empty() {
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            headers.append(header::SET_COOKIE, secure_cookie(cookie));
        }
    }
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    resp
}

/// `value` (a `Set-Cookie` header) with the `Secure` attribute.
fn secure_cookie(value: HeaderValue) -> HeaderValue {
    let Some(mut cookie) = value.to_str().ok().and_then(|v| Cookie::parse(v).ok()) else {
        return value;
    };
    cookie.set_secure(true);
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_cookie_keeps_its_attributes_and_becomes_secure() {
        let set =
            HeaderValue::from_static("satchel_session=abc; HttpOnly; SameSite=Strict; Path=/");
        let out = secure_cookie(set);
        let text = out.to_str().expect("ascii");
        for part in [
            "satchel_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Secure",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
