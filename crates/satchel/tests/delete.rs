//! Audited deletion (issue 11 point 3): `satchel delete ADDRESS ID --reason`
//! takes a message out of a mailbox for administrators only; it leaves
//! search and `get` at once, the offline repository at its next update and
//! a synced laptop copy at its next sync; its bytes leave the repository
//! once no mailbox holds it, and a message another mailbox holds stays
//! there, bytes and all.

mod common;
use common::*;
use std::path::{Path, PathBuf};

const MB: &str = "carol@example.com";
const OTHER: &str = "dan@example.com";

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: {subject}\r\n\
         Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

/// Writes the messages as .eml files; returns (file, id) of each.
fn emls(dir: &Path, messages: &[String]) -> Vec<(PathBuf, String)> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = dir.join(format!("{i}.eml"));
            std::fs::write(&p, m).expect("write eml");
            (p, sha256_hex(m.as_bytes()))
        })
        .collect()
}

fn import(server: &Server, mailbox: &str, files: &[(PathBuf, String)]) {
    let mut cmd = server.admin();
    cmd.args(["import", mailbox]);
    for (f, _) in files {
        cmd.arg(f);
    }
    ok(&mut cmd);
}

/// The bytes of every file under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                tree_bytes(&p)
            } else {
                std::fs::metadata(&p).expect("metadata").len()
            }
        })
        .sum()
}

fn packs(server: &Server) -> PathBuf {
    server.data.join("repositories/default/packs")
}

/// Every message id the segments of a local offline copy hold an entry for
/// (live or not): what the copy's files still contain.
fn ids_in_segments(replica: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(replica.join("segments")).expect("segments") {
        let seg = satchel_offline::Segment::open(&e.expect("entry").path()).expect("segment");
        for entry in seg.entries() {
            ids.push(entry.id.to_hex());
        }
    }
    ids
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_deleted_message_leaves_search_get_the_offline_repository_and_the_laptop() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = emls(
        tmp.path(),
        &[
            message("quokka", "a quokka smiles"),
            message("wombat", "a wombat digs for erasure"),
            message("numbat", "a numbat eats termites"),
        ],
    );
    import(&server, MB, &files);
    let wombat = files[1].1.clone();
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("carol");
    laptop_synced(&server, "carol", "carol-password", &home);
    let found = json(&ok(laptop_in(&home).args(["search", "wombat", "--json"])));
    assert_eq!(found["hits"].as_array().expect("hits").len(), 1);
    let before = tree_bytes(&packs(&server));

    // Only administrators; an unknown message or mailbox is 404; a reason
    // is required.
    let denied = run(server
        .as_user("carol", "carol-password")
        .args(["delete", MB, &wombat, "--reason", "mine"]));
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("not an administrator"),
        "{}",
        stderr(&denied)
    );
    let unknown = sha256_hex(b"never archived");
    let missing = run(server
        .admin()
        .args(["delete", MB, &unknown, "--reason", "x"]));
    assert!(
        stderr(&missing).contains(&format!("not in mailbox {MB}")),
        "{}",
        stderr(&missing)
    );
    let no_mailbox =
        run(server
            .admin()
            .args(["delete", "nobody@example.com", &wombat, "--reason", "x"]));
    assert!(
        stderr(&no_mailbox).contains("no such mailbox"),
        "{}",
        stderr(&no_mailbox)
    );
    let blank = run(server
        .admin()
        .args(["delete", MB, &wombat, "--reason", "  "]));
    assert!(
        stderr(&blank).contains("needs a reason"),
        "{}",
        stderr(&blank)
    );
    assert_eq!(server.search_ids(&["wombat"]), vec![wombat.clone()]);

    let done = json(&server.admin_ok(&[
        "delete",
        MB,
        &wombat,
        "--reason",
        "GDPR erasure request 42",
        "--json",
    ]));
    assert_eq!(done["still_in"].as_array().expect("still_in").len(), 0);
    assert!(
        done["bytes_reclaimed"].as_u64().expect("bytes") > 0,
        "{done}"
    );

    // At once: search and get no longer find it; the others are intact.
    assert!(server.search_ids(&["wombat"]).is_empty());
    let get = run(server.admin().args(["get", MB, &wombat]));
    assert!(!get.status.success());
    assert!(stderr(&get).contains("not in mailbox"), "{}", stderr(&get));
    for (file, id) in [&files[0], &files[2]] {
        let raw = ok(server.admin().args(["get", MB, id]));
        assert_eq!(raw.as_bytes(), std::fs::read(file).expect("eml"));
    }
    assert!(
        tree_bytes(&packs(&server)) < before,
        "the pack was rewritten smaller"
    );
    // A second deletion finds nothing to delete.
    let again = run(server
        .admin()
        .args(["delete", MB, &wombat, "--reason", "x"]));
    assert!(
        stderr(&again).contains("not in mailbox"),
        "{}",
        stderr(&again)
    );

    // Audited, with the reason.
    let audit = json(&server.admin_ok(&["audit", "list", "--json"]));
    let entry = audit
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "message.delete")
        .unwrap_or_else(|| panic!("no message.delete in {audit}"));
    assert_eq!(entry["target"]["id"], wombat.as_str());
    assert_eq!(entry["target"]["reason"], "GDPR erasure request 42");
    assert_eq!(entry["actor"], "admin");
    ok(server.admin().args(["audit", "verify"]));

    // The next offline update tombstones it; the laptop's next sync drops
    // it from its search, its viewer and its files.
    server.admin_ok(&["offline", "sync-now"]);
    ok(laptop_in(&home).args(["sync", "--json"]));
    let found = json(&ok(laptop_in(&home).args(["search", "wombat", "--json"])));
    assert_eq!(found["hits"].as_array().expect("hits").len(), 0, "{found}");
    let open = run(laptop_in(&home).args(["open", &format!("satchel://{MB}/{wombat}")]));
    assert!(
        !open.status.success(),
        "laptop open still finds the deleted message"
    );
    let quokka = &files[0].1;
    let open = run(laptop_in(&home).args(["open", &format!("satchel://{MB}/{quokka}")]));
    assert!(open.status.success(), "{}", stderr(&open));
    let replica = home.join("replicas").join(MB);
    assert!(
        !ids_in_segments(&replica).contains(&wombat),
        "the laptop's copy still holds the deleted message's bytes"
    );
    assert!(ids_in_segments(&replica).contains(quokka));
    let served: Vec<PathBuf> = std::fs::read_dir(server.data.join("offline"))
        .expect("offline folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("segments").is_dir())
        .collect();
    assert_eq!(served.len(), 1);
    assert!(
        !ids_in_segments(&served[0]).contains(&wombat),
        "the offline repository still holds the deleted message's bytes"
    );
}

