//! A small async client for `/api/v1`.

use crate::types::*;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    #[error("talking to the service: {0}")]
    Transport(#[from] reqwest::Error),
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

/// Percent-encodes one path segment (addresses carry `@`, `+`, and worse).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Client {
    pub fn new(base: &str, auth: Auth) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
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
            if e.is_connect() || e.is_timeout() {
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
        let path = format!(
            "/api/v1/mailboxes/{}/messages?folder={}",
            segment(address),
            segment(folder)
        );
        self.json(self.request(Method::POST, &path).multipart(form))
            .await
    }

    pub async fn message(&self, address: &str, id: &str) -> Result<Vec<u8>, ApiError> {
        let path = format!(
            "/api/v1/mailboxes/{}/messages/{}",
            segment(address),
            segment(id)
        );
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
        self.get_json("/api/v1/offline/repositories").await
    }
}
