//! Jobs: the one record of every offline update, flush and IMAP archive run
//! (the `jobs` table), its one mapping to the API's [`api::JobView`], the one
//! time format of every endpoint ([`time`]), and the one scheduler
//! ([`schedule`]) that starts the due jobs.
//!
//! Its tables (`jobs`, and `archive_schedules`: each mailbox's IMAP archive
//! schedule) are the service's component `jobs` in the archive's SQLite
//! file, with their own migrations ([`migrate`]).
//!
//! The runtime state ([`JobRuntime`]) belongs to the [`crate::Service`]: the
//! `Notify` that wakes the scheduler when a schedule changes and the set of
//! mailboxes with an archive run in progress. Nothing is global, so two
//! services in one process (tests) never share it.

pub mod schedule;

use chrono::{DateTime, Utc};
use satchel_api as api;
use satchel_archive::ArchiveError;
use satchel_archive::catalog::rusqlite::{self, Connection, OptionalExtension, params};
use satchel_archive::catalog::{Catalog, now};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use tokio::sync::Notify;

type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "jobs";

/// Version 1: the tables catalog versions 2 and 3 created (`IF NOT EXISTS`,
/// so a catalog of that time keeps its rows).
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS jobs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  mailbox TEXT,
  started INTEGER NOT NULL,
  finished INTEGER,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}'
);
-- No row = no schedule (off). The policy is satchel-mailbox's, as JSON.
CREATE TABLE IF NOT EXISTS archive_schedules(
  mailbox TEXT PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  cron TEXT NOT NULL,
  policy TEXT NOT NULL,
  updated INTEGER NOT NULL
);
"#;

/// Creates or upgrades the jobs tables; run once when the service opens.
pub fn migrate(cat: &Catalog) -> Result<()> {
    cat.migrate_component(COMPONENT, &[V1])
}

/// Kinds of job: an offline update, an offline flush, an IMAP archive run.
pub const OFFLINE_UPDATE: &str = "offline-update";
pub const OFFLINE_FLUSH: &str = "offline-flush";
pub const ARCHIVE: &str = "archive";

/// The one format of times on every endpoint and in every CLI output:
/// RFC 3339, UTC, `Z`, whole seconds (`2026-05-01T06:00:03Z`). Written by
/// [`satchel_offline::rfc3339`], the format the laptop also writes, so the
/// service and the laptop cannot drift apart.
pub fn time<Tz: chrono::TimeZone>(t: &DateTime<Tz>) -> String {
    satchel_offline::rfc3339(t.timestamp())
}

/// Unix seconds in [`time`]'s format (None if out of chrono's range).
pub fn unix_time(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(|t| time(&t))
}

/// A row of the jobs log.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub mailbox: Option<String>,
    /// Unix seconds.
    pub started: i64,
    pub finished: Option<i64>,
    /// "running", "ok", "failed" or "interrupted".
    pub outcome: String,
    pub detail: serde_json::Value,
}

impl Job {
    /// The one mapping of a job record to what the API answers.
    pub fn view(self) -> api::JobView {
        api::JobView {
            id: self.id,
            kind: self.kind,
            mailbox: self.mailbox,
            started: unix_time(self.started).unwrap_or_default(),
            finished: self.finished.and_then(unix_time),
            outcome: self.outcome,
            detail: self.detail,
        }
    }
}

/// Records a job as running; returns its id.
pub fn start(conn: &Connection, kind: &str, mailbox: Option<&str>) -> Result<i64> {
    conn.execute(
        "INSERT INTO jobs(kind, mailbox, started, outcome) VALUES (?1, ?2, ?3, 'running')",
        params![kind, mailbox, Utc::now().timestamp()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Records a job's end, its outcome and what it did.
pub fn finish(conn: &Connection, id: i64, outcome: &str, detail: &serde_json::Value) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET finished = ?2, outcome = ?3, detail = ?4 WHERE id = ?1",
        params![id, Utc::now().timestamp(), outcome, detail.to_string()],
    )?;
    Ok(())
}

/// Replaces a running job's detail (progress) without finishing it.
pub fn set_detail(conn: &Connection, id: i64, detail: &serde_json::Value) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET detail = ?2 WHERE id = ?1",
        params![id, detail.to_string()],
    )?;
    Ok(())
}

