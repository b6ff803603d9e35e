//! `satchel backup DIR` (the running service writes a backup into DIR on its
//! machine) and `satchel restore DIR --data NEW` (local: checks the backup
//! and makes a new data folder from it). docs/backup.md.

use super::Remote;
use crate::output;
use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use satchel_archive::backup::{
    self, BackupManifest, CATALOG_FILE, CatalogContents, FORMAT, MANIFEST_FILE, PackCopy,
};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct BackupArgs {
    /// An absolute folder ON THE SERVICE'S MACHINE, absent or empty, outside
    /// its data folder.
    dir: PathBuf,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A folder `satchel backup` wrote (on this machine).
    dir: PathBuf,
    /// The new data folder to make (absent or empty).
    #[arg(long)]
    data: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// What `satchel restore` made.
#[derive(Serialize)]
struct Restored {
    data: String,
    mailboxes: u64,
    messages: u64,
    packs: u64,
    pack_bytes: u64,
    /// Repositories whose packs the backup does not hold (S3).
    not_copied: Vec<String>,
}

const KEY_NOTE: &str = "the secret key (the data folder's .key file or SATCHEL_KEY) \
     is not in a backup: keep it apart and give it to the restored service";

pub async fn backup(a: BackupArgs) -> Result<ExitCode> {
    ensure!(
        a.dir.is_absolute(),
        "{}: give an absolute path, a folder on the service's machine",
        a.dir.display()
    );
    let dir = a.dir.to_string_lossy().into_owned();
    let bar = spinner(
        a.remote.json,
        &format!("backing up into {dir} (on the service)"),
    );
    let report = a.remote.client()?.backup(&dir).await;
    bar.finish_and_clear();
    let report = report?;
    if a.remote.json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "backed up {} mailboxes, {} messages: catalog {}, {} packs {} into {} ({:.1} s)",
        report.mailboxes,
        report.messages,
        output::bytes(report.catalog_bytes),
        report.packs,
        output::bytes(report.pack_bytes),
        report.dir,
        report.seconds
    );
    say_not_copied(&report.not_copied);
    println!("not copied: the search index (rebuilt by the restored service); {KEY_NOTE}");
    Ok(ExitCode::SUCCESS)
}

pub fn restore(a: RestoreArgs) -> Result<ExitCode> {
    let manifest = read_manifest(&a.dir)?;
    let catalog = a.dir.join(CATALOG_FILE);
    let (size, sha) = backup::hash_file(&catalog)?;
    ensure!(
        size == manifest.catalog_bytes && sha == manifest.catalog_sha256,
        "{}: the catalog copy does not match backup.json (damaged backup)",
        catalog.display()
    );
    let contents = backup::read_catalog_copy(&catalog)?;
    start_new_folder(&a.data)?;
    let restored = copy_into(&a, &manifest, &contents);
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            // Only what this command made goes: NEW was empty.
            clear_folder(&a.data);
            return Err(e);
        }
    };
    if a.json {
        output::json(&restored)?;
    } else {
        println!(
            "restored {} mailboxes, {} messages, {} packs ({}) into {}",
            restored.mailboxes,
            restored.messages,
            restored.packs,
            output::bytes(restored.pack_bytes),
            restored.data
        );
        say_not_copied(&restored.not_copied);
        println!(
            "every pack checked (size and SHA-256); the search index is rebuilt when the service starts; {KEY_NOTE}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_manifest(dir: &Path) -> Result<BackupManifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "{}: not a complete backup (no {MANIFEST_FILE}; a backup cut short has none)",
            dir.display()
        )
    })?;
    let manifest: BackupManifest =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        manifest.format == FORMAT,
        "{}: backup format {} (this satchel reads {FORMAT})",
        path.display(),
        manifest.format
    );
    Ok(manifest)
}

/// Creates `data`, or accepts it empty; refuses anything else.
fn start_new_folder(data: &Path) -> Result<()> {
    match std::fs::read_dir(data) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: restore into a new data folder",
                    data.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", data.display())),
    }
}

/// Removes what a failed restore wrote into `data` (which was empty).
fn clear_folder(data: &Path) {
    if let Ok(entries) = std::fs::read_dir(data) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Copies every pack the catalog copy names into `a.data`, each checked
/// against backup.json (size and SHA-256) as it is copied, then the catalog.
fn copy_into(a: &RestoreArgs, m: &BackupManifest, c: &CatalogContents) -> Result<Restored> {
    let listed: HashMap<(&str, &str), &PackCopy> = m
        .packs
        .iter()
        .map(|p| ((p.repo.as_str(), p.name.as_str()), p))
        .collect();
    let bar = progress(a.json, c.packs.len() as u64);
    let mut bytes = 0;
    for pack in &c.packs {
        ensure!(
            backup::stays_inside(&pack.repo_path),
            "repository {} is recorded at {}, outside the backup (damaged backup)",
            pack.repo,
            pack.repo_path.display()
        );
        let Some(want) = listed.get(&(pack.repo.as_str(), pack.name.as_str())) else {
            bail!(
                "pack {} of repository {} is named by the catalog but not in backup.json",
                pack.name,
                pack.repo
            );
        };
        let from = pack.file_in(&a.dir);
        ensure!(
            from.is_file(),
            "{}: missing from the backup",
            from.display()
        );
        let to = pack.file_in(&a.data);
        let (size, sha) = backup::copy_hashed(&from, &to)?;
        ensure!(
            size == pack.size && size == want.size && sha == want.sha256,
            "{}: {size} bytes, SHA-256 {sha}; the backup recorded {} bytes, {} (damaged)",
            from.display(),
            want.size,
            want.sha256
        );
        if let Some(dir) = to.parent() {
            backup::sync_dirs_up_to(dir, &a.data)?;
        }
        bytes += size;
        bar.inc(1);
    }
    bar.finish_and_clear();
    backup::copy_hashed(&a.dir.join(CATALOG_FILE), &a.data.join(CATALOG_FILE))?;
    backup::sync_dirs_up_to(&a.data, &a.data)?;
    Ok(Restored {
        data: a.data.display().to_string(),
        mailboxes: c.mailboxes,
        messages: c.messages,
        packs: c.packs.len() as u64,
        pack_bytes: bytes,
        not_copied: c.other_repositories.clone(),
    })
}

fn say_not_copied(repos: &[String]) {
    if !repos.is_empty() {
        println!(
            "not copied: the packs of {} (S3: back the bucket up with its own tools)",
            repos.join(", ")
        );
    }
}

fn spinner(json: bool, message: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

fn progress(json: bool, packs: u64) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(packs);
    if let Ok(style) =
        ProgressStyle::with_template("checking and copying packs {bar:30} {pos}/{len}")
    {
        bar.set_style(style);
    }
    bar
}
