//! Property tests of the offline format's readers (issue 9, point 11): segments
//! round-trip whatever they hold; a damaged or arbitrary segment or manifest is
//! an error, never a panic and never wrong bytes. `PROPTEST_CASES` sets the
//! number of cases (scripts/proptest-long.sh runs many more).

use proptest::prelude::*;
use satchel_offline::{Manifest, MessageEntry, Segment, SegmentWriter};
use std::path::Path;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn entries() -> impl Strategy<Value = Vec<MessageEntry>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..600),
            any::<i64>(),
            "\\PC{0,20}",
            "\\PC{0,20}",
        )
            .prop_map(|(raw, date, from, subject)| MessageEntry::new(raw, date, from, subject)),
        0..12,
    )
}

fn build(msgs: &[MessageEntry], block: usize) -> Vec<u8> {
    let mut w = SegmentWriter::new(1).with_block_size(block);
    for m in msgs {
        w.add(m.clone()).expect("add");
    }
    w.finish().expect("finish").0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn segments_round_trip(msgs in entries(), block in 64usize..4096) {
        let bytes = build(&msgs, block);
        let seg = Segment::from_bytes(bytes).expect("a written segment reads back");
        for m in &msgs {
            prop_assert_eq!(seg.read(&m.id).expect("read"), m.raw.clone());
            let e = seg.get(&m.id).expect("listed");
            prop_assert_eq!(e.size, m.raw.len() as u64);
        }
    }

    #[test]
    fn damaged_segments_are_errors_never_wrong_bytes(
        msgs in entries(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = build(&msgs, 256);
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(seg) = Segment::from_bytes(bytes) {
            for m in &msgs {
                if let Ok(raw) = seg.read(&m.id) {
                    prop_assert_eq!(raw, m.raw.clone(), "a read gives the right bytes or an error");
                }
            }
            let _ = seg.for_each_message(|_, _| Ok(()));
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_segment(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(seg) = Segment::from_bytes(bytes) {
            for e in seg.entries().to_vec() {
                let _ = seg.read(&e.id);
            }
        }
    }

    #[test]
    fn arbitrary_manifests_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Manifest::from_json(&bytes, Path::new("manifest.json"));
    }

    #[test]
    fn json_like_manifests_are_errors(text in "\\{(\"[a-z_]{1,10}\":(\\d{1,20}|\"[ -~]{0,20}\"|\\[\\]|null),?){0,10}\\}") {
        let _ = Manifest::from_json(text.as_bytes(), Path::new("manifest.json"));
    }

    #[test]
    fn manifests_round_trip(mailbox in "[a-z]{1,10}@[a-z]{1,10}\\.org", epoch in "[0-9a-f]{16}", live in any::<u32>()) {
        let mut m = Manifest::new(&mailbox, &epoch);
        m.set_totals(u64::from(live));
        let back = Manifest::from_json(&m.to_json(), Path::new("manifest.json")).expect("reads back");
        prop_assert_eq!(back.to_json(), m.to_json());
    }
}

/// Kept regression input found by `segments_round_trip`: an empty message last
/// in a segment pointed at a block that was never written, so the segment could
/// not be opened (an IMAP server can hold an empty message).
#[test]
fn an_empty_message_last_in_a_segment_reads_back() {
    let msgs = vec![
        MessageEntry::new(b"Subject: a\r\n\r\nx".to_vec(), 0, "a", "a"),
        MessageEntry::new(Vec::new(), 0, "", ""),
    ];
    for block in [1, 64, 1 << 20] {
        let seg = Segment::from_bytes(build(&msgs, block)).expect("opens");
        for m in &msgs {
            assert_eq!(seg.read(&m.id).expect("read"), m.raw);
        }
    }
    let only_empty = vec![MessageEntry::new(Vec::new(), 0, "", "")];
    let seg = Segment::from_bytes(build(&only_empty, 64)).expect("opens");
    assert_eq!(seg.read(&only_empty[0].id).expect("read"), Vec::<u8>::new());
}
