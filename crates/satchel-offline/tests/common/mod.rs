//! Test helpers: deterministic, varied synthetic messages.
#![allow(dead_code)]

use satchel_offline::MessageEntry;

/// xorshift64*: reproducible pseudo-random bytes without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "archive",
    "mailbox",
    "meeting",
    "invoice",
    "offline",
    "laptop",
    "report",
    "budget",
    "the",
    "and",
    "of",
    "please",
    "find",
    "attached",
    "regards",
    "tomorrow",
    "segment",
    "server",
    "quarterly",
    "review",
];

/// Message `n` of a varied set: plain text, 8-bit body, binary-ish
/// attachment, and (for n == 7) a 300 KB message.
pub fn message(n: u64) -> MessageEntry {
    let mut rng = Rng::new(n + 1);
    let from = format!("User {n} <user{n}@example.com>");
    let subject = format!("Subject {n}: {}", WORDS[(n as usize) % WORDS.len()]);
    let mut raw = format!(
        "From: {from}\r\nTo: archive@example.com\r\nSubject: {subject}\r\nMessage-ID: <{n}@example.com>\r\n\r\n"
    )
    .into_bytes();
    let body_words = 50 + rng.below(400);
    for _ in 0..body_words {
        raw.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        raw.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    if n % 3 == 1 {
        // 8-bit body bytes, including bytes that are not UTF-8.
        raw.extend_from_slice(b"\r\nGr\xfc\xdfe \xa9 \xff\xfe\x00\x01\x80 end\r\n");
    }
    if n % 5 == 2 {
        for _ in 0..2000 {
            raw.push(rng.next() as u8);
        }
    }
    if n == 7 {
        while raw.len() < 300 * 1024 {
            raw.push(rng.next() as u8);
            raw.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        }
    }
    MessageEntry::new(raw, 1_700_000_000 + n as i64 * 3600, from, subject)
}

pub fn messages(range: std::ops::Range<u64>) -> Vec<MessageEntry> {
    range.map(message).collect()
}
