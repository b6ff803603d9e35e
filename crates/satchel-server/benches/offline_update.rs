//! Offline repository update time for 100 new messages in a mailbox of about
//! 6,000 messages (the SpamAssassin corpus) and of about 60,000 (the corpus
//! ten times, each copy with a distinct header line so the ids differ).
//! The cost of an update should grow with the new mail, not the mailbox:
//! the ratio of the two times should stay at or under 1.5.
//!
//! `cargo bench -p satchel-server --bench offline_update`
//! (corpus from scripts/fetch-corpus.sh; SATCHEL_CORPUS overrides its place;
//! SATCHEL_BENCH_ROUNDS sets the number of measured updates, default 7).

use satchel_api as api;
use satchel_archive::BatchItem;
use satchel_server::{Caller, Service};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus_messages() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("SATCHEL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/satchel/corpus")
        })
        .join("maildir");
    let mut files: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .filter_map(|s| std::fs::read_dir(dir.join(s)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no corpus in {}: run scripts/fetch-corpus.sh",
        dir.display()
    );
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read corpus"))
        .collect()
}

fn fresh(tag: &str, i: usize) -> Vec<u8> {
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "From: Bench <bench@example.org>\r\nTo: someone@example.com\r\nSubject: {tag} {i}\r\nDate: {date}\r\nMessage-ID: <{tag}.{i}@example.org>\r\n\r\n{}\r\n",
        format!("new message {tag} {i} with some text to compress. ").repeat(80)
    )
    .into_bytes()
}

fn import(service: &Service, admin: &Caller, mailbox: &str, messages: Vec<Vec<u8>>) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    let flush = |batch: &mut Vec<BatchItem>| {
        if !batch.is_empty() {
            service
                .import(admin, mailbox, std::mem::take(batch))
                .expect("import");
        }
    };
    for (i, raw) in messages.into_iter().enumerate() {
        bytes += raw.len();
        batch.push(BatchItem {
            origin: format!("m{i}"),
            folder: String::new(),
            raw,
        });
        if batch.len() >= 2000 || bytes > 32 << 20 {
            flush(&mut batch);
            bytes = 0;
        }
    }
    flush(&mut batch);
}

fn sync(service: &Service, admin: &Caller, mailbox: &str) -> api::OfflineUpdateResult {
    let mut r = service
        .offline_sync(admin, Some(mailbox))
        .expect("offline update");
    r.results.remove(0)
}

/// Builds a mailbox of `copies` x the corpus, brings its offline repository
/// up to date, then times `rounds` updates of 100 new messages each.
fn measure(
    service: &Service,
    admin: &Caller,
    corpus: &[Vec<u8>],
    copies: usize,
    rounds: usize,
) -> (u64, Vec<Duration>) {
    let mailbox = format!("bench{copies}x@example.com");
    service
        .add_mailbox(
            admin,
            &api::NewMailbox {
                address: mailbox.clone(),
                ..Default::default()
            },
        )
        .expect("mailbox");
    let t = Instant::now();
    for k in 0..copies {
        let copy: Vec<Vec<u8>> = corpus
            .iter()
            .map(|raw| {
                if k == 0 {
                    raw.clone()
                } else {
                    let mut m = format!("X-Satchel-Bench-Copy: {k}\r\n").into_bytes();
                    m.extend_from_slice(raw);
                    m
                }
            })
            .collect();
        import(service, admin, &mailbox, copy);
    }
    eprintln!(
        "  imported {copies}x corpus in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    service
        .offline_enable(admin, &mailbox, &api::OfflineEnable::default())
        .expect("enable");
    let t = Instant::now();
    let first = sync(service, admin, &mailbox);
    eprintln!(
        "  initial offline repository: {} messages, {} bytes in {:.1} s",
        first.messages,
        first.bytes,
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for round in 0..rounds {
        let new: Vec<Vec<u8>> = (0..100)
            .map(|i| fresh(&format!("{mailbox}-r{round}"), i))
            .collect();
        import(service, admin, &mailbox, new);
        let t = Instant::now();
        let r = sync(service, admin, &mailbox);
        let took = t.elapsed();
        assert_eq!(r.added, 100, "{r:?}");
        assert!(!r.full, "{r:?}");
        eprintln!(
            "  round {round}: +100 in {:.1} ms{}",
            took.as_secs_f64() * 1000.0,
            if r.compacted { " (compacted)" } else { "" }
        );
        times.push(took);
    }
    (first.messages, times)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("SATCHEL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let corpus = corpus_messages();
    let dir = tempfile::tempdir().expect("tempdir");
    let service =
        Service::open(&dir.path().join("data"), Some("bench-password".into())).expect("service");
    let admin = Caller::local(&service, "admin")
        .expect("query")
        .expect("admin");
    let mut rows = Vec::new();
    for copies in [1usize, 10] {
        eprintln!("mailbox of {copies}x the corpus:");
        let (n, times) = measure(&service, &admin, &corpus, copies, rounds);
        rows.push((n, median(&times), times));
    }
    println!("offline repository update, 100 new messages (median of {rounds} updates):");
    for (n, m, times) in &rows {
        let all: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "  mailbox of {n:>6} messages: {:>7.1} ms   (all: {} ms)",
            m.as_secs_f64() * 1000.0,
            all.join(", ")
        );
    }
    let ratio = rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64();
    println!("  ratio 60k / 6k: {ratio:.2} (goal <= 1.5)");
}
