//! `satchel offline ...` and `satchel jobs`: offline synchronization on the
//! service (docs/offline-service.md).

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use satchel_api::{self as api, Limit};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum OfflineCmd {
    /// Enable offline synchronization of a mailbox. Settings not given keep
    /// their current value (the global default for a new mailbox).
    Enable {
        address: String,
        /// Only messages of the last DAYS days ("none": no limit; "default":
        /// the global default).
        #[arg(long, value_name = "DAYS")]
        since: Option<Limit>,
        /// Cap on the raw size of the offline messages, newest kept first
        /// ("none": no limit; "default": the global default).
        #[arg(long, value_name = "N")]
        max_bytes: Option<Limit>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop updating a mailbox's offline repository (it stays as it is).
    Disable {
        address: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Offline synchronization of every mailbox ever enabled, or of one.
    Status {
        address: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Update now: every enabled mailbox, or one.
    SyncNow {
        address: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Clear a mailbox's offline repository and rebuild it under a new epoch
    /// (every laptop drops its copy and copies it again).
    Flush {
        address: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show or set the update schedule (cron: minute hour day month weekday,
    /// local time; default "0 6 * * *").
    Schedule {
        /// The cron expression (quote it, or give its fields as arguments).
        cron: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show or set the global defaults of the offline settings.
    Defaults {
        /// Default since-window in days ("none": no limit).
        #[arg(long, value_name = "DAYS")]
        since: Option<Limit>,
        /// Default size cap in bytes ("none": no limit).
        #[arg(long, value_name = "N")]
        max_bytes: Option<Limit>,
        /// Keep every mailbox's offline repository in this S3 repository
        /// (`satchel repo add`), so that every node serves them ("none":
        /// each node's data folder).
        #[arg(long, value_name = "REPO")]
        store: Option<String>,
        /// Size at which an update closes a segment file and starts the
        /// next, in bytes (at least 1048576; default 67108864): bounds the
        /// service's memory and each download, whatever the mailbox's size.
        #[arg(long, value_name = "N")]
        segment_bytes: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args)]
pub struct JobsArgs {
    /// Only the jobs of this mailbox.
    #[arg(long)]
    mailbox: Option<String>,
    /// How many of the most recent jobs.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    remote: Remote,
}

pub async fn run(cmd: OfflineCmd) -> Result<ExitCode> {
    match cmd {
        OfflineCmd::Enable {
            address,
            since,
            max_bytes,
            remote,
        } => {
            let body = api::OfflineEnable {
                since_days: since,
                max_bytes,
            };
            let st = remote.client()?.offline_enable(&address, &body).await?;
            print_status(&st, remote.json)?;
        }
        OfflineCmd::Disable { address, remote } => {
            let st = remote.client()?.offline_disable(&address).await?;
            print_status(&st, remote.json)?;
        }
        OfflineCmd::Status { address, remote } => {
            let report = remote.client()?.offline_status(address.as_deref()).await?;
            print_report(&report, remote.json)?;
        }
        OfflineCmd::SyncNow { address, remote } => return sync_now(address, remote).await,
        OfflineCmd::Flush { address, remote } => {
            let spinner = spinner(&format!("flushing {address}"), remote.json);
            let result = remote.client()?.offline_flush(&address).await;
            spinner.finish_and_clear();
            let r = result?;
            if remote.json {
                output::json(&r)?;
            } else {
                print_result(&r);
            }
        }
        OfflineCmd::Schedule { cron, remote } => {
            let client = remote.client()?;
            let s = if cron.is_empty() {
                client.offline_schedule().await?
            } else {
                client.set_offline_schedule(&cron.join(" ")).await?
            };
            if remote.json {
                output::json(&s)?;
            } else {
                println!("schedule  {}", s.cron);
                println!("next run  {}", s.next_run.as_deref().unwrap_or("(never)"));
            }
        }
        OfflineCmd::Defaults {
            since,
            max_bytes,
            store,
            segment_bytes,
            remote,
        } => {
            let client = remote.client()?;
            let unchanged = since.is_none() && max_bytes.is_none() && store.is_none();
            let d = if unchanged && segment_bytes.is_none() {
                client.offline_defaults().await?
            } else {
                let body = api::SetOfflineDefaults {
                    since_days: since,
                    max_bytes,
                    store,
                    segment_bytes,
                };
                client.set_offline_defaults(&body).await?
            };
            if remote.json {
                output::json(&d)?;
            } else {
                println!("since      {}", days(d.since_days));
                println!("max bytes  {}", size(d.max_bytes));
                let store = d.store.as_deref().map(|r| format!("repository {r}"));
                println!(
                    "store      {}",
                    store.as_deref().unwrap_or("each node's data folder")
                );
                if let Some(n) = d.segment_bytes {
                    println!("segments   {n} bytes ({}) at most", output::bytes(n));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sync_now(address: Option<String>, remote: Remote) -> Result<ExitCode> {
    let what = address.as_deref().unwrap_or("every enabled mailbox");
    let spinner = spinner(
        &format!("updating the offline repository of {what}"),
        remote.json,
    );
    let report = remote.client()?.offline_sync(address.as_deref()).await;
    spinner.finish_and_clear();
    let report = report?;
    let failed = report.results.iter().any(|r| r.outcome == "failed");
    if remote.json {
        output::json(&report)?;
    } else if report.results.is_empty() {
        println!("no mailbox is enabled for offline synchronization");
    } else {
        for r in &report.results {
            print_result(r);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn jobs(a: JobsArgs) -> Result<ExitCode> {
    let jobs = a
        .remote
        .client()?
        .jobs(a.limit, a.mailbox.as_deref())
        .await?;
    if a.remote.json {
        output::json(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<15} {:<30} {:<21} {:<11} DETAIL",
        "ID", "KIND", "MAILBOX", "STARTED", "OUTCOME"
    );
    for j in jobs {
        let detail = j
            .detail
            .get("error")
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let n = |k: &str| j.detail.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                format!(
                    "+{} -{} in {} ms",
                    n("added"),
                    n("removed"),
                    n("duration_ms")
                )
            });
        println!(
            "{:>5}  {:<15} {:<30} {:<21} {:<11} {detail}",
            j.id,
            j.kind,
            j.mailbox.as_deref().unwrap_or("-"),
            j.started,
            j.outcome
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A spinner on stderr, only on a terminal and never with --json.
fn spinner(message: &str, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn days(v: Option<u64>) -> String {
    v.map(|d| format!("{d} days"))
        .unwrap_or_else(|| "no limit".into())
}

fn size(v: Option<u64>) -> String {
    v.map(|b| format!("{b} bytes ({})", output::bytes(b)))
        .unwrap_or_else(|| "no limit".into())
}

fn from_where(s: &api::SettingValue) -> &'static str {
    if s.source == "mailbox" {
        "set for this mailbox"
    } else {
        "global default"
    }
}

fn print_report(r: &api::OfflineStatusReport, json: bool) -> Result<()> {
    if json {
        return output::json(r);
    }
    println!(
        "schedule {}  next run {}",
        r.schedule.cron,
        r.schedule.next_run.as_deref().unwrap_or("(never)")
    );
    println!(
        "defaults since {}, max bytes {}",
        days(r.defaults.since_days),
        size(r.defaults.max_bytes)
    );
    if r.mailboxes.is_empty() {
        println!("no mailbox has been enabled for offline synchronization");
    }
    for m in &r.mailboxes {
        println!();
        print_status(m, false)?;
    }
    Ok(())
}

fn print_status(m: &api::OfflineMailboxStatus, json: bool) -> Result<()> {
    if json {
        return output::json(m);
    }
    let state = if m.enabled { "enabled" } else { "disabled" };
    println!("mailbox      {}", m.mailbox);
    println!("offline      {state}");
    println!(
        "since        {}  ({})",
        days(m.since_days.value),
        from_where(&m.since_days)
    );
    println!(
        "max bytes    {}  ({})",
        size(m.max_bytes.value),
        from_where(&m.max_bytes)
    );
    println!(
        "epoch        {}",
        m.epoch.as_deref().unwrap_or("(no repository yet)")
    );
    println!("generation   {}", m.generation);
    println!("segments     {}", m.segments);
    println!("messages     {}", m.messages);
    println!(
        "size         {} to download ({} of messages)",
        output::bytes(m.bytes),
        output::bytes(m.message_bytes)
    );
    let last = match (&m.last_update, m.last_duration_ms) {
        (Some(t), Some(ms)) => format!("{t} (took {:.1} s)", ms as f64 / 1000.0),
        (Some(t), None) => t.clone(),
        _ => "never".into(),
    };
    println!("last update  {last}");
    println!(
        "next run     {}",
        m.next_run.as_deref().unwrap_or("(not scheduled: disabled)")
    );
    Ok(())
}

fn print_result(r: &api::OfflineUpdateResult) {
    if let Some(e) = &r.error {
        println!("{}: failed: {e}", r.mailbox);
        return;
    }
    let how = match (r.flushed, r.full) {
        (true, _) => "flushed and rebuilt",
        (false, true) => "full reselection",
        _ => "incremental",
    };
    println!(
        "{}: {} ({how}): +{} -{} messages, generation {}, epoch {}, {} messages, {}, {:.1} s{}",
        r.mailbox,
        r.outcome,
        r.added,
        r.removed,
        r.generation,
        r.epoch,
        r.messages,
        output::bytes(r.bytes),
        r.duration_ms as f64 / 1000.0,
        if r.compacted { ", compacted" } else { "" }
    );
}
