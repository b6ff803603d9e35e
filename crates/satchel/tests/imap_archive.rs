//! Archive runs against a real Dovecot (issue 3): policies, stubs, byte
//! identity, re-runs, --no-stub, UIDVALIDITY changes, schedules.

mod common;
mod imap_support;

use common::dovecot::Dovecot;
use common::{Server, json, sha256_hex};
use imap_support::*;
use std::collections::HashMap;

#[test]
fn archive_by_age_and_size_leaves_stubs_with_links() {
    let dc = Dovecot::start(&[("alice", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "alice@example.com", "alice", IMAP_PW);

    // 40 real messages, 6 of them with attachments; every other one old.
    let msgs = pick_messages(0, 34, 6);
    let mut imap = dc.login("alice", IMAP_PW);
    imap.select("INBOX");
    let recent = recent_date();
    let mut old = Vec::new();
    let mut new = Vec::new();
    for (i, raw) in msgs.iter().enumerate() {
        let flags = FLAG_SETS[i % FLAG_SETS.len()];
        if i % 2 == 0 {
            imap.append("INBOX", flags, OLD_DATE, raw);
            old.push(raw.clone());
        } else {
            imap.append("INBOX", flags, &recent, raw);
            new.push(raw.clone());
        }
    }
    imap.select("INBOX");
    let before = imap.messages();
    assert_eq!(before.len(), msgs.len());
    for m in &before {
        assert!(
            msgs.contains(&m.raw),
            "Dovecot serves what was appended, byte for byte"
        );
    }

    let s = archive_ok(&server, &["alice@example.com", "--older-than", "365"]);
    assert_eq!(s["outcome"], "ok", "{s}");
    assert_eq!(s["examined"], old.len(), "{s}");
    assert_eq!(s["archived"], old.len(), "{s}");
    assert_eq!(s["stubbed"], old.len(), "{s}");
    assert_eq!(s["expunged"], old.len(), "{s}");
    assert_eq!(s["failed"], 0, "{s}");

    imap.select("INBOX");
    let after = imap.messages();
    let (stubs, originals) = split_stubs(&after);
    assert_eq!(stubs.len(), old.len());
    // The new ones are untouched: same bytes, same flags, same date.
    assert_eq!(originals.len(), new.len());
    for m in &originals {
        let was = before.iter().find(|b| b.uid == m.uid).expect("same UID");
        assert_eq!(was.raw, m.raw);
        assert_eq!(sorted(&was.flags), sorted(&m.flags));
        assert_eq!(was.internal_date, m.internal_date);
        assert!(new.contains(&m.raw));
    }
    // Each old one: archived byte-for-byte, one stub carrying its headers,
    // flags, date, link and attachment list, and no attachment.
    let mut with_attachments = 0;
    for raw in &old {
        let orig = before.iter().find(|b| &b.raw == raw).expect("appended");
        let id = sha256_hex(raw);
        assert_eq!(&get_archived(&server, "alice@example.com", &id), raw);
        let stub = stubs.get(&id).unwrap_or_else(|| panic!("no stub for {id}"));
        assert_eq!(stub.len(), 1, "one stub per message");
        let stub = &stub[0];
        for field in [
            "Subject",
            "From",
            "To",
            "Cc",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
        ] {
            assert_eq!(
                orig.header(field),
                stub.header(field),
                "{field} of {id} is carried over unchanged"
            );
        }
        assert_eq!(sorted(&orig.flags), sorted(&stub.flags), "flags of {id}");
        assert_eq!(orig.internal_date, stub.internal_date);
        let text = String::from_utf8_lossy(&stub.raw).to_string();
        assert!(
            text.contains(&format!("http://127.0.0.1:8481/m/alice@example.com/{id}")),
            "{text}"
        );
        assert!(
            stub.header("Content-Type")
                .unwrap_or_default()
                .contains("text/plain")
        );
        assert!(!text.to_ascii_lowercase().contains("content-disposition"));
        assert!(stub.raw.len() < 4096, "a stub is small: {}", stub.raw.len());
        let summary = satchel_archive::MessageSummary::extract(raw);
        if !summary.attachments.is_empty() {
            with_attachments += 1;
            for a in &summary.attachments {
                if !a.name.is_empty() {
                    assert!(
                        text.contains(&a.name),
                        "attachment {} listed: {text}",
                        a.name
                    );
                }
            }
        }
    }
    assert!(with_attachments >= 2, "the test covers attachments");

    // --larger-than: exactly the new messages above the threshold.
    let mut sizes: Vec<usize> = new.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    let threshold = sizes[sizes.len() - 4];
    let large: Vec<&Vec<u8>> = new.iter().filter(|r| r.len() > threshold).collect();
    assert!(!large.is_empty());
    let s = archive_ok(
        &server,
        &["alice@example.com", "--larger-than", &threshold.to_string()],
    );
    assert_eq!(s["archived"], large.len(), "{s}");
    assert_eq!(s["stubbed"], large.len(), "{s}");
    imap.select("INBOX");
    let after2 = imap.messages();
    let (stubs2, originals2) = split_stubs(&after2);
    assert_eq!(stubs2.len(), old.len() + large.len());
    assert_eq!(originals2.len(), new.len() - large.len());
    for r in &large {
        assert!(stubs2.contains_key(&sha256_hex(r)));
        assert!(!originals2.iter().any(|m| &&m.raw == r));
    }

    // Re-run: nothing new; the stubs are skipped, never archived.
    let s = archive_ok(&server, &["alice@example.com", "--older-than", "365"]);
    assert_eq!(s["archived"], 0, "{s}");
    assert_eq!(s["stubbed"], 0, "{s}");
    assert_eq!(s["skipped_stubs"], old.len(), "{s}");
    imap.select("INBOX");
    assert_eq!(imap.messages().len(), after2.len());

    // Searchable, with the folder recorded; the run records are listed.
    let runs = json(&server.admin_ok(&["archive", "runs", "alice@example.com", "--json"]));
    let runs = runs.as_array().expect("array");
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r["kind"] == "archive" && r["outcome"] == "ok")
    );
    let human = server.admin_ok(&["archive", "runs"]);
    assert!(human.contains("alice@example.com"), "{human}");
    let mb = json(&server.admin_ok(&["mailbox", "show", "alice@example.com", "--json"]));
    assert_eq!(mb["messages"], old.len() + large.len());
}

