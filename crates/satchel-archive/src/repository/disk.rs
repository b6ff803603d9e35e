//! Disk repositories: packs as files in a folder.
//!
//! A pack is written to a temporary name, fsynced, renamed to its final name,
//! and the folder is fsynced; only then may the catalog name it.

use super::{PackStore, StoredPack, pack_name_of};
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

    fn delete_pack(&self, name: &str) -> Result<()> {
        let path = self.pack_path(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).at(&path),
        }
        sync_dir(path.parent().unwrap_or(&self.dir))
    }

    fn list_packs(&self) -> Result<Vec<StoredPack>> {
        let root = self.dir.join("packs");
        let mut packs = Vec::new();
        let fans = match fs::read_dir(&root) {
            Ok(fans) => fans,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(packs),
            Err(e) => return Err(e).at(&root),
        };
        for fan in fans {
            let fan = fan.at(&root)?.path();
            if !fan.is_dir() {
                continue;
            }
            for file in fs::read_dir(&fan).at(&fan)? {
                let file = file.at(&fan)?;
                let file_name = file.file_name().to_string_lossy().into_owned();
                let Some(name) = pack_name_of(&file_name) else {
                    continue;
                };
                let meta = file.metadata().at(file.path())?;
                packs.push(StoredPack {
                    name: name.to_string(),
                    size: meta.len(),
                    modified: meta.modified().at(file.path())?,
                });
            }
        }
        Ok(packs)
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
