//! Per-mailbox archive schedules: a task that sleeps until the earliest next
//! time of any mailbox's cron expression (re-read when a schedule changes), then
//! runs the due mailboxes' archive runs one after another.

use super::{SCHEDULES_CHANGED, start_run};
use crate::service::Service;
use chrono::{DateTime, Local};
use std::sync::Arc;

fn due_list(service: &Service) -> Vec<(DateTime<Local>, String, satchel_api::ArchivePolicy)> {
    let Ok(cat) = service.archive().catalog() else {
        return Vec::new();
    };
    let Ok(list) = cat.archive_schedules() else {
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|s| {
            let cron = crate::offline::schedule::parse(&s.cron).ok()?;
            let next = crate::offline::schedule::next_run(&cron)?;
            let policy = serde_json::from_value(s.policy).ok()?;
            Some((next, s.mailbox, policy))
        })
        .collect()
}

pub async fn run(service: Arc<Service>) {
    loop {
        let changed = SCHEDULES_CHANGED.clone();
        let notified = changed.notified();
        let s = service.clone();
        let list = tokio::task::spawn_blocking(move || due_list(&s))
            .await
            .unwrap_or_default();
        let Some(at) = list.iter().map(|(t, _, _)| *t).min() else {
            notified.await;
            continue;
        };
        let wait = (at - Local::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notified => continue,
        }
        for (t, mailbox, policy) in list.into_iter().filter(|(t, _, _)| *t == at) {
            tracing::info!(%mailbox, at = %t, "scheduled archive run");
            if let Err(e) = start_run(service.clone(), mailbox.clone(), policy, "schedule").await {
                tracing::warn!(%mailbox, error = %e, "scheduled archive run failed");
            }
        }
        // Do not fire twice within the same second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
}
