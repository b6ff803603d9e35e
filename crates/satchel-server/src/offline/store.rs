//! Offline repositories in a shared object store, so that every node on one
//! catalog serves the same repositories (docs/offline-service.md).
//!
//! The format crate knows no service: each node keeps a local working copy
//! in `<data>/offline/<dir>/` exactly as a single node does, and this module
//! moves files between it and the store, an S3 repository of the catalog
//! (`satchel offline defaults --store REPO`), under
//! `PREFIX/offline/<dir>/manifest.json` and `PREFIX/offline/<dir>/segments/<name>`.
//!
//! - Before an update the local copy is brought level with the store's
//!   manifest ([`SharedStore::level`]); the segments the writer will read are
//!   fetched when it needs them ([`SharedStore::fetch_missing`]).
//! - After it, [`SharedStore::publish`] uploads the new segments, then the
//!   manifest last: the store's manifest only ever names segments already in
//!   the store. A crash in between leaves orphan segments, which the garbage
//!   pass after the next publish deletes.
//! - Serving answers with the store's manifest (so the ETag is the same
//!   whichever node answers), kept by each node while the catalog's record
//!   of the mailbox's last update names it ([`SharedStore::current`]): a
//!   laptop's request costs one catalog query, not an S3 GET, until some
//!   node publishes again. Segments come from the local copy, filled from
//!   the store on first request and verified by their hash
//!   ([`SharedStore::fetch_segment`]).

use super::update::offline_error;
use crate::error::ServiceError;
use satchel_archive::RepositoryInfo;
use satchel_archive::repository::s3::S3Repository;
use satchel_offline::{Manifest, SegmentRef, VerifyError, install_segment, segment_path};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Where a segment being fetched is written before it is verified and
/// renamed into `segments/` (outside it, so a garbage collection of the
/// working copy never deletes a download in progress).
pub const INCOMING_DIR: &str = "incoming";
/// How much of a segment one ranged GET reads.
const FETCH_PIECE: u64 = 8 * 1024 * 1024;

/// An S3 repository of the catalog holding every mailbox's offline repository.
pub struct SharedStore {
    repo: S3Repository,
    /// The manifest last read from the store, by mailbox address.
    manifests: Mutex<HashMap<String, Arc<Published>>>,
}

/// A manifest as the store holds it: its bytes (served as they are) and
/// what they say.
pub struct Published {
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
}

impl Published {
    /// Whether this is the manifest of the update the catalog records
    /// (`epoch`, `generation`).
    fn is(&self, recorded: Option<(&str, u64)>) -> bool {
        recorded == Some((self.manifest.epoch.as_str(), self.manifest.generation))
    }
}

/// What [`SharedStore::level`] found.
pub struct Leveled {
    /// The store's manifest (now also the local one), if the store has one.
    pub published: Option<Manifest>,
    /// The store has no manifest and the local copy lacks some of its
    /// segments (the store was changed or emptied): the update must start
    /// the repository afresh, under a new epoch.
    pub restart: bool,
}

impl SharedStore {
    /// The client of repository `info`, which must be an on-line S3 one.
    pub fn open(info: &RepositoryInfo) -> Result<Self> {
        check_usable(info)?;
        let repo = S3Repository::open(info).map_err(store_error)?;
        Ok(SharedStore {
            repo,
            manifests: Mutex::default(),
        })
    }

    /// The repository's name.
    pub fn name(&self) -> &str {
        self.repo.name()
    }

    /// The store's manifest of `address`: its bytes as stored, and parsed.
    pub fn manifest(&self, address: &str) -> Result<Option<(Vec<u8>, Manifest)>> {
        let key = manifest_key(address);
        let Some(bytes) = self.repo.get_object(&key).map_err(store_error)? else {
            return Ok(None);
        };
        let m = Manifest::from_json(&bytes, Path::new(&key)).map_err(|e| {
            ServiceError::BadGateway(format!(
                "the offline store {} holds a damaged manifest for {address}: {e}",
                self.name()
            ))
        })?;
        Ok(Some((bytes, m)))
    }

    /// The store's current manifest of `address`. `recorded` is the
    /// catalog's record of the mailbox's last update (epoch, generation),
    /// written after every publish: while this node's copy is that one it
    /// is served without asking the store; otherwise the store is read (and
    /// its answer kept). A node that did not publish thus serves a new
    /// manifest from the moment the update that published it ends.
    pub fn current(
        &self,
        address: &str,
        recorded: Option<(&str, u64)>,
    ) -> Result<Option<Arc<Published>>> {
        if let Some(kept) = self.kept(address).filter(|p| p.is(recorded)) {
            return Ok(Some(kept));
        }
        let Some((bytes, manifest)) = self.manifest(address)? else {
            self.keep(address, None);
            return Ok(None);
        };
        let read = Arc::new(Published { bytes, manifest });
        self.keep(address, Some(Arc::clone(&read)));
        Ok(Some(read))
    }

