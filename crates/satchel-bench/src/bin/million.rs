//! The measuring half of `benches/million.sh` (issue 12 point 4): the parts of
//! the million-message benchmark a shell cannot do precisely.
//!
//! * `rss PID`: VmRSS and VmHWM of the service every second, one line each;
//! * `probe PHRASE`: searches the phrase through the HTTP API until exactly one
//!   message has it (what "searchable" means for an import);
//! * `search QUERY...`: p50/p99 of each query, repeated, through the HTTP API
//!   on one keep-alive connection with an API token (as a web front end would);
//! * `counted -- CMD`: runs CMD with a TCP proxy before the service and prints
//!   the bytes each way (the laptop's sync on the wire, heads included).
//!
//! Credentials come from `SATCHEL_USER` / `SATCHEL_PASSWORD`, the server from
//! `SATCHEL_SERVER`, as for the `satchel` commands. Results are JSON on stdout.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use satchel_api::{Auth, Client};
use satchel_bench::proxy::Proxy;
use satchel_bench::{rss, stats};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Measurements of benches/million.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Remote {
    #[arg(long, env = "SATCHEL_SERVER", default_value = "http://127.0.0.1:8480")]
    server: String,
    #[arg(long, env = "SATCHEL_USER")]
    user: String,
    #[arg(long, env = "SATCHEL_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(Subcommand)]
enum Command {
    /// Prints "SECONDS VMRSS_KIB VMHWM_KIB" every interval until PID exits.
    Rss {
        pid: u32,
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Searches `"PHRASE"` in MAILBOX until exactly one hit (at most --timeout s).
    Probe {
        mailbox: String,
        phrase: String,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// p50/p99 of each query, each run --repeat times after one warm-up.
    Search {
        mailbox: String,
        #[arg(required = true)]
        queries: Vec<String>,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// Hits per answer (the API's default is 50).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Seconds a query may take in all: a query slower than that is run
        /// fewer times (at least 3), and the report says how many.
        #[arg(long, default_value_t = 60)]
        budget: u64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Runs CMD with a counting proxy on LISTEN forwarding to UPSTREAM.
    Counted {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: SocketAddr,
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Rss { pid, interval } => sample_rss(pid, Duration::from_secs_f64(interval)),
        Command::Counted {
            listen,
            upstream,
            command,
        } => counted(listen, upstream, &command),
        Command::Probe {
            mailbox,
            phrase,
            timeout,
            remote,
        } => runtime()?.block_on(probe(
            &remote,
            &mailbox,
            &phrase,
            Duration::from_secs(timeout),
        )),
        Command::Search {
            mailbox,
            queries,
            repeat,
            limit,
            budget,
            remote,
        } => {
            let plan = Plan {
                repeat,
                limit,
                budget: Duration::from_secs(budget),
            };
            runtime()?.block_on(search(&remote, &mailbox, &queries, &plan))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn sample_rss(pid: u32, interval: Duration) -> Result<()> {
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    while let Ok(m) = rss::read(pid) {
        let t = start.elapsed().as_secs_f64();
        writeln!(out, "{t:.1} {} {}", m.rss_kib, m.hwm_kib)?;
        out.flush()?;
        std::thread::sleep(interval);
    }
    Ok(())
}

fn counted(listen: SocketAddr, upstream: SocketAddr, command: &[String]) -> Result<()> {
    let proxy = Proxy::start(listen, upstream).with_context(|| format!("listen on {listen}"))?;
    let (program, args) = command.split_first().context("no command")?;
    let started = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("run {program}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let (up, down, connections) = proxy.counts.take();
    let report = json!({"up": up, "down": down, "bytes": up + down,
        "connections": connections, "seconds": seconds, "success": status.success()});
    eprintln!("{report}");
    if !status.success() {
        bail!("{program} failed: {status}");
    }
    Ok(())
}

/// A client holding an API token: a token costs one SHA-256 per request, a
/// password an argon2 verification, which would dominate a search's latency.
async fn token_client(remote: &Remote) -> Result<Client> {
    let basic = Auth::Basic {
        user: remote.user.clone(),
        password: remote.password.clone(),
    };
    let token = Client::new(&remote.server, basic)?
        .create_token("million benchmark")
        .await
        .context("create an API token")?;
    Ok(Client::new(&remote.server, Auth::Bearer(token.token))?)
}

async fn probe(remote: &Remote, mailbox: &str, phrase: &str, timeout: Duration) -> Result<()> {
    let client = token_client(remote).await?;
    let query = format!("\"{phrase}\"");
    let started = Instant::now();
    loop {
        let found = client.search(&query, Some(mailbox), 10).await?;
        if found.hits.len() == 1 {
            let ms = stats::ms(started.elapsed());
            println!("{}", json!({"ms": ms, "id": found.hits[0].id.to_string()}));
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("{query}: {} hits after {timeout:?}", found.hits.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How often and how wide each query of `search` runs.
struct Plan {
    repeat: usize,
    limit: usize,
    budget: Duration,
}

async fn search(remote: &Remote, mailbox: &str, queries: &[String], plan: &Plan) -> Result<()> {
    let client = token_client(remote).await?;
    // One warm-up each: its hit count, and its time to plan the runs.
    let mut hits = Vec::new();
    let mut runs = Vec::new();
    for q in queries {
        let started = Instant::now();
        hits.push(
            client
                .search(q, Some(mailbox), plan.limit)
                .await?
                .hits
                .len(),
        );
        let fits = plan.budget.as_secs_f64() / started.elapsed().as_secs_f64().max(1e-6);
        runs.push(plan.repeat.min((fits as usize).max(3)));
    }
    // Rounds over all queries, so a slow moment of the machine spreads over
    // every query instead of landing on one.
    let mut times = vec![Vec::with_capacity(plan.repeat); queries.len()];
    for round in 0..plan.repeat {
        for ((q, t), n) in queries.iter().zip(&mut times).zip(&runs) {
            if round < *n {
                let started = Instant::now();
                client.search(q, Some(mailbox), plan.limit).await?;
                t.push(started.elapsed());
            }
        }
    }
    let per_query: Vec<_> = queries
        .iter()
        .zip(&times)
        .zip(&hits)
        .map(|((q, t), h)| {
            json!({"query": q, "hits": h, "runs": t.len(),
            "p50_ms": stats::ms(stats::percentile(t, 0.5)),
            "p99_ms": stats::ms(stats::percentile(t, 0.99)),
            "max_ms": stats::ms(stats::percentile(t, 1.0))})
        })
        .collect();
    let all: Vec<Duration> = times.concat();
    println!(
        "{}",
        json!({"limit": plan.limit, "repeat": plan.repeat, "samples": all.len(),
            "p50_ms": stats::ms(stats::percentile(&all, 0.5)),
            "p99_ms": stats::ms(stats::percentile(&all, 0.99)),
            "max_ms": stats::ms(stats::percentile(&all, 1.0)),
            "queries": per_query})
    );
    Ok(())
}
