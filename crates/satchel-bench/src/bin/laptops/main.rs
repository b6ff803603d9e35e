//! The thousand-laptop load benchmark (issue 12 point 5): many simulated
//! laptops, each a real laptop home holding a real copy, refresh against
//! running `satchel serve` nodes right after an offline update, spread by
//! the agent's own jitter ([`satchel_laptop::agent::next_delay`]), and then
//! all at once. It reports, per storm: errors by kind, p50/p99 response time
//! per request kind, peak connections (server side, from /proc/net/tcp) and
//! requests in flight (client side), bytes served and CPU seconds of each
//! service process (from /proc/PID), so that any throttling shows.
//!
//! The service, its mailbox (offline enabled, built once) and the laptop
//! user with a grant are prepared by `benches/laptops.sh`; this binary sets
//! up the laptops, adds mail, runs "synchronize now" and the storms.

mod client;
mod homes;
mod stats;
mod watch;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use satchel_api::{Auth, Client, ImportStatus, ManifestFetch};
use satchel_laptop::agent::{AgentOptions, next_delay};
use satchel_offline::Manifest;
use tokio::task::JoinSet;

use client::Laptop;
use homes::Credentials;
use stats::{Recorder, Summary, ms};
use watch::{ProcessSample, Watched, Watcher, sample_process};

#[derive(Parser)]
#[command(about = "Simulated laptops refreshing against satchel serve nodes")]
struct Args {
    /// A service node's base URL; repeat for several nodes (laptop i uses node i mod n).
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    /// The process id of each node, in the order of --server (CPU, fds, bytes).
    #[arg(long = "server-pid", required = true)]
    pids: Vec<u32>,
    /// The mailbox the laptops copy (offline enabled).
    #[arg(long)]
    mailbox: String,
    /// The laptops' user (granted the mailbox).
    #[arg(long)]
    user: String,
    #[arg(long, env = "SATCHEL_BENCH_PASSWORD", hide_env_values = true)]
    password: String,
    /// An administrator, to import the new mail and run "synchronize now".
    #[arg(long, default_value = "admin")]
    admin: String,
    #[arg(long, env = "SATCHEL_BENCH_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// Simulated laptops.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Where the laptops' homes go (replaced).
    #[arg(long)]
    homes: PathBuf,
    /// A Maildir of messages to redeliver as new mail (the corpus).
    #[arg(long)]
    corpus: PathBuf,
    /// New messages before each update storm.
    #[arg(long, default_value_t = 1000)]
    new_messages: usize,
    /// The agent's check interval, seconds (its default: 300). The jitter
    /// spreads the checks over half of it.
    #[arg(long, default_value_t = 300)]
    interval: u64,
    /// Which pairs of storms (an update, then no change) to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "jitter,at-once"
    )]
    storms: Vec<Spread>,
}

/// How the laptops' refreshes are spread over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Spread {
    /// The agent's jitter.
    Jitter,
    /// Everyone at once (a storm of laptops coming online together: the
    /// agent checks at once when it starts).
    AtOnce,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.pids.len() != args.servers.len() {
        bail!("give one --server-pid per --server");
    }
    let ports = server_ports(&args.servers)?;
    let who = Arc::new(Credentials {
        user: args.user.clone(),
        password: args.password.clone(),
    });

    let template = args.homes.join("template");
    let t = Instant::now();
    let first = homes::first_copy(&template, &args.servers[0], &who).await?;
    println!(
        "first laptop: real setup + sync: {} message(s), {} bytes downloaded, {:.1} s",
        first.mailboxes.iter().map(|m| m.messages).sum::<u64>(),
        first.bytes_downloaded,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let laptops = homes::clones(&args.homes, &template, &args.servers, args.clients, who).await?;
    println!(
        "{} laptops set up (own token each) with a cloned copy in {:.1} s",
        laptops.len(),
        t.elapsed().as_secs_f64()
    );

    let bench = Bench {
        args: &args,
        ports,
        laptops,
    };
    for (round, spread) in args.storms.iter().enumerate() {
        let (jitter, how) = match spread {
            Spread::Jitter => (
                Some(AgentOptions {
                    interval: Duration::from_secs(args.interval),
                    ..AgentOptions::default()
                }),
                "agent jitter",
            ),
            Spread::AtOnce => (None, "all at once"),
        };
        bench.update(round).await?;
        bench
            .storm(&format!("after an update, {how}"), jitter.clone())
            .await?;
        bench.storm(&format!("no change, {how}"), jitter).await?;
    }
    bench.real_sync_check().await
}

