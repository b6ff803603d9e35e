//! The segment reader: footer and index validated on open, blocks read and
//! every message checked against its id on demand.
//!
//! The index stays in memory in the version-2 layout (fixed-size entry
//! records, a by-id table, one text area): opening a segment validates the
//! layout and the id order but builds no map and no string per entry, since
//! a search opens every segment of a copy and uses a handful of entries.
//! Entries are decoded when first used. A version-1 index is converted into
//! that layout on open.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{LazyLock, Mutex, OnceLock};

use zstd::dict::DecoderDictionary;

use super::{
    BlockRef, DICTIONARY_MAIL1, Entry, FOOTER_LEN, HEADER_LEN, Loc, MAGIC, MAIL_DICTIONARY,
    MAX_BLOCK_RAW, MAX_INDEX_RAW, RECORD_LEN, SEGMENT_VERSION, SEGMENT_VERSION_1, encode_entries,
    segment_name_of,
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
    /// Dictionary number the blocks are compressed with (0: none).
    dictionary: u32,
    blocks: Vec<BlockRef>,
    /// From `entry_count` to the end of the text, in the version-2 layout.
    entries_index: Vec<u8>,
    count: usize,
    tombstones: Vec<MessageId>,
    /// `tombstones` in ascending order, for lookups.
    tombstones_sorted: Vec<MessageId>,
    /// Entries decoded one by one as they are asked for.
    cells: OnceLock<Vec<OnceLock<Entry>>>,
    /// Every entry decoded, for [`Segment::entries`].
    all: OnceLock<Vec<Entry>>,
}

