//! A repository directory: `manifest.json` plus `segments/<name>`.
//!
//! The writer side ([`Repository`]) is used by the archive service; every
//! operation makes new segment files durable *before* switching the manifest
//! and deletes old files only *after* the new manifest is durable, so a crash
//! at any instant leaves a complete repository (plus, at worst, orphan files
//! that [`Repository::garbage_collect`] removes).
//!
//! The reader side ([`ReplicaIndex`]) is used by both: it applies the segments
//! in order (tombstones, then entries) to get the live messages.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result, VerifyError};
use crate::manifest::{MANIFEST_FILE, Manifest, SegmentRef, new_epoch};
use crate::segment::{
    DEFAULT_BLOCK_SIZE, DEFAULT_LEVEL, DEFAULT_SEGMENT_BYTES, Entry, MAX_SEGMENT_MESSAGES,
    MessageEntry, Segment, SegmentInfo, SegmentWriter, Spool,
};
use crate::{MessageId, fsutil, verify};

/// Name of the directory holding the segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// Advisory lock file serialising writers of one repository.
pub const LOCK_FILE: &str = ".writer.lock";

/// How the writer compresses new segments.
#[derive(Clone, Copy, Debug)]
pub struct RepositoryOptions {
    pub level: i32,
    pub block_size: usize,
    /// An [`Appender`] closes a segment once its file reaches this size.
    pub segment_bytes: u64,
}

