//! Index size benchmark (issue 10, point 7): how large each search index is
//! beside what it indexes, on the SpamAssassin corpus.
//!
//! A real `satchel serve` imports the corpus Maildir, enables offline
//! synchronization and updates the repository; a laptop home syncs it. Then:
//!
//! * the service's index (`DATA/index`) beside its packs (`DATA/repositories`);
//! * the laptop's index (`HOME/index`) beside its copy (`HOME/replicas`);
//! * the hit counts of a few queries online and offline, so a smaller index
//!   is seen to give the same answers.
//!
//! Sizes are read after the service's index stops changing. One timing: the
//! wall time of a phrase search (`PHRASE`), online and offline, median of 5.
//!
//! Run: `cargo bench -p satchel --bench index_size` (release build); the
//! Maildir imported is the corpus's, or `SATCHEL_BENCH_MAILDIR` (e.g. one made
//! by benches/generate-mailbox.py), with `SATCHEL_BENCH_PHRASE` the phrase.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MB: &str = "bench@example.com";

/// Queries whose hit counts are printed online and offline.
const QUERIES: &[&str] = &[
    "razor",
    "subject:satellite",
    "from:wstearns",
    "\"spam assassin\"",
    "razor NOT spamassassin",
];

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

/// The size of `dir` once it stopped changing: tantivy merges segments in the
/// background after a commit.
fn settled_bytes(dir: &Path) -> u64 {
    let mut last = dir_bytes(dir);
    let mut same = 0;
    while same < 5 {
        std::thread::sleep(Duration::from_secs(1));
        let now = dir_bytes(dir);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// Bytes of the files in `dir` by extension (tantivy: `idx` postings, `pos`
/// positions, `term` dictionary, `store` stored values, `fast` columns, ...).
fn by_extension(dir: &Path) -> String {
    let mut sizes = std::collections::BTreeMap::<String, u64>::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        let ext = path
            .extension()
            .map_or("(none)".into(), |x| x.to_string_lossy().into_owned());
        *sizes.entry(ext).or_default() += e.metadata().map(|m| m.len()).unwrap_or(0);
    }
    sizes
        .iter()
        .map(|(ext, n)| format!("{ext} {}", mb(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mb(n: u64) -> String {
    format!("{:.2} MB", n as f64 / 1e6)
}

fn row(what: &str, index: u64, indexed: u64) {
    println!(
        "| {what} | {} | {} | {:.2} |",
        mb(index),
        mb(indexed),
        index as f64 / indexed as f64
    );
}

fn hits(cmd: &mut Command) -> usize {
    let v = json(&ok(cmd));
    v["hits"].as_array().map_or(0, Vec::len)
}

/// The median wall time of 5 runs of a command, in milliseconds.
fn median_ms(mut cmd: impl FnMut() -> Command) -> f64 {
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = std::time::Instant::now();
            ok(&mut cmd());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let maildir = std::env::var_os("SATCHEL_BENCH_MAILDIR")
        .map_or_else(|| corpus().join("maildir"), std::path::PathBuf::from);
    let phrase = std::env::var("SATCHEL_BENCH_PHRASE").unwrap_or("\"spam assassin\"".into());
    server.admin_ok(&["import", MB, maildir.to_str().expect("utf8")]);
    server.add_user("bench", "bench-password");
    server.admin_ok(&["mailbox", "grant", MB, "bench"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("home");
    laptop_synced(&server, "bench", "bench-password", &home);
    let synced = json(&ok(laptop_in(&home).args(["sync", "--json"])));
    let messages = synced["mailboxes"][0]["messages"].as_u64().unwrap_or(0);

    let online: Vec<usize> = QUERIES
        .iter()
        .map(|q| {
            hits(
                server
                    .admin()
                    .args(["search", q, "--json", "--limit", "10000"]),
            )
        })
        .collect();
    let service_index = settled_bytes(&server.data.join("index"));
    let args = [phrase.as_str(), "--json", "--limit", "10000"];
    let online_ms = median_ms(|| {
        let mut c = server.admin();
        c.arg("search").args(args);
        c
    });
    let packs = dir_bytes(&server.data.join("repositories"));
    let service_files = by_extension(&server.data.join("index"));
    server.kill();
    let offline: Vec<usize> = QUERIES
        .iter()
        .map(|q| hits(laptop_in(&home).args(["search", q, "--json", "--limit", "10000"])))
        .collect();
    let offline_ms = median_ms(|| {
        let mut c = laptop_in(&home);
        c.arg("search").args(args);
        c
    });
    let laptop_index = dir_bytes(&home.join("index"));
    let copy = dir_bytes(&home.join("replicas"));
    let laptop_files = by_extension(&home.join("index"));

    println!("corpus: {messages} messages");
    println!("| index | size | beside | ratio |");
    println!("|---|---|---|---|");
    row("service index / packs", service_index, packs);
    row("laptop index / local copy", laptop_index, copy);
    println!();
    println!("service index files: {service_files}");
    println!("laptop index files: {laptop_files}");
    println!();
    println!("| query | hits online | hits offline |");
    println!("|---|---|---|");
    for ((q, on), off) in QUERIES.iter().zip(&online).zip(&offline) {
        println!("| `{q}` | {on} | {off} |");
    }
    println!();
    println!(
        "`satchel search {phrase}`: {online_ms:.1} ms online, {offline_ms:.1} ms offline (median of 5)"
    );
}
