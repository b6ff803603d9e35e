//! The one scheduler: cron expressions (croner: standard 5-field cron, or 6/7
//! fields with seconds first and an optional year), in the service's local
//! time, and the task that knows every schedule — the offline update schedule
//! and each mailbox's IMAP archive schedule — and starts the due jobs.
//!
//! With several nodes on one catalog every node's scheduler wakes for every
//! firing; the node that claims the firing in the catalog runs it, the others
//! skip it ([`claims`]). Nodes must share one time zone: a schedule is read
//! in the service's local time, and the claim is of the scheduled instant.

use crate::jobs::{Trigger, claims};
use crate::service::Service;
use chrono::{DateTime, Local};
use croner::Cron;
use croner::parser::CronParser;
use satchel_api::ArchivePolicy;
use std::sync::Arc;

/// Parses an administrator's cron expression: 5 fields (minute hour
/// day-of-month month day-of-week, Sunday = 0 or 7, names allowed), or 6/7
/// with seconds first and an optional year. The error says why.
pub fn parse(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=7).contains(&fields) {
        return Err(format!(
            "invalid cron expression {expr:?}: {fields} fields; expected 5 \
             (minute hour day-of-month month day-of-week), e.g. \"0 6 * * *\""
        ));
    }
    CronParser::new()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

/// The first time after `after` the schedule fires, in local time.
pub fn next_after(cron: &Cron, after: &DateTime<Local>) -> Option<DateTime<Local>> {
    cron.find_next_occurrence(after, false).ok()
}

/// The next run of `expr` from now, as the API shows times (None if the
/// expression does not parse or never fires).
pub fn next_run(expr: &str) -> Option<String> {
    let cron = parse(expr).ok()?;
    next_after(&cron, &Local::now()).map(|t| crate::jobs::time(&t))
}

/// What a schedule starts.
#[derive(Clone, Debug)]
enum Due {
    /// An update of every enabled offline mailbox.
    OfflineUpdate,
    /// Retention expiry of every mailbox (crate::retention).
    Retention,
    /// An archive run of one mailbox.
    Archive {
        mailbox: String,
        policy: ArchivePolicy,
    },
}

/// Every schedule with its next time after `after`. A schedule that cannot be
/// read is logged and left out; the others still run.
fn due_list(service: &Service, after: &DateTime<Local>) -> Vec<(DateTime<Local>, Due)> {
    let mut list = Vec::new();
    match service.offline_schedule_expr() {
        Ok(expr) => list.push((expr, Due::OfflineUpdate)),
        Err(e) => tracing::error!(error = %e, "cannot read the offline schedule"),
    }
    match service.retention_schedule_expr() {
        Ok(expr) => list.push((expr, Due::Retention)),
        Err(e) => tracing::error!(error = %e, "cannot read the retention schedule"),
    }
    match service.archive_schedule_list() {
        Ok(schedules) => list.extend(
            schedules
                .into_iter()
                .map(|(cron, mailbox, policy)| (cron, Due::Archive { mailbox, policy })),
        ),
        Err(e) => tracing::error!(error = %e, "cannot read the archive schedules"),
    }
    list.into_iter()
        .filter_map(|(expr, due)| match parse(&expr) {
            Ok(cron) => Some((next_after(&cron, after)?, due)),
            Err(e) => {
                tracing::warn!(?due, error = %e, "schedule left out");
                None
            }
        })
        .collect()
}

/// How long the scheduler sleeps at most before reading the schedules again:
/// a schedule changed through another node (which cannot wake this one) is
/// seen within this.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs until the process ends: the scheduler and this node's heartbeat.
pub async fn run(service: Arc<Service>) {
    tokio::join!(fire_when_due(service.clone()), heartbeat(service));
}

/// Sleeps until the earliest next time of any schedule (re-read as soon as
/// one changes here, and every [`RECHECK`] for changes made elsewhere), then
/// starts the jobs due then, each in its own task, so a long archive run
/// never delays another job.
async fn fire_when_due(service: Arc<Service>) {
    // The last time fired: nothing fires twice for the same time.
    let mut fired = Local::now();
    loop {
        let changed = service.jobs.schedule_changed.notified();
        let after = fired.max(Local::now());
        let s = service.clone();
        let list = tokio::task::spawn_blocking(move || due_list(&s, &after))
            .await
            .unwrap_or_default();
        let at = list.iter().map(|(t, _)| *t).min();
        let wait = at.map(|at| (at - Local::now()).to_std().unwrap_or_default());
        let Some((at, wait)) = at.zip(wait).filter(|(_, w)| *w <= RECHECK) else {
            tokio::select! {
                _ = tokio::time::sleep(RECHECK) => {}
                _ = changed => {}
            }
            continue;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => continue,
        }
        fired = at;
        for (_, due) in list.into_iter().filter(|(t, _)| *t == at) {
            start(&service, due, at);
        }
    }
}

/// Beats every [`claims::HEARTBEAT`], the first time at once (which also
/// marks the jobs of nodes that died while this one was down abandoned).
async fn heartbeat(service: Arc<Service>) {
    let mut every = tokio::time::interval(claims::HEARTBEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let s = service.clone();
        let beat = tokio::task::spawn_blocking(move || s.jobs.beat(s.archive().catalog()?.db()));
        match beat.await {
            Ok(Ok(0)) => {}
            Ok(Ok(abandoned)) => {
                tracing::warn!(
                    abandoned,
                    "jobs of a node that stopped beating marked abandoned"
                )
            }
            Ok(Err(e)) => tracing::error!(error = %e, "job heartbeat"),
            Err(e) => tracing::error!(error = %e, "job heartbeat task failed"),
        }
    }
}

