//! `satchel delete` (a message out of a mailbox) and `satchel repo gc`
//! (repository space given back): administrators; docs/compliance.md.

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct DeleteArgs {
    /// The mailbox to take the message out of.
    address: String,
    /// The message's id (from `satchel search`).
    id: satchel_api::MessageId,
    /// Why (an erasure request, a ticket): kept in the audit trail.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct GcArgs {
    /// Report what would be given back; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete pack files the catalog does not name only once older than
    /// this many seconds (a younger one may be an import in progress).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    orphan_grace: u64,
    /// Rewrite a pack whose live bytes are below this fraction of its size
    /// (1: every pack with any dead bytes).
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    #[command(flatten)]
    remote: Remote,
}

pub async fn delete(a: DeleteArgs) -> Result<ExitCode> {
    let done = a
        .remote
        .client()?
        .delete_message(&a.address, &a.id, &a.reason)
        .await?;
    if a.remote.json {
        output::json(&done)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("deleted {} from {}", done.id, done.mailbox);
    if done.still_in.is_empty() {
        println!(
            "no mailbox holds it any more: {} reclaimed from its repository",
            output::bytes(done.bytes_reclaimed)
        );
    } else {
        println!("still in {} (its bytes stay)", done.still_in.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn gc(a: GcArgs) -> Result<ExitCode> {
    let req = satchel_api::GcRequest {
        dry_run: a.dry_run,
        orphan_grace_secs: Some(a.orphan_grace),
        threshold: Some(a.threshold),
    };
    let r = a.remote.client()?.collect_garbage(&req).await?;
    if a.remote.json {
        output::json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if r.dry_run {
        "would reclaim"
    } else {
        "reclaimed"
    };
    println!(
        "{verb} {} ({} bytes): {} unheld message(s), {} pack(s) deleted, {} rewritten, {} orphan file(s)",
        output::bytes(r.bytes_reclaimed),
        r.bytes_reclaimed,
        r.messages_dropped,
        r.packs_deleted,
        r.packs_rewritten,
        r.orphans_deleted
    );
    if r.packs_skipped > 0 {
        println!(
            "{} pack(s) left as they were (see the service's log); a later pass tries again",
            r.packs_skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}
