//! The laptops' homes: one real home set up and synced with the laptop's own
//! code (`satchel_laptop::setup`, `sync_all`: copy and local index), then one
//! home per simulated laptop, each set up with its own API token and holding
//! a clone of that copy. Files of 64 KiB and more (segments, index
//! segments) are hard links: the format never writes them in place (a new
//! file is renamed over, an old one deleted), so each home still has a
//! copy of its own; smaller files (manifest, ETag, index metadata) are copied.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use satchel_laptop::{Home, NoProgress, SyncReport, setup, sync_all};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::Laptop;

/// Files at least this large are hard-linked, smaller ones copied.
const LINK_FROM: u64 = 64 * 1024;

/// Setups running at once (each is two requests).
const PARALLEL_SETUPS: usize = 8;

pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// The first laptop: set up and synced the way `satchel laptop setup` and
/// `satchel laptop sync` do it.
pub async fn first_copy(dir: &Path, server: &str, who: &Credentials) -> Result<SyncReport> {
    fresh_dir(dir)?;
    let home = Home::at(dir);
    setup(&home, server, &who.user, &who.password, None, false)
        .await
        .context("setting up the first laptop")?;
    let report = sync_all(&home, &NoProgress).await.context("first sync")?;
    anyhow::ensure!(report.errors.is_empty(), "first sync: {:?}", report.errors);
    Ok(report)
}

/// `count` laptops under `root`, laptop i on `servers[i % len]`, each set up
/// with a token of its own and holding a clone of `template`'s copy.
pub async fn clones(
    root: &Path,
    template: &Path,
    servers: &[String],
    count: usize,
    who: Arc<Credentials>,
) -> Result<Vec<Arc<Laptop>>> {
    let slots = Arc::new(Semaphore::new(PARALLEL_SETUPS));
    let mut set = JoinSet::new();
    for i in 0..count {
        let dir = root.join(format!("laptop-{i:04}"));
        let server = servers[i % servers.len()].clone();
        let (template, who, slots) = (template.to_path_buf(), who.clone(), slots.clone());
        set.spawn(async move {
            let _slot = slots.acquire_owned().await?;
            clone_one(&dir, &template, &server, &who).await
        });
    }
    let mut laptops = Vec::with_capacity(count);
    while let Some(done) = set.join_next().await {
        laptops.push(Arc::new(done??));
    }
    laptops.sort_by(|a, b| a.home.dir().cmp(b.home.dir()));
    Ok(laptops)
}

async fn clone_one(dir: &Path, template: &Path, server: &str, who: &Credentials) -> Result<Laptop> {
    fresh_dir(dir)?;
    let home = Home::at(dir);
    setup(&home, server, &who.user, &who.password, None, false)
        .await
        .with_context(|| format!("setting up {}", dir.display()))?;
    let t = Home::at(template);
    for (from, to) in [
        (t.replicas_dir(), home.replicas_dir()),
        (t.index_dir(), home.index_dir()),
    ] {
        clone_tree(&from, &to)?;
    }
    Laptop::open(home)
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// Copies `from` into `to` recursively: large files hard-linked, small ones
/// copied, directories created 0700 as the laptop makes them.
fn clone_tree(from: &Path, to: &Path) -> Result<()> {
    private_dir(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst): (PathBuf, PathBuf) = (entry.path(), to.join(entry.file_name()));
        let meta = entry.metadata()?;
        if meta.is_dir() {
            clone_tree(&src, &dst)?;
        } else if meta.len() >= LINK_FROM {
            fs::hard_link(&src, &dst).with_context(|| format!("linking {}", dst.display()))?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", dst.display()))?;
        }
    }
    Ok(())
}

fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}
