//! Property tests of the mbox reader (issue 9, point 11): whatever messages are
//! written with [`write_mbox`] come back byte-for-byte (mboxrd quoting, `From `
//! lines, blank lines, CRLF), and arbitrary bytes never panic the reader.

use proptest::prelude::*;
use satchel_archive::import::{Sources, write_mbox};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// A line of a message: plain text, `From ` lines quoted to any depth, blank
/// lines, with LF or CRLF.
fn line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            "[ -~]{0,30}",
            "(>){0,3}From [ -~]{0,20}",
            Just(String::new()),
        ],
        any::<bool>(),
    )
        .prop_map(|(text, crlf)| {
            let mut l = text.into_bytes();
            l.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            l
        })
}

/// A message as an mbox can carry it unchanged: it ends with a line end.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(line(), 1..12).prop_map(|lines| {
        let mut m = b"Subject: s\n".to_vec();
        m.extend(lines.concat());
        m
    })
}

fn read_back(bytes: &[u8]) -> Vec<Result<Vec<u8>, String>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("box.mbox");
    std::fs::write(&path, bytes).expect("write");
    Sources::open(&[path])
        .map(|r| r.map(|item| item.raw).map_err(|e| e.to_string()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn write_then_read_gives_the_same_messages(msgs in prop::collection::vec(message(), 1..6)) {
        let mut mbox = Vec::new();
        for m in &msgs {
            write_mbox(&mut mbox, b"From sender@example.org Mon Sep  2 12:00:00 2002", m).expect("write");
        }
        let back = read_back(&mbox);
        let back: Vec<Vec<u8>> = back.into_iter().map(|r| r.expect("read")).collect();
        prop_assert_eq!(back, msgs);
    }

    #[test]
    fn arbitrary_mbox_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"From x\n".to_vec();
        bytes.extend_from_slice(&body);
        let total: usize = read_back(&bytes).iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
        prop_assert!(total <= bytes.len());
    }
}
