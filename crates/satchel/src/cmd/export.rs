//! `satchel export`: a mailbox's messages, byte for byte, to an mbox file
//! (mboxrd) or a Maildir (docs/compliance.md).
//!
//! The service streams one message at a time; an mbox is written under a
//! temporary name and renamed only once the stream's end line arrived, and
//! each Maildir message is written in `tmp/`, fsynced and renamed into
//! `new/`, so a cut-short export never leaves a file that looks complete.

use super::Remote;
use crate::output;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use satchel_api::{ExportEnd, ExportItem, ExportStream};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["mbox", "maildir"])))]
pub struct ExportArgs {
    /// The mailbox to export (you need the right to search it).
    address: String,
    /// Only the messages matching this search (the search language).
    #[arg(long)]
    query: Option<String>,
    /// Write an mbox file (mboxrd); it must not exist yet.
    #[arg(long)]
    mbox: Option<PathBuf>,
    /// Write a Maildir (created if missing; one file per message in new/).
    #[arg(long)]
    maildir: Option<PathBuf>,
    #[command(flatten)]
    remote: Remote,
}

/// Where exported messages go.
enum Sink {
    Mbox {
        dest: PathBuf,
        partial: PathBuf,
        out: BufWriter<File>,
    },
    Maildir {
        dir: PathBuf,
    },
}

impl Sink {
    fn open(a: &ExportArgs) -> Result<Sink> {
        if let Some(dest) = &a.mbox {
            if dest.exists() {
                bail!("{} exists: export to a new file", dest.display());
            }
            let partial = partial_name(dest);
            let file = File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            return Ok(Sink::Mbox {
                dest: dest.clone(),
                partial,
                out: BufWriter::with_capacity(256 * 1024, file),
            });
        }
        let dir = a.maildir.clone().context("--mbox or --maildir")?;
        for sub in ["tmp", "new", "cur"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(Sink::Maildir { dir })
    }

    fn put(&mut self, item: &ExportItem, raw: &[u8]) -> Result<()> {
        match self {
            Sink::Mbox { out, partial, .. } => {
                satchel_archive::import::write_mbox(out, &envelope(item.added), raw)
                    .with_context(|| format!("writing {}", partial.display()))
            }
            Sink::Maildir { dir } => write_maildir(dir, item, raw),
        }
    }

    /// Makes the export durable and, for an mbox, gives it its name.
    fn finish(self) -> Result<()> {
        match self {
            Sink::Mbox { dest, partial, out } => {
                let file = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("writing {}", partial.display()))?;
                file.sync_all()?;
                std::fs::rename(&partial, &dest).with_context(|| {
                    format!("renaming {} to {}", partial.display(), dest.display())
                })?;
                sync_dir(parent(&dest))
            }
            Sink::Maildir { dir } => sync_dir(&dir.join("new")),
        }
    }

    /// After a failure: an mbox's partial file is removed; a Maildir keeps
    /// the messages written, each complete. Returns what to tell the user.
    fn abandon(self, written: u64) -> String {
        match self {
            Sink::Mbox { partial, out, .. } => {
                drop(out);
                let _ = std::fs::remove_file(&partial);
                format!("no mbox file was written ({written} messages had been received)")
            }
            Sink::Maildir { dir } => format!(
                "{written} messages were written to {}: the export is incomplete",
                dir.join("new").display()
            ),
        }
    }
}

/// `FILE` -> `FILE.partial`, beside it.
fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// The mbox `From ` line: a sender nobody reads, and the archive time.
fn envelope(added: i64) -> Vec<u8> {
    let when = chrono::DateTime::from_timestamp(added, 0).unwrap_or_default();
    format!(
        "From MAILER-DAEMON {}\n",
        when.format("%a %b %e %H:%M:%S %Y")
    )
    .into_bytes()
}

/// One message as `new/ADDED.ID.satchel`: written in `tmp/`, fsynced, then
/// renamed, as Maildir asks. The id makes the name unique.
fn write_maildir(dir: &Path, item: &ExportItem, raw: &[u8]) -> Result<()> {
    let name = format!("{}.{}.satchel", item.added, item.id);
    let tmp = dir.join("tmp").join(&name);
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(raw)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    let dest = dir.join("new").join(&name);
    std::fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))
}

pub async fn run(a: ExportArgs) -> Result<ExitCode> {
    let client = a.remote.client()?;
    let resp = client.export(&a.address, a.query.as_deref()).await?;
    let mut sink = Sink::open(&a)?;
    let bar = progress(a.remote.json, &a.address);
    let mut written = Written::default();
    match receive(resp, &mut sink, &bar, &mut written).await {
        Ok(end) if end.messages == written.messages => {
            bar.finish_and_clear();
            sink.finish()?;
        }
        Ok(end) => {
            bar.finish_and_clear();
            let said = sink.abandon(written.messages);
            bail!(
                "the service announced {} messages but sent {}; {said}",
                end.messages,
                written.messages
            );
        }
        Err(e) => {
            bar.finish_and_clear();
            let said = sink.abandon(written.messages);
            return Err(e.context(format!("export of {} cut short: {said}", a.address)));
        }
    }
    report(&a, &written)
}

fn report(a: &ExportArgs, w: &Written) -> Result<ExitCode> {
    let to = a
        .mbox
        .as_ref()
        .or(a.maildir.as_ref())
        .map(|p| p.display().to_string());
    let format = if a.mbox.is_some() { "mbox" } else { "maildir" };
    if a.remote.json {
        output::json(&serde_json::json!({
            "mailbox": a.address,
            "query": a.query,
            "format": format,
            "path": to,
            "messages": w.messages,
            "bytes": w.bytes,
        }))?;
    } else {
        println!(
            "exported {} messages ({}) of {} to {} {}",
            w.messages,
            output::bytes(w.bytes),
            a.address,
            format,
            to.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Written {
    messages: u64,
    bytes: u64,
}

fn progress(json: bool, address: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} messages ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(format!("exporting {address}:"));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// Reads the export stream into `sink` until its end line.
async fn receive(
    mut resp: ExportStream,
    sink: &mut Sink,
    bar: &ProgressBar,
    written: &mut Written,
) -> Result<ExportEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut pending: Option<ExportItem> = None;
    loop {
        if let Some(item) = &pending {
            let size = usize::try_from(item.size).context("message size")?;
            if buf.len() >= size {
                sink.put(item, &buf[..size])?;
                buf.drain(..size);
                written.messages += 1;
                written.bytes += item.size;
                bar.set_position(written.messages);
                pending = None;
                continue;
            }
        } else if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: serde_json::Value =
                serde_json::from_slice(&buf[..nl]).context("the export stream is not valid")?;
            buf.drain(..=nl);
            if line.get("end").is_some() {
                return Ok(serde_json::from_value(line)?);
            }
            pending = Some(serde_json::from_value(line)?);
            continue;
        }
        match resp.chunk().await.context("reading the export stream")? {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => bail!("the stream ended before its end line"),
        }
    }
}
