//! The segment reader: footer and index validated on open, blocks read and
//! every message checked against its id on demand.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use super::{
    BlockRef, Entry, FOOTER_LEN, HEADER_LEN, Loc, MAGIC, MAX_BLOCK_RAW, MAX_INDEX_RAW,
    SEGMENT_VERSION, segment_name_of,
};
use crate::error::{Error, Result};
use crate::{MessageId, sha256};

enum Source {
    Bytes(Vec<u8>),
    /// Positioned reads on one handle; the mutex makes seek+read atomic.
    File(Mutex<File>),
}

/// An opened segment: its index is in memory, blocks are read on demand.
pub struct Segment {
    /// Name or path, for error messages.
    label: String,
    source: Source,
    size: u64,
    nonce: [u8; 16],
    blocks: Vec<BlockRef>,
    entries: Vec<Entry>,
    locs: Vec<Loc>,
    by_id: HashMap<MessageId, usize>,
    tombstones: Vec<MessageId>,
}

thread_local! {
    /// The zstd context [`Segment::read`] decompresses with, one per thread
    /// and reused across segments: a fresh context allocates a window buffer
    /// of up to the block size on every read (a 4x slower p99 when measured),
    /// and one per segment behind a lock made parallel reads of a segment
    /// (a search checking phrases on every core) wait for each other.
    static DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("label", &self.label)
            .field("size", &self.size)
            .field("messages", &self.entries.len())
            .field("tombstones", &self.tombstones.len())
            .finish()
    }
}

impl Segment {
    /// Opens a segment file: reads footer and index and validates them. The
    /// blocks are not read (nor hashed) here; [`Segment::read`] checks each
    /// message it returns, [`crate::verify`] checks whole files.
    pub fn open(path: &Path) -> Result<Segment> {
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut seg = Segment::empty(label, Source::File(Mutex::new(file)), size);
        seg.load_index()?;
        Ok(seg)
    }

