//! Compatibility: the checked-in fixtures of every segment version (`v1/`
//! and `v1-blocks/` by the version-1 writer, `v2/` by
//! `examples/make_fixtures.rs`) must stay readable by the current code.

use std::path::PathBuf;

use satchel_offline::{
    Error, Manifest, MessageEntry, MessageId, ReplicaIndex, Segment, segment_path,
    verify_repository,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

// Frozen copies of the fixture messages (deliberately not shared with the
// generator: if the generator changes, these still describe the v1 files).
const A: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Hello\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHello Bob.\r\n";
const B: &[u8] = b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Re: Hello\r\nDate: Mon, 01 Jan 2024 11:00:00 +0000\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe, Alice \xa9\xff\r\n";
const C: &[u8] = b"From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: Minutes\r\nDate: Tue, 02 Jan 2024 09:30:00 +0000\r\n\r\nMinutes attached.\r\n";
const D: &[u8] = b"From: Dave <dave@example.com>\r\nTo: alice@example.com\r\nSubject: Later\r\nDate: Wed, 03 Jan 2024 08:00:00 +0000\r\n\r\nSee you.\r\n";

#[test]
fn v1_repository_reads_with_current_code() {
    reads_the_small_fixture("v1");
}

#[test]
fn v2_repository_reads_with_current_code() {
    reads_the_small_fixture("v2");
}

/// The frozen messages of `v1-blocks/` (written by the version-1 writer
/// with 700-byte blocks, so that the segment has many blocks).
fn block_message(i: usize) -> MessageEntry {
    let body =
        format!("Line {i} of a compatibility fixture: the quick brown fox.\r\n").repeat(i % 7 + 1);
    let raw = format!(
        "From: User {i} <user{i}@example.com>\r\nTo: alice@example.com\r\nSubject: Message {i}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
    );
    MessageEntry::new(
        raw.into_bytes(),
        1_704_103_200 + i as i64,
        format!("User {i} <user{i}@example.com>"),
        format!("Message {i}"),
    )
}

#[test]
fn a_version_1_segment_of_many_blocks_reads_byte_identically() {
    let dir = fixture("v1-blocks");
    let m = Manifest::load(&dir).unwrap();
    assert!(verify_repository(&dir).unwrap().ok);
    let seg = Segment::open(&segment_path(&dir, &m.segments[0].name)).unwrap();
    assert!(seg.block_count() > 10, "{} blocks", seg.block_count());
    assert_eq!(seg.tombstones(), &[MessageId::of(b"gone")]);

    let r = ReplicaIndex::open(&dir).unwrap();
    assert_eq!(r.len(), 24);
    for i in 0..24 {
        let m = block_message(i);
        assert_eq!(r.read(&m.id).unwrap(), m.raw, "message {i}");
        let e = r.get(&m.id).unwrap();
        assert_eq!((e.date, &e.from, &e.subject), (m.date, &m.from, &m.subject));
        assert_eq!(e.size, m.raw.len() as u64);
    }
    let listed: Vec<MessageId> = r.list().iter().map(|e| e.id).collect();
    let written: Vec<MessageId> = (0..24).map(|i| block_message(i).id).collect();
    assert_eq!(listed, written);
    let mut bulk = Vec::new();
    seg.for_each_message(|e, raw| {
        bulk.push((e.id, raw));
        Ok(())
    })
    .unwrap();
    assert_eq!(bulk.len(), 24);
    assert!(bulk.iter().all(|(id, raw)| MessageId::of(raw) == *id));
}

/// Reads the fixture `name` (A, B, C in segment 1; B tombstoned and D added
/// in segment 2) and checks every byte and listing field.
fn reads_the_small_fixture(name: &str) {
    let dir = fixture(name);
    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.format, 1);
    assert_eq!(m.mailbox, "alice@example.com");
    assert_eq!(m.epoch, format!("fixture-{name}"));
    assert_eq!(m.generation, 2);
    assert_eq!(m.etag(), format!("\"fixture-{name}-2\""));
    assert_eq!(m.segments.len(), 2);
    assert_eq!(m.totals.messages, 3);

    let report = verify_repository(&dir).unwrap();
    assert!(report.ok, "{report:?}");

    let r = ReplicaIndex::open(&dir).unwrap();
    assert_eq!(r.len(), 3);
    for raw in [A, C, D] {
        let id = MessageId::of(raw);
        assert_eq!(r.read(&id).unwrap(), raw);
    }
    // B was tombstoned by the second segment.
    let b = MessageId::of(B);
    assert!(matches!(r.read(&b), Err(Error::MessageNotFound(_))));
    let listed: Vec<(&str, &str, i64)> = r
        .list()
        .iter()
        .map(|e| (e.from.as_str(), e.subject.as_str(), e.date))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("Alice <alice@example.com>", "Hello", 1_704_103_200),
            ("Carol <carol@example.com>", "Minutes", 1_704_187_800),
            ("Dave <dave@example.com>", "Later", 1_704_268_800),
        ]
    );
    // Ids as text are the hex SHA-256 of the bytes.
    assert_eq!(
        MessageId::of(A).to_hex(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(A))
    );
}

#[test]
fn broken_repository_reports_exactly_the_damaged_and_missing_segments() {
    let dir = fixture("broken");
    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.segments.len(), 3);
    let report = verify_repository(&dir).unwrap();
    assert!(!report.ok);
    assert_eq!(report.checked, 3);
    assert_eq!(report.damaged, vec![m.segments[1].name.clone()]);
    assert_eq!(report.missing, vec![m.segments[2].name.clone()]);
}
