//! `satchel hold ...`: legal holds (administrators; docs/compliance.md).

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use satchel_api as api;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum HoldCmd {
    /// Place a hold: every message of its mailboxes matching the query (all
    /// of them without one), including mail archived later, survives
    /// retention and deletion until it is released.
    Add {
        name: String,
        /// A mailbox it covers (repeat for several).
        #[arg(long = "mailbox", value_name = "ADDRESS", required = true)]
        mailboxes: Vec<String>,
        /// Only messages matching this query (the search language).
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Every hold.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// One hold: what it covers now, its mailboxes and query, who placed it, when.
    Show {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Release a hold: what it covered expires at the next retention apply
    /// unless another hold covers it.
    Release {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn run(cmd: HoldCmd) -> Result<ExitCode> {
    match cmd {
        HoldCmd::Add {
            name,
            mailboxes,
            query,
            remote,
        } => {
            let body = api::NewHold {
                name,
                mailboxes,
                query,
            };
            let h = remote.client()?.add_hold(&body).await?;
            print_hold(&h, remote.json)?;
        }
        HoldCmd::List { remote } => {
            let holds = remote.client()?.holds().await?;
            if remote.json {
                output::json(&holds)?;
            } else if holds.is_empty() {
                println!("no hold");
            } else {
                for h in &holds {
                    println!(
                        "{:<24} {:>8} message(s)  {}  {}",
                        h.name,
                        h.messages,
                        h.mailboxes.join(","),
                        h.query.as_deref().unwrap_or("(all mail)")
                    );
                }
            }
        }
        HoldCmd::Show { name, remote } => {
            let h = remote.client()?.hold(&name).await?;
            print_hold(&h, remote.json)?;
        }
        HoldCmd::Release { name, remote } => {
            let h = remote.client()?.release_hold(&name).await?;
            if remote.json {
                output::json(&h)?;
            } else {
                println!(
                    "released hold {} ({} message(s) covered)",
                    h.name, h.messages
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_hold(h: &api::Hold, json: bool) -> Result<()> {
    if json {
        return output::json(h);
    }
    println!("hold       {}", h.name);
    println!("messages   {}", h.messages);
    println!("mailboxes  {}", h.mailboxes.join(", "));
    println!("query      {}", h.query.as_deref().unwrap_or("(all mail)"));
    println!("placed by  {}", h.placed_by);
    println!("placed     {}", h.placed);
    Ok(())
}
