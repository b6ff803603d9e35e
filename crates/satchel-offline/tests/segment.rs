//! Segment round trip and damage detection, on real files.

mod common;

use satchel_offline::segment::segment_name_of;
use satchel_offline::{
    Error, MessageEntry, MessageId, Segment, SegmentWriter, VerifyError, is_valid_segment_name,
    verify_segment_file,
};

fn build(msgs: &[MessageEntry], block: usize) -> (Vec<u8>, satchel_offline::SegmentInfo) {
    let mut w = SegmentWriter::new(9).with_block_size(block);
    for m in msgs {
        assert!(w.add(m.clone()).unwrap());
    }
    w.finish().unwrap()
}

#[test]
fn round_trip_through_a_file() {
    let msgs = common::messages(0..40);
    assert!(msgs.iter().any(|m| m.raw.len() >= 300 * 1024));
    assert!(msgs.iter().any(|m| std::str::from_utf8(&m.raw).is_err()));
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::new(9).with_block_size(16 * 1024);
    for m in &msgs {
        w.add(m.clone()).unwrap();
    }
    let info = w.finish_to_dir(dir.path()).unwrap();
    let path = dir.path().join(&info.name);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        info.name,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.messages, 40);
    assert_eq!(info.tombstones, 0);
    assert_eq!(
        info.raw_bytes,
        msgs.iter().map(|m| m.raw.len() as u64).sum::<u64>()
    );
    assert!(is_valid_segment_name(&info.name));
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let seg = Segment::open(&path).unwrap();
    assert!(
        seg.block_count() > 3,
        "small blocks should give several blocks"
    );
    assert_eq!(seg.entries().len(), msgs.len());
    for (m, e) in msgs.iter().zip(seg.entries()) {
        assert_eq!(e.id, m.id);
        assert_eq!(e.from, m.from);
        assert_eq!(e.subject, m.subject);
        assert_eq!(e.date, m.date);
        assert_eq!(e.size, m.raw.len() as u64);
    }
    // Read in a scrambled order (exercises reuse of the decompression context
    // after reads that stop mid-block).
    for i in (0..msgs.len()).rev().chain(0..msgs.len()) {
        assert_eq!(seg.read(&msgs[i].id).unwrap(), msgs[i].raw, "message {i}");
    }
    let mut seen = 0;
    seg.for_each_message(|e, raw| {
        assert_eq!(MessageId::of(&raw), e.id);
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, msgs.len());
    verify_segment_file(&path, &info.name, info.size).unwrap();

    let missing = MessageId::of(b"not there");
    assert!(matches!(seg.read(&missing), Err(Error::MessageNotFound(id)) if id == missing));
}

#[test]
fn default_block_size_round_trip_from_bytes() {
    let msgs = common::messages(0..30);
    let (bytes, info) = build(&msgs, satchel_offline::segment::DEFAULT_BLOCK_SIZE);
    assert_eq!(segment_name_of(&bytes), info.name);
    let seg = Segment::from_bytes(bytes).unwrap();
    for m in &msgs {
        assert_eq!(seg.read(&m.id).unwrap(), m.raw);
    }
}

#[test]
fn writer_rejects_wrong_id_and_ignores_duplicates() {
    let mut m = common::message(1);
    let mut w = SegmentWriter::new(3);
    assert!(w.add(m.clone()).unwrap());
    assert!(!w.add(m.clone()).unwrap(), "duplicate is ignored");
    m.raw.push(b'x');
    assert!(matches!(w.add(m), Err(Error::IdMismatch { .. })));
    assert_eq!(w.message_count(), 1);
}

#[test]
fn tombstone_only_segment_and_tombstone_after_add() {
    let a = common::message(1);
    let b = common::message(2);
    let mut w = SegmentWriter::new(3);
    w.add(a.clone()).unwrap();
    w.tombstone(a.id); // removes the pending add, records the tombstone
    w.tombstone(b.id);
    w.tombstone(b.id); // once only
    let (bytes, info) = w.finish().unwrap();
    assert_eq!((info.messages, info.tombstones), (0, 2));
    let seg = Segment::from_bytes(bytes).unwrap();
    assert!(seg.entries().is_empty());
    assert_eq!(seg.tombstones(), &[a.id, b.id]);
}