#[test]
fn no_stub_leaves_the_mailbox_unchanged_and_uidvalidity_changes_rescan() {
    let dc = Dovecot::start(&[("bob", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "bob@example.com", "bob", IMAP_PW);
    let msgs = pick_messages(100, 15, 0);
    let mut imap = dc.login("bob", IMAP_PW);
    imap.create("Work");
    for raw in &msgs[..10] {
        imap.append("Work", &["\\Seen"], OLD_DATE, raw);
    }
    for raw in &msgs[..3] {
        imap.append("INBOX", &[], OLD_DATE, raw);
    }
    imap.select("Work");
    let before = imap.messages();

    let s = archive_ok(
        &server,
        &["bob@example.com", "--folder", "Work", "--no-stub"],
    );
    assert_eq!(s["archived"], 10, "{s}");
    assert_eq!(s["stubbed"], 0, "{s}");
    assert_eq!(s["expunged"], 0, "{s}");
    imap.select("Work");
    let after = imap.messages();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (b.uid, &b.raw, sorted(&b.flags)),
            (a.uid, &a.raw, sorted(&a.flags))
        );
    }
    imap.select("INBOX");
    assert_eq!(imap.messages().len(), 3, "other folders untouched");

    // Again: nothing stored twice.
    let s = archive_ok(
        &server,
        &["bob@example.com", "--folder", "Work", "--no-stub"],
    );
    assert_eq!(s["archived"], 0, "{s}");
    assert_eq!(s["already_archived"], 10, "{s}");

    // The folder is recreated: same UIDs, new UIDVALIDITY, other messages.
    imap.select("INBOX");
    imap.delete_folder("Work");
    imap.create("Work");
    for raw in &msgs[10..15] {
        imap.append("Work", &[], OLD_DATE, raw);
    }
    let s = archive_ok(
        &server,
        &["bob@example.com", "--folder", "Work", "--no-stub"],
    );
    assert_eq!(s["folders"][0]["uidvalidity_changed"], true, "{s}");
    assert_eq!(s["archived"], 5, "{s}");
    assert_eq!(s["already_archived"], 0, "{s}");
    for raw in &msgs[10..15] {
        assert_eq!(
            &get_archived(&server, "bob@example.com", &sha256_hex(raw)),
            raw
        );
    }

    // Now with stubs: already archived, so only stubbed and expunged.
    let s = archive_ok(&server, &["bob@example.com", "--folder", "Work"]);
    assert_eq!(s["archived"], 0, "{s}");
    assert_eq!(s["already_archived"], 5, "{s}");
    assert_eq!(s["stubbed"], 5, "{s}");
    imap.select("Work");
    let (stubs, originals) = split_stubs(&imap.messages());
    assert_eq!((stubs.len(), originals.len()), (5, 0));
}

