//! Offline synchronization on the service: per-mailbox settings over global
//! defaults, the schedule, updates ("synchronize now", scheduled, flush), the
//! jobs log, and what readers may fetch. Every way in (HTTP API, scheduler,
//! later the web console) calls these `Service` methods.
//!
//! Each mailbox's offline repository lives in
//! `<data>/offline/<mailbox_dir_name of the address>/` (docs/offline-service.md);
//! with a shared store (`offline defaults --store REPO`) that folder is this
//! node's working copy and cache of the store's repository ([`store`]).

pub mod state;
pub mod store;
pub mod update;

use crate::audit::action::{
    OFFLINE_DEFAULTS, OFFLINE_DISABLE, OFFLINE_ENABLE, OFFLINE_FLUSH, OFFLINE_SCHEDULE,
    OFFLINE_SYNC,
};
use crate::error::ServiceError;
use crate::jobs::{self, schedule};
use crate::service::{Caller, Service};
use satchel_api::{self as api, Limit};
use satchel_archive::catalog::Catalog;
use satchel_offline::{Manifest, OfflineRepositoryList, OfflineRepositoryListing, Repository};
use serde::{Deserialize, Serialize};
use state::{OfflineRow, OfflineTables};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use store::{KeyedLocks, Published, SharedStore};
use update::{Plan, offline_error};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

const KEY_SINCE: &str = "offline.since_days";
const KEY_MAX: &str = "offline.max_bytes";
const KEY_SCHEDULE: &str = "offline.schedule";
/// The S3 repository holding the offline repositories (absent or empty: the
/// data folder).
const KEY_STORE: &str = "offline.store";
/// Size at which an update starts a new segment (absent: the default).
const KEY_SEGMENT_BYTES: &str = "offline.segment_bytes";
/// The smallest segment size limit: a few blocks.
const MIN_SEGMENT_BYTES: u64 = 1 << 20;
/// What `--store` takes to go back to the data folder.
const NO_STORE: &str = "none";
/// Stored per-mailbox value meaning "no limit" (NULL means "the default").
const UNLIMITED: i64 = -1;
/// The update schedule until an administrator changes it: daily at 06:00
/// local time.
pub const DEFAULT_SCHEDULE: &str = "0 6 * * *";

/// The service's offline machinery: where repositories live.
pub struct OfflineRuntime {
    root: PathBuf,
    /// The shared store's client, opened on first use (repositories never
    /// change place, so it stays valid while the setting names it).
    store: Mutex<Option<Arc<SharedStore>>>,
    /// Mailboxes being updated on this node.
    writing: KeyedLocks,
    /// Segments being fetched from the store on this node.
    fetching: KeyedLocks,
}

impl OfflineRuntime {
    pub fn new(data: &Path) -> Self {
        OfflineRuntime {
            root: data.join("offline"),
            store: Mutex::new(None),
            writing: KeyedLocks::default(),
            fetching: KeyedLocks::default(),
        }
    }
}

/// The catalog's record of a mailbox's last update (epoch, generation):
/// what its published manifest is, whichever node published it.
fn recorded(row: &OfflineRow) -> Option<(&str, u64)> {
    row.state
        .epoch
        .as_deref()
        .map(|e| (e, row.state.generation))
}

/// The catalog's advisory lock key of a mailbox's offline writer: the first
/// 8 bytes of a SHA-256, the same on every node and every build.
fn writer_lock_key(address: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("satchel offline writer\0{address}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// One node's right to update one mailbox's offline repository: this
/// node's own lock and the catalog's (so no other node updates it either).
/// Released when dropped.
struct Writer<'a> {
    service: &'a Service,
    key: i64,
    _here: store::Held<'a>,
}

impl Writer<'_> {
    /// Whether the catalog lock is still held (before publishing).
    fn still_held(&self) -> Result<bool> {
        Ok(self
            .service
            .archive
            .session_locks()?
            .db()
            .session_lock_held(self.key)?)
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        let released = self
            .service
            .archive
            .session_locks()
            .map_err(ServiceError::from)
            .and_then(|c| Ok(c.db().session_unlock(self.key)?));
        if let Err(e) = released {
            tracing::warn!(error = %e, "cannot release an offline writer lock");
        }
    }
}

