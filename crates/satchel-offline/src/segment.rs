//! Segments: immutable files holding a batch of messages and tombstones.
//!
//! Messages are compressed together in independent zstd frames of about
//! [`DEFAULT_BLOCK_SIZE`] bytes against a shared mail dictionary
//! ([`MAIL_DICTIONARY`]): mail compresses about twice as well together as
//! alone, and the dictionary wins back most of what small frames lose against
//! big blocks, while a read decompresses only one small frame (a phrase
//! check reads hundreds of messages). A binary index of fixed-size records at
//! the end of the file says where each message lives; a fixed-size footer
//! says where the index lives, so opening a segment never scans its frames
//! nor parses every entry. The byte layout is specified in
//! docs/offline-format.md.
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
pub const SEGMENT_VERSION: u16 = 2;
/// The previous version: still read (converted on open), no longer written.
pub const SEGMENT_VERSION_1: u16 = 1;
/// Magic bytes at the start and at the end of every segment.
pub const MAGIC: &[u8; 6] = b"SATSEG";
/// Default uncompressed size at which the writer closes a block (a zstd
/// frame). Chosen by measurement on real mail (docs/offline-format.md,
/// "Parameters"): a read decompresses half a frame on average.
pub const DEFAULT_BLOCK_SIZE: usize = 128 << 10;
/// The zstd dictionary "mail-1" (number 1 in a segment's index), part of
/// the format: it never changes; a new dictionary gets a new number.
pub const MAIL_DICTIONARY: &[u8] = include_bytes!("segment/mail-1.dict");
/// The dictionary number of [`MAIL_DICTIONARY`] in a version-2 index.
pub(crate) const DICTIONARY_MAIL1: u32 = 1;
/// Bytes of one entry record in a version-2 index.
pub(crate) const RECORD_LEN: usize = 60;
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

/// The entry records, the by-id table and the text of a version-2 index
/// (from `entry_count` to the end of the text) for `entries`, in order. The
/// writer writes them; the reader builds them from a version-1 index, so
/// that it reads one layout.
pub(crate) fn encode_entries(entries: &[(&Entry, Loc)]) -> Result<Vec<u8>, crate::Error> {
    let mut out = Vec::with_capacity(8 + entries.len() * (RECORD_LEN + 4 + 40));
    let mut text = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (e, loc) in entries {
        let text_offset = u32::try_from(text.len())
            .map_err(|_| crate::Error::TooLarge("segment index text exceeds 4 GiB".into()))?;
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&loc.block.to_le_bytes());
        out.extend_from_slice(&loc.offset.to_le_bytes());
        out.extend_from_slice(&loc.len.to_le_bytes());
        out.extend_from_slice(&e.date.to_le_bytes());
        out.extend_from_slice(&text_offset.to_le_bytes());
        out.extend_from_slice(&(e.from.len() as u16).to_le_bytes());
        out.extend_from_slice(&(e.subject.len() as u16).to_le_bytes());
        text.extend_from_slice(e.from.as_bytes());
        text.extend_from_slice(e.subject.as_bytes());
    }
    let mut by_id: Vec<u32> = (0..entries.len() as u32).collect();
    by_id.sort_unstable_by_key(|&i| entries[i as usize].0.id.0);
    for i in by_id {
        out.extend_from_slice(&i.to_le_bytes());
    }
    let text_len = u32::try_from(text.len())
        .map_err(|_| crate::Error::TooLarge("segment index text exceeds 4 GiB".into()))?;
    out.extend_from_slice(&text_len.to_le_bytes());
    out.extend_from_slice(&text);
    Ok(out)
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
