//! A local copy (replica) of one mailbox's offline repository.
//!
//! ```text
//! <home>/replicas/<mailbox>/
//!   manifest.json     the current complete state; replaced atomically
//!   etag              the service's ETag of that manifest (for If-None-Match)
//!   verified.json     each segment file as it was when last hashed
//!   segments/<name>   verified segments (name = SHA-256 of the bytes)
//!   partial/<name>    a download in progress (resumed with Range)
//! ```
//!
//! The layout is the repository format of `satchel-offline`, so reading and
//! verifying reuse [`ReplicaIndex`] and [`verify_repository`]. A sync only
//! ever adds verified segments before it switches the manifest, and deletes
//! segments only after the switch: killed anywhere, the previous manifest and
//! every segment it names are still there.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use satchel_offline::{
    Manifest, OfflineRepositoryListing, ReplicaIndex, Report, SegmentRef, VerifyError,
    install_segment, segment_path, verify_repository,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::service::{ManifestFetch, Service};
use crate::verified::Verified;

const ETAG_FILE: &str = "etag";
const PARTIAL_DIR: &str = "partial";
const SEGMENTS_DIR: &str = "segments";

/// Callbacks a sync reports progress through (the binary draws bars).
pub trait Progress: Send + Sync {
    /// A mailbox starts; `to_download` bytes of segments are missing.
    fn start(&self, _mailbox: &str, _to_download: u64) {}
    /// `bytes` more bytes arrived.
    fn advance(&self, _bytes: u64) {}
    /// The mailbox is done.
    fn finish(&self, _result: &MailboxSync) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What happened to one mailbox in a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// 304: nothing changed on the service (maybe repairs, see `repaired`).
    Unchanged,
    /// First copy.
    Created,
    /// New generation: only missing segments downloaded.
    Updated,
    /// New epoch (flush): the local copy was dropped and rebuilt.
    Rebuilt,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Unchanged => "unchanged",
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Rebuilt => "rebuilt (flushed on the service)",
        })
    }
}

/// The outcome of syncing one mailbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxSync {
    pub mailbox: String,
    pub change: Change,
    /// Every body byte received for this mailbox (manifest + segments).
    pub bytes_downloaded: u64,
    /// Of which segment bytes.
    pub segment_bytes: u64,
    /// Segments downloaded (new or repaired).
    pub segments_downloaded: u64,
    /// Of which were damaged or missing locally and fetched again.
    pub segments_repaired: u64,
    /// Segments resumed from a partial download.
    pub segments_resumed: u64,
    /// Segments hash-checked by this sync: new, repaired, or whose files
    /// changed since they were last hashed (the others are not read).
    #[serde(default)]
    pub segments_hashed: u64,
    /// Segments in the local copy after the sync.
    pub segments: u64,
    /// Live messages after the sync.
    pub messages: u64,
    /// Bytes of segments in the local copy.
    pub bytes: u64,
    pub generation: u64,
    pub epoch: String,
}

/// One mailbox's local copy.
#[derive(Clone, Debug)]
pub struct Replica {
    dir: PathBuf,
    mailbox: String,
}