#[test]
fn same_content_gets_distinct_names() {
    let mut w1 = SegmentWriter::new(3);
    let mut w2 = SegmentWriter::new(3);
    let id = common::message(3).id;
    w1.tombstone(id);
    w2.tombstone(id);
    assert_ne!(w1.finish().unwrap().1.name, w2.finish().unwrap().1.name);
}

#[test]
fn any_flipped_byte_is_detected_by_verify_and_never_serves_wrong_bytes() {
    let msgs = common::messages(0..12);
    let (bytes, info) = build(&msgs, 8 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&info.name);
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(211).collect();
    positions.extend([0, 7, 8, bytes.len() / 2, bytes.len() - 25, bytes.len() - 1]);
    for pos in positions {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x20;
        std::fs::write(&path, &damaged).unwrap();
        match verify_segment_file(&path, &info.name, info.size) {
            Err(VerifyError::HashMismatch { .. }) => {}
            other => panic!("flip at {pos}: verify said {other:?}"),
        }
        // Even without verification, a reader never returns wrong bytes.
        if let Ok(seg) = Segment::open(&path) {
            for m in &msgs {
                if let Ok(raw) = seg.read(&m.id) {
                    assert_eq!(raw, m.raw, "flip at {pos} served wrong bytes");
                }
            }
        }
    }
}

