//! Regenerates the checked-in compatibility fixtures:
//!
//! * `tests/fixtures/vN/` (N = [`SEGMENT_VERSION`], now `v2/`) — a small
//!   repository: segment 1 holds messages A, B, C; segment 2 tombstones B
//!   and adds D. Live: A, C, D. (`v1/` and `v1-blocks/` were written by
//!   the version-1 writer and stay frozen.)
//! * `tests/fixtures/broken/` — a repository whose manifest names three
//!   segments: one intact, one with a flipped byte, one missing.
//!
//! ```text
//! cargo run -p satchel-offline --example make_fixtures
//! ```
//! Output is deterministic (fixed nonces, epoch and timestamp). Only rerun it
//! when the format version changes, and then into a new `vN` directory: the
//! point of `v1` is that today's reader still reads yesterday's files.

use std::fs;
use std::path::Path;

use satchel_offline::segment::SEGMENT_VERSION;
use satchel_offline::{Manifest, MessageEntry, SegmentRef, SegmentWriter, segment_path};

/// The synthetic messages of the v1 fixture. The tests hold their own copy
/// of these bytes on purpose: the fixture is frozen, not regenerated.
fn message(n: u8) -> MessageEntry {
    let raw: Vec<u8> = match n {
        0 => b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Hello\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHello Bob.\r\n".to_vec(),
        1 => b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Re: Hello\r\nDate: Mon, 01 Jan 2024 11:00:00 +0000\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe, Alice \xa9\xff\r\n".to_vec(),
        2 => b"From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: Minutes\r\nDate: Tue, 02 Jan 2024 09:30:00 +0000\r\n\r\nMinutes attached.\r\n".to_vec(),
        _ => b"From: Dave <dave@example.com>\r\nTo: alice@example.com\r\nSubject: Later\r\nDate: Wed, 03 Jan 2024 08:00:00 +0000\r\n\r\nSee you.\r\n".to_vec(),
    };
    let (date, from, subject) = match n {
        0 => (1_704_103_200, "Alice <alice@example.com>", "Hello"),
        1 => (1_704_106_800, "Bob <bob@example.com>", "Re: Hello"),
        2 => (1_704_187_800, "Carol <carol@example.com>", "Minutes"),
        _ => (1_704_268_800, "Dave <dave@example.com>", "Later"),
    };
    MessageEntry::new(raw, date, from, subject)
}

fn write_segment(dir: &Path, nonce: u8, build: impl FnOnce(&mut SegmentWriter)) -> SegmentRef {
    let mut w = SegmentWriter::new(9).with_nonce([nonce; 16]);
    build(&mut w);
    let info = w
        .finish_to_dir(&dir.join("segments"))
        .expect("write segment");
    SegmentRef::from(&info)
}

fn write_manifest(
    dir: &Path,
    mailbox: &str,
    epoch: &str,
    generation: u64,
    segments: Vec<SegmentRef>,
    live: u64,
) {
    let mut m = Manifest::new(mailbox, epoch);
    m.generation = generation;
    m.updated = "2024-01-03T08:00:00Z".to_string();
    m.segments = segments;
    m.set_totals(live);
    m.write_atomic(dir).expect("write manifest");
}

fn fresh(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("remove old fixture");
    }
    fs::create_dir_all(dir.join("segments")).expect("create fixture dir");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");

    let v1 = root.join(format!("v{SEGMENT_VERSION}"));
    fresh(&v1);
    let s1 = write_segment(&v1, 1, |w| {
        for n in 0..3 {
            w.add(message(n)).expect("add");
        }
    });
    let s2 = write_segment(&v1, 2, |w| {
        w.tombstone(message(1).id);
        w.add(message(3)).expect("add");
    });
    let epoch = format!("fixture-v{SEGMENT_VERSION}");
    write_manifest(&v1, "alice@example.com", &epoch, 2, vec![s1, s2], 3);

    let broken = root.join("broken");
    fresh(&broken);
    let good = write_segment(&broken, 11, |w| {
        w.add(message(0)).expect("add");
    });
    let damaged = write_segment(&broken, 12, |w| {
        w.add(message(2)).expect("add");
    });
    let missing = write_segment(&broken, 13, |w| {
        w.add(message(3)).expect("add");
    });
    let damaged_path = segment_path(&broken, &damaged.name);
    let mut bytes = fs::read(&damaged_path).expect("read damaged");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&damaged_path, bytes).expect("write damaged");
    fs::remove_file(segment_path(&broken, &missing.name)).expect("remove missing");
    write_manifest(
        &broken,
        "broken@example.com",
        "fixture-broken",
        3,
        vec![good, damaged, missing],
        3,
    );

    println!("fixtures written under {}", root.display());
}