#[test]
fn schedule_runs_archives_and_can_be_turned_off() {
    let dc = Dovecot::start(&[("dora", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "dora@example.com", "dora", IMAP_PW);
    let msgs = pick_messages(300, 4, 0);
    let mut imap = dc.login("dora", IMAP_PW);
    for raw in &msgs {
        imap.append("INBOX", &[], OLD_DATE, raw);
    }
    let off = json(&server.admin_ok(&["archive", "schedule", "dora@example.com", "--json"]));
    assert!(off["cron"].is_null(), "off by default: {off}");
    // Every 2 seconds (6-field cron with seconds).
    let on = json(&server.admin_ok(&[
        "archive",
        "schedule",
        "dora@example.com",
        "*/2 * * * * *",
        "--older-than",
        "30",
        "--json",
    ]));
    assert_eq!(on["cron"], "*/2 * * * * *");
    assert_eq!(on["policy"]["older_than_days"], 30);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let runs = json(&server.admin_ok(&["archive", "runs", "dora@example.com", "--json"]));
        if runs.as_array().is_some_and(|r| {
            r.iter()
                .any(|j| j["outcome"] == "ok" && j["detail"]["archived"] == 4)
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run: {runs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    server.admin_ok(&["archive", "schedule", "dora@example.com", "off"]);
    let off = json(&server.admin_ok(&["archive", "schedule", "dora@example.com", "--json"]));
    assert!(off["cron"].is_null());
    imap.select("INBOX");
    let (stubs, originals) = split_stubs(&imap.messages());
    assert_eq!((stubs.len(), originals.len()), (4, 0));
    let bad =
        common::run(
            server
                .admin()
                .args(["archive", "schedule", "dora@example.com", "61 * * * *"]),
        );
    assert!(!bad.status.success());
    let _: HashMap<(), ()> = HashMap::new();
}

/// One scheduler knows every schedule: an archive schedule set through the
/// API while the service runs fires without a restart. Every endpoint gives
/// job and schedule times in one format (RFC 3339 UTC, `Z`, whole seconds),
/// so the same job row reads the same on `/jobs` and on `/archive-runs`.
#[test]
fn a_schedule_set_while_serving_fires_and_job_times_have_one_format() {
    let dc = Dovecot::start(&[("erin", IMAP_PW)]);
    let server = Server::start();
    let mb = "erin@example.com";
    add_imap_mailbox(&server, &dc, mb, "erin", IMAP_PW);
    let mut imap = dc.login("erin", IMAP_PW);
    for raw in &pick_messages(310, 3, 0) {
        imap.append("INBOX", &[], OLD_DATE, raw);
    }
    // Every second (6-field cron with seconds), set while the service runs.
    let on = json(&server.admin_ok(&["archive", "schedule", mb, "* * * * * *", "--json"]));
    assert_one_format(&on["next_run"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let run = loop {
        let runs = json(&server.admin_ok(&["archive", "runs", mb, "--json"]));
        let done = runs.as_array().and_then(|r| {
            r.iter()
                .find(|j| j["outcome"] == "ok" && j["detail"]["archived"] == 3)
                .cloned()
        });
        if let Some(run) = done {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run: {runs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    server.admin_ok(&["archive", "schedule", mb, "off"]);

    // An offline update of the same mailbox, in the same jobs log.
    server.admin_ok(&["offline", "enable", mb]);
    server.admin_ok(&["offline", "sync-now", mb]);
    let jobs = json(&server.admin_ok(&["jobs", "--json"]));
    let jobs = jobs.as_array().expect("jobs");
    assert!(
        jobs.iter().any(|j| j["kind"] == "offline-update"),
        "{jobs:?}"
    );
    for j in jobs {
        assert_one_format(&j["started"]);
        assert_one_format(&j["finished"]);
    }
    let same = jobs
        .iter()
        .find(|j| j["id"] == run["id"])
        .expect("the archive run is in the jobs log");
    assert_eq!(
        (&same["started"], &same["finished"]),
        (&run["started"], &run["finished"]),
        "one job row, one answer on both endpoints"
    );
    let st = json(&server.admin_ok(&["offline", "status", mb, "--json"]));
    assert_one_format(&st["schedule"]["next_run"]);
    assert_one_format(&st["mailboxes"][0]["next_run"]);
    assert_one_format(&st["mailboxes"][0]["last_update"]);
}

fn assert_one_format(t: &serde_json::Value) {
    let t = t.as_str().unwrap_or_else(|| panic!("a time, not {t}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(t);
    assert!(
        parsed.is_ok() && t.len() == "2026-05-01T06:00:03Z".len() && t.ends_with('Z'),
        "{t} is not RFC 3339 UTC with Z and whole seconds"
    );
}

#[test]
fn every_message_the_server_holds_is_archived_header_or_not() {
    let dc = Dovecot::start(&[("erin", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "erin@example.com", "erin", IMAP_PW);
    // What IMAP servers do hold: a body with no header at all, a message that
    // kept its mbox envelope line, one whose header starts after an empty
    // line, and RFC 5322 obsolete syntax (white space before the colon).
    let odd: [(&[u8], &str); 4] = [
        (
            b"Just a note, no header at all: hdrlessword.\r\nSecond line.\r\n",
            "hdrlessword",
        ),
        (
            b"From alice@example.org Mon Jan  1 00:00:00 2024\r\nFrom: Alice <alice@example.org>\r\n\
Subject: envelope line fromlinesubject\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nBody.\r\n",
            "fromlinesubject",
        ),
        (b"\r\nOnly a body after an empty line: emptyheadword.\r\n", "emptyheadword"),
        (
            b"Subject : obsolete syntax obssubjectword\r\nFrom : bob@example.org\r\n\r\nBody.\r\n",
            "obssubjectword",
        ),
    ];
    let mut imap = dc.login("erin", IMAP_PW);
    for (raw, _) in &odd {
        imap.append("INBOX", &["\\Seen"], OLD_DATE, raw);
    }
    imap.select("INBOX");
    let before = imap.messages();
    assert_eq!(before.len(), odd.len());
    for (raw, _) in &odd {
        assert!(
            before.iter().any(|m| &m.raw == raw),
            "Dovecot keeps it as is"
        );
    }

    let s = archive_ok(&server, &["erin@example.com"]);
    assert_eq!(s["outcome"], "ok", "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["archived"], odd.len(), "{s}");
    assert_eq!(s["stubbed"], odd.len(), "{s}");
    assert_eq!(s["expunged"], odd.len(), "{s}");

    imap.select("INBOX");
    let (stubs, originals) = split_stubs(&imap.messages());
    assert!(originals.is_empty(), "the mailbox is fully archived");
    assert_eq!(stubs.len(), odd.len());
    for (raw, word) in &odd {
        let id = sha256_hex(raw);
        assert_eq!(&get_archived(&server, "erin@example.com", &id), raw);
        let stub = &stubs.get(&id).unwrap_or_else(|| panic!("no stub for {id}"))[0];
        let orig = before.iter().find(|m| &m.raw == raw).expect("appended");
        assert_eq!(sorted(&orig.flags), sorted(&stub.flags));
        assert_eq!(orig.internal_date, stub.internal_date);
        assert_eq!(server.search_ids(&[word]), vec![id.clone()], "{word}");
    }
    // A second run finds nothing left to do.
    let s = archive_ok(&server, &["erin@example.com"]);
    assert_eq!(
        (s["archived"].clone(), s["failed"].clone()),
        (0.into(), 0.into()),
        "{s}"
    );
}
