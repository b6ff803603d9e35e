use crate::message::MessageId;
use std::path::PathBuf;

/// Errors of the archive library. Each says what failed and on what, so the service
/// can turn it into a clear message without guessing.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("catalog (SQLite): {0}")]
    Catalog(#[from] rusqlite::Error),
    /// A PostgreSQL catalog failed: `at` names it (host, port, database;
    /// never the password), `why` is the server's message when it sent one.
    #[error("catalog (PostgreSQL {at}): {why}")]
    Postgres {
        at: String,
        why: String,
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search query: {0}")]
    Query(#[from] satchel_search::QueryError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no such mailbox: {0}")]
    NoMailbox(String),
    #[error("no such repository: {0}")]
    NoRepository(String),
    #[error("no such user: {0}")]
    NoUser(String),
    #[error("already exists: {0}")]
    Exists(String),
    /// A search named a mailbox (`mailbox:ADDRESS`) outside the caller's
    /// searchable ones; said the same way whether or not it exists.
    #[error("may not search mailbox {0}")]
    NotSearchable(String),
    #[error("message {id} is not in mailbox {mailbox}")]
    NotInMailbox { mailbox: String, id: MessageId },
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    #[error("message {id} is damaged in the store: {why}")]
    Damaged { id: MessageId, why: String },
    /// An S3 repository did not do what was asked: names the repository and
    /// its endpoint, so an administrator knows where to look.
    #[error("S3 repository {repo} at {endpoint}: {what}: {source}")]
    S3 {
        repo: String,
        endpoint: String,
        what: String,
        /// Boxed: object_store's errors are large, and every archive
        /// `Result` would carry their size.
        #[source]
        source: Box<S3Failure>,
    },
}

/// Why an S3 call failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Failure {
    #[error("{0}")]
    Store(#[from] object_store::Error),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the bucket holds {stored} bytes of the {sent} sent")]
    Short { stored: u64, sent: u64 },
    #[error("cannot start the S3 client's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the S3 client stopped")]
    Stopped,
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error, the way ripgrep's errors carry context.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| ArchiveError::Io {
            path: path.into(),
            source,
        })
    }
}
