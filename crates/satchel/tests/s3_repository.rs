//! S3 repositories on a real SeaweedFS (issue 12 point 2): packs go to the
//! bucket as objects before the catalog names them, are read back by range
//! (also after a restart and by an offline sync), cold storage stays out of
//! offline synchronization, and an outage fails an import clearly with
//! nothing lost.

mod common;
use common::seaweed::{BUCKET, Seaweed};
use common::*;
use satchel_archive::catalog::rusqlite::Connection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

const MB: &str = "alice@example.com";

/// Writes `n` distinct messages tagged `tag` into a Maildir; returns each
/// file with its id.
fn write_maildir(dir: &Path, tag: &str, n: usize) -> Vec<(PathBuf, String)> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("maildir");
    }
    (0..n)
        .map(|i| {
            let raw = format!(
                "From: sender{i}@example.org\r\nTo: {MB}\r\nSubject: {tag} number {i}\r\n\
                 Message-ID: <{tag}-{i}@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n\
                 Body of {tag} message {i}: {}\r\n",
                "words in the body ".repeat(i % 7 + 1)
            );
            let file = dir.join("cur").join(format!("{tag}{i}:2,S"));
            std::fs::write(&file, &raw).expect("write message");
            (file, sha256_hex(raw.as_bytes()))
        })
        .collect()
}

/// Part of the corpus (real mail) as a Maildir of `n` messages.
fn corpus_part(dir: &Path, n: usize) -> Vec<(PathBuf, String)> {
    std::fs::create_dir_all(dir.join("cur")).expect("maildir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join("maildir/cur"))
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .into_iter()
        .take(n)
        .map(|f| {
            let raw = std::fs::read(&f).expect("corpus message");
            let copy = dir.join("cur").join(f.file_name().expect("name"));
            std::fs::write(&copy, &raw).expect("copy");
            (copy, sha256_hex(&raw))
        })
        .collect()
}

fn assert_get_identical(server: &Server, messages: &[(PathBuf, String)]) {
    for (file, id) in messages {
        let got = run(server.admin().args(["get", MB, id]));
        assert!(
            got.status.success(),
            "get {id}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(got.stdout, std::fs::read(file).expect("read"), "{id}");
    }
}

/// The keys the catalog names for repository `repo`'s packs.
fn catalog_pack_keys(data: &Path, repo: &str, prefix: &str) -> BTreeSet<String> {
    let conn = Connection::open(data.join("catalog.sqlite")).expect("catalog");
    let mut stmt = conn
        .prepare("SELECT name FROM packs WHERE repo = ?1")
        .expect("packs");
    let names: Vec<String> = stmt
        .query_map([repo], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .expect("pack names");
    names
        .iter()
        .map(|n| format!("{prefix}/packs/{}/{n}.pack", &n[..2]))
        .collect()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn s3_repository_archives_reads_restarts_and_syncs_offline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let env = seaweed.env();
    let mut server = Server::start_in_with(&data, &env);

    let mut add = vec!["repo", "add", "cloud"];
    let args = seaweed.repo_args("archive");
    add.extend(args.iter().map(String::as_str));
    let out = server.admin_ok(&add);
    assert!(
        out.contains(&format!("endpoint={}", seaweed.endpoint)),
        "{out}"
    );
    server.admin_ok(&["mailbox", "add", MB, "--repo", "cloud"]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);

    // Real mail, several packs (one per 100-message request), and one
    // message to search for.
    let mut messages = corpus_part(&tmp.path().join("corpus"), 250);
    let ours = write_maildir(&tmp.path().join("ours"), "quokka", 1);
    for dir in ["corpus", "ours"] {
        let path = tmp.path().join(dir);
        server.admin_ok(&["import", MB, path.to_str().expect("utf8"), "--batch", "100"]);
    }
    messages.extend(ours.iter().cloned());
    assert_get_identical(&server, &messages);
    assert_eq!(server.search_ids(&["quokka"]), [ours[0].1.clone()]);

    // Every pack the catalog names is an object in the bucket, and nothing
    // went to the data folder's disk repository.
    let listed: BTreeSet<String> = seaweed.list("archive").into_iter().collect();
    let named = catalog_pack_keys(&data, "cloud", "archive");
    assert!(named.len() >= 3, "{named:?}");
    assert_eq!(listed, named, "bucket {BUCKET}");
    assert!(server.files_in("repositories/default/packs").is_empty());

    // A restarted service still reads from the bucket.
    server.kill();
    let server = Server::start_in_with(&data, &env);
    assert_get_identical(&server, &messages[..20]);

    // S3 is on-line storage: offline synchronization works, and the laptop
    // opens a message with the service gone.
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now", MB]);
    let home = tmp.path().join("carol-home");
    laptop_synced(&server, "carol", "carol-password", &home);
    let mut server = server;
    server.kill();
    for (file, id) in [&messages[0], &ours[0]] {
        let opened = ok(laptop_in(&home).args(["open", &format!("satchel://{MB}/{id}")]));
        assert_eq!(opened.as_bytes(), std::fs::read(file).expect("read"));
    }

    // Cold storage keeps the old rule: 409, naming the repository.
    let server = Server::start_in_with(&data, &env);
    let mut add = vec!["repo", "add", "vault"];
    let args = seaweed.repo_args("vault");
    add.extend(args.iter().map(String::as_str));
    add.push("--cold");
    assert!(server.admin_ok(&add).contains("cold"));
    server.admin_ok(&["mailbox", "add", "dave@example.com", "--repo", "vault"]);
    let err = failed(&run(server.admin().args([
        "offline",
        "enable",
        "dave@example.com",
    ])));
    assert!(
        err.contains("409") && err.contains("repository vault"),
        "{err}"
    );
}

#[test]
fn an_s3_outage_fails_the_import_clearly_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let server = Server::start_in_with(&data, &seaweed.env());
    let mut add = vec!["repo", "add", "cloud"];
    let args = seaweed.repo_args("mail");
    add.extend(args.iter().map(String::as_str));
    server.admin_ok(&add);
    server.admin_ok(&["mailbox", "add", MB, "--repo", "cloud"]);

    let before = write_maildir(&tmp.path().join("before"), "before", 30);
    server.admin_ok(&[
        "import",
        MB,
        tmp.path().join("before").to_str().expect("utf8"),
    ]);

    // SeaweedFS goes away mid-way: the import fails, naming the repository
    // and its endpoint, and the catalog names no pack that is not stored.
    seaweed.stop();
    let during = write_maildir(&tmp.path().join("during"), "during", 40);
    let during_dir = tmp.path().join("during");
    let err = failed(&run(server.admin().args([
        "import",
        MB,
        during_dir.to_str().expect("utf8"),
    ])));
    assert!(
        err.contains("S3 repository cloud") && err.contains(&seaweed.endpoint),
        "{err}"
    );
    let missing = run(server.admin().args(["get", MB, &during[0].1]));
    assert!(!missing.status.success(), "not archived, not pretended");

    // Back on the same folder: the catalog's packs are all there, a retry
    // imports, and every message reads back.
    seaweed.restart();
    let listed: BTreeSet<String> = seaweed.list("mail").into_iter().collect();
    assert_eq!(listed, catalog_pack_keys(&data, "cloud", "mail"));
    server.admin_ok(&["import", MB, during_dir.to_str().expect("utf8")]);
    assert_get_identical(&server, &before);
    assert_get_identical(&server, &during);
    let listed: BTreeSet<String> = seaweed.list("mail").into_iter().collect();
    assert_eq!(listed, catalog_pack_keys(&data, "cloud", "mail"));
}
