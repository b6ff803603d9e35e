//! Retention (issue 11 point 1; docs/compliance.md): how long a mailbox
//! keeps its mail, and the expiry that removes what is past it.
//!
//! A mailbox's period is its own (`retention_mailboxes`: days, or keep
//! forever) or else the default (keep forever until an administrator sets
//! one). A message's age is counted from its `Date:` header as the catalog
//! keeps it (`messages.date`, parsed by satchel-message when it was
//! archived), or from the time it joined the mailbox when the header was
//! missing or unparsable.
//!
//! Expiry ([`Service::apply_retention`], on request and on the retention
//! schedule) reads each mailbox a page at a time, never whole, keeps what a
//! hold covers (each hold's query evaluated once per mailbox:
//! [`crate::hold::Coverage`]), and removes the rest through the one removal
//! path, which records each removal in the membership log: the search index
//! drops it, and the next offline update turns it into a tombstone.
//!
//! Its tables (`retention_mailboxes`, `retention_settings`) are the
//! service's component `retention` in the archive's catalog, with their own
//! migrations ([`migrate`]).

use crate::audit::action;
use crate::error::ServiceError;
use crate::hold::Coverage;
use crate::jobs::{self, claims, schedule};
use crate::service::{Caller, Service};
use satchel_api as api;
use satchel_archive::catalog::{Catalog, Db, Migration, Row};
use satchel_archive::{MessageId, params};
use serde_json::json;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "retention";