impl Default for RepositoryOptions {
    fn default() -> Self {
        RepositoryOptions {
            level: DEFAULT_LEVEL,
            block_size: DEFAULT_BLOCK_SIZE,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Path of segment `name` inside repository directory `dir`.
pub fn segment_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(SEGMENTS_DIR).join(name)
}

/// The writer's handle on one repository. Holds an exclusive advisory lock on
/// `<dir>/.writer.lock` for its whole life: a scheduled update, a
/// "synchronize now" and a garbage collection must never interleave (a
/// collection could otherwise delete a segment written but not yet named).
/// Readers take no lock; they only follow the atomically replaced manifest.
#[derive(Debug)]
pub struct Repository {
    dir: PathBuf,
    manifest: Manifest,
    options: RepositoryOptions,
    _lock: File,
}

impl Repository {
    /// Opens the repository in `dir`, creating an empty one (generation 0,
    /// fresh epoch) if there is none. Fails with [`Error::MailboxMismatch`]
    /// if `dir` holds another mailbox's repository and with [`Error::Busy`]
    /// if another writer holds it.
    pub fn create_or_open(dir: &Path, mailbox: &str) -> Result<Self> {
        Repository::create_or_open_with(dir, mailbox, RepositoryOptions::default())
    }

    /// Like [`Repository::create_or_open`] with explicit compression options.
    pub fn create_or_open_with(
        dir: &Path,
        mailbox: &str,
        options: RepositoryOptions,
    ) -> Result<Self> {
        let segments = dir.join(SEGMENTS_DIR);
        fs::create_dir_all(&segments).map_err(|e| Error::io(&segments, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Busy(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let manifest = match Manifest::load(dir) {
            Ok(m) => {
                if m.mailbox != mailbox {
                    return Err(Error::MailboxMismatch {
                        path: dir.to_path_buf(),
                        expected: mailbox.to_string(),
                        found: m.mailbox,
                    });
                }
                m
            }
            Err(Error::NoRepository(_)) => {
                let m = Manifest::new(mailbox, &new_epoch());
                fsutil::sync_dir(&segments)?;
                m.write_atomic(dir)?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fsutil::sync_dir(parent)?;
                }
                m
            }
            Err(e) => return Err(e),
        };
        Ok(Repository {
            dir: dir.to_path_buf(),
            manifest,
            options,
            _lock: lock,
        })
    }

    /// The repository directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current (durable) manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A segment writer using this repository's compression options.
    pub fn new_segment(&self) -> SegmentWriter {
        SegmentWriter::new(self.options.level).with_block_size(self.options.block_size)
    }

    /// Sets the size at which an [`Appender`] starts a new segment (at
    /// least one block's worth of bytes is always written).
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.options.segment_bytes = bytes.max(1);
    }

    /// Starts an update that may write several segments, each streamed to
    /// its file as it is written and closed at the size limit; they are
    /// named by the manifest together by [`Appender::commit`].
    pub fn appender(&mut self) -> Appender<'_> {
        Appender {
            repo: self,
            current: None,
            written: Vec::new(),
            committed: false,
        }
    }

    /// The ids of the live messages, reading one segment's index at a time
    /// (a [`ReplicaIndex`] keeps every segment's index open).
    pub fn live_ids(&self) -> Result<HashSet<MessageId>> {
        live_ids(&self.dir, &self.manifest)
    }

    /// A reader over the current manifest.
    pub fn reader(&self) -> Result<ReplicaIndex> {
        ReplicaIndex::with_manifest(&self.dir, self.manifest.clone())
    }

    /// Adds the writer's segment at the end of the repository and returns the
    /// new manifest (generation + 1). The segment is durable before the
    /// manifest names it. An empty writer changes nothing and returns the
    /// current manifest, so a scheduled update with no new mail does not make
    /// every client re-fetch the manifest.
    pub fn append_segment(&mut self, writer: SegmentWriter) -> Result<Manifest> {
        if writer.is_empty() {
            return Ok(self.manifest.clone());
        }
        let info = writer.finish_to_dir(&self.dir.join(SEGMENTS_DIR))?;
        let mut segments = self.manifest.segments.clone();
        segments.push(SegmentRef::from(&info));
        let committed = self.commit(self.manifest.epoch.clone(), segments);
        self.unless_committed(committed, &info.name)
    }

    /// After a failed manifest switch (a full disk), removes the segment just
    /// written for it, unless the current manifest names a segment of the same
    /// name: nothing refers to it and it holds the space a retry needs.
    fn unless_committed(&self, committed: Result<Manifest>, segment: &str) -> Result<Manifest> {
        if committed.is_err() && !self.manifest.segments.iter().any(|s| s.name == segment) {
            // Best effort: if this fails too, the next garbage collection
            // (every update starts with one) removes it.
            let _ = remove_if_exists(&self.dir.join(SEGMENTS_DIR).join(segment));
        }
        committed
    }

    /// [`Repository::append_segment`] for a writer that knows how many
    /// messages will be live afterwards (the archive service keeps the live
    /// set in its catalog). Counting them here would open the index of every
    /// segment, making each update cost O(repository) instead of O(new mail).
    /// `live` only fills `totals.messages`; the segments are what they are.
    pub fn append_segment_counted(&mut self, writer: SegmentWriter, live: u64) -> Result<Manifest> {
        if writer.is_empty() {
            return Ok(self.manifest.clone());
        }
        let info = writer.finish_to_dir(&self.dir.join(SEGMENTS_DIR))?;
        let mut segments = self.manifest.segments.clone();
        segments.push(SegmentRef::from(&info));
        let committed = self.commit_with(self.manifest.epoch.clone(), segments, Some(live));
        self.unless_committed(committed, &info.name)
    }

    /// Builds the next manifest, counts its live messages, makes it durable
    /// and adopts it.
    fn commit(&mut self, epoch: String, segments: Vec<SegmentRef>) -> Result<Manifest> {
        self.commit_with(epoch, segments, None)
    }

    fn commit_with(
        &mut self,
        epoch: String,
        segments: Vec<SegmentRef>,
        live: Option<u64>,
    ) -> Result<Manifest> {
        let mut next = self.manifest.clone();
        next.epoch = epoch;
        next.generation += 1;
        next.updated = fsutil::now_rfc3339();
        next.segments = segments;
        next.set_totals(0);
        let live = match live {
            Some(n) => n,
            None => count_live(&self.dir, &next)?,
        };
        next.set_totals(live);
        next.write_atomic(&self.dir)?;
        self.manifest = next.clone();
        Ok(next)
    }

    /// Clears the repository: a new manifest with a fresh epoch and no
    /// segments is made durable, then every segment file is deleted. Clients
    /// seeing the new epoch drop their copies. The generation keeps growing
    /// (it never goes down), so "newer" stays meaningful across flushes.
    pub fn flush(&mut self) -> Result<Manifest> {
        self.flush_with_epoch(&new_epoch())
    }

    /// [`Repository::flush`] with a caller-chosen epoch (must differ from the
    /// current one, else clients would not notice the flush).
    pub fn flush_with_epoch(&mut self, epoch: &str) -> Result<Manifest> {
        if epoch == self.manifest.epoch || epoch.is_empty() {
            return Err(Error::InvalidManifest {
                path: Manifest::path(&self.dir),
                reason: format!("flush needs a new non-empty epoch, got {epoch:?}"),
            });
        }
        let m = self.commit(epoch.to_string(), Vec::new())?;
        self.garbage_collect()?;
        Ok(m)
    }

    /// Merges the segments smaller than `threshold` bytes (if there are at
    /// least two) into one new segment at the end of the list, keeping the
    /// live set identical: the new segment holds the live messages the kept
    /// segments do not provide, and tombstones for the ids the kept segments
    /// would show but that are not live. Tombstoned messages and useless
    /// tombstones disappear. Old files are deleted only after the new
    /// manifest is durable. Returns the (possibly unchanged) manifest.
    pub fn compact(&mut self, threshold: u64) -> Result<Manifest> {
        let small: HashSet<usize> = self
            .manifest
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.size < threshold)
            .map(|(i, _)| i)
            .collect();
        if small.len() < 2 {
            return Ok(self.manifest.clone());
        }
        self.rewrite(&small)
    }

    /// Rewrites every segment that holds an entry for one of `ids` (the
    /// archive no longer keeps them: an erasure, an expiry), so that their
    /// bytes leave the repository's files, not only its live set: like
    /// [`Repository::compact`] of those segments, even of one. Returns the
    /// (possibly unchanged) manifest.
    pub fn purge(&mut self, ids: &HashSet<MessageId>) -> Result<Manifest> {
        let holding: HashSet<usize> = {
            let full = self.reader()?;
            full.segments
                .iter()
                .enumerate()
                .filter(|(_, seg)| seg.entries().iter().any(|e| ids.contains(&e.id)))
                .map(|(i, _)| i)
                .collect()
        };
        if holding.is_empty() {
            return Ok(self.manifest.clone());
        }
        self.rewrite(&holding)
    }

    /// Replaces the segments at `small` by one new segment at the end of
    /// the list with the same live set (see [`Repository::compact`]).
    fn rewrite(&mut self, small: &HashSet<usize>) -> Result<Manifest> {
        let full = self.reader()?;
        // The live set the kept (large) segments alone would give.
        let mut live_kept: HashSet<MessageId> = HashSet::new();
        let mut kept_order: Vec<MessageId> = Vec::new();
        for (i, seg) in full.segments.iter().enumerate() {
            if small.contains(&i) {
                continue;
            }
            for t in seg.tombstones() {
                live_kept.remove(t);
            }
            for e in seg.entries() {
                if live_kept.insert(e.id) {
                    kept_order.push(e.id);
                }
            }
        }
        let kept: Vec<SegmentRef> = self
            .manifest
            .segments
            .iter()
            .enumerate()
            .filter(|(i, _)| !small.contains(i))
            .map(|(_, s)| s.clone())
            .collect();
        let mut out = self.appender();
        for (i, seg) in full.segments.iter().enumerate() {
            if !small.contains(&i) {
                continue;
            }
            seg.for_each_message(|entry, raw| {
                // Only the copy that provides the live message: an id added
                // again in a later small segment is written once.
                let provides = full.live().get(&entry.id).is_some_and(|&(s, _)| s == i);
                if provides && !live_kept.contains(&entry.id) {
                    out.add(MessageEntry {
                        id: entry.id,
                        date: entry.date,
                        from: entry.from.clone(),
                        subject: entry.subject.clone(),
                        raw,
                    })?;
                }
                Ok(())
            })?;
        }
        for id in kept_order {
            if live_kept.contains(&id) && !full.live().contains_key(&id) {
                out.tombstone(id)?;
            }
        }
        let mut segments = kept;
        segments.extend(out.close()?.iter().map(SegmentRef::from));
        let switched = self.switch_compacted(full, segments);
        // Success or not, the files the manifest does not name go: the old
        // small segments, or the new ones a failed switch (a full disk) left.
        let collected = self.garbage_collect();
        let m = switched?;
        collected?;
        Ok(m)
    }

    /// Adopts a compaction's segment list after checking that it keeps the
    /// live set.
    fn switch_compacted(
        &mut self,
        full: ReplicaIndex,
        segments: Vec<SegmentRef>,
    ) -> Result<Manifest> {
        // Safety net: never switch to a manifest with another live set.
        let mut candidate = self.manifest.clone();
        candidate.segments = segments.clone();
        candidate.set_totals(0);
        let after = ReplicaIndex::with_manifest(&self.dir, candidate)?;
        let before_ids: HashSet<&MessageId> = full.live().keys().collect();
        let after_ids: HashSet<&MessageId> = after.live().keys().collect();
        if before_ids != after_ids {
            return Err(Error::InvalidManifest {
                path: Manifest::path(&self.dir),
                reason: "compaction would change the live set; aborted".into(),
            });
        }
        drop(after);
        drop(full);
        self.commit(self.manifest.epoch.clone(), segments)
    }

    /// Deletes files in `segments/` that the manifest does not name
    /// (leftovers of an update killed before its manifest switch, temporary
    /// files, segments dropped by compaction or flush) and a stale
    /// `manifest.json.tmp`. Returns the names removed.
    pub fn garbage_collect(&self) -> Result<Vec<String>> {
        let named: HashSet<&str> = self
            .manifest
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let dir = self.dir.join(SEGMENTS_DIR);
        let mut removed = Vec::new();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && !named.contains(name.as_str()) {
                remove_if_exists(&entry.path())?;
                removed.push(name);
            }
        }
        if !removed.is_empty() {
            fsutil::sync_dir(&dir)?;
        }
        let tmp = self.dir.join(format!("{MANIFEST_FILE}.tmp"));
        if tmp.exists() {
            remove_if_exists(&tmp)?;
            fsutil::sync_dir(&self.dir)?;
        }
        removed.sort();
        Ok(removed)
    }
}