#[test]
fn flipped_byte_inside_a_block_makes_read_an_error() {
    let msgs = common::messages(0..6);
    let (mut bytes, _) = build(&msgs, 1 << 20);
    let seg = Segment::from_bytes(bytes.clone()).unwrap();
    assert_eq!(seg.block_count(), 1);
    // The block starts at offset 8; flip a byte in its middle.
    let pos = 8 + (seg.size() as usize / 3);
    bytes[pos] ^= 0x55;
    let seg = Segment::from_bytes(bytes).unwrap();
    let mut errors = 0;
    for m in &msgs {
        match seg.read(&m.id) {
            Ok(raw) => assert_eq!(raw, m.raw),
            Err(Error::DamagedMessage { id, .. }) => {
                assert_eq!(id, m.id);
                errors += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(
        errors >= 1,
        "a damaged block must fail at least the damaged message"
    );
    let err = seg.for_each_message(|_, _| Ok(())).unwrap_err();
    assert!(matches!(err, Error::DamagedMessage { .. }), "{err}");
}

#[test]
fn truncated_segment_fails_to_open_clearly() {
    let msgs = common::messages(0..5);
    let (bytes, _) = build(&msgs, 4096);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    for len in [0, 5, 8, 20, 31, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = Segment::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::CorruptSegment { .. }),
            "len {len}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("truncated"), "len {len}: {text}");
    }
}

#[test]
fn unknown_version_is_rejected() {
    let (mut bytes, _) = build(&common::messages(0..2), 4096);
    bytes[6] = 3;
    let err = Segment::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedSegmentVersion { version: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn segment_names_are_exactly_64_lowercase_hex() {
    assert!(is_valid_segment_name(&"a".repeat(64)));
    assert!(is_valid_segment_name(&"0123456789abcdef".repeat(4)));
    for bad in [
        "",
        "manifest.json",
        "../segments/x",
        &"A".repeat(64),
        &"a".repeat(63),
        &"a".repeat(65),
        &format!("{}/", "a".repeat(63)),
        &format!("{}g", "a".repeat(63)),
    ] {
        assert!(!is_valid_segment_name(bad), "{bad:?}");
    }
    assert!(MessageId::from_hex(&"A".repeat(64)).is_err());
    let id = MessageId::of(b"x");
    assert_eq!(MessageId::from_hex(&id.to_hex()).unwrap(), id);
}

#[test]
fn long_header_fields_are_truncated_on_a_char_boundary() {
    let raw = b"Subject: x\r\n\r\nbody".to_vec();
    let subject = "\u{e9}".repeat(2000); // 2 bytes per char
    let mut w = SegmentWriter::new(3);
    w.add(MessageEntry::new(raw, 0, "f", subject)).unwrap();
    let seg = Segment::from_bytes(w.finish().unwrap().0).unwrap();
    let s = &seg.entries()[0].subject;
    assert!(s.len() <= satchel_offline::segment::MAX_HEADER_FIELD);
    assert!(s.chars().all(|c| c == '\u{e9}'));
}

/// The segment's index, decompressed, and where it starts in the file.
fn index_of_segment(bytes: &[u8]) -> (Vec<u8>, usize) {
    let footer = &bytes[bytes.len() - 24..];
    let offset = u64::from_le_bytes(footer[..8].try_into().unwrap()) as usize;
    let raw_len = u32::from_le_bytes(footer[12..16].try_into().unwrap()) as usize;
    let index = zstd::bulk::decompress(&bytes[offset..bytes.len() - 24], raw_len).unwrap();
    (index, offset)
}

/// `bytes` with its index replaced by `index` (compressed, footer rewritten).
fn with_index(bytes: &[u8], index: &[u8]) -> Vec<u8> {
    let (_, offset) = index_of_segment(bytes);
    let z = zstd::bulk::compress(index, 3).unwrap();
    let mut out = bytes[..offset].to_vec();
    out.extend_from_slice(&z);
    out.extend_from_slice(&(offset as u64).to_le_bytes());
    out.extend_from_slice(&(z.len() as u32).to_le_bytes());
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes[bytes.len() - 8..]);
    out
}

/// Where entry records start in a version-2 index of `frames` frames.
fn records_at(frames: usize) -> usize {
    16 + 4 + 4 + frames * 16 + 4
}

#[test]
fn a_message_is_read_from_a_small_frame_not_a_megabyte_block() {
    // About 1.5 MiB of mail at the default frame size: a read decompresses
    // one frame of ~128 KiB (version 1 had one or two 1 MiB blocks here).
    let msgs: Vec<MessageEntry> = common::messages(0..700)
        .into_iter()
        .filter(|m| m.raw.len() < 64 * 1024)
        .take(650)
        .collect();
    let total: usize = msgs.iter().map(|m| m.raw.len()).sum();
    assert!(total > 1_400_000, "{total} bytes");
    let (bytes, _) = build(&msgs, satchel_offline::segment::DEFAULT_BLOCK_SIZE);
    let seg = Segment::from_bytes(bytes).unwrap();
    assert!(
        seg.block_count() >= total / (128 * 1024),
        "{} frames for {total} bytes",
        seg.block_count()
    );
    for m in &msgs {
        assert_eq!(seg.read(&m.id).unwrap(), m.raw);
    }
}

#[test]
fn an_id_listed_twice_in_the_by_id_table_is_a_corrupt_segment() {
    let msgs = common::messages(0..5);
    let (bytes, _) = build(&msgs, 4096);
    let frames = Segment::from_bytes(bytes.clone()).unwrap().block_count();
    let (mut index, _) = index_of_segment(&bytes);
    let by_id = records_at(frames) + 5 * 60;
    let first: [u8; 4] = index[by_id..by_id + 4].try_into().unwrap();
    index[by_id + 4..by_id + 8].copy_from_slice(&first);
    let err = Segment::from_bytes(with_index(&bytes, &index)).unwrap_err();
    assert!(matches!(err, Error::CorruptSegment { .. }), "{err:?}");
    assert!(err.to_string().contains("listed twice"), "{err}");
}

#[test]
fn an_entry_pointing_outside_its_frame_is_a_damaged_message_when_read() {
    let msgs = common::messages(0..5);
    let (bytes, _) = build(&msgs, 4096);
    let frames = Segment::from_bytes(bytes.clone()).unwrap().block_count();
    let (mut index, _) = index_of_segment(&bytes);
    // Entry 2's length (record bytes 40..44) made huge.
    let at = records_at(frames) + 2 * 60 + 40;
    index[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let seg = Segment::from_bytes(with_index(&bytes, &index)).unwrap();
    let err = seg.read(&msgs[2].id).unwrap_err();
    assert!(matches!(err, Error::DamagedMessage { .. }), "{err:?}");
    assert_eq!(seg.read(&msgs[3].id).unwrap(), msgs[3].raw);
    assert!(seg.for_each_message(|_, _| Ok(())).is_err());
}
