//! `satchel backup`: a consistent copy of the catalog and the disk
//! repositories, written by the running service into a folder on its
//! machine (docs/backup.md; the layout is satchel-archive's
//! [`satchel_archive::backup`]).
//!
//! The catalog is copied first (SQLite's online backup: one moment), then
//! every pack that copy names. Packs never change once the catalog names
//! them, so imports may go on meanwhile: what they add after the snapshot is
//! simply not in the backup. `backup.json`, written last, marks the backup
//! complete.

use crate::audit::action;
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use satchel_api as api;
use satchel_archive::backup::{
    self, BackupManifest, CATALOG_FILE, FORMAT, MANIFEST_FILE, NamedPack, PackCopy,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl Service {
    /// Writes a backup into `dir` (absolute, absent or empty, outside the
    /// data folder). Administrators only; audited before anything is
    /// written.
    pub fn backup(&self, caller: &Caller, dir: &str) -> Result<api::BackupReport> {
        caller.require_admin()?;
        let started = Instant::now();
        let dir = PathBuf::from(dir);
        self.check_backup_dir(&dir)?;
        self.audit(caller, action::BACKUP, serde_json::json!({ "dir": dir }))?;
        let catalog = dir.join(CATALOG_FILE);
        self.archive.catalog()?.backup_to(&catalog)?;
        let contents = backup::read_catalog_copy(&catalog)?;
        let packs = self.copy_packs(&dir, &catalog, &contents.packs)?;
        let (catalog_bytes, catalog_sha256) = backup::hash_file(&catalog)?;
        let manifest = BackupManifest {
            format: FORMAT,
            created: chrono::Utc::now().timestamp(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            catalog_sha256,
            catalog_bytes,
            packs,
            not_copied: contents.other_repositories.clone(),
        };
        write_manifest(&dir, &manifest)?;
        tracing::info!(dir = %dir.display(), packs = manifest.packs.len(), "backup written");
        Ok(api::BackupReport {
            dir: dir.display().to_string(),
            mailboxes: contents.mailboxes,
            messages: contents.messages,
            packs: manifest.packs.len() as u64,
            pack_bytes: manifest.packs.iter().map(|p| p.size).sum(),
            catalog_bytes,
            not_copied: manifest.not_copied,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Refuses a relative folder, one inside the data folder, or a
    /// non-empty one; creates it when absent.
    fn check_backup_dir(&self, dir: &Path) -> Result<()> {
        if !dir.is_absolute() {
            return Err(ServiceError::BadRequest(format!(
                "backup folder {}: give an absolute path (a folder on the service's machine)",
                dir.display()
            )));
        }
        if let Ok(root) = self.archive.root().canonicalize()
            && canonical_so_far(dir).starts_with(&root)
        {
            return Err(ServiceError::BadRequest(format!(
                "backup folder {} is inside the data folder {}: choose another",
                dir.display(),
                root.display()
            )));
        }
        let io = |e: std::io::Error| ServiceError::BadRequest(format!("{}: {e}", dir.display()));
        match std::fs::read_dir(dir) {
            Ok(mut entries) => match entries.next() {
                Some(_) => Err(ServiceError::Conflict(format!(
                    "backup folder {} is not empty: back up into a new folder",
                    dir.display()
                ))),
                None => Ok(()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Copies every named pack into `dir`, where its repository's folder lies
    /// relative to the backup; a repository recorded outside the data folder
    /// (an absolute path) goes to `repositories/<name>` and the catalog copy
    /// is told so.
    fn copy_packs(&self, dir: &Path, catalog: &Path, packs: &[NamedPack]) -> Result<Vec<PackCopy>> {
        let mut copied = Vec::with_capacity(packs.len());
        let mut moved: Vec<(String, PathBuf)> = Vec::new();
        for pack in packs {
            let from = self
                .archive
                .resolve(&pack.repo_path)
                .join(satchel_archive::store::pack_key(&pack.name));
            let mut inside = pack.clone();
            if !backup::stays_inside(&pack.repo_path) {
                inside.repo_path = own_folder(&pack.repo)?;
                if !moved.iter().any(|(r, _)| r == &pack.repo) {
                    moved.push((pack.repo.clone(), inside.repo_path.clone()));
                }
            }
            let to = inside.file_in(dir);
            let (size, sha256) = backup::copy_hashed(&from, &to)?;
            if size != pack.size {
                return Err(ServiceError::Internal(format!(
                    "pack {} has {size} bytes, the catalog says {}",
                    from.display(),
                    pack.size
                )));
            }
            if let Some(parent) = to.parent() {
                backup::sync_dirs_up_to(parent, dir)?;
            }
            copied.push(PackCopy {
                repo: pack.repo.clone(),
                name: pack.name.clone(),
                size,
                sha256,
            });
        }
        for (repo, path) in moved {
            backup::set_repository_path(catalog, &repo, &path)?;
        }
        Ok(copied)
    }
}

/// `path` with its longest existing beginning resolved (symbolic links,
/// `..`) and the rest as given: where a folder not made yet would be.
fn canonical_so_far(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = at.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `repositories/<name>`: where a repository from outside the data folder
/// is put in a backup (and so in the restored data folder).
fn own_folder(repo: &str) -> Result<PathBuf> {
    let path = Path::new("repositories").join(repo);
    if backup::stays_inside(&path) && path.components().count() == 2 {
        Ok(path)
    } else {
        Err(ServiceError::Internal(format!(
            "repository name {repo:?} cannot name a folder in the backup"
        )))
    }
}

/// Writes `backup.json` under a temporary name, fsynced, then renames it:
/// it appears whole or not at all.
fn write_manifest(dir: &Path, manifest: &BackupManifest) -> Result<()> {
    let tmp = dir.join(format!(".{MANIFEST_FILE}.tmp"));
    let fail = |e: std::io::Error| ServiceError::Internal(format!("{}: {e}", tmp.display()));
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| ServiceError::Internal(format!("backup manifest: {e}")))?;
    let mut file = std::fs::File::create_new(&tmp).map_err(fail)?;
    std::io::Write::write_all(&mut file, &json).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, dir.join(MANIFEST_FILE)).map_err(fail)?;
    backup::sync_dirs_up_to(dir, dir)?;
    Ok(())
}
