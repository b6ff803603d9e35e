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

/// Multipart framing of one part beyond the message and its origin (boundary
/// and part headers), and of the whole request: generous estimates.
const PART_OVERHEAD: usize = 512;
const FORM_OVERHEAD: usize = 1024;

/// How large a request may be, as the service said (`GET /limits`).
struct RequestCap(Option<u64>);

impl RequestCap {
    /// The bytes a message adds to a request.
    fn cost(origin: &str, raw: &[u8]) -> usize {
        raw.len() + origin.len() + PART_OVERHEAD
    }

    /// Why a message cannot be sent at all, if it cannot: it alone would make
    /// a request larger than the service accepts.
    fn refuses(&self, origin: &str, raw: &[u8]) -> Option<String> {
        let max = self.0?;
        let needed = (Self::cost(origin, raw) + FORM_OVERHEAD) as u64;
        (needed > max).then(|| {
            format!(
                "{} bytes: larger than the service accepts \
                 (at most {max} bytes per request, satchel serve --max-request-bytes)",
                raw.len()
            )
        })
    }

    /// The bytes of messages a batch may hold.
    fn batch_bytes(&self) -> usize {
        let max = self.0.map_or(usize::MAX, |m| {
            usize::try_from(m)
                .unwrap_or(usize::MAX)
                .saturating_sub(FORM_OVERHEAD)
        });
        BATCH_BYTES.min(max)
    }
}

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
    let cap = RequestCap(client.limits().await?.map(|l| l.max_request_bytes));
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
        if let Some(reason) = cap.refuses(&item.origin, &item.raw) {
            summary.fail(item.origin, reason);
            continue;
        }
        let cost = RequestCap::cost(&item.origin, &item.raw);
        let full = batch.len() >= a.batch.max(1) || batch_bytes + cost > cap.batch_bytes();
        if !batch.is_empty() && (full || item.folder != folder) {
            upload
                .send(&folder, std::mem::take(&mut batch), &mut summary)
                .await?;
            batch_bytes = 0;
        }
        folder = item.folder;
        batch_bytes += cost;
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
            let origins: Vec<String> = batch.iter().map(|(o, _)| o.clone()).collect();
            match client.import(&address, &folder, batch).await {
                Ok(report) => Ok((n, report)),
                // Too large for the service: a failure of these messages, not
                // of the import; the rest goes on.
                Err(e) if e.status() == Some(413) => Ok((n, refused(origins, &e.to_string()))),
                Err(e) => Err(e.into()),
            }
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

/// The report of a batch the service refused as a whole.
fn refused(origins: Vec<String>, reason: &str) -> satchel_api::ImportReport {
    let results = origins
        .into_iter()
        .map(|origin| ImportResult {
            origin,
            id: None,
            status: ImportStatus::Failed,
            reason: Some(reason.to_string()),
        })
        .collect();
    satchel_api::ImportReport { results }
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
