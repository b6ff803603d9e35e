//! Disk repositories: packs as files in a folder.
//!
//! A pack is written to a temporary name, fsynced, renamed to its final name,
//! and the folder is fsynced; only then may the catalog name it.

use super::PackStore;
use crate::error::{IoContext, Result};
use crate::store::{Span, pack_key};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A pack being written is `.NAME.tmp` until it is complete and fsynced.
const TMP_SUFFIX: &str = ".tmp";

pub struct DiskRepository {
    dir: PathBuf,
}

impl DiskRepository {
    pub fn new(dir: PathBuf) -> Self {
        DiskRepository { dir }
    }

    fn pack_path(&self, name: &str) -> PathBuf {
        self.dir.join(pack_key(name))
    }
}

impl PackStore for DiskRepository {
    fn put_pack(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.pack_path(name);
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&dir).at(&dir)?;
        let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
        let written = (|| {
            let mut file = File::create(&tmp).at(&tmp)?;
            file.write_all(&bytes).at(&tmp)?;
            file.sync_all().at(&tmp)?;
            fs::rename(&tmp, &path).at(&path)
        })();
        if let Err(e) = written {
            // A full disk must not keep the partial pack: it holds the space the
            // next attempt needs. (Nothing names it; removing it loses nothing.)
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&dir)
    }

    fn read_span(&self, name: &str, span: Span) -> Result<Vec<u8>> {
        let path = self.pack_path(name);
        let mut file = File::open(&path).at(&path)?;
        file.seek(SeekFrom::Start(span.offset)).at(&path)?;
        let mut frame = vec![0u8; span.length as usize];
        file.read_exact(&mut frame).at(&path)?;
        Ok(frame)
    }
}

/// Removes the temporary packs (`.NAME.tmp`) that a write cut short (a crash,
/// a full disk) left in these repository folders. Only pack folders are
/// looked at, and only files ending in the temporary suffix: the catalog never
/// names such a file. Failures are logged, never fatal: a leftover costs only
/// space.
pub fn remove_temporaries(repo_dirs: &[PathBuf]) -> usize {
    let mut removed = 0;
    for repo_dir in repo_dirs {
        let Ok(subdirs) = fs::read_dir(repo_dir.join("packs")) else {
            continue;
        };
        for sub in subdirs.flatten() {
            let Ok(files) = fs::read_dir(sub.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                if !name.to_string_lossy().ends_with(TMP_SUFFIX) {
                    continue;
                }
                match fs::remove_file(file.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!(path = %file.path().display(), error = %e,
                        "cannot remove a temporary pack"),
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed temporary packs left by an interrupted write"
        );
    }
    removed
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
