//! Reading the archive: search and get.

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;

#[derive(Args)]
pub struct SearchArgs {
    /// Words, `field:word` (subject, from, to, cc, body, attachment), "a phrase",
    /// after:YYYY-MM-DD, before:YYYY-MM-DD.
    query: String,
    /// Only this mailbox.
    #[arg(long)]
    mailbox: Option<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct GetArgs {
    address: String,
    id: satchel_api::MessageId,
    #[command(flatten)]
    remote: Remote,
}

pub async fn search(a: SearchArgs) -> Result<ExitCode> {
    let results = a
        .remote
        .client()?
        .search(&a.query, a.mailbox.as_deref(), a.limit)
        .await?;
    if a.remote.json {
        output::json(&results)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    output::hits(&mut out, &results.hits)?;
    writeln!(out, "{} result(s)", results.hits.len())?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get(a: GetArgs) -> Result<ExitCode> {
    let raw = a.remote.client()?.message(&a.address, &a.id).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&raw)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