/// Jobs still 'running' when the service starts were cut short by its stop.
pub fn mark_interrupted(conn: &Connection) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE jobs SET outcome = 'interrupted', finished = ?1 WHERE outcome = 'running'",
        [Utc::now().timestamp()],
    )?)
}

/// The most recent jobs first, of one kind and one mailbox if given.
pub fn list(
    conn: &Connection,
    kind: Option<&str>,
    mailbox: Option<&str>,
    limit: usize,
) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, mailbox, started, finished, outcome, detail FROM jobs
         WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR mailbox = ?2)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![kind, mailbox, limit as i64], job_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let detail: String = r.get(6)?;
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        mailbox: r.get(2)?,
        started: r.get(3)?,
        finished: r.get(4)?,
        outcome: r.get(5)?,
        // Written by this code as JSON; an unreadable detail shows as null
        // rather than hiding the whole log.
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

impl crate::Service {
    /// The jobs log, the most recent first (every kind; one mailbox's if given).
    pub fn jobs(
        &self,
        caller: &crate::Caller,
        limit: usize,
        mailbox: Option<&str>,
    ) -> crate::service::Result<Vec<api::JobView>> {
        caller.require_admin()?;
        let jobs = list(self.archive.catalog()?.conn(), None, mailbox, clamp(limit))?;
        Ok(jobs.into_iter().map(Job::view).collect())
    }
}

/// How many records one listing returns at most.
pub fn clamp(limit: usize) -> usize {
    limit.clamp(1, 1000)
}

/// A mailbox's archive schedule.
#[derive(Clone, Debug)]
pub struct ArchiveSchedule {
    pub mailbox: String,
    pub cron: String,
    /// The run's policy as JSON (satchel-mailbox's `Policy`).
    pub policy: serde_json::Value,
}

/// One mailbox's archive schedule, if it has one.
pub fn archive_schedule(conn: &Connection, mailbox: &str) -> Result<Option<ArchiveSchedule>> {
    Ok(conn
        .query_row(
            "SELECT mailbox, cron, policy FROM archive_schedules WHERE mailbox = ?1",
            [mailbox],
            schedule_row,
        )
        .optional()?)
}

/// Every mailbox's archive schedule.
pub fn archive_schedules(conn: &Connection) -> Result<Vec<ArchiveSchedule>> {
    let mut stmt =
        conn.prepare("SELECT mailbox, cron, policy FROM archive_schedules ORDER BY mailbox")?;
    let rows = stmt.query_map([], schedule_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets (Some) or removes (None) a mailbox's archive schedule.
pub fn set_archive_schedule(
    cat: &Catalog,
    mailbox: &str,
    schedule: Option<(&str, &serde_json::Value)>,
) -> Result<()> {
    cat.mailbox(mailbox)?;
    let conn = cat.conn();
    match schedule {
        Some((cron, policy)) => conn.execute(
            "INSERT INTO archive_schedules(mailbox, cron, policy, updated) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(mailbox) DO UPDATE SET cron = excluded.cron, policy = excluded.policy,
               updated = excluded.updated",
            params![mailbox, cron, policy.to_string(), now()],
        )?,
        None => conn.execute(
            "DELETE FROM archive_schedules WHERE mailbox = ?1",
            [mailbox],
        )?,
    };
    Ok(())
}

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveSchedule> {
    let policy: String = r.get(2)?;
    Ok(ArchiveSchedule {
        mailbox: r.get(0)?,
        cron: r.get(1)?,
        // Written by this code as JSON; unreadable reads as null, and the
        // scheduler leaves such a schedule out with a warning.
        policy: serde_json::from_str(&policy).unwrap_or(serde_json::Value::Null),
    })
}

/// The service's job machinery while it runs.
#[derive(Default)]
pub struct JobRuntime {
    /// Wakes the scheduler when any schedule changes.
    pub(crate) schedule_changed: Notify,
    /// Mailboxes with an archive run in progress (one at a time per mailbox).
    pub(crate) archive_running: Mutex<HashSet<String>>,
    /// A scheduled update of every enabled offline mailbox is in progress.
    pub(crate) offline_running: AtomicBool,
}

impl JobRuntime {
    /// Tells the scheduler to re-read the schedules.
    pub fn schedules_changed(&self) {
        self.schedule_changed.notify_one();
    }
}
