//! `satchel archive`: IMAP archive runs on the service (docs/api.md, "Archive
//! runs"; docs/stub-format.md), their schedule and their records.

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use satchel_api as api;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Which messages a run takes (all given criteria must hold).
#[derive(Args, Clone, Default)]
pub struct PolicyArgs {
    /// Only messages whose IMAP arrival date (INTERNALDATE) is more than DAYS days ago.
    #[arg(long, value_name = "DAYS")]
    older_than: Option<u32>,
    /// Only messages larger than BYTES.
    #[arg(long, value_name = "BYTES")]
    larger_than: Option<u64>,
    /// IMAP folder to archive from (repeatable; default INBOX).
    #[arg(long = "folder", value_name = "F", conflicts_with = "all_folders")]
    folders: Vec<String>,
    /// Every folder of the account (IMAP LIST).
    #[arg(long)]
    all_folders: bool,
    /// Archive only: leave the mailbox unchanged (no stubs, nothing expunged).
    #[arg(long)]
    no_stub: bool,
}

impl PolicyArgs {
    fn policy(&self) -> api::ArchivePolicy {
        api::ArchivePolicy {
            older_than_days: self.older_than,
            larger_than: self.larger_than,
            folders: self.folders.clone(),
            all_folders: self.all_folders,
            stub: !self.no_stub,
        }
    }
}

/// Archive mail from a mailbox's IMAP server: each message matching the policy
/// is stored byte-for-byte in the archive, then replaced in its folder by a stub
/// holding a link to it. Without --older-than/--larger-than every message of the
/// folders is taken.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    sub: Option<ArchiveSub>,
    /// The mailbox (its IMAP settings come from `satchel mailbox add --imap`).
    #[arg(required = true)]
    address: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
enum ArchiveSub {
    /// Show or set a mailbox's archive schedule: cron (minute hour day month
    /// weekday, local time) with the policy flags, or "off" (the default).
    Schedule {
        address: String,
        /// The cron expression (quote it, or give its fields as arguments), or "off".
        cron: Vec<String>,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        remote: Remote,
    },
    /// The records of archive runs, the most recent first.
    Runs {
        address: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(a: ArchiveArgs) -> Result<ExitCode> {
    match a.sub {
        Some(ArchiveSub::Schedule {
            address,
            cron,
            policy,
            remote,
        }) => schedule(&address, cron, &policy, &remote).await,
        Some(ArchiveSub::Runs {
            address,
            limit,
            remote,
        }) => runs(address.as_deref(), limit, &remote).await,
        None => {
            let address = a.address.unwrap_or_default();
            archive_now(&address, &a.policy, &a.remote).await
        }
    }
}

async fn archive_now(address: &str, policy: &PolicyArgs, remote: &Remote) -> Result<ExitCode> {
    let client = remote.client()?;
    let show = !remote.json && std::io::stderr().is_terminal();
    let pb = if show {
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            pb.set_style(style);
        }
        pb.set_message(format!("archiving {address}"));
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    } else {
        ProgressBar::hidden()
    };
    let policy = policy.policy();
    let run = client.archive_run(address, &policy);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tick.tick(), if show => {
                // The run record carries the progress so far.
                if let Ok(list) = client.archive_runs(Some(address), 1).await
                    && let Some(j) = list.first()
                    && j.outcome == "running"
                    && let Ok(s) = serde_json::from_value::<api::ArchiveRunSummary>(j.detail.clone())
                {
                    pb.set_message(format!(
                        "archiving {address}: {} examined, {} archived, {} stubbed",
                        s.examined, s.archived, s.stubbed
                    ));
                }
            }
        }
    };
    pb.finish_and_clear();
    let s = result?;
    if remote.json {
        output::json(&s)?;
    } else {
        print_summary(&s);
    }
    Ok(if s.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &api::ArchiveRunSummary) {
    println!(
        "archive run {} of {}: {} in {:.1} s",
        s.job,
        s.mailbox,
        s.outcome,
        s.duration_ms as f64 / 1000.0
    );
    println!(
        "  examined {}, archived {} ({}), already archived {}, stubbed {}, expunged {}, skipped {} ({} stubs, {} deleted), failed {}",
        s.examined,
        s.archived,
        output::bytes(s.bytes),
        s.already_archived,
        s.stubbed,
        s.expunged,
        s.skipped,
        s.skipped_stubs,
        s.skipped_deleted,
        s.failed
    );
    for f in &s.folders {
        println!(
            "  {} (UIDVALIDITY {}{}): examined {}, archived {}, stubbed {}, skipped {}, failed {}",
            f.folder,
            f.uidvalidity,
            if f.uidvalidity_changed {
                ", changed"
            } else {
                ""
            },
            f.examined,
            f.archived,
            f.stubbed,
            f.skipped,
            f.failed
        );
    }
    for f in &s.failures {
        println!("  failed: {} UID {}: {}", f.folder, f.uid, f.reason);
    }
    for n in &s.notes {
        println!("  note: {n}");
    }
}

async fn schedule(
    address: &str,
    cron: Vec<String>,
    policy: &PolicyArgs,
    remote: &Remote,
) -> Result<ExitCode> {
    let client = remote.client()?;
    let s = if cron.is_empty() {
        client.archive_schedule(address).await?
    } else {
        let body = api::SetArchiveSchedule {
            cron: cron.join(" "),
            policy: policy.policy(),
        };
        client.set_archive_schedule(address, &body).await?
    };
    if remote.json {
        output::json(&s)?;
    } else {
        match &s.cron {
            None => println!("{}: no archive schedule (off)", s.mailbox),
            Some(c) => {
                println!("{}: archive on \"{c}\"", s.mailbox);
                if let Some(p) = &s.policy {
                    println!("  policy    {}", describe(p));
                }
                println!("  next run  {}", s.next_run.as_deref().unwrap_or("(never)"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(p: &api::ArchivePolicy) -> String {
    let mut parts = Vec::new();
    if let Some(d) = p.older_than_days {
        parts.push(format!("older than {d} days"));
    }
    if let Some(b) = p.larger_than {
        parts.push(format!("larger than {b} bytes"));
    }
    if parts.is_empty() {
        parts.push("every message".into());
    }
    let folders = if p.all_folders {
        "all folders".to_string()
    } else if p.folders.is_empty() {
        "INBOX".to_string()
    } else {
        p.folders.join(", ")
    };
    parts.push(format!("in {folders}"));
    parts.push(if p.stub {
        "with stubs".into()
    } else {
        "no stubs".into()
    });
    parts.join(", ")
}

async fn runs(address: Option<&str>, limit: usize, remote: &Remote) -> Result<ExitCode> {
    let list = remote.client()?.archive_runs(address, limit).await?;
    if remote.json {
        output::json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no archive runs");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<25}  {:<11}  {:<25}  {:>8} {:>8} {:>8} {:>8} {:>6}",
        "RUN",
        "STARTED",
        "OUTCOME",
        "MAILBOX",
        "EXAMINED",
        "ARCHIVED",
        "STUBBED",
        "SKIPPED",
        "FAILED"
    );
    for j in &list {
        let s: api::ArchiveRunSummary =
            serde_json::from_value(j.detail.clone()).unwrap_or_default();
        println!(
            "{:>5}  {:<25}  {:<11}  {:<25}  {:>8} {:>8} {:>8} {:>8} {:>6}",
            j.id,
            j.started,
            j.outcome,
            j.mailbox.as_deref().unwrap_or(""),
            s.examined,
            s.archived,
            s.stubbed,
            s.skipped,
            s.failed
        );
        if let Some(e) = &s.error {
            println!("       error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
