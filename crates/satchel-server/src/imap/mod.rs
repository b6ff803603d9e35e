//! IMAP archive runs on the service (issue 3): `Service` operations that start
//! a run (one at a time per mailbox), record it in the jobs table (kind
//! `archive`), list the records, and keep per-mailbox archive schedules. The
//! run itself — IMAP, archive, stubs — is `satchel_mailbox::run`.

pub mod http;

use crate::error::ServiceError;
use crate::jobs::{self, schedule};
use crate::service::{Caller, Result, Service};
use satchel_api as api;
use satchel_mailbox::RunError;
use std::sync::Arc;

pub const JOB_KIND: &str = jobs::ARCHIVE;

/// A mailbox's lease on archive runs (the catalog's `job_leases`): one run at
/// a time per mailbox across every node, given back when the run ends.
struct RunSlot {
    service: Arc<Service>,
    lease: Option<jobs::claims::Lease>,
}

impl RunSlot {
    /// Takes the mailbox's lease, or refuses: one run at a time per mailbox.
    fn take(service: &Arc<Service>, address: &str) -> Result<RunSlot> {
        let key = jobs::archive_lease(address);
        let lease = service
            .jobs
            .lease(service.archive().catalog()?.db(), &key)?;
        match lease {
            Some(lease) => Ok(RunSlot {
                service: service.clone(),
                lease: Some(lease),
            }),
            None => Err(ServiceError::Conflict(format!(
                "an archive run of {address} is already in progress"
            ))),
        }
    }
}

impl RunSlot {
    /// Gives the lease back at once (blocking on the catalog), so a run
    /// asked for right after this one ends is not refused.
    fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            give_back(&self.service, lease);
        }
    }
}

fn give_back(service: &Service, lease: jobs::claims::Lease) {
    if let Err(e) = service
        .archive()
        .catalog()
        .and_then(|c| lease.release(c.db()))
    {
        tracing::warn!(error = %e, "cannot give back an archive run's lease");
    }
}

impl Drop for RunSlot {
    /// A slot not released (the run's task panicked) is given back off the
    /// async workers.
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let service = self.service.clone();
        let release = move || give_back(&service, lease);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(release)),
            Err(_) => release(),
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

/// Records the start of a run of `address` (after checking its settings: a
/// mailbox without IMAP is a 400, not a failed run); the job's id.
fn record_start(service: &Service, address: &str, trigger: jobs::Trigger) -> Result<i64> {
    satchel_mailbox::Account::of_mailbox(service.archive(), address).map_err(run_error)?;
    let cat = service.archive().catalog()?;
    Ok(jobs::claims::with_firing(trigger.firing(), || {
        service.jobs.start(cat.db(), JOB_KIND, Some(address))
    })?)
}

/// Runs an archive run of `address` to its end and records it; `trigger`
/// says who asked (a person, or a schedule's firing). The run continues even if the requester goes away.
pub async fn start_run(
    service: Arc<Service>,
    address: String,
    policy: api::ArchivePolicy,
    trigger: jobs::Trigger,
) -> Result<api::ArchiveRunSummary> {
    satchel_mailbox::run::validate(&policy).map_err(run_error)?;
    let svc = service.clone();
    let addr = address.clone();
    let (slot, job) = tokio::task::spawn_blocking(move || -> Result<(RunSlot, i64)> {
        let slot = RunSlot::take(&svc, &addr)?;
        match record_start(&svc, &addr, trigger) {
            Ok(job) => Ok((slot, job)),
            Err(e) => {
                slot.release();
                Err(e)
            }
        }
    })
    .await??;
    let trigger = trigger.as_str();
    tracing::info!(%address, job, trigger, "archive run started");
    let task = tokio::spawn(async move {
        let archive = service.archive();
        let mut last = std::time::Instant::now();
        let mut progress = |s: &api::ArchiveRunSummary| {
            if last.elapsed() >= std::time::Duration::from_millis(500) {
                last = std::time::Instant::now();
                if let Ok(v) = serde_json::to_value(s) {
                    tokio::task::block_in_place(|| {
                        if let Ok(cat) = archive.catalog() {
                            let _ = jobs::set_detail(cat.db(), job, &v);
                        }
                    });
                }
            }
        };
        let started = std::time::Instant::now();
        let result = satchel_mailbox::run(archive, &address, &policy, job, &mut progress).await;
        let (outcome, summary, err) = match result {
            Ok(s) => ("ok", s, None),
            Err((e, s)) => ("failed", s, Some(e)),
        };
        crate::metrics::global().imap_run(outcome, summary.archived, started.elapsed());
        let detail = serde_json::to_value(&summary).unwrap_or_default();
        let recorded = tokio::task::block_in_place(|| -> Result<()> {
            jobs::finish(archive.catalog()?.db(), job, outcome, &detail)?;
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::error!(job, error = %e, "cannot record the end of an archive run");
        }
        tokio::task::block_in_place(|| slot.release());
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
            cat.require_mailbox(mb)?;
        }
        let runs = jobs::list(cat.db(), Some(JOB_KIND), mailbox, jobs::clamp(limit))?;
        Ok(runs.into_iter().map(jobs::Job::view).collect())
    }

    /// Every mailbox's archive schedule (cron, mailbox, policy), for the
    /// scheduler. A policy that no longer reads is logged and left out.
    pub(crate) fn archive_schedule_list(
        &self,
    ) -> Result<Vec<(String, String, api::ArchivePolicy)>> {
        let list = jobs::archive_schedules(self.archive().catalog()?.db())?;
        Ok(list
            .into_iter()
            .filter_map(|s| match serde_json::from_value(s.policy) {
                Ok(policy) => Some((s.cron, s.mailbox, policy)),
                Err(e) => {
                    tracing::warn!(mailbox = %s.mailbox, error = %e, "archive schedule left out: unreadable policy");
                    None
                }
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
        cat.require_mailbox(address)?;
        Ok(schedule_view(
            address,
            jobs::archive_schedule(cat.db(), address)?,
        ))
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
            jobs::set_archive_schedule(&cat, address, None)?;
        } else {
            schedule::parse(cron).map_err(ServiceError::BadRequest)?;
            satchel_mailbox::run::validate(&body.policy).map_err(run_error)?;
            let policy = serde_json::to_value(&body.policy)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            jobs::set_archive_schedule(&cat, address, Some((cron, &policy)))?;
        }
        let target = serde_json::json!({ "mailbox": address, "cron": cron });
        crate::audit::note(&cat, caller, crate::audit::action::ARCHIVE_SCHEDULE, target)?;
        self.jobs.schedules_changed();
        Ok(schedule_view(
            address,
            jobs::archive_schedule(cat.db(), address)?,
        ))
    }
}

fn schedule_view(address: &str, s: Option<jobs::ArchiveSchedule>) -> api::ArchiveScheduleView {
    match s {
        None => api::ArchiveScheduleView {
            mailbox: address.to_string(),
            ..Default::default()
        },
        Some(s) => {
            let next_run = schedule::next_run(&s.cron);
            api::ArchiveScheduleView {
                mailbox: s.mailbox,
                cron: Some(s.cron),
                policy: serde_json::from_value(s.policy).ok(),
                next_run,
            }
        }
    }
}
