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

/// carol's answers through the service, one list of ids per query.
fn online_ids(server: &Server, queries: &[&str]) -> Vec<Vec<String>> {
    queries
        .iter()
        .map(|q| {
            let out = ok(server
                .as_user("carol", "carol-password")
                .args(["search", q, "--json", "--limit", "10000"]));
            answer(&out).0
        })
        .collect()
}

#[test]
fn every_query_form_finds_the_same_messages_online_and_offline() {
    let (mut server, _tmp, home) = synced(1000);

    let online = online_ids(&server, QUERIES);
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

const OTHER: &str = "dan@example.com";

/// Which of [`QUERIES`] are compared online and offline after each change
/// below: words, a field, a date range, a phrase (checked against the
/// copy's bytes), a boolean query.
const FOLLOWED: [usize; 5] = [0, 5, 4, 13, 17];

/// carol's answers online, then offline with the service stopped, must be
/// the same for every query of [`FOLLOWED`]; the service is started again on
/// its data and port.
fn answers_match(server: &mut Server, data: &Path, home: &Path, step: &str) {
    let followed = FOLLOWED.map(|i| QUERIES[i]);
    let online = online_ids(server, &followed);
    assert!(
        online.iter().any(|ids| !ids.is_empty()),
        "{step}: nothing found"
    );
    server.kill();
    for (query, online) in followed.iter().zip(&online) {
        assert_eq!(&offline_ids(home, query), online, "{step}: {query}");
    }
    *server = Server::start_in_at(data, server.port);
}

/// `satchel laptop sync --json`'s index work.
fn index_work(home: &Path) -> serde_json::Value {
    let report = json(&ok(laptop_in(home).args(["sync", "--json"])));
    assert!(
        report["errors"].as_array().is_some_and(Vec::is_empty),
        "{report}"
    );
    report["index"].clone()
}

fn assert_work(work: &serde_json::Value, added: u64, removed: u64, full_scans: u64, step: &str) {
    eprintln!("{step}: index work {work}");
    assert_eq!(
        (&work["added"], &work["removed"], &work["full_scans"]),
        (
            &serde_json::Value::from(added),
            &serde_json::Value::from(removed),
            &serde_json::Value::from(full_scans)
        ),
        "{step}: {work}"
    );
}

/// Issue 12, the laptop at a million: a sync updates the local index in
/// proportion to what changed (the segments added or dropped since the
/// index was last brought up to the copy), not by comparing the whole
/// mailbox, and offline search still answers as online search after new
/// mail, deletions, a withdrawn mailbox, a compaction and a flush.
#[test]
fn the_local_index_follows_each_change_without_a_full_scan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data);
    server.add_user("carol", "carol-password");
    for (mb, skip, n) in [(MB, 1000, 300), (OTHER, 1300, 60)] {
        server.admin_ok(&["mailbox", "add", mb]);
        import_files(&server, mb, &corpus_files(skip, n));
        server.admin_ok(&["mailbox", "grant", mb, "carol"]);
        server.admin_ok(&["offline", "enable", mb]);
    }
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("home");
    laptop_synced(&server, "carol", "carol-password", &home);

    // Nothing changed: no index work at all, not even reading a segment.
    let work = index_work(&home);
    assert_work(&work, 0, 0, 0, "no change");
    assert_eq!(
        (&work["segments_read"], &work["blocks_read"]),
        (&0.into(), &0.into()),
        "{work}"
    );

    // New mail: only the new segment is read, its messages added.
    import_files(&server, MB, &corpus_files(1400, 100));
    server.admin_ok(&["offline", "sync-now"]);
    let work = index_work(&home);
    assert_work(&work, 100, 0, 0, "new mail");
    assert_eq!(work["segments_read"], 1, "{work}");
    answers_match(&mut server, &data, &home, "new mail");

    // Deleted messages leave the index (their segment is rewritten).
    let razor = server.search_ids(&["razor mailbox:carol@example.com"]);
    assert!(razor.len() >= 3, "{razor:?}");
    for id in &razor[..3] {
        server.admin_ok(&["delete", MB, id, "--reason", "test"]);
    }
    server.admin_ok(&["offline", "sync-now"]);
    assert_work(&index_work(&home), 0, 3, 0, "deleted");
    answers_match(&mut server, &data, &home, "deleted");

    // A mailbox no longer offered leaves the index.
    server.admin_ok(&["mailbox", "revoke", OTHER, "carol"]);
    index_work(&home);
    answers_match(&mut server, &data, &home, "revoked");

    // Small updates until the service compacts them: the messages moved
    // into the merged segment are not indexed again, the new ones are.
    let mut imported = 0;
    let mut compacted = false;
    for round in 0..10 {
        import_files(&server, MB, &corpus_files(1500 + round * 5, 5));
        imported += 5;
        let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
        if r["results"][0]["compacted"] == true {
            compacted = true;
            break;
        }
    }
    assert!(compacted, "no compaction after {imported} messages");
    assert_work(&index_work(&home), imported, 0, 0, "compacted");
    answers_match(&mut server, &data, &home, "compacted");

    // A flush (new epoch): the copy is rebuilt and the index reconciled.
    server.admin_ok(&["offline", "flush", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let work = index_work(&home);
    assert_eq!(
        (&work["added"], &work["full_scans"]),
        (&0.into(), &1.into()),
        "{work}"
    );
    answers_match(&mut server, &data, &home, "flushed");
    assert_work(&index_work(&home), 0, 0, 0, "no change after all");
}