const V1: &str = r#"
-- No row: the default applies. days NULL: keep forever.
CREATE TABLE IF NOT EXISTS retention_mailboxes(
  mailbox TEXT PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  days INTEGER,
  updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_settings(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"#;

const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS retention_mailboxes(
  mailbox TEXT COLLATE "C" PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  days BIGINT,
  updated BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_settings(
  key TEXT COLLATE "C" PRIMARY KEY,
  value TEXT COLLATE "C" NOT NULL
);
"#;

/// Creates or upgrades the retention tables; run once when the service opens.
pub fn migrate(cat: &Catalog) -> satchel_archive::Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// The default period, in days (absent: keep forever).
const KEY_DEFAULT: &str = "default_days";
/// When expiry runs (cron).
const KEY_SCHEDULE: &str = "schedule";
/// Expiry's schedule until an administrator changes it: daily at 03:00
/// local time, before the offline update (06:00) carries the tombstones
/// to the laptops.
pub const DEFAULT_SCHEDULE: &str = "0 3 * * *";
/// The kind of an expiry in the jobs log.
pub const JOB_KIND: &str = "retention";
/// The lease of an expiry run: one at a time across the nodes.
pub const LEASE: &str = "retention-apply";
/// The longest period accepted (about 1,000 years): anything longer is
/// "keep forever", and it keeps `days * 86,400` far from overflow.
const MAX_DAYS: u64 = 365_000;
/// Messages read and removed per step: a mailbox is never loaded whole.
const PAGE: i64 = 1000;

fn setting(db: &Db, key: &str) -> Result<Option<String>> {
    db.query_opt(
        "SELECT value FROM retention_settings WHERE key = $1",
        params![key],
    )?
    .map(|r| r.get(0))
    .transpose()
    .map_err(Into::into)
}

fn set_setting(db: &Db, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => db.execute(
            "INSERT INTO retention_settings(key, value) VALUES ($1, $2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => db.execute(
            "DELETE FROM retention_settings WHERE key = $1",
            params![key],
        )?,
    };
    Ok(())
}

fn default_days(db: &Db) -> Result<Option<u64>> {
    Ok(setting(db, KEY_DEFAULT)?.and_then(|v| v.parse().ok()))
}

fn schedule_expr(db: &Db) -> Result<String> {
    Ok(setting(db, KEY_SCHEDULE)?.unwrap_or_else(|| DEFAULT_SCHEDULE.to_string()))
}

/// A mailbox's own row: None = no row (the default applies); Some(None) =
/// keep forever.
fn own_days(db: &Db, mailbox: &str) -> Result<Option<Option<u64>>> {
    db.query_opt(
        "SELECT days FROM retention_mailboxes WHERE mailbox = $1",
        params![mailbox],
    )?
    .map(|r| Ok(r.get::<Option<i64>>(0)?.map(|d| d as u64)))
    .transpose()
}

/// A mailbox's effective period and where it comes from.
fn effective(db: &Db, mailbox: &str) -> Result<api::Retention> {
    let (days, source) = match own_days(db, mailbox)? {
        Some(days) => (days, api::FROM_MAILBOX),
        None => (default_days(db)?, api::FROM_DEFAULT),
    };
    Ok(api::Retention {
        mailbox: mailbox.to_string(),
        days,
        source: source.to_string(),
    })
}

fn check_days(days: Option<u64>) -> Result<()> {
    match days {
        Some(0) => Err(ServiceError::BadRequest(
            "a retention period is at least 1 day (or none: keep forever)".into(),
        )),
        Some(d) if d > MAX_DAYS => Err(ServiceError::BadRequest(format!(
            "a retention period is at most {MAX_DAYS} days; use none to keep forever"
        ))),
        _ => Ok(()),
    }
}

/// One message past its period: its removal or a dry run's line.
struct Candidate {
    seq: i64,
    id: MessageId,
    /// Unix seconds its age counts from.
    time: i64,
    subject: String,
}

fn candidate(r: &Row) -> satchel_archive::Result<Candidate> {
    Ok(Candidate {
        seq: r.get(0)?,
        id: r.get(1)?,
        time: r.get(2)?,
        subject: r.get(3)?,
    })
}

/// Up to [`PAGE`] messages of `mailbox` after `after_seq` (up to `head`)
/// whose age counts from before `cutoff`, in the order they joined it.
fn expired_page(
    db: &Db,
    mailbox: &str,
    after_seq: i64,
    head: i64,
    cutoff: i64,
) -> Result<Vec<Candidate>> {
    db.query(
        "SELECT m.seq, m.id, coalesce(g.date, m.added), g.subject
         FROM membership m JOIN messages g ON g.id = m.id
         WHERE m.mailbox = $1 AND m.seq > $2 AND m.seq <= $3
           AND coalesce(g.date, m.added) < $4
         ORDER BY m.seq LIMIT $5",
        params![mailbox, after_seq, head, cutoff, PAGE],
    )?
    .iter()
    .map(|r| candidate(r).map_err(Into::into))
    .collect()
}

/// What one apply did, across its mailboxes.
#[derive(Default)]
struct Tally {
    report: api::RetentionApplied,
}

impl Service {
    /// Every mailbox's effective period, the default and the schedule
    /// (administrators).
    pub fn retention_report(&self, caller: &Caller) -> Result<api::RetentionReport> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        let db = cat.db();
        let mailboxes = cat
            .mailboxes()?
            .iter()
            .map(|m| effective(db, &m.address))
            .collect::<Result<_>>()?;
        let schedule = schedule_expr(db)?;
        Ok(api::RetentionReport {
            default_days: default_days(db)?,
            next_run: schedule::next_run(&schedule),
            schedule,
            mailboxes,
        })
    }

    /// A mailbox's effective period (whoever may search it).
    pub fn mailbox_retention(&self, caller: &Caller, address: &str) -> Result<api::Retention> {
        self.require_search(caller, address)?;
        let cat = self.archive.catalog()?;
        cat.require_mailbox(address)?;
        effective(cat.db(), address)
    }

    /// Sets a mailbox's own period (`Some(days)`, `Some(None)`: keep
    /// forever) or returns it to the default (`None`); administrators.
    pub fn set_mailbox_retention(
        &self,
        caller: &Caller,
        address: &str,
        days: Option<Option<u64>>,
    ) -> Result<api::Retention> {
        caller.require_admin()?;
        check_days(days.flatten())?;
        let cat = self.archive.catalog()?;
        cat.require_mailbox(address)?;
        let db = cat.db();
        match days {
            Some(d) => db.execute(
                "INSERT INTO retention_mailboxes(mailbox, days, updated) VALUES ($1, $2, $3)
                 ON CONFLICT(mailbox) DO UPDATE SET days = excluded.days, updated = excluded.updated",
                params![address, d.map(|d| d as i64), satchel_archive::catalog::now()],
            )?,
            None => db.execute(
                "DELETE FROM retention_mailboxes WHERE mailbox = $1",
                params![address],
            )?,
        };
        let now = effective(db, address)?;
        crate::audit::note(
            &cat,
            caller,
            action::RETENTION_SET,
            json!({ "mailbox": address, "days": now.days, "source": now.source }),
        )?;
        Ok(now)
    }

    /// Sets the default period (None: keep forever); administrators.
    pub fn set_default_retention(
        &self,
        caller: &Caller,
        days: Option<u64>,
    ) -> Result<api::RetentionReport> {
        caller.require_admin()?;
        check_days(days)?;
        {
            let cat = self.archive.catalog()?;
            let text = days.map(|d| d.to_string());
            set_setting(cat.db(), KEY_DEFAULT, text.as_deref())?;
            crate::audit::note(
                &cat,
                caller,
                action::RETENTION_SET,
                json!({ "default": true, "days": days }),
            )?;
        }
        self.retention_report(caller)
    }

    /// The retention schedule as stored (cron), for the scheduler.
    pub(crate) fn retention_schedule_expr(&self) -> Result<String> {
        schedule_expr(self.archive.catalog()?.db())
    }

    /// Sets when expiry runs (cron, as `offline schedule`); administrators.
    pub fn set_retention_schedule(
        &self,
        caller: &Caller,
        cron: &str,
    ) -> Result<api::RetentionSchedule> {
        caller.require_admin()?;
        schedule::parse(cron).map_err(ServiceError::BadRequest)?;
        let cron = cron.split_whitespace().collect::<Vec<_>>().join(" ");
        let cat = self.archive.catalog()?;
        set_setting(cat.db(), KEY_SCHEDULE, Some(&cron))?;
        crate::audit::note(
            &cat,
            caller,
            action::RETENTION_SET,
            json!({ "schedule": cron }),
        )?;
        self.jobs.schedules_changed();
        Ok(api::RetentionSchedule {
            next_run: schedule::next_run(&cron),
            cron,
        })
    }

    /// Applies retention now (administrators): one mailbox or every one,
    /// or in a dry run only says what it would remove.
    pub fn apply_retention(
        &self,
        caller: &Caller,
        req: &api::ApplyRetention,
    ) -> Result<api::RetentionApplied> {
        caller.require_admin()?;
        if let Some(mb) = &req.mailbox {
            self.archive.catalog()?.require_mailbox(mb)?;
        }
        self.audit(
            caller,
            action::RETENTION_APPLY,
            json!({ "mailbox": req.mailbox, "dry_run": req.dry_run }),
        )?;
        if req.dry_run {
            return self.expire(req.mailbox.as_deref(), true, caller);
        }
        self.expiry_job(req.mailbox.as_deref(), "request", caller)
    }

    /// Runs expiry recorded as a job (its outcome and counts in the jobs log).
    fn expiry_job(
        &self,
        mailbox: Option<&str>,
        trigger: &str,
        caller: &Caller,
    ) -> Result<api::RetentionApplied> {
        let job = self
            .jobs
            .start(self.archive.catalog()?.db(), JOB_KIND, mailbox)?;
        let result = self.expire(mailbox, false, caller).map(|mut r| {
            r.job = job;
            r
        });
        let (outcome, mut detail) = match &result {
            Ok(r) => (
                "ok",
                json!({
                    "removed": r.removed.len(),
                    "held": r.held,
                    "mailboxes": r.mailboxes,
                    "reclaimed_bytes": r.reclaimed_bytes,
                }),
            ),
            Err(e) => ("failed", json!({ "error": e.to_string() })),
        };
        detail["trigger"] = json!(trigger);
        if let Err(e) = jobs::finish(self.archive.catalog()?.db(), job, outcome, &detail) {
            tracing::error!(job, error = %e, "cannot record the end of a job");
        }
        result
    }

    /// Expiry of one mailbox or of every mailbox with a period.
    fn expire(
        &self,
        mailbox: Option<&str>,
        dry_run: bool,
        caller: &Caller,
    ) -> Result<api::RetentionApplied> {
        let targets: Vec<api::Retention> = {
            let cat = self.archive.catalog()?;
            let names = match mailbox {
                Some(m) => vec![m.to_string()],
                None => cat.mailboxes()?.into_iter().map(|m| m.address).collect(),
            };
            names
                .iter()
                .map(|m| effective(cat.db(), m))
                .collect::<Result<_>>()?
        };
        let mut tally = Tally::default();
        tally.report.dry_run = dry_run;
        let now = satchel_archive::catalog::now();
        for t in targets {
            let Some(days) = t.days else { continue };
            let cutoff = now - (days as i64) * 86_400;
            self.expire_mailbox(&t.mailbox, cutoff, dry_run, caller, &mut tally)?;
            tally.report.mailboxes.push(t.mailbox);
        }
        if !dry_run && !tally.report.removed.is_empty() {
            tally.report.reclaimed_bytes = self.reclaim_after_expiry(&tally.report.removed);
        }
        Ok(tally.report)
    }

    /// Expires `mailbox`'s messages older than `cutoff`, a page at a time.
    /// Only messages that were there when it started are considered (mail
    /// arriving meanwhile was not in the holds' evaluation).
    fn expire_mailbox(
        &self,
        mailbox: &str,
        cutoff: i64,
        dry_run: bool,
        caller: &Caller,
        tally: &mut Tally,
    ) -> Result<()> {
        let head = self.archive.catalog()?.last_seq(mailbox)?;
        let holds = self.holds_over(mailbox)?;
        let mut after = 0;
        loop {
            let page = expired_page(self.archive.catalog()?.db(), mailbox, after, head, cutoff)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let free = self.keep_held(&holds, page, tally);
            if !dry_run {
                self.remove_expired(mailbox, &free, caller)?;
            }
            tally
                .report
                .removed
                .extend(free.into_iter().map(|c| api::Expired {
                    mailbox: mailbox.to_string(),
                    id: c.id,
                    date: jobs::unix_time(c.time).unwrap_or_default(),
                    subject: c.subject,
                }));
        }
        Ok(())
    }

    /// Counts the held candidates per hold and returns the others.
    fn keep_held(
        &self,
        holds: &Coverage,
        page: Vec<Candidate>,
        tally: &mut Tally,
    ) -> Vec<Candidate> {
        if holds.is_empty() {
            return page;
        }
        page.into_iter()
            .filter(|c| match holds.covering(&c.id) {
                Some(hold) => {
                    *tally.report.held.entry(hold.to_string()).or_default() += 1;
                    false
                }
                None => true,
            })
            .collect()
    }

    /// Removes a page of expired messages from `mailbox` (one catalog
    /// transaction and one index commit, in the archive) and records it.
    fn remove_expired(&self, mailbox: &str, expired: &[Candidate], caller: &Caller) -> Result<()> {
        if expired.is_empty() {
            return Ok(());
        }
        let ids: Vec<MessageId> = expired.iter().map(|c| c.id).collect();
        self.archive.remove_members(mailbox, &ids)?;
        let target = json!({ "mailbox": mailbox, "reason": "retention", "ids": ids });
        self.audit(caller, action::MESSAGE_DELETE, target)
    }

    /// Rewrites the packs of expired messages no mailbox holds any longer,
    /// as for an erasure, so their bytes leave the repositories now; the
    /// bytes given back. A failure is logged, not returned: the messages are
    /// out of their mailboxes already, and the next `satchel repo gc` pass
    /// reclaims the space.
    fn reclaim_after_expiry(&self, removed: &[api::Expired]) -> u64 {
        let opts = satchel_archive::archive::GcOptions {
            erase: Some(removed.iter().map(|e| e.id).collect()),
            ..Default::default()
        };
        match self.archive.collect_garbage(&opts) {
            Ok(report) => report.bytes_reclaimed,
            Err(e) => {
                tracing::error!(error = %e, "reclaiming the space of expired messages; the next garbage pass does");
                0
            }
        }
    }

    /// The scheduled expiry of every mailbox, unless one still runs (on any
    /// node).
    pub(crate) fn scheduled_retention(&self, firing: i64) {
        let lease = self
            .archive()
            .catalog()
            .and_then(|c| self.jobs.lease(c.db(), LEASE));
        let lease = match lease {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::warn!(
                    firing,
                    "scheduled expiry skipped: the previous one is still running"
                );
                return;
            }
            Err(e) => {
                tracing::error!(firing, error = %e, "scheduled expiry skipped");
                return;
            }
        };
        tracing::info!(firing, "scheduled retention expiry");
        match claims::with_firing(Some(firing), || {
            self.expiry_job(None, "schedule", &scheduler())
        }) {
            Ok(r) => tracing::info!(firing, removed = r.removed.len(), "retention expiry done"),
            Err(e) => tracing::error!(firing, error = %e, "retention expiry failed"),
        }
        if let Err(e) = self.archive().catalog().and_then(|c| lease.release(c.db())) {
            tracing::warn!(error = %e, "cannot give back the retention lease");
        }
    }
}

/// The actor of removals the schedule makes.
pub const SCHEDULER: &str = "scheduler";

/// The caller the scheduled expiry acts as: in the audit trail its actor
/// is [`SCHEDULER`], from this machine.
fn scheduler() -> Caller {
    Caller {
        user: satchel_archive::UserInfo::internal(SCHEDULER, true),
        by_password: false,
        source: std::net::Ipv4Addr::LOCALHOST.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_at_least_a_day_and_bounded() {
        assert!(check_days(None).is_ok());
        assert!(check_days(Some(1)).is_ok());
        assert!(check_days(Some(0)).is_err());
        assert!(check_days(Some(MAX_DAYS + 1)).is_err());
    }
}
