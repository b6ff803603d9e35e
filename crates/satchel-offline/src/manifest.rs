//! The manifest: the one mutable file of a repository.
//!
//! Everything else is immutable and named by its hash, so "what is the
//! current state" is exactly "what does manifest.json say". It is replaced
//! atomically (write, fsync, rename, fsync the directory), so a reader sees
//! either the old or the new state, never a mix.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::segment::{SegmentInfo, is_valid_segment_name};

/// Manifest format version written in `"format"`.
pub const MANIFEST_FORMAT: u32 = 1;
/// File name of the manifest inside a repository directory.
pub const MANIFEST_FILE: &str = "manifest.json";
const MANIFEST_TMP: &str = "manifest.json.tmp";

/// One segment as named by the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Hex SHA-256 of the segment file: its name and its checksum.
    pub name: String,
    /// File size in bytes (lets a client check a download before hashing it,
    /// and resume it with a Range request).
    pub size: u64,
    pub messages: u64,
    pub tombstones: u64,
}

impl From<&SegmentInfo> for SegmentRef {
    fn from(i: &SegmentInfo) -> Self {
        SegmentRef {
            name: i.name.clone(),
            size: i.size,
            messages: i.messages,
            tombstones: i.tombstones,
        }
    }
}

/// Summary figures, so a listing need not open segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub segments: u64,
    /// Sum of segment sizes: what a fresh client downloads.
    pub bytes: u64,
    /// Live messages (after tombstones).
    pub messages: u64,
}

/// The state of one mailbox's offline repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version; readers reject versions they do not know.
    pub format: u32,
    pub mailbox: String,
    /// Changes on flush; a client seeing a new epoch drops its local copy.
    pub epoch: String,
    /// Grows by one on every change of the manifest, flush included.
    pub generation: u64,
    /// RFC 3339 UTC time of this generation.
    pub updated: String,
    /// Ordered: later segments' tombstones hide earlier segments' messages.
    pub segments: Vec<SegmentRef>,
    pub totals: Totals,
}

impl Manifest {
    /// An empty manifest (generation 0, no segments) for `mailbox`.
    pub fn new(mailbox: &str, epoch: &str) -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            mailbox: mailbox.to_string(),
            epoch: epoch.to_string(),
            generation: 0,
            updated: fsutil::now_rfc3339(),
            segments: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// The HTTP entity tag of this manifest: `"<epoch>-<generation>"`.
    /// Every change bumps the generation and a flush changes the epoch, so
    /// equal tags mean equal manifests (for one mailbox).
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.epoch, self.generation)
    }

    /// Recomputes `totals.segments` and `totals.bytes` from the segment list
    /// (live message count must be supplied: it depends on tombstones).
    pub fn set_totals(&mut self, live_messages: u64) {
        self.totals = Totals {
            segments: self.segments.len() as u64,
            bytes: self.segments.iter().map(|s| s.size).sum(),
            messages: live_messages,
        };
    }

    /// The path of the manifest in repository directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Serialises the manifest as pretty JSON (stable field order).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs with string keys: serialisation cannot fail.
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }

    /// Parses and validates manifest JSON (`path` only labels errors).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct FormatOnly {
            format: u32,
        }
        // Check the version first, so a future manifest with a different
        // shape gets "unsupported format", not a confusing parse error.
        let head: FormatOnly =
            serde_json::from_slice(bytes).map_err(|source| Error::ManifestParse {
                path: path.to_path_buf(),
                source,
            })?;
        if head.format != MANIFEST_FORMAT {
            return Err(Error::UnsupportedManifestFormat {
                path: path.to_path_buf(),
                format: head.format,
            });
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|source| Error::ManifestParse {
            path: path.to_path_buf(),
            source,
        })?;
        m.validate(path)?;
        Ok(m)
    }

    /// Checks the rules JSON alone cannot express: segment names are names,
    /// none twice, totals agree with the list.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let invalid = |reason: String| Error::InvalidManifest {
            path: path.to_path_buf(),
            reason,
        };
        if self.mailbox.is_empty() {
            return Err(invalid("empty mailbox".into()));
        }
        if self.epoch.is_empty() {
            return Err(invalid("empty epoch".into()));
        }
        let mut seen = HashSet::new();
        for s in &self.segments {
            if !is_valid_segment_name(&s.name) {
                return Err(invalid(format!("{:?} is not a segment name", s.name)));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(format!("segment {} is listed twice", s.name)));
            }
        }
        if self.totals.segments != self.segments.len() as u64
            || self.totals.bytes != self.segments.iter().map(|s| s.size).sum::<u64>()
        {
            return Err(invalid("totals do not match the segment list".into()));
        }
        Ok(())
    }

    /// Loads `dir/manifest.json`. A missing file is [`Error::NoRepository`].
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Manifest::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NoRepository(dir.to_path_buf()));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        Manifest::from_json(&bytes, &path)
    }

    /// Replaces `dir/manifest.json` atomically and durably: write
    /// manifest.json.tmp, fsync, rename, fsync the directory.
    pub fn write_atomic(&self, dir: &Path) -> Result<()> {
        self.validate(&Manifest::path(dir))?;
        fsutil::write_atomic(dir, MANIFEST_FILE, MANIFEST_TMP, &self.to_json())?;
        Ok(())
    }
}

/// A fresh epoch string: 16 hex digits, different on every call.
pub fn new_epoch() -> String {
    hex::encode(&fsutil::random_bytes16()[..8])
}