impl Replica {
    pub fn new(dir: impl Into<PathBuf>, mailbox: &str) -> Replica {
        Replica {
            dir: dir.into(),
            mailbox: mailbox.to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// The local manifest, `None` if there is no complete copy yet.
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        match Manifest::load(&self.dir) {
            Ok(m) => Ok(Some(m)),
            Err(satchel_offline::Error::NoRepository(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the local copy for reading (messages are hash-checked on read).
    pub fn open(&self) -> Result<ReplicaIndex> {
        match ReplicaIndex::open(&self.dir) {
            Ok(r) => Ok(r),
            Err(satchel_offline::Error::NoRepository(_)) => Err(Error::NotInLocalCopy {
                server: String::new(),
                mailbox: self.mailbox.clone(),
                id: String::new(),
                reason: "no local copy yet".into(),
            }),
            Err(e) => Err(Error::Damaged {
                mailbox: self.mailbox.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Re-hashes every segment the local manifest names.
    pub fn verify(&self) -> Result<Report> {
        Ok(verify_repository(&self.dir)?)
    }

    /// Deletes the local copy entirely.
    pub fn remove(&self) -> Result<()> {
        fsutil::remove_dir_if_exists(&self.dir)
    }

    fn etag(&self, local: &Manifest) -> String {
        fs::read_to_string(self.dir.join(ETAG_FILE))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| local.etag())
    }

    fn partial_path(&self, name: &str) -> PathBuf {
        self.dir.join(PARTIAL_DIR).join(name)
    }

    /// Brings this copy up to date with the service: one conditional manifest
    /// request; on a new epoch drop everything; download (resuming partial
    /// files) only the segments that are missing or fail verification;
    /// switch the manifest atomically. The segments it no longer names stay
    /// until [`Replica::collect_garbage`] (the search index reads them first).
    pub async fn sync(
        &self,
        service: &Service,
        listing: &OfflineRepositoryListing,
        progress: &dyn Progress,
    ) -> Result<MailboxSync> {
        fsutil::private_dir(&self.dir)?;
        let local = match self.manifest() {
            Ok(m) => m,
            Err(e) => {
                // A damaged manifest.json: start again from nothing.
                tracing::warn!(mailbox = %self.mailbox, "local manifest unusable ({e}); rebuilding");
                fsutil::remove_file_if_exists(&Manifest::path(&self.dir))?;
                None
            }
        };
        let etag = local.as_ref().map(|m| self.etag(m));
        let fetch = service.manifest(listing, etag.as_deref()).await?;

        let mut bytes_downloaded = 0;
        let (target, new_etag, mut change) = match fetch {
            ManifestFetch::NotModified => match local.clone() {
                Some(m) => (m, None, Change::Unchanged),
                None => {
                    return Err(Error::Protocol {
                        what: format!("the manifest of {}", self.mailbox),
                        reason: "304 Not Modified to an unconditional request".into(),
                    });
                }
            },
            ManifestFetch::Changed {
                manifest,
                etag,
                body_bytes,
            } => {
                bytes_downloaded += body_bytes;
                let change = match &local {
                    None => Change::Created,
                    Some(l) if l.epoch != manifest.epoch => Change::Rebuilt,
                    Some(l) if l == &manifest => Change::Unchanged,
                    Some(_) => Change::Updated,
                };
                (manifest, etag, change)
            }
        };
        if change == Change::Rebuilt {
            // Flushed on the service: the old copy is worthless.
            self.drop_contents()?;
        }
        fsutil::private_dir(&self.dir.join(SEGMENTS_DIR))?;
        fsutil::private_dir(&self.dir.join(PARTIAL_DIR))?;

        // Which segments must be (re)fetched: missing or failing verification
        // (only files not hashed before in this state are read).
        let local_names: HashSet<&str> = local
            .as_ref()
            .filter(|_| change != Change::Rebuilt)
            .map(|m| m.segments.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        let mut verified = Verified::load(&self.dir);
        let mut segments_hashed = 0;
        let mut wanted: Vec<(&SegmentRef, bool)> = Vec::new();
        for s in &target.segments {
            let path = segment_path(&self.dir, &s.name);
            match verified.check(&path, s) {
                Ok(hashed) => segments_hashed += u64::from(hashed),
                Err(VerifyError::Missing(_)) => wanted.push((s, local_names.contains(&*s.name))),
                Err(e) => {
                    tracing::warn!(mailbox = %self.mailbox, "damaged local segment: {e}");
                    fsutil::remove_file_if_exists(&path)?;
                    wanted.push((s, true));
                }
            }
        }
        let to_download: u64 = wanted
            .iter()
            .map(|(s, _)| {
                let have = fs::metadata(self.partial_path(&s.name))
                    .map(|m| m.len())
                    .unwrap_or(0);
                s.size.saturating_sub(have.min(s.size))
            })
            .sum();
        progress.start(&self.mailbox, to_download);

        let mut segment_bytes = 0;
        let mut segments_repaired = 0;
        let mut segments_resumed = 0;
        for (s, repair) in &wanted {
            let d = self.download(service, listing, s, progress).await?;
            verified.record(&segment_path(&self.dir, &s.name), &s.name)?;
            segments_hashed += 1;
            segment_bytes += d.bytes;
            if d.resumed {
                segments_resumed += 1;
            }
            if *repair {
                segments_repaired += 1;
            }
        }
        bytes_downloaded += segment_bytes;

        // Every segment the target names is now present and verified.
        let switch = local.as_ref() != Some(&target) || change == Change::Rebuilt;
        if switch {
            target.write_atomic(&self.dir)?;
        }
        if let Some(tag) = new_etag {
            fsutil::write_private(&self.dir.join(ETAG_FILE), tag.as_bytes())?;
        }
        verified.save(&target.segments.iter().map(|s| s.name.as_str()).collect())?;
        if change == Change::Unchanged && switch {
            change = Change::Updated;
        }

        let live =
            satchel_offline::count_live(&self.dir, &target).unwrap_or(target.totals.messages);
        let result = MailboxSync {
            mailbox: self.mailbox.clone(),
            change,
            bytes_downloaded,
            segment_bytes,
            segments_downloaded: wanted.len() as u64,
            segments_repaired,
            segments_resumed,
            segments_hashed,
            segments: target.segments.len() as u64,
            messages: live,
            bytes: target.totals.bytes,
            generation: target.generation,
            epoch: target.epoch.clone(),
        };
        progress.finish(&result);
        Ok(result)
    }

    /// Deletes manifest, ETag, segments and partial downloads (new epoch).
    fn drop_contents(&self) -> Result<()> {
        // Manifest first: without it nothing below is "the copy" any more.
        fsutil::remove_file_if_exists(&Manifest::path(&self.dir))?;
        fsutil::remove_file_if_exists(&self.dir.join(ETAG_FILE))?;
        Verified::remove(&self.dir)?;
        fsutil::sync_dir(&self.dir)?;
        fsutil::remove_dir_if_exists(&self.dir.join(SEGMENTS_DIR))?;
        fsutil::remove_dir_if_exists(&self.dir.join(PARTIAL_DIR))?;
        Ok(())
    }

    /// After the manifest switch: delete segments the manifest no longer
    /// names and partial downloads of segments it does not want.
    pub fn collect_garbage(&self) -> Result<()> {
        let Some(manifest) = self.manifest()? else {
            return Ok(());
        };
        let named: HashSet<&str> = manifest.segments.iter().map(|s| s.name.as_str()).collect();
        for sub in [SEGMENTS_DIR, PARTIAL_DIR] {
            let dir = self.dir.join(sub);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            let mut removed = false;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !named.contains(name.as_str()) {
                    fsutil::remove_file_if_exists(&entry.path())?;
                    removed = true;
                }
            }
            if removed {
                fsutil::sync_dir(&dir)?;
            }
        }
        Ok(())
    }

    /// Downloads segment `s` into `partial/<name>` (resuming what is there
    /// with a Range request), then verifies size and hash, fsyncs and renames
    /// it into `segments/` ([`install_segment`]). A download that fails
    /// verification is deleted and, if it was resumed, retried once whole.
    async fn download(
        &self,
        service: &Service,
        listing: &OfflineRepositoryListing,
        s: &SegmentRef,
        progress: &dyn Progress,
    ) -> Result<Download> {
        let part = self.partial_path(&s.name);
        let mut total = Download::default();
        for attempt in 0..2 {
            let mut have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if have > s.size {
                fsutil::remove_file_if_exists(&part)?;
                have = 0;
            }
            if have < s.size {
                if have > 0 {
                    total.resumed = true;
                }
                total.bytes += self
                    .fetch_into(service, listing, s, &part, have, progress)
                    .await?;
            }
            match install_segment(&self.dir, s, &part) {
                Ok(()) => return Ok(total),
                Err(e) => {
                    fsutil::remove_file_if_exists(&part)?;
                    if attempt == 1 || have == 0 {
                        return Err(Error::BadDownload {
                            mailbox: self.mailbox.clone(),
                            name: s.name.clone(),
                            source: e,
                        });
                    }
                    tracing::warn!(segment = %s.name, "resumed download failed verification ({e}); downloading it whole");
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// One HTTP request: appends the body to `part` (from offset `have`),
    /// returns the body bytes received.
    async fn fetch_into(
        &self,
        service: &Service,
        listing: &OfflineRepositoryListing,
        s: &SegmentRef,
        part: &Path,
        have: u64,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let (mut resp, start) = service.segment(listing, &s.name, have).await?;
        let mut opts = OpenOptions::new();
        opts.create(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(part).map_err(|e| Error::io(part, e))?;
        // The service may ignore the range and send everything: start over.
        file.set_len(start).map_err(|e| Error::io(part, e))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(start))
            .map_err(|e| Error::io(part, e))?;
        let mut written = start;
        let mut received = 0u64;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived (it is flushed by the writes): the
                    // next sync resumes from there.
                    return Err(Error::api(service.server(), e.into()));
                }
            };
            received += chunk.len() as u64;
            written += chunk.len() as u64;
            if written > s.size {
                fsutil::remove_file_if_exists(part)?;
                return Err(Error::Protocol {
                    what: format!("segment {}", s.name),
                    reason: format!("more than the {} bytes the manifest says", s.size),
                });
            }
            file.write_all(&chunk).map_err(|e| Error::io(part, e))?;
            progress.advance(chunk.len() as u64);
        }
        Ok(received)
    }
}

#[derive(Default)]
struct Download {
    bytes: u64,
    resumed: bool,
}
