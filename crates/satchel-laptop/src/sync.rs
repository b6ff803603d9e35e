//! One sync pass over every mailbox this home's user may copy.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Home;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::replica::{MailboxSync, Progress, Replica};
use crate::search::{IndexUpdate, LocalIndex};
use crate::service::Service;

/// What one sync pass did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncReport {
    pub server: String,
    pub user: String,
    /// Per offered mailbox, in the service's order.
    pub mailboxes: Vec<MailboxSync>,
    /// Mailboxes whose local copy was removed (no longer offered).
    pub removed: Vec<String>,
    /// Mailboxes that failed (the others were still synced).
    pub errors: Vec<MailboxError>,
    /// Body bytes received for all mailboxes (manifests + segments).
    pub bytes_downloaded: u64,
    /// Changes to the local search index.
    pub index: IndexUpdate,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxError {
    pub mailbox: String,
    pub error: String,
}

/// Holds the home's sync lock: one sync at a time per home (the agent and
/// a `satchel laptop sync` may run together).
pub(crate) struct SyncLock(#[allow(dead_code)] File);

impl SyncLock {
    pub(crate) async fn acquire(home: &Home) -> Result<SyncLock> {
        home.create()?;
        let path = home.lock_path();
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts.open(&path).map_err(|e| Error::io(&path, e))?;
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(SyncLock(f)),
                Err(TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }
}

/// Syncs every offered mailbox, removes local copies of mailboxes no longer
/// offered, updates the local search index and records the outcome in the
/// home's state. Fails as a whole only if the list of mailboxes cannot be
/// had (offline: [`Error::Offline`]); a failing mailbox is reported in
/// `errors` and the others still sync.
pub async fn sync_all(home: &Home, progress: &dyn Progress) -> Result<SyncReport> {
    let config = home.config()?;
    let service = Service::new(&config)?;
    let _lock = SyncLock::acquire(home).await?;
    let started = std::time::Instant::now();
    let outcome = sync_locked(home, &service, progress).await;
    let now = fsutil::now_unix();
    match &outcome {
        Ok(report) => {
            let error = (!report.errors.is_empty()).then(|| {
                report
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.mailbox, e.error))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            home.update_state(|s| {
                s.last_check = Some(now);
                s.online = Some(true);
                if error.is_none() {
                    s.last_sync = Some(now);
                }
                s.last_error = error;
            })?;
        }
        Err(e) => {
            let offline = e.is_offline();
            let msg = e.to_string();
            home.update_state(|s| {
                s.last_check = Some(now);
                s.online = Some(!offline);
                s.last_error = Some(msg);
            })?;
        }
    }
    let mut report = outcome?;
    report.server = config.server;
    report.user = config.user;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn sync_locked(
    home: &Home,
    service: &Service,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let list = service.repositories().await?;
    let mut report = SyncReport {
        server: String::new(),
        user: String::new(),
        mailboxes: Vec::new(),
        removed: Vec::new(),
        errors: Vec::new(),
        bytes_downloaded: 0,
        index: IndexUpdate::default(),
        seconds: 0.0,
    };
    let offered: HashSet<&str> = list
        .repositories
        .iter()
        .map(|l| l.mailbox.as_str())
        .collect();

    // Mailboxes no longer offered (disabled and removed, access withdrawn).
    let index = LocalIndex::open_home(home)?;
    for mailbox in home.local_mailboxes()? {
        if !offered.contains(mailbox.as_str()) {
            Replica::new(home.replica_dir(&mailbox), &mailbox).remove()?;
            index.remove_mailbox(&mailbox)?;
            report.removed.push(mailbox);
        }
    }

    for listing in &list.repositories {
        let replica = Replica::new(home.replica_dir(&listing.mailbox), &listing.mailbox);
        match replica.sync(service, listing, progress).await {
            Ok(r) => {
                report.bytes_downloaded += r.bytes_downloaded;
                report.mailboxes.push(r);
            }
            Err(e) if e.is_offline() => return Err(e),
            Err(e) => report.errors.push(MailboxError {
                mailbox: listing.mailbox.clone(),
                error: e.to_string(),
            }),
        }
    }

    // The local search index follows the local copies; then the segments
    // the new manifests no longer name go (the index update reads those it
    // had indexed, to remove their messages that left).
    for r in &report.mailboxes {
        let replica = Replica::new(home.replica_dir(&r.mailbox), &r.mailbox);
        let indexed = index.update_mailbox(&replica);
        match indexed {
            Ok(u) => report.index.add(&u),
            Err(e) => report.errors.push(MailboxError {
                mailbox: r.mailbox.clone(),
                error: e.to_string(),
            }),
        }
        if let Err(e) = replica.collect_garbage() {
            tracing::warn!(mailbox = %r.mailbox, "old segments not removed: {e}");
        }
    }
    Ok(report)
}

/// `satchel laptop verify`: re-hashes every local copy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub mailboxes: Vec<MailboxVerify>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxVerify {
    pub mailbox: String,
    pub ok: bool,
    pub checked: usize,
    pub damaged: Vec<String>,
    pub missing: Vec<String>,
    /// Set when the manifest itself is unusable.
    pub error: Option<String>,
}

/// Verifies every local copy of the home (hashes of all segments).
pub fn verify_all(home: &Home) -> Result<VerifyReport> {
    let mut out = VerifyReport {
        ok: true,
        mailboxes: Vec::new(),
    };
    for mailbox in home.local_mailboxes()? {
        let replica = Replica::new(home.replica_dir(&mailbox), &mailbox);
        let v = match replica.verify() {
            Ok(r) => MailboxVerify {
                mailbox,
                ok: r.ok,
                checked: r.checked,
                damaged: r.damaged,
                missing: r.missing,
                error: None,
            },
            Err(e) => MailboxVerify {
                mailbox,
                ok: false,
                checked: 0,
                damaged: Vec::new(),
                missing: Vec::new(),
                error: Some(e.to_string()),
            },
        };
        out.ok &= v.ok;
        out.mailboxes.push(v);
    }
    Ok(out)
}
