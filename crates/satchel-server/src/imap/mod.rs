//! IMAP archive runs on the service (issue 3): `Service` operations that start
//! a run (one at a time per mailbox), record it in the jobs table (kind
//! `archive`), list the records, and keep per-mailbox archive schedules. The
//! run itself — IMAP, archive, stubs — is `satchel_mailbox::run`.

pub mod http;
pub mod schedule;

use crate::error::ServiceError;
use crate::service::{Caller, Result, Service};
use satchel_api as api;
use satchel_mailbox::RunError;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::Notify;

pub const JOB_KIND: &str = "archive";

/// Mailboxes with a run in progress (keyed by data folder and address).
static RUNNING: LazyLock<Mutex<HashSet<(std::path::PathBuf, String)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// Wakes the archive scheduler when a schedule changes.
pub(crate) static SCHEDULES_CHANGED: LazyLock<Arc<Notify>> =
    LazyLock::new(|| Arc::new(Notify::new()));

/// Frees a mailbox's run slot when the run ends, however it ends.
struct RunSlot(std::path::PathBuf, String);

impl Drop for RunSlot {
    fn drop(&mut self) {
        if let Ok(mut r) = RUNNING.lock() {
            r.remove(&(self.0.clone(), self.1.clone()));
        }
    }
}

pub fn run_error(e: RunError) -> ServiceError {
    match e {
        RunError::Config(m) | RunError::Folder(m) => ServiceError::BadRequest(m),
        RunError::Imap(m) => ServiceError::BadGateway(m),
        RunError::Archive(a) => a.into(),
    }
}

fn rfc3339(t: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339())
}

/// Runs an archive run of `address` to its end and records it. `trigger` is
/// "request" or "schedule". The run continues even if the requester goes away.
pub async fn start_run(
    service: Arc<Service>,
    address: String,
    policy: api::ArchivePolicy,
    trigger: &'static str,
) -> Result<api::ArchiveRunSummary> {
    satchel_mailbox::run::validate(&policy).map_err(run_error)?;
    let slot = {
        let key = (service.archive().root().to_path_buf(), address.clone());
        let mut running = RUNNING
            .lock()
            .map_err(|_| ServiceError::Internal("run registry poisoned".into()))?;
        if !running.insert(key.clone()) {
            return Err(ServiceError::Conflict(format!(
                "an archive run of {address} is already in progress"
            )));
        }
        RunSlot(key.0, key.1)
    };
    let svc = service.clone();
    let addr = address.clone();
    let job = tokio::task::spawn_blocking(move || -> Result<i64> {
        // Settings are checked before a record is made: a mailbox without IMAP
        // is a 400, not a failed run.
        satchel_mailbox::Account::of_mailbox(svc.archive(), &addr).map_err(run_error)?;
        let cat = svc.archive().catalog()?;
        cat.start_job(JOB_KIND, Some(&addr)).map_err(Into::into)
    })
    .await??;
    tracing::info!(%address, job, trigger, "archive run started");
    let task = tokio::spawn(async move {
        let _slot = slot;
        let archive = service.archive();
        let mut last = std::time::Instant::now();
        let mut progress = |s: &api::ArchiveRunSummary| {
            if last.elapsed() >= std::time::Duration::from_millis(500) {
                last = std::time::Instant::now();
                if let Ok(v) = serde_json::to_value(s) {
                    tokio::task::block_in_place(|| {
                        if let Ok(cat) = archive.catalog() {
                            let _ = cat.set_job_detail(job, &v);
                        }
                    });
                }
            }
        };
        let result = satchel_mailbox::run(archive, &address, &policy, job, &mut progress).await;
        let (outcome, summary, err) = match result {
            Ok(s) => ("ok", s, None),
            Err((e, s)) => ("failed", s, Some(e)),
        };
        let detail = serde_json::to_value(&summary).unwrap_or_default();
        let recorded = tokio::task::block_in_place(|| -> Result<()> {
            archive.catalog()?.finish_job(job, outcome, &detail)?;
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::error!(job, error = %e, "cannot record the end of an archive run");
        }
        tracing::info!(
            %address, job, outcome,
            archived = summary.archived, stubbed = summary.stubbed, failed = summary.failed,
            "archive run ended"
        );
        match err {
            None => Ok(summary),
            Some(e) => {
                let mut se = run_error(e);
                let tail = format!(
                    " (archive run {job} stopped after {} examined, {} archived, {} stubbed; \
                     nothing was lost: run it again to finish)",
                    summary.examined, summary.archived, summary.stubbed
                );
                match &mut se {
                    ServiceError::BadRequest(m)
                    | ServiceError::BadGateway(m)
                    | ServiceError::Internal(m)
                    | ServiceError::NotFound(m) => m.push_str(&tail),
                    _ => {}
                }
                Err(se)
            }
        }
    });
    task.await?
}

impl Service {
    /// The records of archive runs, the most recent first.
    pub fn archive_runs(
        &self,
        caller: &Caller,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<Vec<api::JobView>> {
        caller.require_admin()?;
        let cat = self.archive().catalog()?;
        if let Some(mb) = mailbox {
            cat.mailbox(mb)?;
        }
        Ok(cat
            .jobs_of_kind(JOB_KIND, limit.clamp(1, 1000), mailbox)?
            .into_iter()
            .map(|j| api::JobView {
                id: j.id,
                kind: j.kind,
                mailbox: j.mailbox,
                started: rfc3339(j.started).unwrap_or_default(),
                finished: j.finished.and_then(rfc3339),
                outcome: j.outcome,
                detail: j.detail,
            })
            .collect())
    }

    pub fn archive_schedule(
        &self,
        caller: &Caller,
        address: &str,
    ) -> Result<api::ArchiveScheduleView> {
        caller.require_admin()?;
        let cat = self.archive().catalog()?;
        cat.mailbox(address)?;
        Ok(schedule_view(address, cat.archive_schedule(address)?))
    }

    /// Sets a mailbox's archive schedule (cron, local time), or turns it off.
    pub fn set_archive_schedule(
        &self,
        caller: &Caller,
        address: &str,
        body: &api::SetArchiveSchedule,
    ) -> Result<api::ArchiveScheduleView> {
        caller.require_admin()?;
        let cron = body.cron.trim();
        let cat = self.archive().catalog()?;
        if cron.eq_ignore_ascii_case("off") || cron.is_empty() {
            cat.set_archive_schedule(address, None)?;
        } else {
            crate::offline::schedule::parse(cron).map_err(ServiceError::BadRequest)?;
            satchel_mailbox::run::validate(&body.policy).map_err(run_error)?;
            let policy = serde_json::to_value(&body.policy)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            cat.set_archive_schedule(address, Some((cron, &policy)))?;
        }
        SCHEDULES_CHANGED.notify_one();
        Ok(schedule_view(address, cat.archive_schedule(address)?))
    }
}

fn schedule_view(
    address: &str,
    s: Option<satchel_archive::catalog::ArchiveSchedule>,
) -> api::ArchiveScheduleView {
    match s {
        None => api::ArchiveScheduleView {
            mailbox: address.to_string(),
            ..Default::default()
        },
        Some(s) => {
            let next_run = crate::offline::schedule::parse(&s.cron)
                .ok()
                .and_then(|c| crate::offline::schedule::next_run(&c))
                .map(|t| t.to_rfc3339());
            api::ArchiveScheduleView {
                mailbox: s.mailbox,
                cron: Some(s.cron),
                policy: serde_json::from_value(s.policy).ok(),
                next_run,
            }
        }
    }
}
