//! IMAP archive run benchmark (issue 3): a private Dovecot (started here, as
//! the tests do) holding 2,000 SpamAssassin corpus messages, archived by a real
//! `satchel serve` with `satchel archive` — fetch, store (fsync), verify, stub
//! APPEND, UID EXPUNGE — then the same over a second account without stubs, and
//! a no-op re-run.
//!
//! Run: `cargo bench -p satchel --bench imap_archive` (release build).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/imap_support/mod.rs"]
mod imap_support;

use common::dovecot::Dovecot;
use common::*;
use imap_support::*;
use std::time::Instant;

const N: usize = 2000;

fn timed_archive(server: &Server, args: &[&str]) -> (serde_json::Value, f64) {
    let t = Instant::now();
    let s = archive_ok(server, args);
    (s, t.elapsed().as_secs_f64())
}

fn report(what: &str, s: &serde_json::Value, wall: f64) {
    let n = s["examined"].as_u64().unwrap_or(0);
    let server_s = s["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    println!(
        "{what}: {n} messages examined, {} archived ({:.1} MB), {} stubbed, {} expunged, {} skipped; \
         run {server_s:.2} s on the service ({:.0} msg/s), {wall:.2} s for the command ({:.0} msg/s)",
        s["archived"],
        s["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        s["stubbed"],
        s["expunged"],
        s["skipped"],
        n as f64 / server_s.max(1e-9),
        n as f64 / wall.max(1e-9),
    );
}

fn main() {
    let dc = Dovecot::start(&[("bench", IMAP_PW), ("bench2", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "bench@example.com", "bench", IMAP_PW);
    add_imap_mailbox(&server, &dc, "bench2@example.com", "bench2", IMAP_PW);
    let msgs = many_messages(N);
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let t = Instant::now();
    for user in ["bench", "bench2"] {
        let mut imap = dc.login(user, IMAP_PW);
        for (i, raw) in msgs.iter().enumerate() {
            imap.append("INBOX", FLAG_SETS[i % FLAG_SETS.len()], OLD_DATE, raw);
        }
        imap.logout();
    }
    println!(
        "seeded 2 x {N} corpus messages ({:.1} MB each) into Dovecot in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let (s, wall) = timed_archive(&server, &["bench@example.com", "--older-than", "30"]);
    assert_eq!(s["stubbed"], N);
    report("archive with stubs", &s, wall);

    let (s, wall) = timed_archive(&server, &["bench@example.com", "--older-than", "30"]);
    assert_eq!(s["skipped_stubs"], N);
    report("re-run (all stubs, nothing to do)", &s, wall);

    // Second account: the same messages are already stored (deduplicated), so
    // this measures IMAP and catalog work without pack writes; then archive-only.
    let (s, wall) = timed_archive(
        &server,
        &["bench2@example.com", "--older-than", "30", "--no-stub"],
    );
    report(
        "archive only (--no-stub, bytes already stored for another mailbox)",
        &s,
        wall,
    );
}
