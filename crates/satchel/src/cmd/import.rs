//! `satchel import`: streams messages from files to the service in batches.

use super::Remote;
use crate::output;
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use satchel_api::{ImportResult, ImportStatus};
use satchel_archive::import::Sources;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ImportArgs {
    /// Mailbox to import into.
    address: String,
    /// mbox files, Maildir folders, .eml files, in any mix.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Messages per request; each request is made durable with one fsync.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[command(flatten)]
    remote: Remote,
}

/// Bytes per request, whatever the batch count, so memory stays bounded.
const BATCH_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default, Serialize)]
pub struct Summary {
    pub imported: u64,
    pub duplicate: u64,
    pub failed: u64,
    pub failures: Vec<Failure>,
    pub seconds: f64,
}

#[derive(Serialize)]
pub struct Failure {
    pub origin: String,
    pub reason: String,
}

impl Summary {
    fn add(&mut self, results: Vec<ImportResult>) {
        for r in results {
            match r.status {
                ImportStatus::Imported => self.imported += 1,
                ImportStatus::Duplicate => self.duplicate += 1,
                ImportStatus::Failed => self.fail(r.origin, r.reason.unwrap_or_default()),
            }
        }
    }

    fn fail(&mut self, origin: String, reason: String) {
        self.failed += 1;
        self.failures.push(Failure { origin, reason });
    }
}

fn progress(json: bool, planned: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(planned as u64), ProgressDrawTarget::stderr());
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} messages ({per_sec}) {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub async fn run(a: ImportArgs) -> Result<ExitCode> {
    let client = a.remote.client()?;
    let started = std::time::Instant::now();
    let sources = Sources::open(&a.paths);
    let bar = progress(a.remote.json, sources.planned());
    let mut summary = Summary::default();
    let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0;
    let mut folder = String::new();
    let mut upload = Upload::new(client, &a.address, &bar);
    for item in sources {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                summary.fail(e.origin, e.reason);
                continue;
            }
        };
        let full = batch.len() >= a.batch.max(1) || batch_bytes + item.raw.len() > BATCH_BYTES;
        if !batch.is_empty() && (full || item.folder != folder) {
            upload
                .send(&folder, std::mem::take(&mut batch), &mut summary)
                .await?;
            batch_bytes = 0;
        }
        folder = item.folder;
        batch_bytes += item.raw.len();
        batch.push((item.origin, item.raw));
    }
    if !batch.is_empty() {
        upload.send(&folder, batch, &mut summary).await?;
    }
    upload.finish(&mut summary).await?;
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    report(&summary, a.remote.json)?;
    // Exit 2: the import ran, but something in it could not be archived.
    Ok(if summary.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

type Pending = tokio::task::JoinHandle<Result<(u64, satchel_api::ImportReport)>>;

/// Uploads batches with one request in flight while the next batch is read, so
/// reading files and the service's work overlap.
struct Upload<'a> {
    client: satchel_api::Client,
    address: &'a str,
    bar: &'a ProgressBar,
    in_flight: Option<Pending>,
}

impl<'a> Upload<'a> {
    fn new(client: satchel_api::Client, address: &'a str, bar: &'a ProgressBar) -> Self {
        Upload {
            client,
            address,
            bar,
            in_flight: None,
        }
    }

    async fn send(
        &mut self,
        folder: &str,
        batch: Vec<(String, Vec<u8>)>,
        summary: &mut Summary,
    ) -> Result<()> {
        self.finish(summary).await?;
        let (client, address, folder) = (
            self.client.clone(),
            self.address.to_string(),
            folder.to_string(),
        );
        self.in_flight = Some(tokio::spawn(async move {
            let n = batch.len() as u64;
            Ok((n, client.import(&address, &folder, batch).await?))
        }));
        Ok(())
    }

    async fn finish(&mut self, summary: &mut Summary) -> Result<()> {
        if let Some(pending) = self.in_flight.take() {
            let (n, report) = pending.await??;
            summary.add(report.results);
            self.bar.inc(n);
        }
        Ok(())
    }
}

fn report(s: &Summary, json: bool) -> Result<()> {
    if json {
        return output::json(s);
    }
    println!(
        "imported {}, already archived {}, failed {} ({:.1} s)",
        s.imported, s.duplicate, s.failed, s.seconds
    );
    for f in &s.failures {
        eprintln!("failed: {}: {}", f.origin, f.reason);
    }
    Ok(())
}
