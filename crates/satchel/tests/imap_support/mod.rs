//! Shared pieces of the IMAP archive tests (imap_*.rs).
#![allow(dead_code)]

use crate::common::dovecot::{Dovecot, Msg};
use crate::common::{self, Server, corpus_files, json, sha256_hex};
use std::collections::{BTreeMap, HashSet};

pub const IMAP_PW: &str = "imap-secret-1";
pub const OLD_DATE: &str = "15-Mar-2019 10:00:00 +0000";
pub const FLAG_SETS: [&[&str]; 4] = [
    &[],
    &["\\Seen"],
    &["\\Seen", "\\Flagged"],
    &["\\Answered", "$Label1"],
];

/// An arrival date two days ago.
pub fn recent_date() -> String {
    (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%d-%b-%Y %H:%M:%S +0000")
        .to_string()
}

/// Line ends as a mail client sends them over IMAP.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 30);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// `plain` distinct corpus messages from `skip` on, plus `with_attachments`
/// that have attachments (found further on), CRLF line ends, distinct bytes.
pub fn pick_messages(skip: usize, plain: usize, with_attachments: usize) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in corpus_files(skip, plain * 2 + 20) {
        if out.len() == plain {
            break;
        }
        let raw = crlf(&std::fs::read(&f).expect("corpus file"));
        if raw.contains(&0) || !seen.insert(sha256_hex(&raw)) {
            continue;
        }
        out.push(raw);
    }
    let mut found = 0;
    if with_attachments > 0 {
        for f in corpus_files(0, usize::MAX) {
            if found == with_attachments {
                break;
            }
            let raw = crlf(&std::fs::read(&f).expect("corpus file"));
            if raw.len() > 200_000 || raw.contains(&0) {
                continue;
            }
            let s = satchel_archive::MessageSummary::extract(&raw);
            if s.attachments.iter().any(|a| !a.name.is_empty()) && seen.insert(sha256_hex(&raw)) {
                out.push(raw);
                found += 1;
            }
        }
    }
    assert_eq!(
        out.len(),
        plain + with_attachments,
        "corpus has enough messages"
    );
    out
}

/// Many distinct messages (for the large runs).
pub fn many_messages(n: usize) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in corpus_files(0, usize::MAX) {
        if out.len() == n {
            break;
        }
        let raw = crlf(&std::fs::read(&f).expect("corpus file"));
        if raw.contains(&0) || !seen.insert(sha256_hex(&raw)) {
            continue;
        }
        out.push(raw);
    }
    assert_eq!(out.len(), n);
    out
}

pub fn add_imap_mailbox(server: &Server, dc: &Dovecot, address: &str, user: &str, password: &str) {
    common::ok(
        server
            .admin()
            .args([
                "mailbox",
                "add",
                address,
                "--imap",
                &dc.url(),
                "--imap-user",
                user,
            ])
            .args(["--imap-password-env", "SATCHEL_TEST_IMAP_PW"])
            .env("SATCHEL_TEST_IMAP_PW", password),
    );
}

/// `satchel archive ARGS --json`, which must succeed.
pub fn archive_ok(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut cmd = server.admin();
    cmd.arg("archive").args(args).arg("--json");
    json(&common::ok(&mut cmd))
}

/// `satchel archive ARGS`, which must fail: its stderr.
pub fn archive_err(server: &Server, args: &[&str]) -> String {
    let out = common::run(server.admin().arg("archive").args(args));
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn get_archived(server: &Server, address: &str, id: &str) -> Vec<u8> {
    let url = format!("{}/api/v1/mailboxes/{address}/messages/{id}", server.url);
    let resp = http()
        .get(url)
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .expect("GET message");
    assert!(resp.status().is_success(), "{id}: HTTP {}", resp.status());
    resp.bytes().expect("body").to_vec()
}

/// Whether the archive holds `id` for `address`.
pub fn is_archived(server: &Server, address: &str, id: &str) -> Option<Vec<u8>> {
    let url = format!("{}/api/v1/mailboxes/{address}/messages/{id}", server.url);
    let resp = http()
        .get(url)
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .expect("GET message");
    if resp.status().as_u16() == 404 {
        return None;
    }
    assert!(resp.status().is_success(), "{id}: HTTP {}", resp.status());
    Some(resp.bytes().expect("body").to_vec())
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// Stubs by the id they point to, and the other messages.
pub fn split_stubs(msgs: &[Msg]) -> (BTreeMap<String, Vec<Msg>>, Vec<Msg>) {
    let mut stubs: BTreeMap<String, Vec<Msg>> = BTreeMap::new();
    let mut others = Vec::new();
    for m in msgs {
        match m.header("X-Satchel-Archived") {
            Some(id) => stubs
                .entry(id.trim().to_string())
                .or_default()
                .push(m.clone()),
            None => others.push(m.clone()),
        }
    }
    (stubs, others)
}

pub fn sorted(flags: &[String]) -> Vec<String> {
    let mut f: Vec<String> = flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect();
    f.sort();
    f
}

/// The invariant: every appended message is either still in the folder
/// as the original, or archived byte-for-byte with exactly one stub (and maybe
/// still the original, when a run stopped between APPEND and EXPUNGE). No
/// stub without its archived message, no stray message.
/// Returns (originals, stubbed).
pub fn check_accounted(
    server: &Server,
    address: &str,
    folder_msgs: &[Msg],
    appended: &[Vec<u8>],
) -> (usize, usize) {
    let (stubs, originals) = split_stubs(folder_msgs);
    for (id, s) in &stubs {
        assert_eq!(s.len(), 1, "two stubs for {id}");
    }
    let appended_ids: HashSet<String> = appended.iter().map(|r| sha256_hex(r)).collect();
    let mut original_ids = HashSet::new();
    for m in &originals {
        let id = sha256_hex(&m.raw);
        assert!(
            appended_ids.contains(&id),
            "a message nobody appended (UID {})",
            m.uid
        );
        assert!(original_ids.insert(id.clone()), "original {id} twice");
    }
    let mut stubbed = 0;
    for raw in appended {
        let id = sha256_hex(raw);
        let present = original_ids.contains(&id);
        let stub = stubs.contains_key(&id);
        if stub {
            let copy = is_archived(server, address, &id)
                .unwrap_or_else(|| panic!("a stub for {id}, which is not archived"));
            assert_eq!(&copy, raw, "archived copy of {id} is byte-identical");
            stubbed += 1;
        }
        assert!(
            present || stub,
            "message {id} is lost: neither in the folder nor stubbed"
        );
    }
    for id in stubs.keys() {
        assert!(
            appended_ids.contains(id),
            "a stub for an unknown message {id}"
        );
    }
    (originals.len(), stubbed)
}
