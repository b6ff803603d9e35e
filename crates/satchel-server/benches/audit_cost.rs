//! The audit trail's cost per request (issue 11): searches and message reads
//! per second through the `Service` (access check + the read + one audit
//! append: a SQLite transaction with `synchronous=FULL`) and through the
//! archive alone (the same read, nothing recorded), interleaved in one run
//! on one data folder.
//!
//! Then the same message reads from SATCHEL_BENCH_THREADS threads at once
//! (default 8), as concurrent clients of a service are: there appends are
//! group-committed, so one commit (one fsync) holds every waiting entry.
//!
//! `cargo bench -p satchel-server --bench audit_cost`
//! (SATCHEL_BENCH_ROUNDS: requests of each kind, default 2,000).

use satchel_archive::{BatchItem, MessageId, SearchRequest};
use satchel_server::{Caller, Service};
use std::time::{Duration, Instant};

const MAILBOX: &str = "bench@example.com";

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Bench <bench@example.org>\r\nTo: bench@example.com\r\nSubject: lighthouse {i}\r\n\
         Message-ID: <{i}@example.org>\r\n\r\n{}\r\n",
        format!("the lighthouse keeper wrote letter {i}. ").repeat(40)
    )
    .into_bytes()
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads every id in `ids` once, spread over `threads` threads; the wall time.
fn concurrent_reads(
    threads: usize,
    ids: &[MessageId],
    read: impl Fn(&MessageId) + Sync,
) -> Duration {
    let t = Instant::now();
    std::thread::scope(|s| {
        for chunk in ids.chunks(ids.len().div_ceil(threads)) {
            let read = &read;
            s.spawn(move || chunk.iter().for_each(read));
        }
    });
    t.elapsed()
}

fn main() {
    let rounds = env_number("SATCHEL_BENCH_ROUNDS", 2000);
    let threads = env_number("SATCHEL_BENCH_THREADS", 8).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let service =
        Service::open(&dir.path().join("data"), Some("bench-password".into())).expect("service");
    let admin = Caller::local(&service, "admin")
        .expect("query")
        .expect("admin");
    let new = satchel_api::NewMailbox {
        address: MAILBOX.into(),
        repo: None,
        imap_url: None,
        imap_user: None,
        imap_password: None,
    };
    service.add_mailbox(&admin, &new).expect("mailbox");
    let items: Vec<BatchItem> = (0..1000)
        .map(|i| BatchItem {
            origin: format!("m{i}"),
            folder: String::new(),
            raw: message(i),
        })
        .collect();
    let ids: Vec<MessageId> = items.iter().map(|b| MessageId::of(&b.raw)).collect();
    service.import(&admin, MAILBOX, items).expect("import");
    service.archive().commit_index().expect("commit");

    let req = SearchRequest {
        query: "lighthouse keeper".into(),
        mailbox: Some(MAILBOX.into()),
        limit: 20,
    };
    let (mut audited, mut bare) = (Duration::ZERO, Duration::ZERO);
    let (mut audited_get, mut bare_get) = (Duration::ZERO, Duration::ZERO);
    for i in 0..rounds {
        let t = Instant::now();
        service
            .search(&admin, &req.query, Some(MAILBOX), req.limit)
            .expect("search");
        audited += t.elapsed();
        let t = Instant::now();
        service.archive().search(&admin.user, &req).expect("search");
        bare += t.elapsed();
        let id = &ids[i % ids.len()];
        let t = Instant::now();
        service.message(&admin, MAILBOX, id).expect("get");
        audited_get += t.elapsed();
        let t = Instant::now();
        service.archive().get(MAILBOX, id).expect("get");
        bare_get += t.elapsed();
    }
    println!("audit cost per request, {rounds} of each, interleaved:");
    for (what, with, without) in [("search", audited, bare), ("get", audited_get, bare_get)] {
        let per = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
        println!(
            "  {what:<6}  with audit {:>7.0}/s ({:.3} ms)   without {:>7.0}/s ({:.3} ms)   audit {:.3} ms",
            rounds as f64 / with.as_secs_f64(),
            per(with),
            rounds as f64 / without.as_secs_f64(),
            per(without),
            per(with) - per(without)
        );
    }
    let reads: Vec<MessageId> = (0..rounds).map(|i| ids[i % ids.len()]).collect();
    let commits_before = service.audit_commits();
    let with = concurrent_reads(threads, &reads, |id| {
        service.message(&admin, MAILBOX, id).expect("get");
    });
    let commits = service.audit_commits() - commits_before;
    let without = concurrent_reads(threads, &reads, |id| {
        service.archive().get(MAILBOX, id).expect("get");
    });
    println!(
        "  get from {threads} threads: with audit {:>7.0}/s   without {:>7.0}/s   \
         {rounds} entries in {commits} commits ({:.1} per commit)",
        rounds as f64 / with.as_secs_f64(),
        rounds as f64 / without.as_secs_f64(),
        rounds as f64 / commits.max(1) as f64
    );
    let v = service.audit_verify(&admin).expect("verify");
    println!("  trail: {} entries, verified: {}", v.entries, v.ok);
}
