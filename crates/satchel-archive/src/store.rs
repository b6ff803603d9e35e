//! The blob store: compressed messages in immutable *packs* inside a repository.
//!
//! Why packs and not a file per message: durability costs an fsync, and an fsync
//! costs ~0.2 ms here. One pack per import batch makes a thousand messages durable
//! with one fsync of the pack and one of its folder. A pack is written to a
//! temporary name, fsynced, renamed to the SHA-256 of its bytes, and the folder is
//! fsynced; only then may the catalog name it.
//!
//! Pack layout (version 1): the 8 bytes `SATPACK1`, then one zstd frame per message.
//! The catalog records each message's offset and length in its pack.

use crate::error::{IoContext, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const PACK_MAGIC: &[u8; 8] = b"SATPACK1";
/// zstd level for archived messages: level 3 is zstd's own default, fast enough to
/// keep an import well above the disk's fsync rate.
pub const LEVEL: i32 = 3;
/// A pack being written is `.NAME.tmp` until it is complete and fsynced.
const TMP_SUFFIX: &str = ".tmp";

/// Where one message sits inside a pack.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub offset: u64,
    pub length: u64,
}

#[derive(Clone, Debug)]
pub struct PackRef {
    pub name: String,
    pub size: u64,
    pub spans: Vec<Span>,
}

pub fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(raw, LEVEL)
}

fn pack_path(repo_dir: &Path, name: &str) -> PathBuf {
    repo_dir
        .join("packs")
        .join(&name[..2])
        .join(format!("{name}.pack"))
}

/// Writes already compressed frames as one durable pack and returns where each landed.
pub fn write_pack(repo_dir: &Path, frames: &[&[u8]]) -> Result<PackRef> {
    let mut bytes = Vec::with_capacity(8 + frames.iter().map(|f| f.len()).sum::<usize>());
    bytes.extend_from_slice(PACK_MAGIC);
    let mut spans = Vec::with_capacity(frames.len());
    for frame in frames {
        spans.push(Span {
            offset: bytes.len() as u64,
            length: frame.len() as u64,
        });
        bytes.extend_from_slice(frame);
    }
    let name = hex::encode(Sha256::digest(&bytes));
    let path = pack_path(repo_dir, &name);
    let dir = path.parent().unwrap_or(repo_dir).to_path_buf();
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
    sync_dir(&dir)?;
    Ok(PackRef {
        name,
        size: bytes.len() as u64,
        spans,
    })
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

/// Reads and decompresses one message from a pack.
pub fn read_blob(repo_dir: &Path, pack: &str, span: Span, raw_size: u64) -> Result<Vec<u8>> {
    let path = pack_path(repo_dir, pack);
    let mut file = OpenOptions::new().read(true).open(&path).at(&path)?;
    file.seek(SeekFrom::Start(span.offset)).at(&path)?;
    let mut frame = vec![0u8; span.length as usize];
    file.read_exact(&mut frame).at(&path)?;
    // The catalog knows the exact size, so decompression never needs to guess.
    zstd::bulk::decompress(&frame, raw_size as usize).at(&path)
}
