//! What the local search index holds, per mailbox
//! (`<home>/index/satchel-laptop-index-state.json`).
//!
//! A sync used to find its index work by reading every indexed id back from
//! tantivy and comparing it with every live id of the copy: minutes at
//! 150,000 messages even when nothing had changed. This file records, for
//! each mailbox, the manifest (epoch, generation, segment names) the index
//! was last brought up to; the next update then reads only the segments
//! added since and the segments dropped since, and a sync with an unchanged
//! manifest does no index work at all.
//!
//! It is written after the tantivy commit it describes. Killed in between,
//! the file names an older manifest than the index holds: the next update
//! redoes the difference, and that is harmless because it adds only what
//! tantivy does not hold and removes only what it does. A missing, damaged
//! or unknown file means "nothing known": a full reconciliation, as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use satchel_offline::Manifest;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;

const STATE_FILE: &str = "satchel-laptop-index-state.json";
/// Bumped when the meaning of the file changes: an older file is ignored.
const STATE_FORMAT: u32 = 1;

/// The manifest one mailbox's documents were last brought up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Indexed {
    pub epoch: String,
    pub generation: u64,
    /// The manifest's segment names, in its order.
    pub segments: Vec<String>,
}

impl Indexed {
    pub fn of(manifest: &Manifest) -> Indexed {
        Indexed {
            epoch: manifest.epoch.clone(),
            generation: manifest.generation,
            segments: manifest.segments.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// True if the index already matches `manifest`.
    pub fn is_at(&self, manifest: &Manifest) -> bool {
        *self == Indexed::of(manifest)
    }
}

/// Every mailbox's [`Indexed`], as read from (and written to) the index
/// folder.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct IndexState {
    format: u32,
    mailboxes: BTreeMap<String, Indexed>,
}

impl IndexState {
    fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// The state in index folder `dir`; empty (everything unknown) if the
    /// file is missing, unreadable or of another format.
    pub fn load(dir: &Path) -> IndexState {
        let path = IndexState::path(dir);
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<IndexState>(&b).ok());
        match parsed {
            Some(s) if s.format == STATE_FORMAT => s,
            Some(_) => {
                tracing::info!("{}: another format; reconciling fully", path.display());
                IndexState::default()
            }
            None => IndexState::default(),
        }
    }

    /// Forgets everything (the index was created empty).
    pub fn remove(dir: &Path) -> Result<()> {
        fsutil::remove_file_if_exists(&IndexState::path(dir))
    }

    pub fn get(&self, mailbox: &str) -> Option<&Indexed> {
        self.mailboxes.get(mailbox)
    }

    /// Records `mailbox` as indexed up to `indexed` (`None`: not indexed)
    /// and writes the file atomically.
    pub fn save(mut self, dir: &Path, mailbox: &str, indexed: Option<Indexed>) -> Result<()> {
        match indexed {
            Some(i) => self.mailboxes.insert(mailbox.to_string(), i),
            None => self.mailboxes.remove(mailbox),
        };
        self.format = STATE_FORMAT;
        // Plain strings and numbers: serialisation cannot fail.
        let bytes = serde_json::to_vec(&self).expect("index state serialises");
        fsutil::write_private(&IndexState::path(dir), &bytes)
    }
}