impl Due {
    /// The schedule's name in `job_claims`.
    fn schedule_key(&self) -> String {
        match self {
            Due::OfflineUpdate => "offline-update".to_string(),
            Due::Retention => crate::retention::LEASE.to_string(),
            Due::Archive { mailbox, .. } => crate::jobs::archive_lease(mailbox),
        }
    }
}

/// Starts one due job in its own task, if this node claims its firing.
fn start(service: &Arc<Service>, due: Due, at: DateTime<Local>) {
    let service = service.clone();
    tokio::spawn(async move {
        let firing = at.timestamp();
        let s = service.clone();
        let key = due.schedule_key();
        let claimed = tokio::task::spawn_blocking(move || {
            s.jobs.claim(s.archive().catalog()?.db(), &key, firing)
        })
        .await;
        match claimed {
            Ok(Ok(true)) => run_due(service, due, firing).await,
            Ok(Ok(false)) => tracing::debug!(?due, %at, "firing claimed by another node"),
            Ok(Err(e)) => tracing::error!(?due, %at, error = %e, "cannot claim a firing; skipped"),
            Err(e) => tracing::error!(?due, %at, error = %e, "claiming a firing failed"),
        }
    });
}

/// Runs one claimed firing's job.
async fn run_due(service: Arc<Service>, due: Due, firing: i64) {
    let trigger = Trigger::Schedule { firing };
    match due {
        Due::OfflineUpdate => {
            let run = tokio::task::spawn_blocking(move || service.scheduled_offline_update(firing));
            if let Err(e) = run.await {
                tracing::error!(error = %e, "scheduled offline update failed");
            }
        }
        Due::Retention => {
            let run = tokio::task::spawn_blocking(move || service.scheduled_retention(firing));
            if let Err(e) = run.await {
                tracing::error!(error = %e, "scheduled retention expiry failed");
            }
        }
        Due::Archive { mailbox, policy } => {
            tracing::info!(%mailbox, firing, "scheduled archive run");
            let run = crate::imap::start_run(service, mailbox.clone(), policy, trigger);
            if let Err(e) = run.await {
                tracing::warn!(%mailbox, error = %e, "scheduled archive run failed");
            }
        }
    }
}

impl Service {
    /// The scheduled update of every enabled offline mailbox, unless the
    /// previous one still runs (on any node).
    fn scheduled_offline_update(&self, firing: i64) {
        let lease = self
            .archive()
            .catalog()
            .and_then(|c| self.jobs.lease(c.db(), crate::jobs::OFFLINE_ALL_LEASE));
        let lease = match lease {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::warn!(
                    firing,
                    "scheduled offline update skipped: the previous one is still running"
                );
                return;
            }
            Err(e) => {
                tracing::error!(firing, error = %e, "scheduled offline update skipped");
                return;
            }
        };
        tracing::info!(firing, "scheduled offline update");
        claims::with_firing(Some(firing), || self.offline_update_all("schedule"));
        if let Err(e) = self.archive().catalog().and_then(|c| lease.release(c.db())) {
            tracing::warn!(error = %e, "cannot give back the offline update's lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn upcoming(expr: &str, n: usize) -> Vec<DateTime<Local>> {
        let cron = parse(expr).expect("parses");
        let mut t = Local::now();
        (0..n)
            .map(|_| {
                t = next_after(&cron, &t).expect("fires");
                t
            })
            .collect()
    }

    #[test]
    fn five_field_cron_is_accepted_and_daily_default_is_at_six() {
        let next = upcoming(crate::offline::DEFAULT_SCHEDULE, 1)[0];
        assert_eq!(
            (next.hour(), next.minute(), next.second()),
            (6, 0, 0),
            "{next}"
        );
    }

    #[test]
    fn standard_day_of_week_numbers() {
        for t in upcoming("30 7 * * 1-5", 10) {
            let wd = t.weekday().number_from_monday();
            assert!((1..=5).contains(&wd), "{t} is not a weekday");
        }
        assert_eq!(upcoming("0 0 * * 0", 1)[0].weekday(), chrono::Weekday::Sun);
        assert_eq!(upcoming("0 0 * * 7", 1)[0].weekday(), chrono::Weekday::Sun);
        let days: Vec<_> = upcoming("0 0 * * 5-7", 6)
            .iter()
            .map(|t| t.weekday())
            .collect();
        for d in &days {
            assert!(
                matches!(
                    d,
                    chrono::Weekday::Fri | chrono::Weekday::Sat | chrono::Weekday::Sun
                ),
                "{days:?}"
            );
        }
        assert!(days.contains(&chrono::Weekday::Sun), "{days:?}");
    }

    #[test]
    fn bad_syntax_is_refused_with_the_reason() {
        let e = parse("61 6 * * *").expect_err("minute 61");
        assert!(e.contains("invalid cron expression"), "{e}");
        let e = parse("every day").expect_err("two fields");
        assert!(e.contains("expected 5"), "{e}");
        assert!(parse("0 0 6 * * * *").is_ok(), "7 fields with seconds");
        let every_two = upcoming("*/2 * * * * *", 2);
        assert_eq!((every_two[1] - every_two[0]).num_seconds(), 2);
    }

    #[test]
    fn times_are_utc_with_z_and_whole_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-05-01T08:00:03.25+02:00").expect("time");
        assert_eq!(crate::jobs::time(&t), "2026-05-01T06:00:03Z");
        assert_eq!(
            crate::jobs::unix_time(1_777_615_203).as_deref(),
            Some("2026-05-01T06:00:03Z")
        );
    }
}
