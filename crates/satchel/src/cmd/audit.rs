//! `satchel audit`: the audit trail (administrators only; docs/compliance.md).

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use satchel_api as api;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain; exit 1 naming the first entry that does not
    /// match (changed, deleted or inserted).
    Verify {
        #[command(flatten)]
        remote: Remote,
    },
    /// The latest entry's seq and hash: record it elsewhere, and a later
    /// `verify` proves nothing before it changed.
    Head {
        #[command(flatten)]
        remote: Remote,
    },
    /// Entries, oldest first: the latest --limit that match the filters.
    List {
        /// Only entries by this user (the actor). To sign in as someone,
        /// use SATCHEL_USER or --as-user here.
        #[arg(long)]
        user: Option<String>,
        /// Only entries about this mailbox.
        #[arg(long)]
        mailbox: Option<String>,
        /// Only entries at or after this time (YYYY-MM-DD, UTC, or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries (at most 10,000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        remote: ListRemote,
    },
}

/// [`Remote`] for `audit list`, whose `--user` is a filter: the user to
/// sign in as is `--as-user` (or SATCHEL_USER, as everywhere).
#[derive(clap::Args)]
pub struct ListRemote {
    /// The archive service.
    #[arg(long, env = "SATCHEL_SERVER", default_value = "http://127.0.0.1:8480")]
    server: String,
    /// User name to sign in as (password from SATCHEL_PASSWORD).
    #[arg(long = "as-user", env = "SATCHEL_USER")]
    login: Option<String>,
    /// API token, instead of user and password.
    #[arg(long, env = "SATCHEL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A private certificate authority's certificate (PEM) to trust for an
    /// https:// service, besides the system's.
    #[arg(long, env = "SATCHEL_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

impl From<ListRemote> for Remote {
    fn from(r: ListRemote) -> Remote {
        Remote {
            server: r.server,
            login: r.login,
            token: r.token,
            ca_file: r.ca_file,
            json: r.json,
        }
    }
}

pub async fn run(c: AuditCmd) -> Result<ExitCode> {
    match c {
        AuditCmd::Verify { remote } => verify(&remote).await,
        AuditCmd::Head { remote } => {
            let head = remote.client()?.audit_head().await?;
            if remote.json {
                output::json(&head)?;
            } else {
                println!("{} {}", head.seq, head.hash);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::List {
            user,
            mailbox,
            since,
            limit,
            remote,
        } => {
            let remote = Remote::from(remote);
            let filter = api::AuditFilter {
                user,
                mailbox,
                since,
                limit: Some(limit),
                before: None,
            };
            let entries = remote.client()?.audit_list(&filter).await?;
            if remote.json {
                output::json(&entries)?;
            } else {
                for e in entries {
                    println!(
                        "{:>6}  {}  {:<12} {:<15} {:<18} {}",
                        e.seq, e.time, e.actor, e.source, e.action, e.target
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn verify(remote: &Remote) -> Result<ExitCode> {
    let v = remote.client()?.audit_verify().await?;
    if remote.json {
        output::json(&v)?;
    } else if v.ok {
        println!(
            "audit trail verified: {} entries, head {} {}",
            v.entries, v.head.seq, v.head.hash
        );
    }
    if v.ok {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "satchel: audit trail does NOT verify: {} ({} entries verified before it, up to {} {})",
        v.problem.as_deref().unwrap_or("unknown problem"),
        v.entries,
        v.head.seq,
        v.head.hash
    );
    Ok(ExitCode::FAILURE)
}
