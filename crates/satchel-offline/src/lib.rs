//! The Satchel offline repository: the per-mailbox copy of archived mail that
//! the archive service writes and laptop clients download, verify and read
//! offline.
//!
//! The format is specified in `docs/offline-format.md`. In short:
//!
//! * a [`segment`] is an immutable file of messages compressed in ~1 MiB
//!   blocks, plus tombstones, named by the SHA-256 of its bytes;
//! * a [`manifest`] names the mailbox, an epoch (changes on flush), a
//!   generation (grows on every update) and the ordered list of segments;
//! * a [`repository`] is a directory holding both, with the crash-safe writer
//!   operations (append, compact, flush, garbage collection) and the reader
//!   view ([`ReplicaIndex`]) that applies tombstones;
//! * [`verify`] re-hashes segments so a client re-fetches only what is damaged
//!   or missing;
//! * [`protocol`] holds the few types the service and the client exchange.

mod dirname;
pub use dirname::{adopt_legacy_dir, mailbox_dir_name};
pub mod error;
mod fsutil;
pub use fsutil::rfc3339;
pub mod manifest;
pub mod protocol;
pub mod repository;
pub mod segment;
pub mod verify;

use sha2::{Digest, Sha256};

/// The identity of a message, owned by satchel-message: stored in segments as
/// its 32 bytes, shown as 64 lowercase hex digits (manifests, URLs, links).
pub use satchel_message::{MessageId, is_lower_hex_64};

pub use error::{Error, Result, VerifyError};
pub use manifest::{Manifest, SegmentRef, Totals};
pub use protocol::{OfflineRepositoryList, OfflineRepositoryListing};
pub use repository::{
    Appender, ReplicaIndex, Repository, RepositoryOptions, count_live, install_segment,
    segment_path,
};
pub use segment::{
    DEFAULT_SEGMENT_BYTES, Entry, MessageEntry, Segment, SegmentInfo, SegmentWriter,
    is_valid_segment_name,
};
pub use verify::{Report, verify_repository, verify_segment_file};

/// SHA-256 of `data` as 32 bytes.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    /// The service shares readers between request handlers (Arc), so the
    /// reader types must stay Send + Sync.
    #[test]
    fn readers_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Segment>();
        assert_send_sync::<crate::ReplicaIndex>();
    }
}