struct Bench<'a> {
    args: &'a Args,
    ports: HashSet<u16>,
    laptops: Vec<Arc<Laptop>>,
}

impl Bench<'_> {
    fn admin(&self) -> Result<Client> {
        let auth = Auth::Basic {
            user: self.args.admin.clone(),
            password: self.args.admin_password.clone(),
        };
        Ok(Client::new(&self.args.servers[0], auth)?)
    }

    /// New mail arrives (corpus messages redelivered: a new `Received:`
    /// line makes each a new message), then "synchronize now".
    async fn update(&self, round: usize) -> Result<()> {
        let admin = self.admin()?;
        let mail = new_mail(&self.args.corpus, round, self.args.new_messages)?;
        let t = Instant::now();
        for batch in mail.chunks(500) {
            let report = admin.import(&self.args.mailbox, "", batch.to_vec()).await?;
            let not_new: Vec<_> = report
                .results
                .iter()
                .filter(|r| r.status != ImportStatus::Imported)
                .collect();
            anyhow::ensure!(not_new.is_empty(), "not imported as new: {not_new:?}");
        }
        let imported = t.elapsed();
        let t = Instant::now();
        let sync = admin.offline_sync(Some(&self.args.mailbox)).await?;
        for r in &sync.results {
            println!(
                "update {round}: {} new messages imported in {:.1} s; synchronize now: {} {} added, \
                 generation {}, {} messages, {} bytes, {} ms ({:.1} s with the request)",
                mail.len(),
                imported.as_secs_f64(),
                r.outcome,
                r.added,
                r.generation,
                r.messages,
                r.bytes,
                r.duration_ms,
                t.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// Every laptop refreshes once: after its jitter delay (`Some`: the
    /// agent's own [`next_delay`], less its fixed 0.75 x interval so the
    /// window starts now), or all at once (`None`).
    async fn storm(&self, name: &str, jitter: Option<AgentOptions>) -> Result<()> {
        let before = self.samples();
        let watcher = Watcher::start(self.args.pids.clone(), self.ports.clone());
        let rec = Arc::new(Recorder::default());
        let started = Instant::now();
        let mut set = JoinSet::new();
        for laptop in &self.laptops {
            let delay = jitter
                .as_ref()
                .map(|o| next_delay(o, 0).saturating_sub(o.interval.mul_f64(0.75)))
                .unwrap_or_default();
            let (laptop, rec) = (laptop.clone(), rec.clone());
            set.spawn(async move {
                tokio::time::sleep(delay).await;
                match laptop.service() {
                    Ok(agent) => {
                        laptop.refresh(&agent, &rec).await;
                        // The agent keeps its client (and the idle
                        // keep-alive connection) after the check.
                        Some(agent)
                    }
                    Err(e) => {
                        rec.error(e);
                        None
                    }
                }
            });
        }
        let mut agents = Vec::with_capacity(self.laptops.len());
        while let Some(done) = set.join_next().await {
            agents.push(done?);
        }
        let took = started.elapsed();
        let watched = watcher.stop();
        let after = self.samples();
        drop(agents);
        let stale = self.stale_copies().await?;
        let report = StormReport {
            name,
            jitter,
            took,
            summary: rec.summary(),
            watched,
            before,
            after,
            stale,
        };
        report.print(self.laptops.len(), &self.args.servers);
        Ok(())
    }

    fn samples(&self) -> Vec<ProcessSample> {
        let pids = &self.args.pids;
        pids.iter()
            .map(|p| sample_process(*p).unwrap_or_default())
            .collect()
    }

    /// Laptops whose copy is not at the service's current manifest.
    async fn stale_copies(&self) -> Result<usize> {
        let Some(first) = self.laptops.first() else {
            return Ok(0);
        };
        let service = first.service().map_err(anyhow::Error::msg)?;
        let client = service.client();
        let list = client.offline_repositories().await?;
        let mut stale = 0;
        for listing in &list.repositories {
            let ManifestFetch::Changed { manifest, .. } =
                client.offline_manifest(listing, None).await?
            else {
                bail!("304 to an unconditional manifest request");
            };
            for laptop in &self.laptops {
                let dir = laptop.home.replica_dir(&listing.mailbox);
                if Manifest::load(&dir).ok().as_ref() != Some(&manifest) {
                    stale += 1;
                }
            }
        }
        Ok(stale)
    }

    /// The proof that the simulated copies are real laptop copies: the
    /// laptop's own `sync_all` on the first and last laptop finds nothing to
    /// download and updates the local index from the installed segments,
    /// and `verify_all` re-hashes every segment.
    async fn real_sync_check(&self) -> Result<()> {
        let picks = [self.laptops.first(), self.laptops.last()];
        for laptop in picks.into_iter().flatten() {
            let home = &laptop.home;
            let sync = satchel_laptop::sync_all(home, &satchel_laptop::NoProgress).await?;
            let verify = satchel_laptop::verify_all(home)?;
            println!(
                "check {}: real sync: {} bytes downloaded, changes {:?}, errors {:?}, \
                 index +{} -{}; verify: {}",
                home.dir().display(),
                sync.bytes_downloaded,
                sync.mailboxes.iter().map(|m| m.change).collect::<Vec<_>>(),
                sync.errors,
                sync.index.added,
                sync.index.removed,
                if verify.ok { "ok" } else { "DAMAGED" }
            );
            anyhow::ensure!(
                verify.ok && sync.errors.is_empty(),
                "a clone is not a good copy"
            );
        }
        Ok(())
    }
}

fn server_ports(servers: &[String]) -> Result<HashSet<u16>> {
    servers
        .iter()
        .map(|s| {
            let url = url::Url::parse(s).with_context(|| format!("--server {s}"))?;
            url.port_or_known_default()
                .with_context(|| format!("--server {s}: no port"))
        })
        .collect()
}

/// `n` messages of the Maildir `corpus` (sorted, from offset `round * n`),
/// each with a `Received:` line naming the round and its number first, so
/// that every one is a new message.
fn new_mail(corpus: &Path, round: usize, n: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let dir = corpus.join(sub);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no messages in the Maildir {}", corpus.display());
    }
    (0..n)
        .map(|i| {
            let path = &files[(round * n + i) % files.len()];
            let mut raw = format!(
                "Received: from storm{round}-{i}.example.net by mx.example.com; \
                 Mon, 2 Sep 2002 08:{:02}:00 +0000\n",
                i % 60
            )
            .into_bytes();
            raw.extend(std::fs::read(path).with_context(|| path.display().to_string())?);
            Ok((format!("storm{round}-{i}.eml"), raw))
        })
        .collect()
}

struct StormReport<'a> {
    name: &'a str,
    jitter: Option<AgentOptions>,
    took: Duration,
    summary: Summary,
    watched: Watched,
    before: Vec<ProcessSample>,
    after: Vec<ProcessSample>,
    stale: usize,
}

