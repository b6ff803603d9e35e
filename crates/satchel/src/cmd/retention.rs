//! `satchel retention ...`: how long mailboxes keep their mail, and expiry
//! (administrators; docs/compliance.md).

use super::Remote;
use crate::output;
use anyhow::{Result, bail};
use clap::Subcommand;
use satchel_api::{self as api, Limit};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Set a mailbox's retention period, or the default of every mailbox
    /// without its own (--default). Keep forever is the default.
    Set {
        /// The mailbox (omit with --default).
        #[arg(required_unless_present = "default", conflicts_with = "default")]
        address: Option<String>,
        /// Set the default period instead of a mailbox's.
        #[arg(long)]
        default: bool,
        /// Days a message is kept, counted from its Date: header (its archive
        /// time without one); "none": keep forever; "default" (a mailbox
        /// only): use the default period.
        #[arg(long, value_name = "N|none|default")]
        days: Limit,
        #[command(flatten)]
        remote: Remote,
    },
    /// A mailbox's effective period and where it comes from; without one,
    /// the default, the schedule and every mailbox's.
    Show {
        address: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove what is past its period now (every mailbox, or one), except
    /// what a hold covers; prints each message removed.
    Apply {
        address: Option<String>,
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show or set when expiry runs (cron: minute hour day month weekday,
    /// local time; default "0 3 * * *").
    Schedule {
        /// The cron expression (quote it, or give its fields as arguments).
        cron: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(cmd: RetentionCmd) -> Result<ExitCode> {
    match cmd {
        RetentionCmd::Set {
            address,
            days,
            remote,
            ..
        } => set(address, days, &remote).await?,
        RetentionCmd::Show { address, remote } => show(address, &remote).await?,
        RetentionCmd::Apply {
            address,
            dry_run,
            remote,
        } => {
            let body = api::ApplyRetention {
                mailbox: address,
                dry_run,
            };
            let r = remote.client()?.apply_retention(&body).await?;
            if remote.json {
                output::json(&r)?;
            } else {
                print_applied(&r);
            }
        }
        RetentionCmd::Schedule { cron, remote } => {
            let client = remote.client()?;
            let s = if cron.is_empty() {
                let r = client.retention().await?;
                api::RetentionSchedule {
                    cron: r.schedule,
                    next_run: r.next_run,
                }
            } else {
                client.set_retention_schedule(&cron.join(" ")).await?
            };
            if remote.json {
                output::json(&s)?;
            } else {
                println!("schedule  {}", s.cron);
                println!("next run  {}", s.next_run.as_deref().unwrap_or("(never)"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set(address: Option<String>, days: Limit, remote: &Remote) -> Result<()> {
    let client = remote.client()?;
    let period = match days {
        Limit::Value(n) => Some(Some(n)),
        Limit::Unlimited => Some(None),
        Limit::Default => None,
    };
    match (address, period) {
        (None, None) => bail!("--default takes --days N or none"),
        (None, Some(days)) => {
            let r = client.set_default_retention(days).await?;
            if remote.json {
                output::json(&r)?;
            } else {
                println!("default  {}", period_text(r.default_days));
            }
        }
        (Some(a), period) => {
            let r = client.set_mailbox_retention(&a, period).await?;
            print_one(&r, remote.json)?;
        }
    }
    Ok(())
}

async fn show(address: Option<String>, remote: &Remote) -> Result<()> {
    let client = remote.client()?;
    if let Some(a) = address {
        return print_one(&client.mailbox_retention(&a).await?, remote.json);
    }
    let r = client.retention().await?;
    if remote.json {
        return output::json(&r);
    }
    println!("default   {}", period_text(r.default_days));
    println!("schedule  {}", r.schedule);
    println!("next run  {}", r.next_run.as_deref().unwrap_or("(never)"));
    for m in &r.mailboxes {
        println!("{:<32} {} ({})", m.mailbox, period_text(m.days), m.source);
    }
    Ok(())
}

fn period_text(days: Option<u64>) -> String {
    match days {
        Some(1) => "1 day".to_string(),
        Some(n) => format!("{n} days"),
        None => "keep forever".to_string(),
    }
}

fn print_one(r: &api::Retention, json: bool) -> Result<()> {
    if json {
        return output::json(r);
    }
    let whose = if r.source == api::FROM_MAILBOX {
        "the mailbox's own"
    } else {
        "the default"
    };
    println!("{}  {} ({whose})", r.mailbox, period_text(r.days));
    Ok(())
}

fn print_applied(r: &api::RetentionApplied) {
    for e in &r.removed {
        println!("{}  {}  {}  {}", e.mailbox, e.id, e.date, e.subject);
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} message(s) from {} mailbox(es) with a retention period",
        r.removed.len(),
        r.mailboxes.len()
    );
    for (hold, n) in &r.held {
        println!("kept by hold {hold}: {n} message(s) past their period");
    }
    if !r.dry_run {
        println!("reclaimed {}", output::bytes(r.reclaimed_bytes));
    }
}
