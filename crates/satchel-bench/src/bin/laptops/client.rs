//! One simulated laptop: a real laptop home (set up with `satchel_laptop::setup`,
//! holding a real copy) that refreshes the way the agent does: `whoami`, then
//! a sync pass (repositories, a conditional manifest request per mailbox, the
//! segments it lacks, verified and installed, the manifest switched).
//!
//! The requests go through the laptop's own `Service` (its HTTP client, user
//! agent and timeouts) and the protocol calls of `satchel_api`; each one is
//! timed. What the real sync does beyond the requests is left out because
//! it is the laptop's CPU, not the service's, and here a thousand laptops
//! share two cores with the service: re-hashing every local segment before
//! each sync (a present segment of the right size counts as good) and
//! updating the local search index. Downloaded segments are still verified
//! (size and SHA-256) and installed with fsync by `install_segment`.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use satchel_api::{ApiError, Client, ManifestFetch};
use satchel_laptop::service::WHOAMI_TIMEOUT;
use satchel_laptop::{Config, Home, Service};
use satchel_offline::{
    Manifest, OfflineRepositoryListing, SegmentRef, install_segment, segment_path,
};

use crate::stats::{Kind, Recorder};

/// A refresh that failed: what failed and how, as the report lists it.
pub type Failure = String;

pub struct Laptop {
    pub home: Home,
    pub config: Config,
}

impl Laptop {
    pub fn open(home: Home) -> anyhow::Result<Laptop> {
        let config = home.config()?;
        Ok(Laptop { home, config })
    }

    /// A fresh connection to the service as this laptop, built exactly as
    /// the laptop builds it.
    pub fn service(&self) -> Result<Service, Failure> {
        Service::new(&self.config).map_err(|e| format!("client: {e}"))
    }

    /// One refresh: the agent's check through its long-lived `agent`
    /// service, then a sync pass on a service of its own (as `sync_all`
    /// makes one per pass). Records times, bytes and the failure if any.
    pub async fn refresh(&self, agent: &Service, rec: &Recorder) {
        let started = Instant::now();
        match self.check_and_sync(agent, rec).await {
            Ok(()) => rec.time(Kind::Refresh, started.elapsed()),
            Err(failure) => rec.error(failure),
        }
    }

    async fn check_and_sync(&self, agent: &Service, rec: &Recorder) -> Result<(), Failure> {
        {
            let _f = rec.begin();
            let t = Instant::now();
            let whoami = agent.client().whoami_within(WHOAMI_TIMEOUT).await;
            whoami.map_err(|e| classify("whoami", &e))?;
            rec.time(Kind::Whoami, t.elapsed());
        }
        let service = self.service()?;
        let client = service.client();
        let list = {
            let _f = rec.begin();
            let t = Instant::now();
            let list = client.offline_repositories().await;
            let list = list.map_err(|e| classify("repositories", &e))?;
            rec.time(Kind::Repositories, t.elapsed());
            list
        };
        for listing in &list.repositories {
            let dir = self.home.replica_dir(&listing.mailbox);
            sync_mailbox(client, listing, &dir, rec).await?;
        }
        Ok(())
    }
}

