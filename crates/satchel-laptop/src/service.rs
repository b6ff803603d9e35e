//! The archive service as the laptop sees it: a thin layer over
//! [`satchel_api::Client`] that sets short timeouts, so that "offline"
//! (connection refused, no route, timeout) is decided in seconds, and turns
//! the client's errors into the laptop's: no answer is [`Error::Offline`], a
//! refused home token is [`Error::TokenRevoked`].

use std::time::Duration;

use reqwest::Response;
use satchel_api::{ApiError, Auth, Client, MessageId, PrivateCa, SearchResults, Whoami};
use satchel_offline::{OfflineRepositoryList, OfflineRepositoryListing};

use crate::config::Config;
use crate::error::{Error, Result};

pub use satchel_api::ManifestFetch;

/// Connect timeout: past this the service counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest silence while reading an answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for `whoami`, the reachability check.
pub const WHOAMI_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the archive service as one user.
#[derive(Clone)]
pub struct Service {
    client: Client,
    /// Set for a home's token: a 401 then means the token was revoked.
    token_of: Option<String>,
}

impl Service {
    /// The service named by `config`, authenticated by its token.
    pub fn new(config: &Config) -> Result<Service> {
        let ca = config.ca()?;
        let token = Auth::Bearer(config.token.clone());
        let mut service = Service::connect(&config.server, token, ca.as_ref())?;
        service.token_of = Some(config.user.clone());
        Ok(service)
    }

    /// With a password (setup only).
    pub fn with_password(
        server: &str,
        user: &str,
        password: &str,
        ca: Option<&PrivateCa>,
    ) -> Result<Service> {
        let auth = Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        };
        Service::connect(server, auth, ca)
    }

    fn connect(server: &str, auth: Auth, ca: Option<&PrivateCa>) -> Result<Service> {
        let http = satchel_api::client::http_builder(server, ca)
            .user_agent(concat!("satchel-laptop/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| Error::Api(e.into()))?;
        Ok(Service {
            client: Client::with_http(server, auth, http),
            token_of: None,
        })
    }

    /// The service's base URL.
    pub fn server(&self) -> &str {
        self.client.base()
    }

    /// The API client underneath, with the laptop's timeouts; its errors are
    /// the raw ones (the load benchmark tells a reset from a timeout).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The laptop's reading of a client error. No answer at all (refused,
    /// reset or closed before a response, timeout) means the service is
    /// offline; a 401 to a home's token means the token was revoked.
    fn err(&self, e: ApiError) -> Error {
        match e {
            ApiError::Transport(t) if !t.is_builder() && !t.is_decode() && !t.is_body() => {
                tracing::debug!("no answer from the service: {t}");
                Error::Offline {
                    server: self.server().to_string(),
                }
            }
            ApiError::Status { status: 401, .. } if self.token_of.is_some() => {
                Error::TokenRevoked {
                    server: self.server().to_string(),
                    user: self.token_of.clone().unwrap_or_default(),
                }
            }
            ApiError::Invalid { what, reason } => Error::Protocol { what, reason },
            ApiError::Manifest(e) => Error::Replica(e),
            other => Error::api(self.server(), other),
        }
    }

    /// `GET /api/v1/whoami`: who the credentials are; also the reachability check.
    pub async fn whoami(&self) -> Result<Whoami> {
        let within = self.client.whoami_within(WHOAMI_TIMEOUT).await;
        within.map_err(|e| self.err(e))
    }

    /// `POST /api/v1/tokens`: a new API token for this user.
    pub async fn create_token(&self, label: &str) -> Result<String> {
        let token = self.client.create_token(label).await;
        Ok(token.map_err(|e| self.err(e))?.token)
    }

    /// The offline repositories this user may copy.
    pub async fn repositories(&self) -> Result<OfflineRepositoryList> {
        let list = self.client.offline_repositories().await;
        list.map_err(|e| self.err(e))
    }

    /// Conditional GET of a manifest: with `etag`, an unchanged manifest is a
    /// 304 with no body.
    pub async fn manifest(
        &self,
        listing: &OfflineRepositoryListing,
        etag: Option<&str>,
    ) -> Result<ManifestFetch> {
        let fetch = self.client.offline_manifest(listing, etag).await;
        fetch.map_err(|e| self.err(e))
    }

    /// Starts downloading segment `name` from byte `from`. Returns the
    /// response and the offset its body starts at (0 if the service ignored
    /// the range and sends the whole file).
    pub async fn segment(
        &self,
        listing: &OfflineRepositoryListing,
        name: &str,
        from: u64,
    ) -> Result<(Response, u64)> {
        let download = self.client.offline_segment(listing, name, from).await;
        download.map_err(|e| self.err(e))
    }

    /// The raw bytes of message `id` of `mailbox`, exactly as archived.
    pub async fn message(&self, mailbox: &str, id: &MessageId) -> Result<Vec<u8>> {
        let raw = self.client.message(mailbox, id).await;
        raw.map_err(|e| self.err(e))
    }

    /// Searches the archive (the mailboxes this user may search).
    pub async fn search(
        &self,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<SearchResults> {
        let results = self.client.search(query, mailbox, limit).await;
        results.map_err(|e| self.err(e))
    }
}
