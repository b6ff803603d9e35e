//! The archive: where mail lives once Satchel has taken it.
//!
//! An [`Archive`] is a data folder holding three things that together make the
//! archive durable and searchable:
//! - the [`store`]: content-addressed, zstd-compressed message blobs, written to
//!   immutable *packs* in a mailbox's repository (a local disk folder);
//! - the [`catalog`]: SQLite (WAL) metadata — users, repositories, mailboxes,
//!   grants, messages and which mailboxes hold them;
//! - the [`index`]: a tantivy full-text index over the messages.
//!
//! The store is the source of truth. A batch is written to a pack and fsynced before
//! the catalog rows that name it commit, so a crash can leave unreferenced pack bytes
//! but never a catalog row without its message. The index follows the catalog's
//! membership log from the position its last commit holds (each node of a
//! service keeps its own index), and is built from the log when new.

pub mod address;
pub mod archive;
pub mod backup;
pub mod catalog;
pub mod error;
pub mod import;
pub mod index;
pub mod message;
pub mod repository;
pub mod secret;
pub mod store;

pub use archive::{Archive, BatchItem, ItemOutcome, ItemStatus};
pub use catalog::{
    Grant, MailboxInfo, MemberRow, MessageMeta, RemovedUser, RepositoryInfo, TokenInfo, UserInfo,
};
pub use error::{ArchiveError, Result};
pub use index::{SearchHit, SearchRequest};
pub use message::{InvalidMessageId, MessageId, MessageSummary};
