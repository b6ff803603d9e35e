//! A full disk (issue 9, point 3): a failed search-index commit never loses
//! searchability, a failed pack or offline segment write leaves no partial
//! file, and leftovers of interrupted writes are removed at start. Each test
//! puts one part of a real data folder on a small loop-mounted ext4 file
//! system, fills it, works, frees it, works again, and then checks that every
//! message the catalog holds is found, also after a restart.

mod common;
use common::smalldisk::SmallDisk;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MB: &str = "dora@example.com";

/// Writes `n` messages tagged `{prefix}{i}` as .eml files; returns paths and ids.
fn write_messages(dir: &Path, prefix: &str, n: usize) -> (Vec<PathBuf>, BTreeSet<String>) {
    write_sized(dir, prefix, n, 0)
}

/// Like [`write_messages`], each with `noise` lines of hard to compress text,
/// so that a batch makes a pack of known bulk.
fn write_sized(
    dir: &Path,
    prefix: &str,
    n: usize,
    noise: usize,
) -> (Vec<PathBuf>, BTreeSet<String>) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut paths = Vec::new();
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let tag = format!("{prefix}{i}");
        let raw = format!(
            "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: {tag}\r\n\
             Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{tag}@example.org>\r\n\r\n\
             body of {tag} {}\r\n",
            (0..200)
                .map(|w| format!("word{prefix}{w} "))
                .collect::<String>()
        ) + &(0..noise)
            .map(|l| sha256_hex(format!("{tag}/{l}").as_bytes()) + "\r\n")
            .collect::<String>();
        let path = dir.join(format!("{tag}.eml"));
        std::fs::write(&path, &raw).expect("write message");
        ids.insert(sha256_hex(raw.as_bytes()));
        paths.push(path);
    }
    (paths, ids)
}

/// `satchel import` of these files: (success, stdout+stderr).
fn import(server: &Server, paths: &[PathBuf]) -> (bool, String) {
    let out = run(server.admin().args(["import", MB]).args(paths));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// How many messages the catalog holds in the mailbox.
fn held(server: &Server) -> u64 {
    let v = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    v["messages"].as_u64().expect("messages")
}

/// The catalog's messages are exactly `expected`, and search finds each one.
fn assert_all_found(server: &Server, expected: &BTreeSet<String>, when: &str) {
    assert_eq!(held(server), expected.len() as u64, "{when}: catalog count");
    let got = server
        .search_ids(&["", "--mailbox", MB])
        .into_iter()
        .collect::<BTreeSet<_>>();
    let missing: Vec<&String> = expected.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{when}: {} of {} archived messages are not found by search: {missing:?}\nlog:\n{}",
        missing.len(),
        expected.len(),
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
}

#[test]
fn a_failed_index_commit_loses_no_message_from_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The index alone on a small disk: imports keep working while commits fail.
    let disk = SmallDisk::mount_on(&data.join("index"), 32);
    let mut server = Server::start_in(&data);
    server.admin_ok(&["mailbox", "add", MB]);
    let mut expected = BTreeSet::new();

    let (paths, ids) = write_messages(&dir.path().join("a"), "alpha", 30);
    assert!(import(&server, &paths).0);
    expected.extend(ids);
    assert_all_found(&server, &expected, "before the disk fills");

    // Three rounds: fill, import (stored, but the index commit fails), search
    // (commits, fails, still answers), free, import again.
    for round in 0..3 {
        disk.fill();
        let (paths, ids) = write_messages(&dir.path().join(format!("full{round}")), "full", 40);
        let (ok, out) = import(&server, &paths);
        assert!(
            ok,
            "the store is not on the full disk, so the import works: {out}"
        );
        expected.extend(ids);
        let during = server
            .search_ids(&["", "--mailbox", MB])
            .into_iter()
            .collect::<BTreeSet<_>>();
        assert!(during.is_subset(&expected));
        disk.free();

        let (paths, ids) = write_messages(&dir.path().join(format!("freed{round}")), "freed", 40);
        let (ok, out) = import(&server, &paths);
        assert!(ok, "import after freeing space: {out}");
        expected.extend(ids);
        assert_all_found(&server, &expected, &format!("round {round}, space freed"));
    }

    server.kill();
    let server = Server::start_in(&data);
    assert_all_found(&server, &expected, "after a restart");
    drop(server);
    drop(disk);
}

