//! The archive service as the laptop sees it: the offline endpoints and the
//! few `/api/v1` calls the client needs, with short timeouts so that
//! "offline" (connection refused, no route, timeout) is decided in seconds.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, ETAG, IF_NONE_MATCH, RANGE};
use reqwest::{Method, Response, StatusCode};
use satchel_api::{Auth, Client, SearchResults, Whoami, client::segment};
use satchel_offline::{Manifest, OfflineRepositoryList, OfflineRepositoryListing};

use crate::config::Config;
use crate::error::{Error, Result};

/// Connect timeout: past this the service counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest silence while reading an answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the archive service as one user.
#[derive(Clone)]
pub struct Service {
    client: Client,
    /// Set for a home's token: a 401 then means the token was revoked.
    token_of: Option<String>,
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

impl Service {
    /// The service named by `config`, authenticated by its token.
    pub fn new(config: &Config) -> Result<Service> {
        let mut service = Service::connect(&config.server, Auth::Bearer(config.token.clone()))?;
        service.token_of = Some(config.user.clone());
        Ok(service)
    }

    /// With a password (setup only).
    pub fn with_password(server: &str, user: &str, password: &str) -> Result<Service> {
        Service::connect(
            server,
            Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            },
        )
    }

    fn connect(server: &str, auth: Auth) -> Result<Service> {
        let http = reqwest::Client::builder()
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

    fn err(&self, e: satchel_api::ApiError) -> Error {
        Error::api(self.server(), e)
    }

    /// Sends a request. No answer at all (refused, reset or closed before
    /// a response, timeout) means the service is offline.
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Response> {
        self.client.send(rb).await.map_err(|e| match e {
            satchel_api::ApiError::Transport(t) if !t.is_builder() && !t.is_decode() => {
                tracing::debug!("no answer from the service: {t}");
                Error::Offline {
                    server: self.server().to_string(),
                }
            }
            satchel_api::ApiError::Status { status: 401, .. } if self.token_of.is_some() => {
                Error::TokenRevoked {
                    server: self.server().to_string(),
                    user: self.token_of.clone().unwrap_or_default(),
                }
            }
            other => self.err(other),
        })
    }

    /// `GET /api/v1/whoami`: who the credentials are; also the reachability check.
    pub async fn whoami(&self) -> Result<Whoami> {
        let rb = self
            .client
            .request(Method::GET, "/api/v1/whoami")
            .timeout(Duration::from_secs(5));
        let resp = self.send(rb).await?;
        resp.json().await.map_err(|e| self.err(e.into()))
    }

    /// `POST /api/v1/tokens`: a new API token for this user.
    pub async fn create_token(&self, label: &str) -> Result<String> {
        let rb = self
            .client
            .request(Method::POST, "/api/v1/tokens")
            .json(&satchel_api::NewToken {
                label: label.to_string(),
            });
        let t: satchel_api::Token = self
            .send(rb)
            .await?
            .json()
            .await
            .map_err(|e| self.err(e.into()))?;
        Ok(t.token)
    }

    /// The offline repositories this user may copy.
    pub async fn repositories(&self) -> Result<OfflineRepositoryList> {
        let rb = self
            .client
            .request(Method::GET, "/api/v1/offline/repositories");
        let resp = self.send(rb).await?;
        let bytes = resp.bytes().await.map_err(|e| self.err(e.into()))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            what: "the offline repository list".into(),
            reason: e.to_string(),
        })
    }

    /// The path (under the base URL) of a listing's manifest.
    pub fn manifest_path(&self, listing: &OfflineRepositoryListing) -> String {
        let url = listing.manifest_url.as_str();
        if let Some(rest) = url.strip_prefix(self.server())
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

    /// Conditional GET of a manifest: with `etag`, an unchanged manifest is a
    /// 304 with no body.
    pub async fn manifest(
        &self,
        listing: &OfflineRepositoryListing,
        etag: Option<&str>,
    ) -> Result<ManifestFetch> {
        let mut rb = self
            .client
            .request(Method::GET, &self.manifest_path(listing));
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
        let bytes = resp.bytes().await.map_err(|e| self.err(e.into()))?;
        let manifest = Manifest::from_json(&bytes, Path::new("(service manifest)"))?;
        if manifest.mailbox != listing.mailbox {
            return Err(Error::Protocol {
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

    /// Starts downloading segment `name` from byte `from`. Returns the
    /// response and the offset its body starts at (0 if the service ignored
    /// the range and sends the whole file).
    pub async fn segment(
        &self,
        listing: &OfflineRepositoryListing,
        name: &str,
        from: u64,
    ) -> Result<(Response, u64)> {
        let mut rb = self
            .client
            .request(Method::GET, &self.segment_path(listing, name));
        if from > 0 {
            rb = rb.header(RANGE, format!("bytes={from}-"));
        }
        let resp = self.send(rb).await?;
        if resp.status() == StatusCode::PARTIAL_CONTENT {
            let start = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match start {
                Some(s) if s == from => Ok((resp, from)),
                _ => Err(Error::Protocol {
                    what: format!("segment {name}"),
                    reason: format!("206 without a Content-Range starting at {from}"),
                }),
            }
        } else {
            Ok((resp, 0))
        }
    }

    /// The raw bytes of message `id` of `mailbox`, exactly as archived.
    pub async fn message(&self, mailbox: &str, id: &str) -> Result<Vec<u8>> {
        let path = format!(
            "/api/v1/mailboxes/{}/messages/{}",
            segment(mailbox),
            segment(id)
        );
        let resp = self.send(self.client.request(Method::GET, &path)).await?;
        Ok(resp.bytes().await.map_err(|e| self.err(e.into()))?.to_vec())
    }

    /// Searches the archive (the mailboxes this user may search).
    pub async fn search(
        &self,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<SearchResults> {
        let mut params = vec![("q", query.to_string()), ("limit", limit.to_string())];
        if let Some(mb) = mailbox {
            params.push(("mailbox", mb.to_string()));
        }
        let rb = self
            .client
            .request(Method::GET, "/api/v1/search")
            .query(&params);
        let resp = self.send(rb).await?;
        resp.json().await.map_err(|e| self.err(e.into()))
    }
}
