//! A small async client for `/api/v1`, used by the command line and (with
//! its own timeouts) by the laptop client.

use crate::tls::PrivateCa;
use crate::types::*;
use reqwest::header::{CONTENT_RANGE, ETAG, IF_NONE_MATCH, RANGE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use satchel_offline::{Manifest, OfflineRepositoryList, OfflineRepositoryListing};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error; `message` is its explanation.
    #[error("{message} (HTTP {status})")]
    Status { status: u16, message: String },
    #[error("cannot reach the service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The `https://` service's certificate was refused: the connection is
    /// never used. `reason` says why in plain words; `error`, kept out of the
    /// printed chain (it only repeats the reason), is the client's own.
    #[error(
        "the service at {url} presented a TLS certificate that is not trusted: {reason}. \
         If it uses a private certificate authority, give that CA's certificate (PEM) \
         with --ca-file FILE or {ca_var}",
        ca_var = crate::tls::CA_FILE_VAR
    )]
    UntrustedCertificate {
        url: String,
        reason: String,
        error: reqwest::Error,
    },
    /// The private CA file cannot be used.
    #[error("CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("talking to the service: {0}")]
    Transport(#[from] reqwest::Error),
    /// The service answered something that breaks the offline protocol.
    #[error("the service sent an invalid answer for {what}: {reason}")]
    Invalid { what: String, reason: String },
    /// A manifest the service sent is not a valid offline manifest.
    #[error(transparent)]
    Manifest(#[from] satchel_offline::Error),
}

/// The answer to a conditional manifest request.
pub enum ManifestFetch {
    /// 304: the local manifest is current.
    NotModified,
    /// A new manifest, its ETag and the size of its body.
    Changed {
        manifest: Manifest,
        etag: Option<String>,
        body_bytes: u64,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

/// Percent-encodes one path segment (addresses carry `@`, `+`, and worse)
/// with the one segment set Satchel uses ([`satchel_message::link::SEGMENT`]),
/// the set message links use too. For a path only: a query value goes
/// through `RequestBuilder::query`, where `+` would read as a space.
pub fn segment(s: &str) -> String {
    satchel_message::link::encode_segment(s).into_owned()
}

/// A `reqwest` builder for a client of the service at `base`.
///
/// For a plain `http://` service the TLS configuration gets no root
/// certificates: loading and parsing the system's roots was most of a
/// one-request command's start-up (`satchel search`), and plain HTTP never
/// uses them. An `https://` service gets the platform's roots, and `ca`'s
/// certificates besides.
pub fn http_builder(base: &str, ca: Option<&PrivateCa>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if is_plain_http(base) {
        return builder.tls_certs_only(std::iter::empty());
    }
    match ca {
        Some(ca) => builder.tls_certs_merge(ca.certificates()),
        None => builder,
    }
}

/// Whether `base` is a plain `http://` URL (no TLS, so no trust to set up).
pub fn is_plain_http(base: &str) -> bool {
    base.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

impl Client {
    pub fn new(base: &str, auth: Auth) -> Result<Self, ApiError> {
        Client::with_ca(base, auth, None)
    }

    /// A client that also trusts `ca` for an `https://` service.
    pub fn with_ca(base: &str, auth: Auth, ca: Option<&PrivateCa>) -> Result<Self, ApiError> {
        let http = http_builder(base, ca)
            .user_agent(concat!("satchel/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{}", self.base, path));
        match &self.auth {
            Auth::Basic { user, password } => rb.basic_auth(user, Some(password)),
            Auth::Bearer(t) => rb.bearer_auth(t),
            Auth::None => rb,
        }
    }

    /// Sends and turns non-success answers into [`ApiError::Status`] with the
    /// service's own message.
    pub async fn send(&self, rb: RequestBuilder) -> Result<Response, ApiError> {
        let resp = rb.send().await.map_err(|e| {
            if let Some(reason) = crate::tls::refused_certificate(&e) {
                ApiError::UntrustedCertificate {
                    url: self.base.clone(),
                    reason,
                    error: e,
                }
            } else if e.is_connect() || e.is_timeout() {
                ApiError::Unreachable {
                    url: self.base.clone(),
                    source: e,
                }
            } else {
                ApiError::Transport(e)
            }
        })?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| {
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    text
                }
            });
        Err(ApiError::Status { status, message })
    }

    async fn json<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T, ApiError> {
        Ok(self.send(rb).await?.json().await?)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    pub async fn whoami(&self) -> Result<Whoami, ApiError> {
        self.get_json("/api/v1/whoami").await
    }

    /// `whoami` answered within `limit` or not at all (the laptop's
    /// reachability check).
    pub async fn whoami_within(&self, limit: Duration) -> Result<Whoami, ApiError> {
        let rb = self.request(Method::GET, "/api/v1/whoami").timeout(limit);
        self.json(rb).await
    }

    pub async fn create_token(&self, label: &str) -> Result<Token, ApiError> {
        let body = NewToken {
            label: label.into(),
        };
        self.post_json("/api/v1/tokens", &body).await
    }

    pub async fn add_user(&self, user: &NewUser) -> Result<User, ApiError> {
        self.post_json("/api/v1/users", user).await
    }

    pub async fn users(&self) -> Result<Vec<User>, ApiError> {
        self.get_json("/api/v1/users").await
    }

    /// Sets `name`'s password; revokes all of `name`'s API tokens.
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<PasswordChanged, ApiError> {
        let rb = self
            .request(
                Method::PUT,
                &format!("/api/v1/users/{}/password", segment(name)),
            )
            .json(&SetPassword {
                password: password.into(),
            });
        self.json(rb).await
    }

    /// Removes a user and revokes everything they hold.
    pub async fn remove_user(&self, name: &str) -> Result<UserRemoved, ApiError> {
        let path = format!("/api/v1/users/{}", segment(name));
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// Your API tokens (an administrator's: everyone's).
    pub async fn tokens(&self) -> Result<Vec<TokenListing>, ApiError> {
        self.get_json("/api/v1/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<TokenListing, ApiError> {
        let path = format!("/api/v1/tokens/{}", segment(id));
        self.json(self.request(Method::DELETE, &path)).await
    }

    pub async fn add_repository(&self, repo: &NewRepository) -> Result<Repository, ApiError> {
        self.post_json("/api/v1/repositories", repo).await
    }

    pub async fn repositories(&self) -> Result<Vec<Repository>, ApiError> {
        self.get_json("/api/v1/repositories").await
    }

    pub async fn add_mailbox(&self, mb: &NewMailbox) -> Result<Mailbox, ApiError> {
        self.post_json("/api/v1/mailboxes", mb).await
    }

    pub async fn mailboxes(&self) -> Result<Vec<Mailbox>, ApiError> {
        self.get_json("/api/v1/mailboxes").await
    }

    pub async fn mailbox(&self, address: &str) -> Result<Mailbox, ApiError> {
        self.get_json(&format!("/api/v1/mailboxes/{}", segment(address)))
            .await
    }

    pub async fn set_repository(&self, address: &str, repo: &str) -> Result<Mailbox, ApiError> {
        let rb = self
            .request(
                Method::PUT,
                &format!("/api/v1/mailboxes/{}/repository", segment(address)),
            )
            .json(&SetRepository { repo: repo.into() });
        self.json(rb).await
    }

    pub async fn grant(&self, address: &str, user: &str) -> Result<Mailbox, ApiError> {
        let path = format!(
            "/api/v1/mailboxes/{}/grants/{}",
            segment(address),
            segment(user)
        );
        self.json(self.request(Method::PUT, &path)).await
    }

    pub async fn revoke(&self, address: &str, user: &str) -> Result<Mailbox, ApiError> {
        let path = format!(
            "/api/v1/mailboxes/{}/grants/{}",
            segment(address),
            segment(user)
        );
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// What the service accepts; `None` from a service too old to say.
    pub async fn limits(&self) -> Result<Option<Limits>, ApiError> {
        match self.get_json("/api/v1/limits").await {
            Ok(limits) => Ok(Some(limits)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Uploads a batch of messages as `multipart/form-data`, one part per message.
    pub async fn import(
        &self,
        address: &str,
        folder: &str,
        messages: Vec<(String, Vec<u8>)>,
    ) -> Result<ImportReport, ApiError> {
        let mut form = reqwest::multipart::Form::new();
        for (origin, raw) in messages {
            let part = reqwest::multipart::Part::bytes(raw)
                .file_name(origin)
                .mime_str("message/rfc822")?;
            form = form.part("message", part);
        }
        let path = format!("/api/v1/mailboxes/{}/messages", segment(address));
        let request = self
            .request(Method::POST, &path)
            .query(&[("folder", folder)]);
        self.json(request.multipart(form)).await
    }

    pub async fn message(&self, address: &str, id: &MessageId) -> Result<Vec<u8>, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/messages/{id}", segment(address));
        let resp = self.send(self.request(Method::GET, &path)).await?;
        Ok(resp.bytes().await?.to_vec())
    }

    pub async fn search(
        &self,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<SearchResults, ApiError> {
        let mut params = vec![("q", query.to_string()), ("limit", limit.to_string())];
        if let Some(mb) = mailbox {
            params.push(("mailbox", mb.to_string()));
        }
        let rb = self.request(Method::GET, "/api/v1/search").query(&params);
        self.json(rb).await
    }

    /// A client on a caller-built `reqwest::Client` (the laptop client sets
    /// short connect and read timeouts so "offline" is decided in seconds).
    pub fn with_http(base: &str, auth: Auth, http: reqwest::Client) -> Self {
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth,
        }
    }

    // ---- offline synchronization (docs/offline-api.md) ----

    async fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn offline_enable(
        &self,
        address: &str,
        body: &OfflineEnable,
    ) -> Result<OfflineMailboxStatus, ApiError> {
        let path = format!("/api/v1/offline/mailboxes/{}", segment(address));
        self.put_json(&path, body).await
    }

    pub async fn offline_disable(&self, address: &str) -> Result<OfflineMailboxStatus, ApiError> {
        let path = format!("/api/v1/offline/mailboxes/{}", segment(address));
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// "Synchronize now": one mailbox, or every enabled one.
    pub async fn offline_sync(&self, mailbox: Option<&str>) -> Result<OfflineSyncReport, ApiError> {
        let body = OfflineSyncRequest {
            mailbox: mailbox.map(str::to_string),
        };
        self.post_json("/api/v1/offline/sync", &body).await
    }

    pub async fn offline_flush(&self, address: &str) -> Result<OfflineUpdateResult, ApiError> {
        let path = format!("/api/v1/offline/mailboxes/{}/flush", segment(address));
        self.json(self.request(Method::POST, &path)).await
    }

    pub async fn offline_defaults(&self) -> Result<OfflineDefaults, ApiError> {
        self.get_json("/api/v1/offline/defaults").await
    }

    pub async fn set_offline_defaults(
        &self,
        body: &SetOfflineDefaults,
    ) -> Result<OfflineDefaults, ApiError> {
        self.put_json("/api/v1/offline/defaults", body).await
    }

    pub async fn offline_schedule(&self) -> Result<OfflineSchedule, ApiError> {
        self.get_json("/api/v1/offline/schedule").await
    }

    pub async fn set_offline_schedule(&self, cron: &str) -> Result<OfflineSchedule, ApiError> {
        let body = SetOfflineSchedule { cron: cron.into() };
        self.put_json("/api/v1/offline/schedule", &body).await
    }

    pub async fn offline_status(
        &self,
        mailbox: Option<&str>,
    ) -> Result<OfflineStatusReport, ApiError> {
        let mut rb = self.request(Method::GET, "/api/v1/offline/status");
        if let Some(mb) = mailbox {
            rb = rb.query(&[("mailbox", mb)]);
        }
        self.json(rb).await
    }

    pub async fn jobs(
        &self,
        limit: usize,
        mailbox: Option<&str>,
    ) -> Result<Vec<JobView>, ApiError> {
        let mut params = vec![("limit", limit.to_string())];
        if let Some(mb) = mailbox {
            params.push(("mailbox", mb.to_string()));
        }
        self.json(self.request(Method::GET, "/api/v1/jobs").query(&params))
            .await
    }

    /// The offline repositories this user may copy (the laptop's starting point).
    /// Its `manifest_url`s are paths on this service; segments are at
    /// `<manifest_url without "/manifest">/segments/<name>`.
    pub async fn offline_repositories(&self) -> Result<OfflineRepositoryList, ApiError> {
        let rb = self.request(Method::GET, "/api/v1/offline/repositories");
        let bytes = self.send(rb).await?.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Invalid {
            what: "the offline repository list".into(),
            reason: e.to_string(),
        })
    }

    /// The path (under the base URL) of a listing's manifest: its
    /// `manifest_url` when that is on this service, else the documented one.
    pub fn manifest_path(&self, listing: &OfflineRepositoryListing) -> String {
        let url = listing.manifest_url.as_str();
        if let Some(rest) = url.strip_prefix(self.base())
            && rest.starts_with('/')
        {
            return rest.to_string();
        }
        if url.starts_with('/') {
            return url.to_string();
        }
        format!(
            "/api/v1/offline/repositories/{}/manifest",
            segment(&listing.mailbox)
        )
    }

    /// The path of segment `name`: `<dir of the manifest>/segments/<name>`.
    pub fn segment_path(&self, listing: &OfflineRepositoryListing, name: &str) -> String {
        let manifest = self.manifest_path(listing);
        let dir = manifest.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/segments/{name}")
    }

    /// Conditional GET of a listing's manifest: with `etag`, an unchanged
    /// manifest is a 304 with no body. A manifest of another mailbox than
    /// the listing's is an [`ApiError::Invalid`].
    pub async fn offline_manifest(
        &self,
        listing: &OfflineRepositoryListing,
        etag: Option<&str>,
    ) -> Result<ManifestFetch, ApiError> {
        let mut rb = self.request(Method::GET, &self.manifest_path(listing));
        if let Some(tag) = etag {
            rb = rb.header(IF_NONE_MATCH, tag);
        }
        let resp = self.send(rb).await?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(ManifestFetch::NotModified);
        }
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await?;
        let manifest = Manifest::from_json(&bytes, Path::new("(service manifest)"))?;
        if manifest.mailbox != listing.mailbox {
            return Err(ApiError::Invalid {
                what: format!("the manifest of {}", listing.mailbox),
                reason: format!("it is the manifest of {}", manifest.mailbox),
            });
        }
        Ok(ManifestFetch::Changed {
            manifest,
            etag,
            body_bytes: bytes.len() as u64,
        })
    }

    /// Starts downloading segment `name` of a listing from byte `from` (a
    /// resumed download asks for the rest with a Range header). Returns the
    /// response, whose body the caller streams, and the offset that body
    /// starts at: 0 if the service ignored the range and sends the whole file.
    pub async fn offline_segment(
        &self,
        listing: &OfflineRepositoryListing,
        name: &str,
        from: u64,
    ) -> Result<(Response, u64), ApiError> {
        let mut rb = self.request(Method::GET, &self.segment_path(listing, name));
        if from > 0 {
            rb = rb.header(RANGE, format!("bytes={from}-"));
        }
        let resp = self.send(rb).await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Ok((resp, 0));
        }
        match content_range_start(&resp) {
            Some(start) if start == from => Ok((resp, from)),
            _ => Err(ApiError::Invalid {
                what: format!("segment {name}"),
                reason: format!("206 without a Content-Range starting at {from}"),
            }),
        }
    }
}

/// The first byte of a 206 answer's `Content-Range: bytes FIRST-LAST/LEN`.
fn content_range_start(resp: &Response) -> Option<u64> {
    resp.headers()
        .get(CONTENT_RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}