/// The ETag the laptop stored with its manifest (else the manifest's own).
fn local_etag(dir: &Path, local: &Manifest) -> String {
    fs::read_to_string(dir.join("etag"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| local.etag())
}

async fn sync_mailbox(
    client: &Client,
    listing: &OfflineRepositoryListing,
    dir: &Path,
    rec: &Recorder,
) -> Result<(), Failure> {
    let local = Manifest::load(dir).ok();
    let etag = local.as_ref().map(|m| local_etag(dir, m));
    let fetch = {
        let _f = rec.begin();
        let t = Instant::now();
        let fetch = client.offline_manifest(listing, etag.as_deref()).await;
        let fetch = fetch.map_err(|e| classify("manifest", &e))?;
        let kind = match &fetch {
            ManifestFetch::NotModified => Kind::ManifestNotModified,
            ManifestFetch::Changed { .. } => Kind::ManifestChanged,
        };
        rec.time(kind, t.elapsed());
        fetch
    };
    let ManifestFetch::Changed {
        manifest,
        etag,
        body_bytes,
    } = fetch
    else {
        return Ok(());
    };
    rec.bytes(body_bytes);
    for s in &manifest.segments {
        if !present(dir, s) {
            download(client, listing, dir, s, rec).await?;
        }
    }
    let dir = dir.to_path_buf();
    local_work(move || switch(&dir, &manifest, etag.as_deref())).await
}

/// A segment file of the size the manifest names is taken as good (the real
/// laptop also re-hashes it, which costs the laptop, not the service).
fn present(dir: &Path, s: &SegmentRef) -> bool {
    fs::metadata(segment_path(dir, &s.name)).is_ok_and(|m| m.len() == s.size)
}

/// Downloads one segment into `partial/`, then verifies and installs it.
async fn download(
    client: &Client,
    listing: &OfflineRepositoryListing,
    dir: &Path,
    s: &SegmentRef,
    rec: &Recorder,
) -> Result<(), Failure> {
    let part_dir = dir.join("partial");
    fs::create_dir_all(&part_dir).map_err(|e| local("partial/", &e))?;
    let part = part_dir.join(&s.name);
    let mut file = fs::File::create(&part).map_err(|e| local("partial file", &e))?;
    let received = {
        let _f = rec.begin();
        let t = Instant::now();
        let fetch = client.offline_segment(listing, &s.name, 0).await;
        let (mut resp, _) = fetch.map_err(|e| classify("segment", &e))?;
        let mut received = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| classify("segment body", &ApiError::from(e)))?
        {
            received += chunk.len() as u64;
            file.write_all(&chunk)
                .map_err(|e| local("partial file", &e))?;
        }
        rec.time(Kind::Segment, t.elapsed());
        received
    };
    rec.bytes(received);
    let (dir, s) = (dir.to_path_buf(), s.clone());
    local_work(move || {
        install_segment(&dir, &s, &part).map_err(|e| format!("segment failed verification: {e}"))
    })
    .await
}

/// Switches the copy to `manifest`, stores its ETag, deletes segments it no
/// longer names (the order of `Replica::sync`).
fn switch(dir: &Path, manifest: &Manifest, etag: Option<&str>) -> Result<(), Failure> {
    manifest
        .write_atomic(dir)
        .map_err(|e| format!("local: manifest: {e}"))?;
    if let Some(tag) = etag {
        fs::write(dir.join("etag"), tag).map_err(|e| local("etag", &e))?;
    }
    let named: HashSet<&str> = manifest.segments.iter().map(|s| s.name.as_str()).collect();
    let segments: PathBuf = dir.join("segments");
    let entries = fs::read_dir(&segments).map_err(|e| local("segments/", &e))?;
    for entry in entries.flatten() {
        if !named.contains(entry.file_name().to_string_lossy().as_ref()) {
            fs::remove_file(entry.path()).map_err(|e| local("old segment", &e))?;
        }
    }
    Ok(())
}

/// Local disk work (hashing, fsync) off the async workers, so that it does
/// not delay the timing of other laptops' requests.
async fn local_work<F>(f: F) -> Result<(), Failure>
where
    F: FnOnce() -> Result<(), Failure> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("local: {e}"))?
}

fn local(what: &str, e: &std::io::Error) -> Failure {
    format!("local: {what}: {}", e.kind())
}

/// Names a failed request by what the laptop would see: the HTTP status the
/// service answered, or how the connection failed (the innermost cause,
/// e.g. "Connection reset by peer").
pub fn classify(request: &str, e: &ApiError) -> Failure {
    match e {
        ApiError::Status { status, .. } => format!("{request}: HTTP {status}"),
        ApiError::Unreachable { source, .. } if source.is_connect() => {
            format!("{request}: connect: {}", root_cause(source))
        }
        ApiError::Unreachable { source, .. } | ApiError::Transport(source)
            if source.is_timeout() =>
        {
            format!("{request}: timed out")
        }
        ApiError::Unreachable { source, .. } | ApiError::Transport(source) => {
            format!("{request}: {}", root_cause(source))
        }
        ApiError::Invalid { .. } => format!("{request}: invalid answer"),
        ApiError::Manifest(_) => format!("{request}: invalid manifest"),
        ApiError::UntrustedCertificate { .. } | ApiError::CaFile { .. } => {
            format!("{request}: TLS: {e}")
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
