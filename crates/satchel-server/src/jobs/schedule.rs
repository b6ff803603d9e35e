//! The one scheduler: cron expressions (croner: standard 5-field cron, or 6/7
//! fields with seconds first and an optional year), in the service's local
//! time, and the task that knows every schedule — the offline update schedule
//! and each mailbox's IMAP archive schedule — and starts the due jobs.

use crate::service::Service;
use chrono::{DateTime, Local};
use croner::Cron;
use croner::parser::CronParser;
use satchel_api::ArchivePolicy;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

/// Runs until the process ends: sleeps until the earliest next time of any
/// schedule (re-read as soon as one changes), then starts the jobs due then,
/// each in its own task, so a long archive run never delays another job.
pub async fn run(service: Arc<Service>) {
    // The last time fired: nothing fires twice for the same time.
    let mut fired = Local::now();
    loop {
        let changed = service.jobs.schedule_changed.notified();
        let after = fired.max(Local::now());
        let s = service.clone();
        let list = tokio::task::spawn_blocking(move || due_list(&s, &after))
            .await
            .unwrap_or_default();
        let Some(at) = list.iter().map(|(t, _)| *t).min() else {
            changed.await;
            continue;
        };
        let wait = (at - Local::now()).to_std().unwrap_or_default();
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

/// Starts one due job in its own task.
fn start(service: &Arc<Service>, due: Due, at: DateTime<Local>) {
    let service = service.clone();
    match due {
        Due::OfflineUpdate => {
            if service.jobs.offline_running.swap(true, Ordering::SeqCst) {
                tracing::warn!(%at, "scheduled offline update skipped: the previous one is still running");
                return;
            }
            tracing::info!(%at, "scheduled offline update");
            tokio::spawn(async move {
                let s = service.clone();
                let _ = tokio::task::spawn_blocking(move || s.offline_update_all("schedule")).await;
                service.jobs.offline_running.store(false, Ordering::SeqCst);
            });
        }
        Due::Archive { mailbox, policy } => {
            tracing::info!(%mailbox, %at, "scheduled archive run");
            tokio::spawn(async move {
                let run = crate::imap::start_run(service, mailbox.clone(), policy, "schedule");
                if let Err(e) = run.await {
                    tracing::warn!(%mailbox, error = %e, "scheduled archive run failed");
                }
            });
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