    /// Opens a segment held in memory (e.g. just downloaded or just written).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Segment> {
        let label = segment_name_of(&bytes);
        let size = bytes.len() as u64;
        let mut seg = Segment::empty(label, Source::Bytes(bytes), size);
        seg.load_index()?;
        Ok(seg)
    }

    fn empty(label: String, source: Source, size: u64) -> Segment {
        Segment {
            label,
            source,
            size,
            nonce: [0; 16],
            blocks: Vec::new(),
            entries: Vec::new(),
            locs: Vec::new(),
            by_id: HashMap::new(),
            tombstones: Vec::new(),
        }
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| Error::corrupt(&self.label, "range beyond end of file"))?;
        match &self.source {
            Source::Bytes(b) => Ok(b[offset as usize..end as usize].to_vec()),
            Source::File(f) => {
                let mut f = f.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let mut buf = vec![0u8; len];
                f.seek(SeekFrom::Start(offset))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| Error::io(&self.label, e))?;
                Ok(buf)
            }
        }
    }

    fn load_index(&mut self) -> Result<()> {
        let label = self.label.clone();
        let corrupt = |reason: &str| Error::corrupt(&label, reason);
        if self.size < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(&format!(
                "file has {} bytes, shorter than header and footer (truncated?)",
                self.size
            )));
        }
        let header = self.read_at(0, HEADER_LEN as usize)?;
        if &header[..6] != MAGIC {
            return Err(corrupt("bad magic at start of file"));
        }
        let version = u16::from_le_bytes([header[6], header[7]]);
        if version != SEGMENT_VERSION {
            return Err(Error::UnsupportedSegmentVersion {
                segment: label.clone(),
                version,
            });
        }
        let footer = self.read_at(self.size - FOOTER_LEN, FOOTER_LEN as usize)?;
        let mut fc = Cursor::new(&footer, &label);
        let index_offset = fc.u64()?;
        let index_len = fc.u32()?;
        let index_raw_len = fc.u32()?;
        let footer_version = fc.u16()?;
        if fc.take(6)? != MAGIC {
            return Err(corrupt("bad magic at end of file (truncated or damaged)"));
        }
        if footer_version != version {
            return Err(corrupt("header and footer versions differ"));
        }
        if index_offset < HEADER_LEN
            || index_offset.checked_add(u64::from(index_len)) != Some(self.size - FOOTER_LEN)
        {
            return Err(corrupt("index range does not end at the footer"));
        }
        if index_raw_len > MAX_INDEX_RAW {
            return Err(corrupt("index size out of range"));
        }
        let index_z = self.read_at(index_offset, index_len as usize)?;
        let index = zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress(&index_z, index_raw_len as usize))
            .map_err(|e| corrupt(&format!("index does not decompress: {e}")))?;
        if index.len() != index_raw_len as usize {
            return Err(corrupt("index has another size than the footer says"));
        }
        self.parse_index(&index, index_offset)
    }

    fn parse_index(&mut self, index: &[u8], index_offset: u64) -> Result<()> {
        let label = self.label.clone();
        let corrupt = |reason: String| Error::corrupt(&label, reason);
        let mut c = Cursor::new(index, &label);
        self.nonce.copy_from_slice(c.take(16)?);

        let block_count = c.u32()? as usize;
        if block_count > index.len() / 16 {
            return Err(corrupt("block count out of range".into()));
        }
        let mut expected_offset = HEADER_LEN;
        for i in 0..block_count {
            let b = BlockRef {
                file_offset: c.u64()?,
                compressed_len: c.u32()?,
                raw_len: c.u32()?,
            };
            if b.file_offset != expected_offset {
                return Err(corrupt(format!(
                    "block {i} is not where the previous one ends"
                )));
            }
            if b.raw_len > MAX_BLOCK_RAW {
                return Err(corrupt(format!("block {i} size out of range")));
            }
            expected_offset += u64::from(b.compressed_len);
            self.blocks.push(b);
        }
        if expected_offset != index_offset {
            return Err(corrupt("blocks do not end where the index starts".into()));
        }

        let entry_count = c.u32()? as usize;
        if entry_count > index.len() / 56 {
            return Err(corrupt("entry count out of range".into()));
        }
        self.entries.reserve(entry_count);
        self.locs.reserve(entry_count);
        for _ in 0..entry_count {
            let id = MessageId(c.array32()?);
            let loc = Loc {
                block: c.u32()?,
                offset: c.u32()?,
                len: c.u32()?,
            };
            let date = c.i64()?;
            let from = c.string()?;
            let subject = c.string()?;
            let block = self
                .blocks
                .get(loc.block as usize)
                .ok_or_else(|| corrupt(format!("message {id} points to a missing block")))?;
            if u64::from(loc.offset) + u64::from(loc.len) > u64::from(block.raw_len) {
                return Err(corrupt(format!("message {id} points outside its block")));
            }
            if self.by_id.insert(id, self.entries.len()).is_some() {
                return Err(corrupt(format!("message {id} is listed twice")));
            }
            self.entries.push(Entry {
                id,
                date,
                from,
                subject,
                size: u64::from(loc.len),
            });
            self.locs.push(loc);
        }

        let tombstone_count = c.u32()? as usize;
        if tombstone_count > index.len() / 32 {
            return Err(corrupt("tombstone count out of range".into()));
        }
        let mut seen = HashSet::with_capacity(tombstone_count);
        for _ in 0..tombstone_count {
            let id = MessageId(c.array32()?);
            if !seen.insert(id) {
                return Err(corrupt(format!("tombstone {id} is listed twice")));
            }
            self.tombstones.push(id);
        }
        if !c.is_empty() {
            return Err(corrupt("trailing bytes after the index".into()));
        }
        Ok(())
    }

    /// Size of the segment file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The messages of this segment, in the order they were written.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The ids this segment removes from earlier segments.
    pub fn tombstones(&self) -> &[MessageId] {
        &self.tombstones
    }

    /// Number of compressed blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The listing entry of message `id`, if this segment holds it.
    pub fn get(&self, id: &MessageId) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    /// Position of message `id` in [`Segment::entries`].
    pub(crate) fn index_of(&self, id: &MessageId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// True if this segment holds message `id`.
    pub fn contains(&self, id: &MessageId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Block `block`'s index record and its compressed bytes.
    fn compressed_block(&self, block: u32) -> std::result::Result<(BlockRef, Vec<u8>), String> {
        let b = *self
            .blocks
            .get(block as usize)
            .ok_or_else(|| format!("block {block} does not exist"))?;
        let compressed = self
            .read_at(b.file_offset, b.compressed_len as usize)
            .map_err(|e| e.to_string())?;
        Ok((b, compressed))
    }

    fn decompress_block(&self, block: u32) -> std::result::Result<Vec<u8>, String> {
        let (b, compressed) = self.compressed_block(block)?;
        let raw = zstd::bulk::Decompressor::new()
            .and_then(|mut d| d.decompress(&compressed, b.raw_len as usize))
            .map_err(|e| format!("block {block} does not decompress: {e}"))?;
        if raw.len() != b.raw_len as usize {
            return Err(format!(
                "block {block} has another size than the index says"
            ));
        }
        Ok(raw)
    }

    fn extract(&self, i: usize, block: &[u8]) -> Result<Vec<u8>> {
        let loc = self.locs[i];
        let id = self.entries[i].id;
        let start = loc.offset as usize;
        let raw = block
            .get(start..start + loc.len as usize)
            .ok_or_else(|| self.damaged(id, "message lies outside its block".into()))?;
        if sha256(raw) != id.0 {
            return Err(self.damaged(id, "bytes do not hash to the message id".into()));
        }
        Ok(raw.to_vec())
    }

    fn damaged(&self, id: MessageId, reason: String) -> Error {
        Error::DamagedMessage {
            id,
            segment: self.label.clone(),
            reason,
        }
    }

    /// The raw bytes of message `id`. Decompresses only the block holding it
    /// and checks the bytes' SHA-256 against the id: damaged bytes are an
    /// error, never returned.
    ///
    /// Decompression stops at the end of the message (on average half the
    /// block); the zstd frame checksum is then not reached, which is fine
    /// because the SHA-256 of the message is the stronger check.
    pub fn read(&self, id: &MessageId) -> Result<Vec<u8>> {
        let &i = self.by_id.get(id).ok_or(Error::MessageNotFound(*id))?;
        let loc = self.locs[i];
        let prefix = self
            .decompress_prefix(loc.block, loc.offset as usize + loc.len as usize)
            .map_err(|reason| self.damaged(*id, reason))?;
        self.extract(i, &prefix)
    }

    /// The first `len` decompressed bytes of block `block`.
    fn decompress_prefix(&self, block: u32, len: usize) -> std::result::Result<Vec<u8>, String> {
        use std::io::Read as _;
        let (_, compressed) = self.compressed_block(block)?;
        DCTX.with_borrow_mut(|slot| {
            let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
            // A previous read may have stopped mid-frame: start from a clean state.
            dctx.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                .map_err(|code| format!("block {block}: zstd reset failed ({code})"))?;
            let mut decoder =
                zstd::stream::read::Decoder::with_context(&compressed[..], dctx).single_frame();
            let mut out = vec![0u8; len];
            decoder
                .read_exact(&mut out)
                .map_err(|e| format!("block {block} does not decompress: {e}"))?;
            Ok(out)
        })
    }

    /// Calls `f` with every message and its verified bytes, decompressing each
    /// block once (for compaction and bulk export).
    pub fn for_each_message(&self, f: impl FnMut(&Entry, Vec<u8>) -> Result<()>) -> Result<()> {
        self.for_each_message_where(|_| true, f).map(|_| ())
    }

    /// Calls `f` with each message `want` accepts and its verified bytes,
    /// decompressing only the blocks that hold one, each once; returns how
    /// many blocks it decompressed. A reader after a few messages of a large
    /// segment (the laptop's index update after a compaction) then reads
    /// their blocks, not the whole file.
    pub fn for_each_message_where(
        &self,
        mut want: impl FnMut(&Entry) -> bool,
        mut f: impl FnMut(&Entry, Vec<u8>) -> Result<()>,
    ) -> Result<u64> {
        let mut by_block: Vec<Vec<usize>> = vec![Vec::new(); self.blocks.len()];
        for (i, loc) in self.locs.iter().enumerate() {
            if want(&self.entries[i]) {
                by_block[loc.block as usize].push(i);
            }
        }
        let mut decompressed = 0;
        for (block, members) in by_block.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let raw = self
                .decompress_block(block as u32)
                .map_err(|reason| self.damaged(self.entries[members[0]].id, reason))?;
            decompressed += 1;
            for &i in members {
                let bytes = self.extract(i, &raw)?;
                f(&self.entries[i], bytes)?;
            }
        }
        Ok(decompressed)
    }
}

/// Bounds-checked little-endian reader over the index; running off the end is
/// a corrupt-segment error, never a panic.
struct Cursor<'a> {
    data: &'a [u8],
    label: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], label: &'a str) -> Self {
        Cursor { data, label }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(Error::corrupt(self.label, "index ends unexpectedly"));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn array32(&mut self) -> Result<[u8; 32]> {
        self.array::<32>()
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::corrupt(self.label, "header field is not UTF-8"))
    }
}
