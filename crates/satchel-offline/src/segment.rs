//! Segments: immutable files holding a batch of messages and tombstones.
//!
//! Messages are compressed together in blocks of about [`DEFAULT_BLOCK_SIZE`]
//! bytes, because mail compresses about twice as well in a shared zstd frame
//! as alone, while decompressing one ~1 MiB block to open a message still
//! takes only a millisecond or two. A binary index at the end of the file says
//! where each message lives; a fixed-size footer says where the index lives,
//! so opening a segment never scans its blocks. The byte layout is specified
//! in docs/offline-format.md.
//!
//! This module holds what writer and reader share: the format constants and
//! the entry types. The writer ([`SegmentWriter`]) is in `segment/writer.rs`,
//! the reader ([`Segment`]) in `segment/reader.rs`.

mod reader;
mod writer;

pub use reader::Segment;
pub use writer::{SegmentWriter, Sink, Spool};

use crate::{MessageId, is_lower_hex_64, sha256};

/// Segment format version written in the header and the footer.
pub const SEGMENT_VERSION: u16 = 1;
/// Magic bytes at the start and at the end of every segment.
pub const MAGIC: &[u8; 6] = b"SATSEG";
/// Default uncompressed size at which the writer closes a block.
/// Chosen by measurement on real mail (docs/offline-format.md, "Parameters").
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// Default zstd level. Segments are written once on the server and downloaded
/// many times, so a slow-ish level that saves bytes on the wire pays off.
pub const DEFAULT_LEVEL: i32 = 9;
/// Default size at which a writer of many messages (a full build, a
/// compaction) closes a segment and starts the next: bounds the writer's
/// memory and each download, whatever the mailbox's size
/// (docs/offline-format.md, "Segment size").
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Most messages one segment holds: with the longest `from` and `subject`
/// (2,104 index bytes a message) the index stays under the readers' cap.
pub const MAX_SEGMENT_MESSAGES: usize = 100_000;
/// Longest `from` / `subject` kept in the index (bytes); listing fields only.
pub const MAX_HEADER_FIELD: usize = 1024;

/// Magic and version at the start of the file.
pub(crate) const HEADER_LEN: u64 = 8;
/// Index offset (u64), index length, raw index length (u32s), version, magic.
pub(crate) const FOOTER_LEN: u64 = 24;
/// Reader-side caps: a corrupt size field must not make us allocate gigabytes.
pub(crate) const MAX_BLOCK_RAW: u32 = 1 << 30;
pub(crate) const MAX_INDEX_RAW: u32 = 256 << 20;

/// True if `name` is a segment name: exactly 64 lowercase hex digits.
///
/// HTTP handlers call this before touching the file system, so a request can
/// never name a path (`..`, `/`, `manifest.json`) as if it were a segment.
pub fn is_valid_segment_name(name: &str) -> bool {
    is_lower_hex_64(name)
}

/// The name a segment with these bytes has: hex SHA-256 of the whole file.
pub fn segment_name_of(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// A message handed to the writer: its id, the listing headers and the raw
/// RFC 5322 bytes, stored unchanged.
#[derive(Clone, Debug)]
pub struct MessageEntry {
    pub id: MessageId,
    /// Unix seconds from the Date header (0 if unknown).
    pub date: i64,
    pub from: String,
    pub subject: String,
    pub raw: Vec<u8>,
}

impl MessageEntry {
    /// Builds an entry, computing the id from the bytes.
    pub fn new(
        raw: Vec<u8>,
        date: i64,
        from: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        MessageEntry {
            id: MessageId::of(&raw),
            date,
            from: from.into(),
            subject: subject.into(),
            raw,
        }
    }
}

/// A message as listed by a segment's index (no bytes: see [`Segment::read`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: MessageId,
    pub date: i64,
    pub from: String,
    pub subject: String,
    /// Raw size of the message in bytes.
    pub size: u64,
}

/// What a finished segment holds; enough for the manifest's segment list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Hex SHA-256 of the file: its file name.
    pub name: String,
    /// File size in bytes.
    pub size: u64,
    pub messages: u64,
    pub tombstones: u64,
    /// Sum of the raw sizes of the messages (before compression).
    pub raw_bytes: u64,
}

/// Where a message's bytes are: block number, offset and length in the
/// block's uncompressed bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc {
    pub(crate) block: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
}

/// Where a compressed block is in the file and how large it is unpacked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockRef {
    pub(crate) file_offset: u64,
    pub(crate) compressed_len: u32,
    pub(crate) raw_len: u32,
}