/// One update's new segments: messages and tombstones streamed into a
/// segment file until it reaches the repository's segment size (or
/// [`MAX_SEGMENT_MESSAGES`] entries), then into the next. Nothing is named
/// before [`Appender::commit`]; dropped uncommitted, the segments it wrote
/// are removed.
///
/// Later segments win over earlier ones as in any manifest: a tombstone
/// given after a message of the same id would hide it, so callers give an
/// update's tombstones and messages for disjoint ids (as updates and
/// compactions do).
pub struct Appender<'r> {
    repo: &'r mut Repository,
    current: Option<SegmentWriter<Spool>>,
    written: Vec<SegmentInfo>,
    committed: bool,
}

impl Appender<'_> {
    /// The writer of the segment being filled, started on first use.
    fn writer(&mut self) -> Result<&mut SegmentWriter<Spool>> {
        let w = match self.current.take() {
            Some(w) => w,
            None => {
                let o = self.repo.options;
                SegmentWriter::spooled(&self.repo.dir.join(SEGMENTS_DIR), o.level)?
                    .with_block_size(o.block_size)
            }
        };
        Ok(self.current.insert(w))
    }

    /// Closes the segment being filled once it is full.
    fn roll_if_full(&mut self) -> Result<()> {
        let limit = self.repo.options.segment_bytes;
        let full = self.current.as_ref().is_some_and(|w| {
            w.written_bytes() >= limit
                || w.message_count() + w.tombstone_count() >= MAX_SEGMENT_MESSAGES
        });
        if full {
            self.close_current()?;
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(w) = self.current.take().filter(|w| !w.is_empty()) {
            self.written.push(w.finish_spooled()?);
        }
        Ok(())
    }

    /// Adds a message (see [`SegmentWriter::add`]; a duplicate is only
    /// detected within one segment).
    pub fn add(&mut self, m: MessageEntry) -> Result<bool> {
        let added = self.writer()?.add(m)?;
        self.roll_if_full()?;
        Ok(added)
    }

    /// Records that message `id` left (see [`SegmentWriter::tombstone`]).
    pub fn tombstone(&mut self, id: MessageId) -> Result<()> {
        self.writer()?.tombstone(id);
        self.roll_if_full()
    }

    /// Segments closed so far, and messages and tombstones in the open one.
    pub fn progress(&self) -> (usize, usize) {
        let open = self
            .current
            .as_ref()
            .map_or(0, |w| w.message_count() + w.tombstone_count());
        (self.written.len(), open)
    }

    /// Closes the last segment; every segment written is durable. The
    /// caller names them (or drops them unnamed, as a failed compaction).
    fn close(mut self) -> Result<Vec<SegmentInfo>> {
        self.close_current()?;
        self.committed = true;
        Ok(std::mem::take(&mut self.written))
    }

    /// Appends the segments written, in order, to the manifest in one
    /// switch (generation + 1) and returns it; nothing written changes
    /// nothing. `live` (see [`Repository::append_segment_counted`]) fills
    /// `totals.messages`; `None` counts the live messages of the result.
    pub fn commit(mut self, live: Option<u64>) -> Result<Manifest> {
        self.close_current()?;
        if self.written.is_empty() {
            self.committed = true;
            return Ok(self.repo.manifest.clone());
        }
        let mut segments = self.repo.manifest.segments.clone();
        segments.extend(self.written.iter().map(SegmentRef::from));
        let epoch = self.repo.manifest.epoch.clone();
        let switched = self.repo.commit_with(epoch, segments, live);
        // Named now; after a failed switch (a full disk) Drop removes them.
        self.committed = switched.is_ok();
        switched
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Unnamed segments hold the space a retry needs (the next garbage
            // collection would remove them too).
            drop(self.current.take());
            let named = &self.repo.manifest.segments;
            for info in &self.written {
                if !named.iter().any(|s| s.name == info.name) {
                    let _ = remove_if_exists(&segment_path(&self.repo.dir, &info.name));
                }
            }
        }
    }
}

