//! Property tests of the one message parser (issue 9, point 11): on any bytes,
//! and on generated MIME of random shape and depth, the summary and the view
//! never panic and stay within their bounds. `PROPTEST_CASES` sets how many
//! cases run (scripts/proptest-long.sh runs many more); failures found are kept
//! in proptest-regressions/ and rerun first.

use proptest::prelude::*;
use satchel_message::{Body, MessageSummary, MessageView, Parsed};

/// Bounds that hold for every message, whatever it is.
fn check(raw: &[u8]) {
    let s = MessageSummary::extract(raw);
    assert!(s.body.len() <= satchel_message::MAX_BODY_CHARS + 1);
    let v = MessageView::of(raw);
    if let Body::Text(t) = &v.body
        && v.note.is_some()
    {
        assert!(
            t.len() <= 1024 * 1024 * 3 + 100,
            "raw text shown is bounded"
        );
    }
    for a in &v.attachments {
        assert!(!a.name.contains('/') && !a.name.contains('\\'));
        assert!(!a.name.chars().any(char::is_control));
    }
    let _ = MessageView::attachment(raw, 0);
    let _ = Parsed::new(raw).limit();
}

/// One MIME entity of random shape, `depth` levels at most.
fn entity(depth: u32) -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        "[ -~]{0,40}".prop_map(|t| format!("Content-Type: text/plain\r\n\r\n{t}\r\n").into_bytes()),
        "[ -~]{0,40}".prop_map(|t| format!("Content-Type: text/html\r\n\r\n<p>{t}</p>\r\n").into_bytes()),
        ("[ -~]{0,12}", "[A-Za-z0-9+/]{0,40}").prop_map(|(n, b)| format!(
            "Content-Type: application/octet-stream; name=\"{n}\"\r\nContent-Disposition: attachment; filename=\"{n}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b}\r\n"
        ).into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    leaf.prop_recursive(depth, 256, 4, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..4), "[a-z0-9]{1,8}").prop_map(|(parts, b)| {
                let mut out =
                    format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n").into_bytes();
                for p in parts {
                    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
                    out.extend_from_slice(&p);
                }
                out.extend_from_slice(format!("--{b}--\r\n").as_bytes());
                out
            }),
            inner.prop_map(|m| {
                let mut out = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n".to_vec();
                out.extend_from_slice(&m);
                out
            }),
        ]
    })
}

/// `PROPTEST_CASES`, else `default`; `share` of it for the costly tests.
fn cases(default: u32, share: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases((n / share).max(1))
}

proptest! {
    #![proptest_config(cases(2_000, 1))]

    #[test]
    fn any_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&raw);
    }

    #[test]
    fn header_like_bytes(lines in prop::collection::vec("[A-Za-z-]{1,12}:[ -~]{0,30}|[ \t][ -~]{0,20}|", 0..30)) {
        check(lines.join("\r\n").as_bytes());
    }

    #[test]
    fn generated_mime(body in entity(8), subject in "[ -~]{0,30}") {
        let mut raw = format!("From: a@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n").into_bytes();
        raw.extend_from_slice(&body);
        check(&raw);
    }

}

proptest! {
    #![proptest_config(cases(2_000, 20))]

    #[test]
    fn deep_generated_mime_is_bounded(levels in 60usize..3_000, kind in 0u8..3) {
        let mut raw = b"Subject: deep\r\n".to_vec();
        for i in 0..levels {
            if kind == 0 || (kind == 2 && i % 2 == 0) {
                raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
            } else {
                raw.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n").as_bytes());
            }
        }
        check(&raw);
        let p = Parsed::new(&raw);
        if levels > 70 {
            prop_assert!(p.limit().is_some());
        }
    }
}
