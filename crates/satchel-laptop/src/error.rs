//! Typed errors of the laptop client.
//!
//! Each variant says what the user can do about it; the binary prints them
//! with `anyhow`, library code never does.

use std::path::PathBuf;

use satchel_api::ApiError;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation in the home folder failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// No `config.json` in the home folder.
    #[error(
        "{0} is not set up: run `satchel laptop setup --server URL --user NAME --password-stdin` first"
    )]
    NotSetUp(PathBuf),

    /// `setup` in a home that already belongs to another user or service.
    #[error(
        "{home} is already set up for user {user} at {server}: use another --home (one per user), or --force to replace it and drop its local copies"
    )]
    HomeInUse {
        home: PathBuf,
        user: String,
        server: String,
    },

    /// No home folder was given and none could be derived from the environment.
    #[error(
        "no home folder: pass --home DIR or set SATCHEL_HOME (neither XDG_DATA_HOME nor HOME is set)"
    )]
    NoHome,

    /// `config.json` (or another file of the home) is not what we wrote.
    #[error("invalid file {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },

    /// The service could not be reached (connection refused, timeout): offline.
    #[error("the service at {server} is unreachable (offline)")]
    Offline { server: String },

    /// The service refuses this home's API token: revoked, its user's
    /// password changed, or its user removed. Only a new setup helps; the
    /// local copy keeps serving until then.
    #[error(
        "token revoked: the service at {server} no longer accepts this home's API token (revoked, password changed or user removed); run `satchel laptop setup --server {server} --user {user} --password-stdin` again. Until then links open from the local copy"
    )]
    TokenRevoked { server: String, user: String },

    /// The service answered, with an error or something unexpected.
    #[error(transparent)]
    Api(ApiError),

    /// The service answered something that breaks the offline protocol.
    #[error("the service sent an invalid answer for {what}: {reason}")]
    Protocol { what: String, reason: String },

    /// A downloaded segment does not match the manifest (size or hash). It is
    /// not installed; the next sync downloads it again.
    #[error("segment {name} of {mailbox} failed verification after download: {source}")]
    BadDownload {
        mailbox: String,
        name: String,
        #[source]
        source: satchel_offline::VerifyError,
    },

    /// The local copy (format library) reported an error.
    #[error(transparent)]
    Replica(#[from] satchel_offline::Error),

    /// A message link that is neither `http://HOST/m/ADDRESS/ID` nor `satchel://ADDRESS/ID`.
    #[error(
        "invalid message link {link:?}: {reason} (expected http://127.0.0.1:8481/m/ADDRESS/ID or satchel://ADDRESS/ID)"
    )]
    InvalidLink { link: String, reason: String },

    /// Offline, and the message is not in this home's local copy.
    #[error(
        "offline: the service at {server} cannot be reached and message {id} of {mailbox} is not in the local copy ({reason})"
    )]
    NotInLocalCopy {
        server: String,
        mailbox: String,
        id: String,
        reason: String,
    },

    /// The local copy exists but cannot serve the message because it is
    /// damaged; it is never served. A sync re-fetches the damaged segments.
    #[error(
        "the local copy of {mailbox} is damaged ({reason}); it is not used: run `satchel laptop sync` while online to repair it"
    )]
    Damaged { mailbox: String, reason: String },

    /// The local search index.
    #[error("local search index: {0}")]
    Index(String),

    /// A search query that cannot be answered (see satchel-search).
    #[error("search query")]
    Query(#[from] satchel_search::QueryError),

    /// The agent could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True if this error means "the service could not be reached".
    pub fn is_offline(&self) -> bool {
        matches!(self, Error::Offline { .. })
    }

    /// True if the local copy should answer instead of the service: it is
    /// unreachable, or it no longer accepts this home's token.
    pub fn use_local_copy(&self) -> bool {
        matches!(self, Error::Offline { .. } | Error::TokenRevoked { .. })
    }

    /// Converts an API error, turning "unreachable" into [`Error::Offline`].
    pub(crate) fn api(server: &str, e: ApiError) -> Self {
        match e {
            ApiError::Unreachable { .. } => Error::Offline {
                server: server.to_string(),
            },
            ApiError::Transport(ref t) if t.is_connect() || t.is_timeout() => Error::Offline {
                server: server.to_string(),
            },
            other => Error::Api(other),
        }
    }
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index(e.to_string())
    }
}