/// The number of live messages `manifest`'s segments in `dir` give,
/// opening one segment at a time and keeping only the live ids (not every
/// segment's index, as a [`ReplicaIndex`] does). A segment that does not
/// open, or has another size than the manifest says, is an error as for a
/// reader.
pub fn count_live(dir: &Path, manifest: &Manifest) -> Result<u64> {
    Ok(live_ids(dir, manifest)?.len() as u64)
}

/// The live ids of `manifest`'s segments, one segment open at a time.
fn live_ids(dir: &Path, manifest: &Manifest) -> Result<HashSet<MessageId>> {
    let mut live: HashSet<MessageId> = HashSet::new();
    for s in &manifest.segments {
        let seg = open_named(dir, s)?;
        for t in seg.tombstones() {
            live.remove(t);
        }
        live.extend(seg.ids());
    }
    Ok(live)
}

/// Opens segment `s` of a manifest, checking that its size is the named one.
fn open_named(dir: &Path, s: &SegmentRef) -> Result<Segment> {
    let path = segment_path(dir, &s.name);
    let seg = Segment::open(&path).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == ErrorKind::NotFound => {
            Error::SegmentUnusable {
                name: s.name.clone(),
                reason: "file missing".into(),
            }
        }
        other => other,
    })?;
    if seg.size() != s.size {
        return Err(Error::SegmentUnusable {
            name: s.name.clone(),
            reason: format!("file has {} bytes, manifest says {}", seg.size(), s.size),
        });
    }
    Ok(seg)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Moves a downloaded segment into a repository (client side): checks size
