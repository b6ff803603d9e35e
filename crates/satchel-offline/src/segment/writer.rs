//! The segment writer: messages in, compressed blocks, index and footer out.
//!
//! A writer holds one open block and the index; the compressed blocks go to
//! its [`Sink`] as soon as they are closed: a `Vec<u8>` (tests, fixtures,
//! small segments) or a [`Spool`], a temporary file in the segments folder
//! hashed as it is written, so that a segment of any size costs the service
//! one block and the index in memory, never the segment itself.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    BlockRef, DEFAULT_BLOCK_SIZE, DICTIONARY_MAIL1, Entry, Loc, MAGIC, MAIL_DICTIONARY,
    MAX_BLOCK_RAW, MAX_HEADER_FIELD, MAX_INDEX_RAW, MessageEntry, SEGMENT_VERSION, SegmentInfo,
    encode_entries, segment_name_of,
};
use crate::error::{Error, Result};
use crate::{MessageId, fsutil};

/// Where a writer puts the segment's bytes, in order.
pub trait Sink {
    /// Appends `bytes` to the segment.
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
    /// Bytes put so far.
    fn len(&self) -> u64;
    /// True if nothing was put yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn len(&self) -> u64 {
        Vec::len(self) as u64
    }
}

/// A segment being written to `<dir>/.tmp-*`, hashed on the way: finished
/// ([`SegmentWriter::finish_spooled`]) it is fsynced and renamed to its
/// name; dropped unfinished (an error, a full disk) the file is removed.
pub struct Spool {
    dir: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
    len: u64,
}

