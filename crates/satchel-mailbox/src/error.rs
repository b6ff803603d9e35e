//! What an archive run can fail with. Each kind maps to one HTTP status in the
//! service: a mistake in the request or the mailbox's settings (400), the IMAP
//! server refusing or failing (502, with the server's own words), the archive
//! failing (500).

use satchel_archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The mailbox has no IMAP settings, the URL or the policy is malformed.
    #[error("{0}")]
    Config(String),
    /// A folder named in the policy does not exist on the server.
    #[error("{0}")]
    Folder(String),
    /// The IMAP server could not be reached, refused a command, or dropped the
    /// connection.
    #[error("{0}")]
    Imap(String),
    #[error("archive: {0}")]
    Archive(#[from] ArchiveError),
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;
