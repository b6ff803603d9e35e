//! A data folder written at catalog version 4 (tests/fixtures/data-v4.md: the
//! IMAP and offline tables still created by the archive) opens with this
//! satchel and keeps its users, mailboxes, messages, offline state, jobs,
//! archive schedule and IMAP UIDs; the tables become components with their own
//! versions, and the membership log goes on from the old seqs.

mod common;

use common::{Server, json, sha256_hex};
use satchel_archive::catalog::rusqlite::Connection;
use satchel_testkit::copy_dir;

const KEY: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";
const MB: &str = "compat@example.com";

#[test]
fn a_version_4_data_folder_opens_and_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // A copy: opening migrates, and the fixture must stay as written.
    copy_dir(&common::fixtures().join("data-v4"), &data);
    let mut server = Server::start_in_with(&data, &[("SATCHEL_KEY", KEY)]);

    // Users, grants, mailboxes, messages.
    let found = json(&common::ok(
        server
            .as_user("alice", "alice-password-1")
            .args(["search", "zorbleword2", "--json"]),
    ));
    let hits = found["hits"].as_array().expect("hits");
    assert_eq!(
        hits.len(),
        1,
        "alice signs in and searches her mailbox: {found}"
    );
    let id = hits[0]["id"].as_str().expect("id");
    let got = common::run(
        server
            .as_user("alice", "alice-password-1")
            .args(["get", MB, id]),
    );
    assert!(got.status.success());
    assert_eq!(sha256_hex(&got.stdout), id, "the same bytes");
    let mailboxes = json(&server.admin_ok(&["mailbox", "list", "--json"]));
    let list = mailboxes.as_array().expect("mailboxes");
    let compat = list.iter().find(|m| m["address"] == MB).expect("compat");
    assert_eq!(compat["messages"], 3);
    let imap = list
        .iter()
        .find(|m| m["address"] == "imap@example.com")
        .expect("the IMAP mailbox");
    assert_eq!(imap["imap_user"], "bob");

    // Offline state: the repository is as recorded, so the next update is
    // incremental and changes nothing; the jobs log and schedules stay.
    let st = json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    let before = &st["mailboxes"][0];
    assert_eq!(
        (before["generation"].clone(), before["messages"].clone()),
        (1.into(), 3.into())
    );
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    assert_eq!(r["results"][0]["outcome"], "unchanged", "{r}");
    assert_eq!(r["results"][0]["full"], false, "state kept: {r}");
    let jobs = json(&server.admin_ok(&["jobs", "--json"]));
    let kinds: Vec<_> = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["kind"].clone())
        .collect();
    assert_eq!(kinds, ["offline-update", "offline-update"], "{jobs}");
    let sched = json(&server.admin_ok(&["archive", "schedule", "imap@example.com", "--json"]));
    assert_eq!(sched["cron"], "0 3 * * *");
    assert_eq!(sched["policy"]["older_than_days"], 30);

    // New mail after the migration: later seqs, found incrementally.
    let new = dir.path().join("m4.eml");
    std::fs::write(
        &new,
        "From: Four <f4@example.com>\r\nSubject: after\r\n\r\nzorbleword4 after the migration\r\n",
    )
    .expect("write");
    server.admin_ok(&["import", MB, new.to_str().expect("utf8")]);
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    let r = &r["results"][0];
    assert_eq!(
        (r["added"].clone(), r["full"].clone()),
        (1.into(), false.into()),
        "{r}"
    );
    assert_eq!(r["messages"], 4);
    server.kill();

    // IMAP UIDs and the component versions, in the catalog itself.
    let conn = Connection::open(data.join("catalog.sqlite")).expect("catalog");
    let uids: Vec<(i64, String)> = conn
        .prepare("SELECT uid, id FROM imap_uids WHERE mailbox = 'imap@example.com' ORDER BY uid")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("imap_uids");
    assert_eq!(uids.iter().map(|u| u.0).collect::<Vec<_>>(), [11, 12]);
    let validity: i64 = conn
        .query_row("SELECT uidvalidity FROM imap_folders", [], |r| r.get(0))
        .expect("imap_folders");
    assert_eq!(validity, 777);
    let versions: Vec<(String, i64)> = conn
        .prepare("SELECT component, version FROM schema_versions ORDER BY component")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("schema_versions");
    let names: Vec<&str> = versions.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "audit",
            "console",
            "group_grants",
            "hold",
            "imap",
            "jobs",
            "offline",
            "retention"
        ]
    );
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(user_version, 8);
    let flag: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'indexed'",
            [],
            |r| r.get(0),
        )
        .expect("columns");
    assert_eq!(
        flag, 0,
        "no indexed flag: each node's index follows the log"
    );
    let legacy: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('offline_removed', 'membership_removed')",
            [],
            |r| r.get(0),
        )
        .expect("legacy");
    assert_eq!(legacy, 0, "the trigger into the offline queue is gone");
    let seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM membership_log WHERE mailbox = ?1 ORDER BY seq")
        .and_then(|mut s| s.query_map([MB], |r| r.get(0))?.collect::<Result<_, _>>())
        .expect("log");
    assert_eq!(seqs, [1, 2, 3, 4], "the log keeps the old seqs and goes on");
}
