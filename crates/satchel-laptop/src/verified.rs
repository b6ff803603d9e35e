//! Which local segments were hash-checked, and what their files looked like
//! then (`<replica>/verified.json`).
//!
//! Every sync checks each segment the manifest names; re-hashing a whole
//! copy (1.46 GB for a million messages) on every sync cost half a minute.
//! A segment whose file has the same size, modification time, change time
//! and inode as when it was last hashed is taken as verified; any other file
//! (new, replaced, written to, touched) is hashed again. The change time
//! cannot be set back by a program, so a segment written in place is hashed
//! again even if its modification time was restored. `satchel laptop verify`
//! still re-hashes everything, and every message read is checked against its
//! id whatever this file says.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use satchel_offline::{SegmentRef, VerifyError, verify_segment_file};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;

const VERIFIED_FILE: &str = "verified.json";

/// What a segment file looked like when it was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
            Stamp {
                size: meta.len(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            Stamp {
                size: meta.len(),
                mtime_ns,
                ctime_ns: 0,
                inode: 0,
            }
        }
    }
}

/// The verified segments of one local copy.
#[derive(Debug)]
pub(crate) struct Verified {
    path: PathBuf,
    stamps: HashMap<String, Stamp>,
}

impl Verified {
    /// Reads the record of the copy in `dir`; a missing or unreadable one is
    /// empty (everything is hashed again).
    pub(crate) fn load(dir: &Path) -> Verified {
        let path = dir.join(VERIFIED_FILE);
        let stamps = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Verified { path, stamps }
    }

    /// Removes the record of the copy in `dir` (its copy is dropped).
    pub(crate) fn remove(dir: &Path) -> Result<()> {
        fsutil::remove_file_if_exists(&dir.join(VERIFIED_FILE))
    }

    /// Checks the segment file at `path` against `s`: `Ok(false)` if it is
    /// the very file hashed before, `Ok(true)` if it was hashed now and
    /// matches; else the error of [`verify_segment_file`].
    pub(crate) fn check(&mut self, path: &Path, s: &SegmentRef) -> Result<bool, VerifyError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(VerifyError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(VerifyError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        // Taken before hashing: a file changed while it is hashed has
        // another stamp next time, so it is hashed again then.
        let before = Stamp::of(&meta);
        if before.size == s.size && self.stamps.get(&s.name) == Some(&before) {
            return Ok(false);
        }
        self.stamps.remove(&s.name);
        verify_segment_file(path, &s.name, s.size)?;
        self.stamps.insert(s.name.clone(), before);
        Ok(true)
    }

    /// Records segment `name` at `path`, just installed after its hash was
    /// checked.
    pub(crate) fn record(&mut self, path: &Path, name: &str) -> Result<()> {
        let meta = fs::metadata(path).map_err(|e| crate::error::Error::io(path, e))?;
        self.stamps.insert(name.to_string(), Stamp::of(&meta));
        Ok(())
    }

    /// Keeps only the segments `named`, and writes the record.
    pub(crate) fn save(mut self, named: &HashSet<&str>) -> Result<()> {
        self.stamps.retain(|name, _| named.contains(name.as_str()));
        let bytes = serde_json::to_vec(&self.stamps).unwrap_or_default();
        fsutil::write_private(&self.path, &bytes)
    }
}