/// The decoder side of [`MAIL_DICTIONARY`], digested once per process.
static MAIL_DDICT: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(MAIL_DICTIONARY));

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
            .field("messages", &self.count)
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
            dictionary: 0,
            blocks: Vec::new(),
            entries_index: Vec::new(),
            count: 0,
            tombstones: Vec::new(),
            tombstones_sorted: Vec::new(),
            cells: OnceLock::new(),
            all: OnceLock::new(),
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
        if version != SEGMENT_VERSION && version != SEGMENT_VERSION_1 {
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
        if version == SEGMENT_VERSION_1 {
            self.parse_index_v1(&index, index_offset)
        } else {
            self.parse_index(index, index_offset)
        }
    }

    /// Reads a version-1 index, checking every entry as version 1 always
    /// did, and keeps it converted to the version-2 layout.
    fn parse_index_v1(&mut self, index: &[u8], index_offset: u64) -> Result<()> {
        let label = self.label.clone();
        let corrupt = |reason: String| Error::corrupt(&label, reason);
        let mut c = Cursor::new(index, &label);
        self.nonce.copy_from_slice(c.take(16)?);
        self.read_blocks(&mut c, index.len(), index_offset)?;

        let entry_count = c.u32()? as usize;
        if entry_count > index.len() / 56 {
            return Err(corrupt("entry count out of range".into()));
        }
        let mut entries = Vec::with_capacity(entry_count);
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
            self.check_loc(id, loc)?;
            let size = u64::from(loc.len);
            let entry = Entry {
                id,
                date,
                from,
                subject,
                size,
            };
            entries.push((entry, loc));
        }
        let refs: Vec<(&Entry, Loc)> = entries.iter().map(|(e, l)| (e, *l)).collect();
        self.entries_index = encode_entries(&refs)?;
        self.count = entry_count;
        self.check_by_id()?;
        self.read_tombstones(&mut c, index.len())?;
        if !c.is_empty() {
            return Err(corrupt("trailing bytes after the index".into()));
        }
        Ok(())
    }

    /// Reads a version-2 index: checks its layout adds up and the by-id
    /// order; entries are decoded when used.
    fn parse_index(&mut self, index: Vec<u8>, index_offset: u64) -> Result<()> {
        let label = self.label.clone();
        let corrupt = |reason: &str| Error::corrupt(&label, reason);
        let mut c = Cursor::new(&index, &label);
        self.nonce.copy_from_slice(c.take(16)?);
        self.dictionary = c.u32()?;
        if self.dictionary > DICTIONARY_MAIL1 {
            return Err(corrupt("unknown compression dictionary"));
        }
        self.read_blocks(&mut c, index.len(), index_offset)?;
        let start = index.len() - c.data.len();
        let count = c.u32()? as usize;
        let records = count
            .checked_mul(RECORD_LEN + 4)
            .filter(|&n| n <= c.data.len())
            .ok_or_else(|| corrupt("entry count out of range"))?;
        c.take(records)?;
        let text_len = c.u32()? as usize;
        c.take(text_len)?;
        let end = index.len() - c.data.len();
        let mut rest = Cursor::new(&index[end..], &label);
        self.read_tombstones(&mut rest, index.len())?;
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes after the index"));
        }
        self.entries_index = index[start..end].to_vec();
        self.count = count;
        self.check_by_id()
    }

    /// Reads the block table and checks the blocks lie end to end from the
    /// header to the index.
    fn read_blocks(&mut self, c: &mut Cursor, index_len: usize, index_offset: u64) -> Result<()> {
        let corrupt = |reason: String| Error::corrupt(&self.label, reason);
        let block_count = c.u32()? as usize;
        if block_count > index_len / 16 {
            return Err(corrupt("block count out of range".into()));
        }
        let mut expected_offset = HEADER_LEN;
        let mut blocks = Vec::with_capacity(block_count);
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
            blocks.push(b);
        }
        if expected_offset != index_offset {
            return Err(corrupt("blocks do not end where the index starts".into()));
        }
        self.blocks = blocks;
        Ok(())
    }

    /// Reads the tombstones; an id listed twice makes the segment corrupt.
    fn read_tombstones(&mut self, c: &mut Cursor, index_len: usize) -> Result<()> {
        let tombstone_count = c.u32()? as usize;
        if tombstone_count > index_len / 32 {
            return Err(Error::corrupt(&self.label, "tombstone count out of range"));
        }
        let mut tombstones = Vec::with_capacity(tombstone_count);
        for _ in 0..tombstone_count {
            tombstones.push(MessageId(c.array32()?));
        }
        let mut sorted = tombstones.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            let id = w[0];
            return Err(Error::corrupt(
                &self.label,
                format!("tombstone {id} is listed twice"),
            ));
        }
        self.tombstones = tombstones;
        self.tombstones_sorted = sorted;
        Ok(())
    }

    /// Checks that the by-id table names entries in range in strictly
    /// ascending id order: every id once.
    fn check_by_id(&self) -> Result<()> {
        let mut previous: Option<&[u8]> = None;
        for k in 0..self.count {
            let i = self.by_id_at(k);
            if i >= self.count {
                return Err(Error::corrupt(&self.label, "by-id table out of range"));
            }
            let id = self.id_bytes(i);
            if previous.is_some_and(|p| p >= id) {
                let id = MessageId(self.id_array(i));
                return Err(Error::corrupt(
                    &self.label,
                    format!("message {id} is listed twice or out of order"),
                ));
            }
            previous = Some(id);
        }
        Ok(())
    }

    /// Checks that `loc` lies inside an existing block.
    fn check_loc(&self, id: MessageId, loc: Loc) -> Result<()> {
        let block = self.blocks.get(loc.block as usize).ok_or_else(|| {
            Error::corrupt(
                &self.label,
                format!("message {id} points to a missing block"),
            )
        })?;
        if u64::from(loc.offset) + u64::from(loc.len) > u64::from(block.raw_len) {
            return Err(Error::corrupt(
                &self.label,
                format!("message {id} points outside its block"),
            ));
        }
        Ok(())
    }

    /// Entry `i`'s fixed-size record.
    fn record(&self, i: usize) -> &[u8] {
        let at = 4 + i * RECORD_LEN;
        &self.entries_index[at..at + RECORD_LEN]
    }

    fn id_bytes(&self, i: usize) -> &[u8] {
        &self.record(i)[..32]
    }

    fn id_array(&self, i: usize) -> [u8; 32] {
        let mut id = [0u8; 32];
        id.copy_from_slice(self.id_bytes(i));
        id
    }

    /// The entry number at position `k` of the by-id table.
    fn by_id_at(&self, k: usize) -> usize {
        let at = 4 + self.count * RECORD_LEN + 4 * k;
        le_u32(&self.entries_index[at..]) as usize
    }

    fn loc(&self, i: usize) -> Loc {
        let r = self.record(i);
        Loc {
            block: le_u32(&r[32..]),
            offset: le_u32(&r[36..]),
            len: le_u32(&r[40..]),
        }
    }

    /// Decodes entry `i` from its record and the text; a field outside the
    /// text or not UTF-8 shows as replacement characters (see
    /// docs/offline-format.md, "Validation on open").
    fn decode(&self, i: usize) -> Entry {
        let r = self.record(i);
        let mut date = [0u8; 8];
        date.copy_from_slice(&r[44..52]);
        let text_offset = le_u32(&r[52..]) as usize;
        let from_len = usize::from(u16::from_le_bytes([r[56], r[57]]));
        let subject_len = usize::from(u16::from_le_bytes([r[58], r[59]]));
        let text_at = 4 + self.count * (RECORD_LEN + 4) + 4;
        let text = &self.entries_index[text_at..];
        let field = |start: usize, len: usize| {
            text.get(start..start.saturating_add(len))
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| "\u{fffd}".to_string())
        };
        Entry {
            id: MessageId(self.id_array(i)),
            date: i64::from_le_bytes(date),
            from: field(text_offset, from_len),
            subject: field(text_offset.saturating_add(from_len), subject_len),
            size: u64::from(self.loc(i).len),
        }
    }

    /// Entry `i` (decoded on first use).
    pub(crate) fn entry(&self, i: usize) -> &Entry {
        if let Some(all) = self.all.get() {
            return &all[i];
        }
        let cells = self.cells.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(self.count)
                .collect()
        });
        cells[i].get_or_init(|| self.decode(i))
    }

    /// The ids of the entries, in the order written (nothing decoded).
    pub(crate) fn ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        (0..self.count).map(|i| MessageId(self.id_array(i)))
    }

    /// True if this segment's tombstones name `id`.
    pub(crate) fn is_tombstoned(&self, id: &MessageId) -> bool {
        self.tombstones_sorted.binary_search(id).is_ok()
    }

    /// Size of the segment file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The messages of this segment, in the order they were written
    /// (decodes them all on first use).
    pub fn entries(&self) -> &[Entry] {
        self.all
            .get_or_init(|| (0..self.count).map(|i| self.decode(i)).collect())
    }

    /// Number of messages in this segment.
    pub fn message_count(&self) -> usize {
        self.count
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
        self.index_of(id).map(|i| self.entry(i))
    }

    /// Position of message `id` in [`Segment::entries`]: a binary search
    /// over the by-id table.
    pub(crate) fn index_of(&self, id: &MessageId) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let i = self.by_id_at(mid);
            match self.id_bytes(i).cmp(&id.0[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(i),
            }
        }
        None
    }

    /// True if this segment holds message `id`.
    pub fn contains(&self, id: &MessageId) -> bool {
        self.index_of(id).is_some()
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
        let decompressor = if self.dictionary == DICTIONARY_MAIL1 {
            zstd::bulk::Decompressor::with_prepared_dictionary(&MAIL_DDICT)
        } else {
            zstd::bulk::Decompressor::new()
        };
        let raw = decompressor
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
        let loc = self.loc(i);
        let id = MessageId(self.id_array(i));
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
        let i = self.index_of(id).ok_or(Error::MessageNotFound(*id))?;
        let loc = self.loc(i);
        // Checked here, not on open: the index is used where it lies.
        self.check_loc(*id, loc)
            .map_err(|e| self.damaged(*id, e.to_string()))?;
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
            // A previous read may have stopped mid-frame, or used another
            // dictionary: start from a clean state, then this segment's.
            dctx.reset(zstd::zstd_safe::ResetDirective::SessionAndParameters)
                .map_err(|code| format!("block {block}: zstd reset failed ({code})"))?;
            if self.dictionary == DICTIONARY_MAIL1 {
                dctx.ref_ddict(MAIL_DDICT.as_ddict())
                    .map_err(|code| format!("block {block}: zstd dictionary failed ({code})"))?;
            }
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
        for i in 0..self.count {
            if !want(self.entry(i)) {
                continue;
            }
            let loc = self.loc(i);
            let id = MessageId(self.id_array(i));
            self.check_loc(id, loc)
                .map_err(|e| self.damaged(id, e.to_string()))?;
            by_block[loc.block as usize].push(i);
        }
        let mut decompressed = 0;
        for (block, members) in by_block.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let raw = self
                .decompress_block(block as u32)
                .map_err(|reason| self.damaged(MessageId(self.id_array(members[0])), reason))?;
            decompressed += 1;
            for &i in members {
                let bytes = self.extract(i, &raw)?;
                f(self.entry(i), bytes)?;
            }
        }
        Ok(decompressed)
    }
}

/// The little-endian u32 at the start of `bytes` (callers pass in-range
/// slices of a validated index).
fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
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
