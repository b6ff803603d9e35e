//! Typed errors of the offline repository.
//!
//! Errors carry the path or id they concern, so that a log line or a CLI
//! message is enough to find the damaged file without a debugger.

use std::path::PathBuf;

use crate::MessageId;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while writing, opening or reading an offline
/// repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A segment's bytes do not follow the format: truncated, wrong magic,
    /// inconsistent index... The segment must be re-fetched, never served.
    #[error("corrupt segment {segment}: {reason}")]
    CorruptSegment { segment: String, reason: String },

    /// A segment written by a newer (or unknown) version of the format.
    #[error("segment {segment} has unsupported format version {version}")]
    UnsupportedSegmentVersion { segment: String, version: u16 },

    /// A message's bytes could not be decompressed or do not hash to its id.
    #[error("message {id} in segment {segment} is damaged: {reason}")]
    DamagedMessage {
        id: MessageId,
        segment: String,
        reason: String,
    },

    /// The message is not (or no longer) in this segment or repository.
    #[error("message {0} not found")]
    MessageNotFound(MessageId),

    /// A string that should be a message id (64 hex digits) is not.
    #[error(transparent)]
    InvalidMessageId(#[from] satchel_message::InvalidMessageId),

    /// A string that should be a segment name (64 lowercase hex digits) is not.
    #[error("invalid segment name {0:?}")]
    InvalidSegmentName(String),

    /// The id given with a message is not the SHA-256 of its bytes.
    #[error("message id {given} does not match its bytes (sha256 {actual})")]
    IdMismatch { given: MessageId, actual: MessageId },

    /// A zstd compression failure (only on the writer side).
    #[error("compression failed: {0}")]
    Compression(#[source] std::io::Error),

    /// A message or block too large for the format's 32-bit sizes.
    #[error("{0}")]
    TooLarge(String),

    /// manifest.json is not valid JSON for the manifest schema.
    #[error("invalid manifest {path}: {source}")]
    ManifestParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// manifest.json parses but breaks a rule of the format.
    #[error("invalid manifest {path}: {reason}")]
    InvalidManifest { path: PathBuf, reason: String },

    /// A manifest written by a newer (or unknown) version of the format.
    #[error("manifest {path} has unsupported format {format}")]
    UnsupportedManifestFormat { path: PathBuf, format: u32 },

    /// No manifest.json in the directory: not a repository (yet).
    #[error("no offline repository at {0} (manifest.json missing)")]
    NoRepository(PathBuf),

    /// The directory holds the repository of another mailbox.
    #[error("repository at {path} belongs to mailbox {found:?}, not {expected:?}")]
    MailboxMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    /// Another writer holds the repository's lock.
    #[error("repository at {0} is being updated by another writer")]
    Busy(PathBuf),

    /// A segment named by the manifest is absent or has the wrong size.
    #[error("segment {name} of the manifest is unusable: {reason}")]
    SegmentUnusable { name: String, reason: String },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(segment: &str, reason: impl Into<String>) -> Self {
        Error::CorruptSegment {
            segment: segment.to_string(),
            reason: reason.into(),
        }
    }
}

/// Why a segment file failed verification against the name and size the
/// manifest gives it. Each variant tells the client what to do: re-fetch.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The name is not a segment name at all (would never be fetched).
    #[error("invalid segment name {0:?}")]
    InvalidName(String),
    /// The file does not exist.
    #[error("segment file {0} is missing")]
    Missing(PathBuf),
    /// The file has another size than the manifest says (e.g. a partial copy).
    #[error("segment file {path} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// The bytes do not hash to the name: the file is damaged.
    #[error("segment file {path} hashes to {actual}, expected {expected}")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The file could not be read.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
