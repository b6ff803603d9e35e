//! One search language online and offline (issue 10, point 2): the same
//! query through `satchel search` (the service's index) and through
//! `satchel laptop search` with the service stopped (the laptop's local
//! index) finds the same messages, for every form of the language.

mod common;
use common::*;
use std::path::{Path, PathBuf};

const MB: &str = "carol@example.com";

/// Every form of the query language, on the corpus subset below; each finds
/// something there.
const QUERIES: &[&str] = &[
    "razor",
    "razor after:2002-08-01",
    "razor before:2002-09-01",
    "razor after:2002-09-15",
    "after:2002-09-10 before:2002-09-12",
    "subject:razor",
    "from:yyyy",
    "to:razor-users",
    "cc:razor-users",
    "cc:exmh",
    "body:spamassassin",
    "attachment:smime",
    "attachment:patch",
    "\"spam assassin\"",
    "\"razor users\" after:2002-08-01",
    "razor NOT spamassassin",
    "razor NOT subject:re",
    "(razor OR exmh) AND cc:spamassassin",
    "((subject:razor OR subject:exmh) NOT (from:yyyy OR cc:exmh))",
    "razor OR satellite",
    "mailbox:carol@example.com razor",
];

/// A service whose mailbox MB holds `n` corpus messages from the 1,000th
/// on, searchable by carol and synchronized for offline, and carol's laptop
/// home, synced.
fn synced(n: usize) -> (Server, tempfile::TempDir, PathBuf) {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(&server, MB, &corpus_files(1000, n));
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    laptop_synced(&server, "carol", "carol-password", &home);
    (server, tmp, home)
}

/// The ids a search answer names, sorted; and where it came from.
fn answer(out: &str) -> (Vec<String>, String) {
    let v = json(out);
    let mut ids: Vec<String> = v["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {v}"))
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    (ids, v["source"].as_str().unwrap_or_default().to_string())
}

fn offline_ids(home: &Path, query: &str) -> Vec<String> {
    let out = ok(laptop_in(home).args(["search", query, "--json", "--limit", "10000"]));
    let (ids, source) = answer(&out);
    assert_eq!(source, "local", "{query}: {out}");
    ids
}

#[test]
fn every_query_form_finds_the_same_messages_online_and_offline() {
    let (mut server, _tmp, home) = synced(1000);

    let online: Vec<Vec<String>> = QUERIES
        .iter()
        .map(|q| {
            let out = ok(server
                .as_user("carol", "carol-password")
                .args(["search", q, "--json", "--limit", "10000"]));
            answer(&out).0
        })
        .collect();
    server.kill();
    for (query, online) in QUERIES.iter().zip(&online) {
        assert!(!online.is_empty(), "{query} finds nothing online");
        assert_eq!(&offline_ids(&home, query), online, "{query}");
    }
    // Date filters narrow: the forms above are not all the same answer.
    let counts: Vec<usize> = online.iter().map(Vec::len).collect();
    assert!(counts[2] < counts[0] && counts[3] < counts[0], "{counts:?}");

    // An index of an older version is rebuilt from the local copy, offline.
    std::fs::write(home.join("index/satchel-laptop-index-version"), "1").expect("write");
    assert_eq!(offline_ids(&home, QUERIES[1]), online[1]);
}

#[test]
fn offline_search_refuses_what_online_search_refuses() {
    let (mut server, _tmp, home) = synced(20);
    let deep = format!("{}razor{}", "(".repeat(40), ")".repeat(40));
    let bad = ["razor after:2002-8", deep.as_str(), "nosuchfield:razor"];
    let online: Vec<String> = bad
        .iter()
        .map(|q| {
            let out = run(server
                .as_user("carol", "carol-password")
                .args(["search", q]));
            assert!(!out.status.success(), "{q} answered online");
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .collect();
    server.kill();
    for (query, online) in bad.iter().zip(&online) {
        let out = run(laptop_in(&home).args(["search", query]));
        assert!(!out.status.success(), "{query} answered offline");
        let offline = String::from_utf8_lossy(&out.stderr);
        let reason = offline
            .split("search query: ")
            .nth(1)
            .unwrap_or_else(|| panic!("{query}: {offline}"))
            .trim();
        assert!(online.contains(reason), "{query}: {online} / {offline}");
    }
}
