//! What the message budget costs: the time of `Budget::check` (the linear scan
//! made before every parse) beside the time of the MIME parse itself, over a
//! folder of messages (default: the test corpus's Maildir), plus the time to
//! refuse one 100,000-level message.
//!
//! `cargo run --release -p satchel-message --example budget_cost [DIR]`

use satchel_message::{Budget, MessageSummary};
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/satchel/corpus/maildir/cur")
    });
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.expect("entry").path();
        messages.push(std::fs::read(&path).expect("read"));
    }
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let budget = Budget::DEFAULT;
    let best = |f: &dyn Fn()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let scan = best(&|| {
        let over = messages
            .iter()
            .filter(|m| budget.check(m).is_some())
            .count();
        assert_eq!(over, 0, "corpus messages are within the budget");
    });
    let parse = best(&|| {
        for m in &messages {
            std::hint::black_box(mail_parser::MessageParser::default().parse(&m[..]));
        }
    });
    let summary = best(&|| {
        for m in &messages {
            std::hint::black_box(MessageSummary::extract(m));
        }
    });
    println!(
        "{} messages, {:.1} MB: budget scan {:.1} ms, mail-parser parse {:.1} ms, summary (scan + parse + text) {:.1} ms; scan = {:.1}% of parse",
        messages.len(),
        bytes as f64 / 1e6,
        scan * 1e3,
        parse * 1e3,
        summary * 1e3,
        100.0 * scan / parse
    );
    let mut deep = b"Subject: deep\r\n".to_vec();
    for _ in 0..100_000 {
        deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    let t = Instant::now();
    let s = MessageSummary::extract(&deep);
    println!(
        "a 100,000-level message ({:.1} MB): summary in {:.1} ms ({})",
        deep.len() as f64 / 1e6,
        t.elapsed().as_secs_f64() * 1e3,
        s.note.unwrap_or_default()
    );
}