/// The settings an update applies (None = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub since_days: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Effective {
    /// Messages older than this (Unix seconds) are outside the since-window.
    pub fn cutoff(&self, now: i64) -> Option<i64> {
        self.since_days
            .map(|d| now.saturating_sub((d as i64).saturating_mul(86_400)))
    }
}

/// The folder name earlier versions gave a mailbox's offline repository: as
/// [`satchel_offline::mailbox_dir_name`] but with a leading dot kept, so `..`
/// named the data folder itself. Used only to find such a folder and move it.
fn legacy_dirname(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    for b in address.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'@' | b'_' | b'-' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A limit as stored for a mailbox (None = use the default).
fn stored(what: &str, limit: Limit) -> Result<Option<i64>> {
    match limit {
        Limit::Default => Ok(None),
        Limit::Unlimited => Ok(Some(UNLIMITED)),
        Limit::Value(0) => Err(ServiceError::BadRequest(format!(
            "{what} 0 is not a limit; use \"none\" for no limit"
        ))),
        Limit::Value(n) => i64::try_from(n)
            .map(Some)
            .map_err(|_| ServiceError::BadRequest(format!("{what} {n} is too large"))),
    }
}

fn resolve(stored: Option<i64>, default: Option<u64>) -> api::SettingValue {
    match stored {
        None => api::SettingValue {
            value: default,
            source: "default".into(),
        },
        Some(v) => api::SettingValue {
            value: (v >= 0).then_some(v as u64),
            source: "mailbox".into(),
        },
    }
}

fn read_default(cat: &Catalog, key: &str) -> Result<Option<u64>> {
    Ok(cat.setting(key)?.and_then(|v| v.parse().ok()))
}

/// The segment size limit updates write with.
fn segment_bytes(cat: &Catalog) -> Result<u64> {
    Ok(read_default(cat, KEY_SEGMENT_BYTES)?.unwrap_or(satchel_offline::DEFAULT_SEGMENT_BYTES))
}

/// The shared store's repository name, if one is set.
fn store_name(cat: &Catalog) -> Result<Option<String>> {
    Ok(cat.setting(KEY_STORE)?.filter(|v| !v.is_empty()))
}

impl Service {
    /// Removes what interrupted updates left in the offline repositories
    /// (`.tmp-` files, segments no manifest names) at start, so a full disk
    /// gets its space back without waiting for the next scheduled update.
    /// Failures are logged: a leftover costs only space.
    pub(crate) fn offline_garbage_at_start(&self) -> Result<()> {
        let rows = self.archive.catalog()?.offline_mailboxes()?;
        for row in rows {
            let dir = self.offline_dir(&row.mailbox);
            if let Some(cleared) = store::clear_incoming(&dir) {
                tracing::info!(folder = %cleared.display(), "removed unfinished offline fetches");
            }
            if !Manifest::path(&dir).exists() {
                continue;
            }
            let collected = Repository::create_or_open(&dir, &row.mailbox)
                .and_then(|repo| repo.garbage_collect());
            match collected {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(mailbox = %row.mailbox, ?removed, "removed offline leftovers");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(mailbox = %row.mailbox, error = %e,
                    "cannot collect offline leftovers at start"),
            }
        }
        Ok(())
    }

    /// Where `address`'s offline repository lives: a folder named by
    /// [`satchel_offline::mailbox_dir_name`], which cannot leave `offline/`.
    /// A folder an earlier version named with a leading dot is moved there.
    pub fn offline_dir(&self, address: &str) -> PathBuf {
        let dir = self
            .offline
            .root
            .join(satchel_offline::mailbox_dir_name(address));
        let legacy = legacy_dirname(address);
        if legacy == "." || legacy == ".." {
            return dir;
        }
        let (dir, failed) =
            satchel_offline::adopt_legacy_dir(&self.offline.root.join(legacy), &dir);
        if let Some(e) = failed {
            tracing::warn!("kept {} under its old name: {e}", dir.display());
        }
        dir
    }

    // ---- defaults and schedule ----

    fn defaults_of(cat: &Catalog) -> Result<api::OfflineDefaults> {
        Ok(api::OfflineDefaults {
            since_days: read_default(cat, KEY_SINCE)?,
            max_bytes: read_default(cat, KEY_MAX)?,
            store: store_name(cat)?,
            segment_bytes: Some(segment_bytes(cat)?),
        })
    }

    /// The shared store, when the catalog names one.
    fn offline_store(&self) -> Result<Option<Arc<SharedStore>>> {
        self.offline_store_in(&*self.archive.catalog()?)
    }

    /// [`Service::offline_store`] with the catalog already locked.
    fn offline_store_in(&self, cat: &Catalog) -> Result<Option<Arc<SharedStore>>> {
        let Some(name) = store_name(cat)? else {
            return Ok(None);
        };
        let mut open = self
            .offline
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = open.as_ref().filter(|s| s.name() == name) {
            return Ok(Some(Arc::clone(s)));
        }
        let info = cat.repository(&name)?;
        let opened = Arc::new(SharedStore::open(&info)?);
        *open = Some(Arc::clone(&opened));
        Ok(Some(opened))
    }

    /// Checks and records `--store`: an on-line S3 repository, or "none".
    fn set_store(cat: &Catalog, name: &str) -> Result<()> {
        let name = name.trim();
        if name != NO_STORE {
            store::check_usable(&cat.repository(name)?)?;
        }
        cat.set_setting(KEY_STORE, if name == NO_STORE { "" } else { name })
            .map_err(Into::into)
    }

    pub fn offline_defaults(&self, caller: &Caller) -> Result<api::OfflineDefaults> {
        caller.require_admin()?;
        Self::defaults_of(&*self.archive.catalog()?)
    }

    pub fn set_offline_defaults(
        &self,
        caller: &Caller,
        new: &api::SetOfflineDefaults,
    ) -> Result<api::OfflineDefaults> {
        caller.require_admin()?;
        if let Some(n) = new.segment_bytes.filter(|&n| n < MIN_SEGMENT_BYTES) {
            return Err(ServiceError::BadRequest(format!(
                "segment_bytes {n} is too small; at least {MIN_SEGMENT_BYTES}"
            )));
        }
        let cat = self.archive.catalog()?;
        for (key, what, limit) in [
            (KEY_SINCE, "since_days", new.since_days),
            (KEY_MAX, "max_bytes", new.max_bytes),
        ] {
            let value = match limit {
                None => continue,
                Some(Limit::Default) => {
                    return Err(ServiceError::BadRequest(format!(
                        "{what}: \"default\" is for mailboxes; a default is a number or \"none\""
                    )));
                }
                Some(l) => match stored(what, l)? {
                    Some(n) if n >= 0 => n.to_string(),
                    _ => "none".to_string(),
                },
            };
            cat.set_setting(key, &value)?;
        }
        if let Some(name) = &new.store {
            Self::set_store(&cat, name)?;
        }
        if let Some(n) = new.segment_bytes {
            cat.set_setting(KEY_SEGMENT_BYTES, &n.to_string())?;
        }
        crate::audit::note(&cat, caller, OFFLINE_DEFAULTS, serde_json::json!(new))?;
        Self::defaults_of(&cat)
    }

    fn schedule_expr(cat: &Catalog) -> Result<String> {
        Ok(cat
            .setting(KEY_SCHEDULE)?
            .unwrap_or_else(|| DEFAULT_SCHEDULE.to_string()))
    }

    /// The offline update schedule as stored (cron), for the scheduler.
    pub(crate) fn offline_schedule_expr(&self) -> Result<String> {
        Self::schedule_expr(&*self.archive.catalog()?)
    }

    fn schedule_view(cat: &Catalog) -> Result<api::OfflineSchedule> {
        let cron = Self::schedule_expr(cat)?;
        let next_run = schedule::next_run(&cron);
        Ok(api::OfflineSchedule { cron, next_run })
    }

    pub fn offline_schedule(&self, caller: &Caller) -> Result<api::OfflineSchedule> {
        caller.require_admin()?;
        Self::schedule_view(&*self.archive.catalog()?)
    }

    pub fn set_offline_schedule(
        &self,
        caller: &Caller,
        cron: &str,
    ) -> Result<api::OfflineSchedule> {
        caller.require_admin()?;
        schedule::parse(cron).map_err(ServiceError::BadRequest)?;
        let cron = cron.split_whitespace().collect::<Vec<_>>().join(" ");
        let cat = self.archive.catalog()?;
        cat.set_setting(KEY_SCHEDULE, &cron)?;
        crate::audit::note(
            &cat,
            caller,
            OFFLINE_SCHEDULE,
            serde_json::json!({ "cron": cron }),
        )?;
        self.jobs.schedules_changed();
        Self::schedule_view(&cat)
    }

    // ---- enable, disable, status ----

    /// Refuses (409) a mailbox any of whose repositories (its default, or one
    /// holding some of its mail) is cold storage, naming it. Disk and S3
    /// repositories are on-line: their mail can be synchronized.
    fn require_online(cat: &Catalog, address: &str) -> Result<()> {
        Self::require_online_repos(address, cat.mailbox_repositories(address)?)
    }

    fn require_online_repos(
        address: &str,
        repos: impl IntoIterator<Item = satchel_archive::RepositoryInfo>,
    ) -> Result<()> {
        for repo in repos {
            if repo.cold {
                return Err(ServiceError::Conflict(format!(
                    "mailbox {address} cannot be synchronized offline: its repository {} is \
                     cold storage ({} {}), and mailboxes with mail in cold storage cannot be",
                    repo.name,
                    repo.kind,
                    repo.path.display()
                )));
            }
        }
        Ok(())
    }

    pub fn offline_enable(
        &self,
        caller: &Caller,
        address: &str,
        body: &api::OfflineEnable,
    ) -> Result<api::OfflineMailboxStatus> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        cat.require_mailbox(address)?;
        Self::require_online(&cat, address)?;
        let row = cat.offline_mailbox(address)?;
        let since = match body.since_days {
            Some(l) => stored("since_days", l)?,
            None => row.as_ref().and_then(|r| r.since_days),
        };
        let max = match body.max_bytes {
            Some(l) => stored("max_bytes", l)?,
            None => row.as_ref().and_then(|r| r.max_bytes),
        };
        cat.put_offline_settings(address, true, since, max)?;
        let target =
            serde_json::json!({ "mailbox": address, "since_days": since, "max_bytes": max });
        crate::audit::note(&cat, caller, OFFLINE_ENABLE, target)?;
        self.status_of(&cat, address)
    }

    pub fn offline_disable(
        &self,
        caller: &Caller,
        address: &str,
    ) -> Result<api::OfflineMailboxStatus> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        cat.require_mailbox(address)?;
        cat.set_offline_enabled(address, false)?;
        crate::audit::note(
            &cat,
            caller,
            OFFLINE_DISABLE,
            serde_json::json!({ "mailbox": address }),
        )?;
        self.status_of(&cat, address)
    }

    fn effective(cat: &Catalog, row: &OfflineRow) -> Result<Effective> {
        let d = Self::defaults_of(cat)?;
        Ok(Effective {
            since_days: resolve(row.since_days, d.since_days).value,
            max_bytes: resolve(row.max_bytes, d.max_bytes).value,
        })
    }

    fn status_of(&self, cat: &Catalog, address: &str) -> Result<api::OfflineMailboxStatus> {
        let row = cat.offline_mailbox(address)?.unwrap_or_else(|| OfflineRow {
            mailbox: address.to_string(),
            ..OfflineRow::default()
        });
        let defaults = Self::defaults_of(cat)?;
        let manifest = self.current_manifest(cat, address);
        let next_run = row
            .enabled
            .then(|| Self::schedule_view(cat).ok()?.next_run)
            .flatten();
        let s = &row.state;
        Ok(api::OfflineMailboxStatus {
            mailbox: row.mailbox.clone(),
            enabled: row.enabled,
            since_days: resolve(row.since_days, defaults.since_days),
            max_bytes: resolve(row.max_bytes, defaults.max_bytes),
            epoch: manifest.as_ref().map(|m| m.epoch.clone()),
            generation: manifest.as_ref().map_or(0, |m| m.generation),
            segments: manifest.as_ref().map_or(0, |m| m.totals.segments),
            messages: manifest.as_ref().map_or(0, |m| m.totals.messages),
            bytes: manifest.as_ref().map_or(0, |m| m.totals.bytes),
            message_bytes: s.message_bytes,
            last_update: s.last_update.and_then(jobs::unix_time),
            last_duration_ms: s.last_duration_ms.map(|d| d.max(0) as u64),
            next_run,
        })
    }

    pub fn offline_status(
        &self,
        caller: &Caller,
        address: Option<&str>,
    ) -> Result<api::OfflineStatusReport> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        let mailboxes = match address {
            Some(a) => {
                cat.require_mailbox(a)?;
                vec![self.status_of(&cat, a)?]
            }
            None => cat
                .offline_mailboxes()?
                .iter()
                .map(|r| self.status_of(&cat, &r.mailbox))
                .collect::<Result<_>>()?,
        };
        Ok(api::OfflineStatusReport {
            schedule: Self::schedule_view(&cat)?,
            defaults: Self::defaults_of(&cat)?,
            mailboxes,
        })
    }

    // ---- updates ----

    /// "Synchronize now": one mailbox (its errors are the call's errors) or
    /// every enabled mailbox (each result says how it went).
    pub fn offline_sync(
        &self,
        caller: &Caller,
        address: Option<&str>,
    ) -> Result<api::OfflineSyncReport> {
        caller.require_admin()?;
        self.audit(
            caller,
            OFFLINE_SYNC,
            serde_json::json!({ "mailbox": address }),
        )?;
        let results = match address {
            Some(a) => vec![self.offline_update(a, false, "sync-now")?],
            None => self.offline_update_all("sync-now"),
        };
        Ok(api::OfflineSyncReport { results })
    }

    /// Clears the repository under a new epoch and rebuilds it (if enabled).
    pub fn offline_flush(
        &self,
        caller: &Caller,
        address: &str,
    ) -> Result<api::OfflineUpdateResult> {
        caller.require_admin()?;
        self.audit(
            caller,
            OFFLINE_FLUSH,
            serde_json::json!({ "mailbox": address }),
        )?;
        self.offline_update(address, true, "flush")
    }

    /// Updates every enabled mailbox, one after the other.
    pub fn offline_update_all(&self, trigger: &str) -> Vec<api::OfflineUpdateResult> {
        let enabled: Vec<String> = match self.archive.catalog().and_then(|c| c.offline_mailboxes())
        {
            Ok(rows) => rows
                .into_iter()
                .filter(|r| r.enabled)
                .map(|r| r.mailbox)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list offline mailboxes");
                return Vec::new();
            }
        };
        enabled
            .iter()
            .map(|mb| {
                self.offline_update(mb, false, trigger).unwrap_or_else(|e| {
                    tracing::warn!(mailbox = %mb, error = %e, "offline update failed");
                    failed_result(mb, &e)
                })
            })
            .collect()
    }

    /// One update (or flush) of one mailbox, recorded in the jobs log.
    pub fn offline_update(
        &self,
        mailbox: &str,
        flush: bool,
        trigger: &str,
    ) -> Result<api::OfflineUpdateResult> {
        let kind = if flush {
            jobs::OFFLINE_FLUSH
        } else {
            jobs::OFFLINE_UPDATE
        };
        let writer = self.offline_writer(mailbox)?;
        let job = self
            .jobs
            .start(self.archive.catalog()?.db(), kind, Some(mailbox))?;
        let started = std::time::Instant::now();
        let result = self.run_update(&writer, mailbox, flush).map(|mut r| {
            r.job = job;
            r
        });
        let (outcome, mut detail) = match &result {
            Ok(r) => ("ok", serde_json::to_value(r).unwrap_or_default()),
            Err(e) => ("failed", serde_json::json!({ "error": e.to_string() })),
        };
        crate::metrics::global().offline_update(outcome, started.elapsed());
        detail["trigger"] = serde_json::Value::from(trigger);
        if let Err(e) = jobs::finish(self.archive.catalog()?.db(), job, outcome, &detail) {
            tracing::error!(job, error = %e, "cannot record the end of a job");
        }
        result
    }

    /// Takes the right to update `mailbox`'s repository, on this node and in
    /// the catalog (every node), or says who holds it (409).
    fn offline_writer(&self, mailbox: &str) -> Result<Writer<'_>> {
        let busy = |where_: &str| {
            ServiceError::Conflict(format!(
                "an update of the offline repository of {mailbox} is already running{where_}; \
                 try again when it ends"
            ))
        };
        let here = self
            .offline
            .writing
            .try_hold(mailbox)
            .ok_or_else(|| busy(""))?;
        let key = writer_lock_key(mailbox);
        if !self.archive.session_locks()?.db().try_session_lock(key)? {
            return Err(busy(" on another node"));
        }
        Ok(Writer {
            service: self,
            key,
            _here: here,
        })
    }

    fn run_update(
        &self,
        writer: &Writer<'_>,
        mailbox: &str,
        flush: bool,
    ) -> Result<api::OfflineUpdateResult> {
        let started = Instant::now();
        let (row, eff, segment_bytes) = {
            let cat = self.archive.catalog()?;
            let default_repo = cat.default_repository(mailbox)?;
            let row = cat.offline_mailbox(mailbox)?.ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "offline synchronization was never enabled for mailbox {mailbox}"
                ))
            })?;
            if !row.enabled && !flush {
                return Err(ServiceError::Conflict(format!(
                    "offline synchronization is disabled for mailbox {mailbox}; enable it first"
                )));
            }
            // Mail only arrives in the default repository, so only it can
            // have become cold since enabling (full check then: enable).
            if row.enabled {
                Self::require_online_repos(mailbox, [default_repo])?;
            }
            let eff = Self::effective(&cat, &row)?;
            (row, eff, segment_bytes(&cat)?)
        };
        let dir = self.offline_dir(mailbox);
        let shared = self.offline_store()?;
        let leveled = match &shared {
            Some(s) => Some(s.level(mailbox, &dir)?),
            None => None,
        };
        let restart = leveled.as_ref().is_some_and(|l| l.restart);
        let mut repo = Repository::create_or_open(&dir, mailbox).map_err(offline_error)?;
        repo.garbage_collect().map_err(offline_error)?;
        if flush || restart {
            repo.flush().map_err(offline_error)?;
        }
        let applied = serde_json::to_string(&eff).unwrap_or_default();
        let reselect = !consistent(&repo, &row, &applied, flush || restart);
        if let Some(s) = shared.as_ref().filter(|_| row.enabled && reselect) {
            // A full reselection reads every segment.
            s.fetch_missing(mailbox, &dir, repo.manifest())?;
        }
        repo.set_segment_bytes(segment_bytes);
        let before = repo.manifest().generation;
        let now = chrono::Utc::now().timestamp();
        let (plan, written) = if row.enabled && reselect {
            update::build_full(&self.archive, &mut repo, mailbox, &eff, now)?
        } else {
            let plan = if row.enabled {
                let cat = self.archive.catalog()?;
                update::plan_incremental(&cat, mailbox, &eff, now, &row.state)?
            } else {
                Plan {
                    full: true,
                    ..Plan::default()
                }
            };
            let written = update::execute(&self.archive, &mut repo, &plan)?;
            (plan, written)
        };
        let segment = (written.generation != before)
            .then(|| written.segments.last().map(|s| s.name.clone()))
            .flatten();
        let rewrites = !plan.erased.is_empty()
            || update::compaction_threshold(repo.manifest(), &eff).is_some();
        if let Some(s) = shared.as_ref().filter(|_| rewrites) {
            s.fetch_missing(mailbox, &dir, repo.manifest())?;
        }
        let purged = update::purge(&mut repo, &plan)?;
        let compacted = match update::compaction_threshold(repo.manifest(), &eff) {
            Some(threshold) => update::compact(&mut repo, threshold)?,
            None => false,
        } || purged;
        let manifest = repo.manifest().clone();
        if let (Some(s), Some(l)) = (&shared, &leveled) {
            s.publish(mailbox, &dir, l.published.as_ref(), || writer.still_held())?;
        }
        let duration_ms = started.elapsed().as_millis() as i64;
        let applied = row.enabled.then_some(applied.as_str());
        update::record(
            &*self.archive.catalog()?,
            mailbox,
            &plan,
            &manifest,
            applied,
            duration_ms,
        )?;
        drop(repo);
        Ok(api::OfflineUpdateResult {
            mailbox: mailbox.to_string(),
            outcome: if manifest.generation != before || flush {
                "updated"
            } else {
                "unchanged"
            }
            .into(),
            error: None,
            job: 0,
            full: plan.full,
            flushed: flush,
            added: plan.added(),
            removed: plan.removed(),
            segment,
            compacted,
            epoch: manifest.epoch.clone(),
            generation: manifest.generation,
            messages: manifest.totals.messages,
            bytes: manifest.totals.bytes,
            duration_ms: duration_ms as u64,
        })
    }

    // ---- what readers fetch ----

    /// Every offline repository the caller may read (may search its mailbox).
    pub fn offline_repositories(&self, caller: &Caller) -> Result<OfflineRepositoryList> {
        let shared = self.offline_store()?;
        let cat = self.archive.catalog()?;
        let allowed: HashSet<String> = cat.searchable_by(&caller.user)?.into_iter().collect();
        let mut repositories = Vec::new();
        for row in cat.offline_mailboxes()? {
            if !allowed.contains(&row.mailbox) {
                continue;
            }
            let current = match &shared {
                Some(s) => s
                    .current(&row.mailbox, recorded(&row))?
                    .map(|p| p.manifest.clone()),
                None => Manifest::load(&self.offline_dir(&row.mailbox)).ok(),
            };
            if let Some(m) = current {
                let url = format!(
                    "/api/v1/offline/repositories/{}/manifest",
                    satchel_api::client::segment(&row.mailbox)
                );
                repositories.push(OfflineRepositoryListing::from_manifest(&m, url));
            }
        }
        Ok(OfflineRepositoryList { repositories })
    }

    /// The manifest's bytes as stored (in the shared store when there is
    /// one), and its ETag.
    pub fn offline_manifest(&self, caller: &Caller, address: &str) -> Result<(Vec<u8>, String)> {
        self.require_search(caller, address)?;
        if let Some(s) = self.offline_store()? {
            let p = self
                .published(&s, address)?
                .ok_or_else(|| no_repository(address))?;
            return Ok((p.bytes.clone(), p.manifest.etag()));
        }
        let path = Manifest::path(&self.offline_dir(address));
        let bytes = std::fs::read(&path).map_err(|_| no_repository(address))?;
        let m = Manifest::from_json(&bytes, &path).map_err(offline_error)?;
        Ok((bytes, m.etag()))
    }

    /// The path and size of a segment of the current manifest. The name is
    /// checked before anything touches the file system.
    pub fn offline_segment(
        &self,
        caller: &Caller,
        address: &str,
        name: &str,
    ) -> Result<(PathBuf, u64)> {
        if !satchel_offline::is_valid_segment_name(name) {
            return Err(ServiceError::BadRequest(format!(
                "{name:?} is not a segment name (64 lowercase hex digits)"
            )));
        }
        self.require_search(caller, address)?;
        let dir = self.offline_dir(address);
        let shared = self.offline_store()?;
        let m = match &shared {
            Some(s) => self.published(s, address)?.map(|p| p.manifest.clone()),
            None => Manifest::load(&dir).ok(),
        }
        .ok_or_else(|| no_repository(address))?;
        let seg = m.segments.iter().find(|s| s.name == name).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "segment {name} is not part of the current offline repository of {address}"
            ))
        })?;
        if let Some(s) = &shared {
            self.cache_segment(s, address, &dir, &m, seg)?;
        }
        Ok((satchel_offline::segment_path(&dir, name), seg.size))
    }

    /// The shared store's current manifest of `address`, read from the
    /// store only when the catalog's record of the last update names
    /// another than this node's copy ([`SharedStore::current`]).
    fn published(&self, store: &SharedStore, address: &str) -> Result<Option<Arc<Published>>> {
        let row = self.archive.catalog()?.offline_mailbox(address)?;
        store.current(address, row.as_ref().and_then(recorded))
    }

    /// The manifest an administrator's status shows: the store's when there
    /// is one (a store failure shows as none, and is logged), else the data
    /// folder's.
    fn current_manifest(&self, cat: &Catalog, address: &str) -> Option<Manifest> {
        match self.offline_store_in(cat) {
            Ok(Some(s)) => s
                .manifest(address)
                .inspect_err(|e| tracing::warn!(mailbox = address, error = %e, "offline store"))
                .ok()
                .flatten()
                .map(|(_, m)| m),
            _ => Manifest::load(&self.offline_dir(address)).ok(),
        }
    }

    /// Makes sure segment `seg` of the store's manifest `m` is in this
    /// node's copy `dir` (one fetch per segment at a time on this node), then
    /// keeps the copy to `m`'s segments: the cache of a mailbox never holds
    /// more than its current repository.
    fn cache_segment(
        &self,
        shared: &SharedStore,
        address: &str,
        dir: &Path,
        m: &Manifest,
        seg: &satchel_offline::SegmentRef,
    ) -> Result<()> {
        let path = satchel_offline::segment_path(dir, &seg.name);
        if path.is_file() {
            return Ok(());
        }
        {
            let _fetching = self
                .offline
                .fetching
                .hold(&format!("{address}/{}", seg.name));
            if !path.is_file() {
                shared.fetch_segment(address, dir, seg)?;
            }
        }
        self.prune_cache(address, dir, m);
        Ok(())
    }

    /// After a fetch: adopt the store's manifest `m` in this node's copy and
    /// remove the segments it does not name (dropped by a compaction or
    /// flush on another node). Skipped while this node updates the mailbox
    /// (the update levels and collects itself); failures only cost space.
    fn prune_cache(&self, address: &str, dir: &Path, m: &Manifest) {
        let Some(_writing) = self.offline.writing.try_hold(address) else {
            return;
        };
        if Manifest::load(dir).ok().as_ref() == Some(m) {
            return;
        }
        let pruned = store::adopt(dir, m).and_then(|()| {
            Repository::create_or_open(dir, address)
                .and_then(|r| r.garbage_collect())
                .map_err(offline_error)
        });
        match pruned {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    mailbox = address,
                    ?removed,
                    "dropped stale offline segments from the cache"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(mailbox = address, error = %e, "cannot prune the offline cache")
            }
        }
    }
}

/// Whether the repository is exactly as the catalog recorded it and the
/// settings are unchanged: then an update is incremental.
fn consistent(repo: &Repository, row: &OfflineRow, applied: &str, flushed: bool) -> bool {
    let m = repo.manifest();
    let s = &row.state;
    !flushed
        && s.epoch.as_deref() == Some(m.epoch.as_str())
        && s.generation == m.generation
        && s.applied.as_deref() == Some(applied)
}

fn no_repository(address: &str) -> ServiceError {
    ServiceError::NotFound(format!("mailbox {address} has no offline repository"))
}

fn failed_result(mailbox: &str, e: &ServiceError) -> api::OfflineUpdateResult {
    api::OfflineUpdateResult {
        mailbox: mailbox.to_string(),
        outcome: "failed".into(),
        error: Some(e.to_string()),
        job: 0,
        full: false,
        flushed: false,
        added: 0,
        removed: 0,
        segment: None,
        compacted: false,
        epoch: String::new(),
        generation: 0,
        messages: 0,
        bytes: 0,
        duration_ms: 0,
    }
}