    fn kept(&self, address: &str) -> Option<Arc<Published>> {
        let kept = self
            .manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.get(address).cloned()
    }

    fn keep(&self, address: &str, read: Option<Arc<Published>>) {
        let mut kept = self
            .manifests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match read {
            Some(p) => kept.insert(address.to_string(), p),
            None => kept.remove(address),
        };
    }

    /// Brings the local working copy `dir` level with the store: the store's
    /// manifest replaces the local one (segments follow when needed). Called
    /// with the mailbox's writer lock held and no `Repository` open.
    pub fn level(&self, address: &str, dir: &Path) -> Result<Leveled> {
        let local = Manifest::load(dir).ok();
        let Some((_, published)) = self.manifest(address)? else {
            // Nothing published yet: the local copy (an earlier single-node
            // repository) is published as it is, if it is whole.
            let restart = local.is_some_and(|m| !missing(dir, &m).is_empty());
            return Ok(Leveled {
                published: None,
                restart,
            });
        };
        if local.as_ref() != Some(&published) {
            adopt(dir, &published)?;
        }
        Ok(Leveled {
            published: Some(published),
            restart: false,
        })
    }

    /// Fetches every segment of `manifest` that the local copy lacks.
    pub fn fetch_missing(&self, address: &str, dir: &Path, manifest: &Manifest) -> Result<usize> {
        let lacking = missing(dir, manifest);
        for seg in &lacking {
            self.fetch_segment(address, dir, seg)?;
        }
        Ok(lacking.len())
    }

    /// Publishes the local copy's manifest: uploads the segments `published`
    /// does not name, then (if `still_ours` says the writer lock is still
    /// held) the manifest, then deletes the store's segments it does not
    /// name. Returns false when the store already had this manifest.
    pub fn publish(
        &self,
        address: &str,
        dir: &Path,
        published: Option<&Manifest>,
        still_ours: impl Fn() -> Result<bool>,
    ) -> Result<bool> {
        let local = Manifest::load(dir).map_err(offline_error)?;
        if published == Some(&local) {
            return Ok(false);
        }
        let known: HashSet<&str> = published
            .map(|p| p.segments.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        for seg in local
            .segments
            .iter()
            .filter(|s| !known.contains(s.name.as_str()))
        {
            let path = segment_path(dir, &seg.name);
            self.repo
                .put_object_file(&segment_key(address, &seg.name), &path)
                .map_err(store_error)?;
        }
        if !still_ours()? {
            return Err(ServiceError::Conflict(format!(
                "lost the catalog's writer lock of {address}'s offline repository before \
                 publishing it (the catalog connection was replaced); nothing was published, \
                 the next update starts from the store's manifest"
            )));
        }
        self.repo
            .put_object_file(&manifest_key(address), &Manifest::path(dir))
            .map_err(store_error)?;
        self.collect_garbage(address, &local);
        Ok(true)
    }

    /// Deletes the store's segments of `address` that `current` (just
    /// published) does not name: what a flush or compaction dropped, and
    /// orphans of a publish that failed before its manifest. Failures are
    /// logged: an orphan costs only space, and the next publish retries.
    fn collect_garbage(&self, address: &str, current: &Manifest) {
        let named: HashSet<&str> = current.segments.iter().map(|s| s.name.as_str()).collect();
        let listed = match self.repo.list_objects(&segments_key(address)) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(mailbox = address, error = %e, "cannot list the offline store");
                return;
            }
        };
        for name in listed.iter().filter(|n| !named.contains(n.as_str())) {
            if let Err(e) = self.repo.delete_object(&segment_key(address, name)) {
                tracing::warn!(mailbox = address, segment = %name, error = %e,
                    "cannot delete an offline segment from the store");
            }
        }
    }

    /// Copies segment `seg` of `address` from the store into the local copy
    /// `dir`, verified by size and hash before it takes its name. A missing
    /// or damaged object is an error naming it, and nothing is installed.
    pub fn fetch_segment(&self, address: &str, dir: &Path, seg: &SegmentRef) -> Result<()> {
        let incoming = dir.join(INCOMING_DIR);
        std::fs::create_dir_all(&incoming).map_err(|e| io_error("creating", &incoming, &e))?;
        let part = incoming.join(&seg.name);
        let fetched = self.download(address, seg, &part).and_then(|()| {
            install_segment(dir, seg, &part).map_err(|e| self.damaged(address, seg, e))
        });
        if fetched.is_err() {
            // Best effort: whatever was written is never served, and the
            // next start clears `incoming/`.
            let _ = std::fs::remove_file(&part);
        }
        fetched
    }

    fn download(&self, address: &str, seg: &SegmentRef, part: &Path) -> Result<()> {
        let key = segment_key(address, &seg.name);
        let size = self.repo.object_size(&key).map_err(store_error)?;
        if size.is_none() {
            return Err(ServiceError::BadGateway(format!(
                "segment {} of {address}'s offline repository is missing from the offline \
                 store {}: not served",
                seg.name,
                self.name()
            )));
        }
        let mut file = std::fs::File::create(part).map_err(|e| io_error("creating", part, &e))?;
        // Read what the manifest says (a longer object is damaged, and the
        // hash check says so); a shorter one ends the reads early.
        let want = seg.size.min(size.unwrap_or(0));
        let mut at = 0;
        while at < want {
            let end = (at + FETCH_PIECE).min(want);
            let bytes = self
                .repo
                .read_object_range(&key, at..end)
                .map_err(store_error)?;
            file.write_all(&bytes)
                .map_err(|e| io_error("writing", part, &e))?;
            at = end;
        }
        Ok(())
    }

    fn damaged(&self, address: &str, seg: &SegmentRef, e: VerifyError) -> ServiceError {
        match e {
            VerifyError::Io { path, source } => io_error("installing", &path, &source),
            other => ServiceError::BadGateway(format!(
                "segment {} of {address}'s offline repository is damaged in the offline \
                 store {} ({other}): not served",
                seg.name,
                self.name()
            )),
        }
    }
}