/// and hash against the manifest's entry, fsyncs the file, renames it to
/// `segments/<name>` and fsyncs the directory. A bad download is left where
/// it is and reported, never installed.
pub fn install_segment(
    dir: &Path,
    segment: &SegmentRef,
    downloaded: &Path,
) -> Result<(), VerifyError> {
    verify::verify_segment_file(downloaded, &segment.name, segment.size)?;
    let io = |path: &Path, source: std::io::Error| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    File::open(downloaded)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(downloaded, e))?;
    let segments = dir.join(SEGMENTS_DIR);
    fs::create_dir_all(&segments).map_err(|e| io(&segments, e))?;
    let dest = segments.join(&segment.name);
    fs::rename(downloaded, &dest).map_err(|e| io(&dest, e))?;
    fsutil::sync_dir(&segments).map_err(|e| match e {
        Error::Io { path, source } => VerifyError::Io { path, source },
        other => VerifyError::Io {
            path: segments.clone(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// The live messages of a repository: every manifest segment applied in order
/// (tombstones first, then entries).
///
/// Opening reads each segment's footer and index only; messages are
/// decompressed and hash-checked when read. One id is looked up in the
/// segments from the last to the first (a binary search in each), so a
/// search that names a few messages builds nothing per message; the map of
/// every live id is built only when a listing or a count asks for it.
#[derive(Debug)]
pub struct ReplicaIndex {
    manifest: Manifest,
    segments: Vec<Segment>,
    live: OnceLock<HashMap<MessageId, (usize, usize)>>,
}

impl ReplicaIndex {
    /// Opens the repository in `dir` as its manifest describes it. A segment
    /// that is missing or has another size than the manifest says is an
    /// error ([`Error::SegmentUnusable`]): the caller re-fetches or verifies.
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = Manifest::load(dir)?;
        ReplicaIndex::with_manifest(dir, manifest)
    }

    /// Opens the segments of `manifest` (which need not be the one on disk:
    /// the writer checks a candidate manifest before committing it).
    pub fn with_manifest(dir: &Path, manifest: Manifest) -> Result<Self> {
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for s in &manifest.segments {
            segments.push(open_named(dir, s)?);
        }
        Ok(ReplicaIndex {
            manifest,
            segments,
            live: OnceLock::new(),
        })
    }

    /// Every live id with its (segment, entry), built on first use.
    fn live(&self) -> &HashMap<MessageId, (usize, usize)> {
        self.live.get_or_init(|| {
            let mut live = HashMap::new();
            for (si, seg) in self.segments.iter().enumerate() {
                for t in seg.tombstones() {
                    live.remove(t);
                }
                for (ei, id) in seg.ids().enumerate() {
                    live.insert(id, (si, ei));
                }
            }
            live
        })
    }

    /// Where live message `id` is: (segment, entry). The last segment that
    /// names it decides: an entry (which wins over a tombstone of the same
    /// segment) or a tombstone.
    fn locate(&self, id: &MessageId) -> Option<(usize, usize)> {
        if let Some(live) = self.live.get() {
            return live.get(id).copied();
        }
        for (si, seg) in self.segments.iter().enumerate().rev() {
            if let Some(ei) = seg.index_of(id) {
                return Some((si, ei));
            }
            if seg.is_tombstoned(id) {
                return None;
            }
        }
        None
    }

    /// The manifest this view was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of live messages.
    pub fn len(&self) -> usize {
        self.live().len()
    }

    /// True if there are no live messages.
    pub fn is_empty(&self) -> bool {
        self.live().is_empty()
    }

    /// True if message `id` is live in the repository.
    pub fn contains(&self, id: &MessageId) -> bool {
        self.locate(id).is_some()
    }

    /// The listing entry of live message `id`.
    pub fn get(&self, id: &MessageId) -> Option<&Entry> {
        self.locate(id).map(|(s, e)| self.segments[s].entry(e))
    }

    /// The live messages, in repository order (segment order, then the order
    /// they were written); each message once, from the segment that provides it.
    pub fn list(&self) -> Vec<&Entry> {
        let live = self.live();
        let mut out = Vec::with_capacity(live.len());
        for (si, seg) in self.segments.iter().enumerate() {
            for (ei, e) in seg.entries().iter().enumerate() {
                if live.get(&e.id) == Some(&(si, ei)) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// The ids of the live messages (any order).
    pub fn ids(&self) -> impl Iterator<Item = &MessageId> {
        self.live().keys()
    }

    /// The raw bytes of live message `id`, hash-checked; a message that is
    /// tombstoned or absent is [`Error::MessageNotFound`].
    pub fn read(&self, id: &MessageId) -> Result<Vec<u8>> {
        let (s, _) = self.locate(id).ok_or(Error::MessageNotFound(*id))?;
        debug_assert!(self.segments[s].index_of(id).is_some());
        self.segments[s].read(id)
    }
}
