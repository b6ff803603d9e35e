//! The update schedule: cron syntax, local time, and the task that runs the
//! updates of every enabled mailbox when it fires.

use crate::service::Service;
use chrono::{DateTime, Local};
use std::str::FromStr;
use std::sync::Arc;

/// The schedule until an administrator changes it: daily at 06:00 local time.
pub const DEFAULT_SCHEDULE: &str = "0 6 * * *";

/// Parses an administrator's cron expression. Standard 5-field cron
/// (minute hour day-of-month month day-of-week, Sunday = 0 or 7) is accepted
/// and translated for the `cron` crate (which wants seconds first and numbers
/// Sunday as 1); 6- or 7-field expressions are passed to it unchanged.
pub fn parse(expr: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let full = match fields.len() {
        5 => {
            let dow = translate_dow(fields[4])?;
            format!(
                "0 {} {} {} {} {dow}",
                fields[0], fields[1], fields[2], fields[3]
            )
        }
        6 | 7 => fields.join(" "),
        n => {
            return Err(format!(
                "invalid cron expression {expr:?}: {n} fields; expected 5 \
                 (minute hour day-of-month month day-of-week), e.g. \"0 6 * * *\""
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

const DAY_NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Standard day-of-week numbers (0-7, Sunday = 0 and 7) as names, which the
/// `cron` crate reads unambiguously.
fn translate_dow(field: &str) -> Result<String, String> {
    let name = |s: &str| -> Result<String, String> {
        match s.parse::<usize>() {
            Ok(n) if n < DAY_NAMES.len() => Ok(DAY_NAMES[n].to_string()),
            Ok(n) => Err(format!("day of week {n} is out of range 0-7")),
            Err(_) => Ok(s.to_string()),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let mut range = match range.split_once('-') {
            // FRI-SUN (5-7) would wrap in the crate's numbering: split it.
            Some((a, "7")) if a != "0" && a != "7" && step.is_none() => {
                format!("{}-SAT,SUN", name(a)?)
            }
            Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
            None => name(range)?,
        };
        if let Some(s) = step {
            range = format!("{range}/{s}");
        }
        items.push(range);
    }
    Ok(items.join(","))
}

/// The next time the schedule fires after now, in local time.
pub fn next_run(schedule: &cron::Schedule) -> Option<DateTime<Local>> {
    schedule.upcoming(Local).next()
}

/// Runs until the process ends: sleeps until the next scheduled time (re-read
/// whenever the schedule changes), then updates every enabled mailbox.
pub async fn run(service: Arc<Service>) {
    loop {
        let next = {
            let s = service.clone();
            tokio::task::spawn_blocking(move || s.offline_schedule_parsed())
                .await
                .ok()
                .and_then(|r| r.ok())
                .and_then(|sched| next_run(&sched))
        };
        let changed = service.schedule_changed();
        let Some(at) = next else {
            changed.notified().await;
            continue;
        };
        let wait = (at - Local::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.notified() => continue,
        }
        tracing::info!(at = %at, "scheduled offline update");
        let s = service.clone();
        let _ = tokio::task::spawn_blocking(move || s.offline_update_all("schedule")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_cron_is_accepted_and_daily_default_is_at_six() {
        let s = parse(DEFAULT_SCHEDULE).expect("default parses");
        let next = next_run(&s).expect("a next run");
        assert_eq!(next.format("%H:%M:%S").to_string(), "06:00:00");
    }

    #[test]
    fn standard_day_of_week_numbers() {
        use chrono::Datelike;
        let s = parse("30 7 * * 1-5").expect("weekdays");
        for t in s.upcoming(Local).take(10) {
            let wd = t.weekday().number_from_monday();
            assert!((1..=5).contains(&wd), "{t} is not a weekday");
        }
        let s = parse("0 0 * * 0").expect("sunday");
        let t = next_run(&s).expect("next");
        assert_eq!(t.weekday(), chrono::Weekday::Sun);
        let s = parse("0 0 * * 5-7").expect("fri-sun");
        for t in s.upcoming(Local).take(6) {
            assert!(matches!(
                t.weekday(),
                chrono::Weekday::Fri | chrono::Weekday::Sat | chrono::Weekday::Sun
            ));
        }
    }

    #[test]
    fn bad_syntax_is_refused_with_the_reason() {
        let e = parse("61 6 * * *").expect_err("minute 61");
        assert!(e.contains("invalid cron expression"), "{e}");
        let e = parse("every day").expect_err("two fields");
        assert!(e.contains("expected 5"), "{e}");
        assert!(parse("0 0 6 * * * *").is_ok(), "7 fields with seconds");
    }
}