impl Spool {
    /// Creates the temporary file in `dir` (a repository's `segments/`).
    pub fn create(dir: &Path) -> Result<Spool> {
        let tmp = dir.join(format!(".tmp-{}", fsutil::unique_suffix()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    /// Flushes and fsyncs the file, renames it to `<dir>/<hex sha256>` and
    /// fsyncs the folder; returns the name.
    fn persist(mut self) -> Result<String> {
        let name = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let dest = self.dir.join(&name);
        let Some(out) = self.out.take() else {
            unreachable!("a spool is persisted once")
        };
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        // Renamed: nothing is left for Drop to remove.
        self.tmp = PathBuf::new();
        fsutil::sync_dir(&self.dir)?;
        Ok(name)
    }
}

impl Sink for Spool {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            unreachable!("no writes after persist")
        };
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            // Best effort: garbage collection removes `.tmp-*` files too.
            drop(self.out.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Builds one segment, compressing each block as soon as it fills and
/// handing it to the sink.
///
/// Memory holds the block being filled and the index (about 100 bytes a
/// message); with a `Vec<u8>` sink also the compressed segment.
pub struct SegmentWriter<S: Sink = Vec<u8>> {
    level: i32,
    block_size: usize,
    nonce: [u8; 16],
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Receives the header and the compressed blocks written so far.
    body: S,
    blocks: Vec<BlockRef>,
    current: Vec<u8>,
    /// Whether a message (perhaps an empty one) points at `current`.
    current_used: bool,
    /// `None` where a message was tombstoned after being added to this writer.
    entries: Vec<Option<(Entry, Loc)>>,
    positions: HashMap<MessageId, usize>,
    tombstones: Vec<MessageId>,
    tombstone_set: HashSet<MessageId>,
    raw_bytes: u64,
}

impl SegmentWriter {
    /// A writer compressing at zstd `level` with the default block size,
    /// building the segment in memory.
    pub fn new(level: i32) -> Self {
        SegmentWriter::with_sink(level, Vec::with_capacity(1 << 16))
            .unwrap_or_else(|_| unreachable!("a Vec<u8> sink never fails"))
    }

    /// Closes the last block, writes index and footer, and returns the
    /// segment's bytes with its [`SegmentInfo`].
    pub fn finish(self) -> Result<(Vec<u8>, SegmentInfo)> {
        let (bytes, mut info) = self.close()?;
        info.name = segment_name_of(&bytes);
        Ok((bytes, info))
    }

    /// Finishes the segment and stores it durably as `dir/<name>`: written to
    /// a temporary file, fsynced, renamed, directory fsynced. A crash leaves at
    /// most a `.tmp-*` file, which garbage collection removes.
    pub fn finish_to_dir(self, dir: &Path) -> Result<SegmentInfo> {
        let (bytes, info) = self.finish()?;
        let tmp = format!(".tmp-{}", fsutil::unique_suffix());
        fsutil::write_atomic(dir, &info.name, &tmp, &bytes)?;
        Ok(info)
    }
}

impl SegmentWriter<Spool> {
    /// A writer at zstd `level` whose segment goes straight to a temporary
    /// file in `dir` (see [`Spool`]).
    pub fn spooled(dir: &Path, level: i32) -> Result<Self> {
        SegmentWriter::with_sink(level, Spool::create(dir)?)
    }

    /// Finishes the segment and makes it durable as `<dir>/<name>` (the
    /// folder given to [`SegmentWriter::spooled`]).
    pub fn finish_spooled(self) -> Result<SegmentInfo> {
        let (spool, mut info) = self.close()?;
        info.name = spool.persist()?;
        Ok(info)
    }
}

impl<S: Sink> SegmentWriter<S> {
    /// A writer compressing at zstd `level` with the default block size into
    /// `body` (which must be empty: the header goes first).
    pub fn with_sink(level: i32, mut body: S) -> Result<Self> {
        body.put(MAGIC)?;
        body.put(&SEGMENT_VERSION.to_le_bytes())?;
        Ok(SegmentWriter {
            level,
            block_size: DEFAULT_BLOCK_SIZE,
            nonce: fsutil::random_bytes16(),
            compressor: None,
            body,
            blocks: Vec::new(),
            current: Vec::new(),
            current_used: false,
            entries: Vec::new(),
            positions: HashMap::new(),
            tombstones: Vec::new(),
            tombstone_set: HashSet::new(),
            raw_bytes: 0,
        })
    }

    /// Sets the uncompressed size at which a block is closed (at least 1).
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes.max(1);
        self
    }

    /// Sets the nonce that makes the segment's bytes unique. Only useful to
    /// produce byte-identical segments (fixtures, tests); the default is
    /// random so two segments with equal content still get distinct names.
    pub fn with_nonce(mut self, nonce: [u8; 16]) -> Self {
        self.nonce = nonce;
        self
    }

    /// Number of messages that will be in the segment.
    pub fn message_count(&self) -> usize {
        self.positions.len()
    }

    /// Number of tombstones that will be in the segment.
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// Bytes of the segment so far: header and closed blocks (the open block
    /// and the index come on top).
    pub fn written_bytes(&self) -> u64 {
        self.body.len()
    }

    /// True if the segment would hold nothing (no message, no tombstone).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.tombstones.is_empty()
    }

    /// Adds a message. Returns `Ok(false)` (and ignores it) if a message with
    /// the same id is already in this writer. Fails if `id` is not the
    /// SHA-256 of `raw`: an index that lies about ids would make every later
    /// verification fail, so it is refused at the source.
    pub fn add(&mut self, m: MessageEntry) -> Result<bool> {
        let actual = MessageId::of(&m.raw);
        if actual != m.id {
            return Err(Error::IdMismatch {
                given: m.id,
                actual,
            });
        }
        if self.positions.contains_key(&m.id) {
            return Ok(false);
        }
        let len = u32::try_from(m.raw.len())
            .ok()
            .filter(|&l| l <= MAX_BLOCK_RAW)
            .ok_or_else(|| {
                Error::TooLarge(format!("message {} has {} bytes", m.id, m.raw.len()))
            })?;
        if !self.current.is_empty() && self.current.len() + m.raw.len() > self.block_size {
            self.flush_block()?;
        }
        if self.current.len() + m.raw.len() > MAX_BLOCK_RAW as usize {
            self.flush_block()?;
        }
        let loc = Loc {
            block: self.blocks.len() as u32,
            offset: self.current.len() as u32,
            len,
        };
        self.current.extend_from_slice(&m.raw);
        self.current_used = true;
        let entry = Entry {
            id: m.id,
            date: m.date,
            from: truncate_utf8(m.from, MAX_HEADER_FIELD),
            subject: truncate_utf8(m.subject, MAX_HEADER_FIELD),
            size: u64::from(len),
        };
        self.positions.insert(m.id, self.entries.len());
        self.entries.push(Some((entry, loc)));
        self.raw_bytes += u64::from(len);
        if self.current.len() >= self.block_size {
            self.flush_block()?;
        }
        Ok(true)
    }

    /// Records that message `id` was removed: it hides the message in earlier
    /// segments. If the message was added to this writer, it is dropped from
    /// the index (its bytes may stay, unreferenced, in an already closed block).
    pub fn tombstone(&mut self, id: MessageId) {
        if let Some(pos) = self.positions.remove(&id)
            && let Some((entry, _)) = self.entries[pos].take()
        {
            self.raw_bytes -= entry.size;
        }
        if self.tombstone_set.insert(id) {
            self.tombstones.push(id);
        }
    }

    fn flush_block(&mut self) -> Result<()> {
        // An empty message still points at the block being filled: that block
        // must exist even when it holds no byte (found by tests/props.rs).
        if self.current.is_empty() && !self.current_used {
            return Ok(());
        }
        if self.compressor.is_none() {
            // Every frame against the mail dictionary (docs/offline-format.md,
            // "Dictionaries"): loaded once per segment.
            let mut c = zstd::bulk::Compressor::with_dictionary(self.level, MAIL_DICTIONARY)
                .map_err(Error::Compression)?;
            c.include_checksum(true).map_err(Error::Compression)?;
            self.compressor = Some(c);
        }
        let Some(compressor) = self.compressor.as_mut() else {
            unreachable!("compressor created above")
        };
        let compressed = compressor
            .compress(&self.current)
            .map_err(Error::Compression)?;
        let compressed_len = u32::try_from(compressed.len())
            .map_err(|_| Error::TooLarge("compressed block exceeds 4 GiB".into()))?;
        self.blocks.push(BlockRef {
            file_offset: self.body.len(),
            compressed_len,
            raw_len: self.current.len() as u32,
        });
        self.body.put(&compressed)?;
        self.current.clear();
        self.current_used = false;
        Ok(())
    }

    /// Closes the last block, writes index and footer into the sink and
    /// returns it with the [`SegmentInfo`] (its name still empty: the
    /// caller knows how to hash its sink).
    fn close(mut self) -> Result<(S, SegmentInfo)> {
        self.flush_block()?;
        let live: Vec<(&Entry, Loc)> = self
            .entries
            .iter()
            .flatten()
            .map(|(e, l)| (e, *l))
            .collect();
        let mut index =
            Vec::with_capacity(64 + self.blocks.len() * 16 + self.tombstones.len() * 32);
        index.extend_from_slice(&self.nonce);
        index.extend_from_slice(&DICTIONARY_MAIL1.to_le_bytes());
        index.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for b in &self.blocks {
            index.extend_from_slice(&b.file_offset.to_le_bytes());
            index.extend_from_slice(&b.compressed_len.to_le_bytes());
            index.extend_from_slice(&b.raw_len.to_le_bytes());
        }
        index.extend_from_slice(&encode_entries(&live)?);
        index.extend_from_slice(&(self.tombstones.len() as u32).to_le_bytes());
        for t in &self.tombstones {
            index.extend_from_slice(&t.0);
        }
        let index_raw_len = u32::try_from(index.len())
            .ok()
            .filter(|&l| l <= MAX_INDEX_RAW)
            .ok_or_else(|| Error::TooLarge("segment index too large; split the segment".into()))?;
        let mut c = zstd::bulk::Compressor::new(3).map_err(Error::Compression)?;
        c.include_checksum(true).map_err(Error::Compression)?;
        let index_z = c.compress(&index).map_err(Error::Compression)?;
        drop(index);

        let mut body = self.body;
        let index_offset = body.len();
        let mut footer = Vec::with_capacity(index_z.len() + 24);
        footer.extend_from_slice(&index_z);
        footer.extend_from_slice(&index_offset.to_le_bytes());
        footer.extend_from_slice(&(index_z.len() as u32).to_le_bytes());
        footer.extend_from_slice(&index_raw_len.to_le_bytes());
        footer.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        footer.extend_from_slice(MAGIC);
        body.put(&footer)?;

        let info = SegmentInfo {
            name: String::new(),
            size: body.len(),
            messages: live.len() as u64,
            tombstones: self.tombstones.len() as u64,
            raw_bytes: self.raw_bytes,
        };
        Ok((body, info))
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
