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

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

pub use error::{Error, Result, VerifyError};
pub use manifest::{Manifest, SegmentRef, Totals};
pub use protocol::{OfflineRepositoryList, OfflineRepositoryListing};
pub use repository::{ReplicaIndex, Repository, RepositoryOptions, install_segment, segment_path};
pub use segment::{
    Entry, MessageEntry, Segment, SegmentInfo, SegmentWriter, is_valid_segment_name,
};
pub use verify::{Report, verify_repository, verify_segment_file};

/// The identity of a message: the SHA-256 of its raw RFC 5322 bytes.
///
/// Stored as the 32 digest bytes (segments are binary) and shown as 64
/// lowercase hex digits (manifests, URLs, message links), so the same value
/// round-trips between the archive store, the segment index and a link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id of `raw`: its SHA-256.
    pub fn of(raw: &[u8]) -> Self {
        MessageId(sha256(raw))
    }

    /// Parses 64 lowercase hex digits. Uppercase is rejected so that one
    /// message has exactly one textual id (links are compared as strings).
    pub fn from_hex(s: &str) -> Result<Self> {
        if !is_lower_hex_64(s) {
            return Err(Error::InvalidMessageId(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidMessageId(s.to_string()))?;
        Ok(MessageId(out))
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl FromStr for MessageId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MessageId::from_hex(s)
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MessageId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of `data` as 32 bytes.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Exactly 64 characters of `[0-9a-f]`.
pub(crate) fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
