//! What `satchel backup` writes and `satchel restore` reads (docs/backup.md):
//! a folder with a consistent copy of the SQLite catalog (`catalog.sqlite`,
//! SQLite's online backup), the packs of every disk repository the copy
//! names (at the same place relative to the folder as in a data folder), and
//! `backup.json`, written last, with each pack's size and SHA-256.
//!
//! Packs are immutable and written before the catalog names them, so the
//! packs a catalog snapshot names can be copied after the snapshot while the
//! service keeps importing. The search index, the offline repositories and
//! the node's name are not in a backup: the restored service rebuilds the
//! index from the membership log and the offline repositories at their next
//! update, and names itself anew.

use crate::catalog::{Catalog, Dialect};
use crate::error::{ArchiveError, IoContext, Result};
use crate::repository::disk::sync_dir;
use crate::store::pack_key;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The catalog copy in a backup folder (and in a data folder).
pub const CATALOG_FILE: &str = "catalog.sqlite";
/// The backup's description, written last: a folder without it is not a
/// complete backup.
pub const MANIFEST_FILE: &str = "backup.json";
/// The version of [`BackupManifest`]'s layout.
pub const FORMAT: u32 = 1;

/// `backup.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: u32,
    /// Unix seconds when the catalog was copied.
    pub created: i64,
    /// The satchel version that wrote it.
    pub version: String,
    /// SHA-256 (hex) of `catalog.sqlite` as written.
    pub catalog_sha256: String,
    pub catalog_bytes: u64,
    /// The copied packs of the disk repositories.
    pub packs: Vec<PackCopy>,
    /// Repositories whose packs are not in the backup (S3: back up the
    /// bucket with the provider's tools).
    pub not_copied: Vec<String>,
}

/// One copied pack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackCopy {
    pub repo: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A pack a catalog names, in a disk repository.
#[derive(Clone, Debug)]
pub struct NamedPack {
    pub repo: String,
    pub name: String,
    /// The size the catalog records.
    pub size: u64,
    /// The repository's folder as the catalog records it.
    pub repo_path: PathBuf,
}

impl NamedPack {
    /// Where the pack lies under `root` (a data or backup folder) when its
    /// repository's recorded folder is relative.
    pub fn file_in(&self, root: &Path) -> PathBuf {
        root.join(&self.repo_path).join(pack_key(&self.name))
    }
}

/// What a catalog copy holds, read from its file.
#[derive(Clone, Debug, Default)]
pub struct CatalogContents {
    pub packs: Vec<NamedPack>,
    /// Repositories that are not disk folders (their packs are elsewhere).
    pub other_repositories: Vec<String>,
    pub mailboxes: u64,
    pub messages: u64,
}

impl Catalog {
    /// Writes a consistent copy of this catalog to the new file `dest`:
    /// SQLite's online backup in one step, a snapshot as of one moment, while
    /// other connections keep writing. A PostgreSQL catalog is refused
    /// before anything is written: pg_dump is its tool.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let conn = match self.db().dialect() {
            Dialect::Sqlite => self.db().sqlite_conn(),
            Dialect::Postgres => None,
        };
        let Some(conn) = conn else {
            return Err(ArchiveError::Invalid {
                what: "backup",
                why: "the catalog is in PostgreSQL: back it up with pg_dump \
                      (satchel backup copies only a SQLite catalog)"
                    .into(),
            });
        };
        if dest.exists() {
            return Err(ArchiveError::Exists(dest.display().to_string()));
        }
        let mut out = Connection::open(dest)?;
        // All pages in one step: one read transaction, so one moment.
        let step = rusqlite::backup::Backup::new(conn, &mut out)?.step(-1)?;
        if step != rusqlite::backup::StepResult::Done {
            return Err(ArchiveError::Invalid {
                what: "backup",
                why: format!("the catalog copy did not complete ({step:?}): try again"),
            });
        }
        out.pragma_update(None, "journal_mode", "DELETE")?;
        drop(out);
        File::open(dest).and_then(|f| f.sync_all()).at(dest)
    }
}

/// Reads the catalog copy at `path` (never writing it): its disk packs, its
/// other repositories, its counts.
pub fn read_catalog_copy(path: &Path) -> Result<CatalogContents> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut out = CatalogContents::default();
    let mut repos = conn.prepare("SELECT name, kind, path FROM repositories ORDER BY name")?;
    let rows = repos.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut disk = Vec::new();
    for row in rows {
        let (name, kind, path): (String, String, String) = row?;
        if kind == "disk" {
            disk.push((name, PathBuf::from(path)));
        } else {
            out.other_repositories.push(name);
        }
    }
    let mut packs = conn.prepare("SELECT name, size FROM packs WHERE repo = ?1 ORDER BY name")?;
    for (repo, repo_path) in disk {
        let rows = packs.query_map([repo.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (name, size) = row?;
            out.packs.push(NamedPack {
                repo: repo.clone(),
                name,
                size: size.max(0) as u64,
                repo_path: repo_path.clone(),
            });
        }
    }
    let count = |table: &str| -> Result<u64> {
        let n: Option<i64> = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    };
    out.mailboxes = count("mailboxes")?;
    out.messages = count("messages")?;
    Ok(out)
}

/// Records `path` as the folder of repository `repo` in the catalog copy at
/// `catalog` (a repository outside the data folder is copied inside it).
pub fn set_repository_path(catalog: &Path, repo: &str, path: &Path) -> Result<()> {
    let conn = Connection::open(catalog)?;
    conn.execute(
        "UPDATE repositories SET path = ?1 WHERE name = ?2",
        (path.to_string_lossy().into_owned(), repo),
    )?;
    Ok(())
}

/// Whether `path` is relative and stays below the folder it is joined to
/// (no `..`, no root): a path a backup may write or read inside itself.
pub fn stays_inside(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

/// Copies `src` to the new file `dst` (its folder created), fsynced;
/// returns its size and SHA-256 (hex).
pub fn copy_hashed(src: &Path, dst: &Path) -> Result<(u64, String)> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let mut to = File::create_new(dst).at(dst)?;
    let hashed = read_hashed(src, |piece| to.write_all(piece).at(dst))?;
    to.sync_all().at(dst)?;
    Ok(hashed)
}

/// The size and SHA-256 (hex) of the file at `path`.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    read_hashed(path, |_| Ok(()))
}

/// Reads the file at `path` in pieces, handing each to `each`; returns its
/// size and SHA-256 (hex).
fn read_hashed(path: &Path, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<(u64, String)> {
    let mut file = File::open(path).at(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok((size, hex::encode(hash.finalize())));
        }
        hash.update(&buf[..n]);
        each(&buf[..n])?;
        size += n as u64;
    }
}

/// Fsyncs every folder from `dir` up to and including `root`, so new
/// entries in them are durable.
pub fn sync_dirs_up_to(dir: &Path, root: &Path) -> Result<()> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        sync_dir(cur)?;
        if cur == root {
            break;
        }
        d = cur.parent();
    }
    Ok(())
}