#[test]
fn a_full_repository_disk_fails_the_import_clearly_and_leaves_no_partial_pack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let disk = SmallDisk::mount_on(&data.join("repositories").join("default"), 32);
    let mut server = Server::start_in(&data);
    server.admin_ok(&["mailbox", "add", MB]);
    let mut expected = BTreeSet::new();
    let (paths, ids) = write_messages(&dir.path().join("a"), "alpha", 20);
    assert!(import(&server, &paths).0);
    expected.extend(ids);

    // Room for the pack's folder and the start of the pack, not for all of
    // it (40 messages of ~8 KB that compress about 2:1): the write starts and fails.
    disk.fill_leaving(32 * 1024);
    let (full_paths, full_ids) = write_sized(&dir.path().join("full"), "full", 40, 120);
    let (ok, out) = import(&server, &full_paths);
    assert!(!ok, "an import onto a full disk fails: {out}");
    assert!(
        out.contains("No space left on device"),
        "the failure says why: {out}"
    );
    assert_eq!(disk.files_named_like(".tmp"), Vec::<PathBuf>::new());
    assert_all_found(&server, &expected, "after the failed import");

    disk.free();
    let (ok, out) = import(&server, &full_paths);
    assert!(ok, "the same import once space is back: {out}");
    expected.extend(full_ids);
    assert_all_found(&server, &expected, "after the retried import");

    // A leftover of a write cut short by a crash goes at the next start.
    server.kill();
    let packs = data.join("repositories/default/packs");
    let sub = std::fs::read_dir(&packs)
        .expect("packs")
        .flatten()
        .next()
        .expect("a pack folder")
        .path();
    std::fs::write(sub.join(".0123abcd.tmp"), b"partial pack").expect("leftover");
    let server = Server::start_in(&data);
    assert_eq!(disk.files_named_like(".tmp"), Vec::<PathBuf>::new());
    assert_all_found(&server, &expected, "after a restart");
    drop(server);
    drop(disk);
}

/// The segment files of an offline repository that its manifest does not name.
fn unnamed_segments(repo: &Path) -> Vec<String> {
    let manifest = satchel_offline::Manifest::load(repo).expect("manifest");
    let named: BTreeSet<&str> = manifest.segments.iter().map(|s| s.name.as_str()).collect();
    std::fs::read_dir(repo.join("segments"))
        .expect("segments")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !named.contains(n.as_str()))
        .collect()
}

#[test]
fn a_failed_offline_update_leaves_no_partial_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let disk = SmallDisk::mount_on(&data.join("offline"), 32);
    let mut server = Server::start_in(&data);
    server.admin_ok(&["mailbox", "add", MB]);
    let (paths, _) = write_messages(&dir.path().join("a"), "alpha", 20);
    assert!(import(&server, &paths).0);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now", MB]);
    let repo = data.join("offline").join(MB);

    let (paths, _) = write_messages(&dir.path().join("b"), "beta", 200);
    assert!(import(&server, &paths).0);
    disk.fill();
    let out = run(server.admin().args(["offline", "sync-now", MB]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an update onto a full disk fails");
    assert!(
        err.contains("No space left on device"),
        "it says why: {err}"
    );
    assert_eq!(unnamed_segments(&repo), Vec::<String>::new());
    assert_eq!(disk.files_named_like(".tmp"), Vec::<PathBuf>::new());

    disk.free();
    server.admin_ok(&["offline", "sync-now", MB]);
    let manifest = satchel_offline::Manifest::load(&repo).expect("manifest");
    assert_eq!(manifest.totals.messages, 220);

    // Leftovers of an update cut short by a crash go at the next start.
    server.kill();
    std::fs::write(repo.join("segments/.tmp-1-2-3"), b"partial").expect("leftover");
    let server = Server::start_in(&data);
    assert_eq!(unnamed_segments(&repo), Vec::<String>::new());
    drop(server);
    drop(disk);
}