impl StormReport<'_> {
    fn print(&self, laptops: usize, servers: &[String]) {
        let s = &self.summary;
        let window = match &self.jitter {
            Some(o) => format!(
                "the agent's jitter: uniform over {:.0} s (interval {} s x [0.75, 1.25))",
                o.interval.as_secs_f64() * 0.5,
                o.interval.as_secs()
            ),
            None => "no jitter: all at once".into(),
        };
        println!();
        println!("### Storm: {} ({laptops} laptops; {window})", self.name);
        println!();
        let ok = s.kinds.iter().find(|k| k.kind == stats::Kind::Refresh);
        println!(
            "refreshes: {} ok, {} failed, in {:.1} s; copies not at the service's manifest afterwards: {}",
            ok.map_or(0, |k| k.count),
            s.error_count(),
            self.took.as_secs_f64(),
            self.stale
        );
        if s.errors.is_empty() {
            println!("errors: none");
        }
        for (kind, n) in &s.errors {
            println!("error: {n} x {kind}");
        }
        println!();
        println!("| request | count | p50 | p99 | max |");
        println!("|---|---|---|---|---|");
        for k in &s.kinds {
            println!(
                "| {} | {} | {} | {} | {} |",
                k.kind.label(),
                k.count,
                ms(k.p50),
                ms(k.p99),
                ms(k.max)
            );
        }
        println!();
        println!(
            "peak connections, server side (ESTABLISHED on the service port(s) in /proc/net/tcp, \
             idle keep-alive included; {} samples): {}; peak requests in flight (clients): {}",
            self.watched.samples, self.watched.peak_connections, s.peak_in_flight
        );
        println!(
            "body bytes received by the laptops (manifests + segments): {}",
            s.body_bytes
        );
        for (i, server) in servers.iter().enumerate() {
            let (b, a) = (self.before[i], self.after[i]);
            println!(
                "node {server}: CPU {:.2} s (user+system, /proc/PID/stat); bytes written {} \
                 (/proc/PID/io wchar: answers, log, database); peak threads {}, fds {}, RSS {:.0} MB",
                a.cpu_seconds - b.cpu_seconds,
                a.written_bytes.saturating_sub(b.written_bytes),
                self.watched.peak_threads[i],
                self.watched.peak_fds[i],
                self.watched.peak_rss[i] as f64 / 1e6
            );
        }
    }
}