/// Only an on-line S3 repository can hold the shared offline repositories.
pub fn check_usable(info: &RepositoryInfo) -> Result<()> {
    if info.kind != "s3" {
        return Err(ServiceError::BadRequest(format!(
            "repository {} is a {} repository; the offline store must be an S3 repository \
             (satchel repo add NAME --s3 s3://BUCKET/PREFIX --endpoint URL)",
            info.name, info.kind
        )));
    }
    if info.cold {
        return Err(ServiceError::BadRequest(format!(
            "repository {} is cold storage; the offline store must be on-line",
            info.name
        )));
    }
    Ok(())
}

/// Makes `m` the local manifest of `dir` (atomically, as every manifest).
pub fn adopt(dir: &Path, m: &Manifest) -> Result<()> {
    let segments = dir.join(satchel_offline::repository::SEGMENTS_DIR);
    std::fs::create_dir_all(&segments).map_err(|e| io_error("creating", &segments, &e))?;
    m.write_atomic(dir).map_err(offline_error)
}

/// The segments of `m` that the local copy `dir` lacks.
pub fn missing(dir: &Path, m: &Manifest) -> Vec<SegmentRef> {
    m.segments
        .iter()
        .filter(|s| !segment_path(dir, &s.name).is_file())
        .cloned()
        .collect()
}

fn mailbox_key(address: &str) -> String {
    format!("offline/{}", satchel_offline::mailbox_dir_name(address))
}

fn manifest_key(address: &str) -> String {
    format!("{}/manifest.json", mailbox_key(address))
}

fn segments_key(address: &str) -> String {
    format!("{}/segments", mailbox_key(address))
}

fn segment_key(address: &str, name: &str) -> String {
    format!("{}/{name}", segments_key(address))
}

/// The store failed: the service depends on it, like a mailbox's IMAP server.
fn store_error(e: satchel_archive::ArchiveError) -> ServiceError {
    tracing::error!(error = %e, "offline store failure");
    ServiceError::BadGateway(format!("offline store: {e}"))
}

fn io_error(doing: &str, path: &Path, e: &std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{doing} {}: {e}", path.display()))
}

/// Named in-process locks: one update of a mailbox at a time on this node
/// (the catalog lock does it across nodes), and one fetch of a segment at a
/// time (a thousand laptops asking for a new segment cause one download).
#[derive(Default)]
pub struct KeyedLocks {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// A held key, released when dropped.
pub struct Held<'a> {
    locks: &'a KeyedLocks,
    key: String,
}

impl KeyedLocks {
    /// Holds `key` if nobody does.
    pub fn try_hold(&self, key: &str) -> Option<Held<'_>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(key.to_string()).then(|| Held {
            locks: self,
            key: key.to_string(),
        })
    }

    /// Holds `key`, waiting while someone else does.
    pub fn hold(&self, key: &str) -> Held<'_> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(key) {
            held = self
                .freed
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(key.to_string());
        Held {
            locks: self,
            key: key.to_string(),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.key);
        self.locks.freed.notify_all();
    }
}

/// Leftovers of fetches a stop interrupted, removed at start.
pub fn clear_incoming(dir: &Path) -> Option<PathBuf> {
    let incoming = dir.join(INCOMING_DIR);
    (incoming.is_dir() && std::fs::remove_dir_all(&incoming).is_ok()).then_some(incoming)
}

#[cfg(test)]
mod tests {
    use super::KeyedLocks;

    #[test]
    fn a_key_is_held_once_at_a_time() {
        let locks = KeyedLocks::default();
        let a = locks.try_hold("a").expect("free");
        assert!(locks.try_hold("a").is_none());
        assert!(locks.try_hold("b").is_some());
        drop(a);
        let _again = locks.hold("a");
        assert!(locks.try_hold("a").is_none());
    }
}