#[test]
fn a_message_in_two_mailboxes_leaves_one_and_keeps_its_bytes_for_the_other() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", OTHER]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let shared = emls(
        tmp.path(),
        &[message("shared", "one copy for two mailboxes")],
    );
    let others: Vec<(PathBuf, String)> = corpus_files(0, 12)
        .into_iter()
        .map(|f| {
            let id = sha256_hex(&std::fs::read(&f).expect("corpus"));
            (f, id)
        })
        .collect();
    import(&server, MB, &[shared.clone(), others.clone()].concat());
    import(&server, OTHER, &shared);
    let id = shared[0].1.clone();
    let before = tree_bytes(&packs(&server));

    let done = json(&server.admin_ok(&["delete", MB, &id, "--reason", "left", "--json"]));
    assert_eq!(done["still_in"], serde_json::json!([OTHER]));
    assert_eq!(done["bytes_reclaimed"], 0);
    assert_eq!(tree_bytes(&packs(&server)), before, "its bytes stay");
    let hits = json(&server.admin_ok(&["search", "shared", "--json"]));
    let hits = hits["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["mailboxes"], serde_json::json!([OTHER]));
    assert!(server.search_ids(&["shared", "--mailbox", MB]).is_empty());
    assert!(!run(server.admin().args(["get", MB, &id])).status.success());
    let raw = ok(server.admin().args(["get", OTHER, &id]));
    assert_eq!(raw.as_bytes(), std::fs::read(&shared[0].0).expect("eml"));

    // Out of the other mailbox too: now its bytes go, and every other
    // message is still byte-identical.
    let done = json(&server.admin_ok(&["delete", OTHER, &id, "--reason", "gone", "--json"]));
    assert!(
        done["bytes_reclaimed"].as_u64().expect("bytes") > 0,
        "{done}"
    );
    assert!(tree_bytes(&packs(&server)) < before);
    assert!(server.search_ids(&["shared"]).is_empty());
    for (file, id) in &others {
        let out = run(server.admin().args(["get", MB, id]));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout, std::fs::read(file).expect("corpus"));
    }
    // Imported again after its erasure, it is stored anew.
    import(&server, OTHER, &shared);
    let raw = ok(server.admin().args(["get", OTHER, &id]));
    assert_eq!(raw.as_bytes(), std::fs::read(&shared[0].0).expect("eml"));
}
