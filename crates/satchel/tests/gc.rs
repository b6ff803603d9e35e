//! Reclaiming repository space (issue 11 points 1 and 3): a deletion's pack
//! rewrite and `satchel repo gc` on a disk repository and on SeaweedFS, and a
//! crash between any two steps of a rewrite (the test-only failpoint
//! `SATCHEL_GC_FAILPOINT` aborts the service there) loses no message: every
//! other message stays byte-identical, and the next pass gives the space back.

mod common;
use common::seaweed::{BUCKET, Seaweed};
use common::*;
use std::path::{Path, PathBuf};

const MB: &str = "erin@example.com";

/// The first `n` corpus messages with their ids.
fn corpus_messages(n: usize) -> Vec<(PathBuf, String)> {
    corpus_files(0, n)
        .into_iter()
        .map(|f| {
            let id = sha256_hex(&std::fs::read(&f).expect("corpus"));
            (f, id)
        })
        .collect()
}

fn import(server: &Server, files: &[(PathBuf, String)]) {
    let mut cmd = server.admin();
    cmd.args(["import", MB]);
    for (f, _) in files {
        cmd.arg(f);
    }
    ok(&mut cmd);
}

fn assert_identical(server: &Server, messages: &[(PathBuf, String)]) {
    for (file, id) in messages {
        let out = run(server.admin().args(["get", MB, id]));
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, std::fs::read(file).expect("message"), "{id}");
    }
}

/// The pack files of the data folder's default repository, with their sizes.
fn pack_files(data: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let root = data.join("repositories/default/packs");
    for fan in std::fs::read_dir(&root).expect("packs") {
        for f in std::fs::read_dir(fan.expect("fan").path()).expect("fan") {
            let p = f.expect("file").path();
            let size = std::fs::metadata(&p).expect("size").len();
            files.push((p, size));
        }
    }
    files.sort();
    files
}

fn total(files: &[(PathBuf, u64)]) -> u64 {
    files.iter().map(|f| f.1).sum()
}

fn gc(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut cmd = server.admin();
    cmd.args(["repo", "gc", "--json"]).args(args);
    json(&ok(&mut cmd))
}

/// Deletes `victim` with the service aborting at `step` of the rewrite,
/// then checks what a restarted service finds and what a pass gives back.
fn crash_during_rewrite(step: &str, alone: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = Server::start_in_with(&data, &[("SATCHEL_GC_FAILPOINT", step)]);
    server.admin_ok(&["mailbox", "add", MB]);
    let all = corpus_messages(13);
    let (victim, others) = all.split_last().expect("messages");
    if alone {
        import(&server, others);
        import(&server, std::slice::from_ref(victim));
    } else {
        import(&server, &all);
    }
    let before = pack_files(&data);

    let out = run(server
        .admin()
        .args(["delete", MB, &victim.1, "--reason", "crash"]));
    assert!(
        !out.status.success(),
        "the service should have aborted at {step}"
    );
    server.kill();
    let server = Server::start_in(&data);

    // Nothing lost: the others read back byte-identical; the deletion
    // itself had committed.
    assert_identical(&server, others);
    assert!(
        !run(server.admin().args(["get", MB, &victim.1]))
            .status
            .success()
    );
    let crashed = pack_files(&data);
    let dry = gc(
        &server,
        &["--dry-run", "--threshold", "1", "--orphan-grace", "0"],
    );
    assert_eq!(dry["dry_run"], true);
    assert!(dry["bytes_reclaimed"].as_u64().expect("bytes") > 0, "{dry}");
    assert_eq!(pack_files(&data), crashed, "a dry run changes nothing");

    let done = gc(&server, &["--threshold", "1", "--orphan-grace", "0"]);
    assert!(
        done["bytes_reclaimed"].as_u64().expect("bytes") > 0,
        "{done}"
    );
    let after = pack_files(&data);
    assert!(
        total(&after) < total(&before),
        "{step}: {after:?} vs {before:?}"
    );
    assert!(total(&after) < total(&crashed), "{step}");
    assert_identical(&server, others);
    // A second pass finds nothing left to give back.
    let again = gc(&server, &["--threshold", "1", "--orphan-grace", "0"]);
    assert_eq!(again["bytes_reclaimed"], 0, "{again}");
}

#[test]
fn a_crash_after_the_new_pack_is_written_loses_nothing() {
    crash_during_rewrite("pack-written", false);
}

#[test]
fn a_crash_after_the_catalog_moved_the_messages_loses_nothing() {
    crash_during_rewrite("catalog-moved", false);
}

#[test]
fn a_crash_after_a_dead_packs_row_is_dropped_loses_nothing() {
    crash_during_rewrite("row-dropped", true);
}

#[test]
fn orphan_packs_wait_for_their_grace_period() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let messages = corpus_messages(3);
    import(&server, &messages);
    // A pack no catalog row names, as an import killed before its commit
    // leaves one.
    let orphan = "ab".repeat(32);
    let dir = server.data.join("repositories/default/packs/ab");
    std::fs::create_dir_all(&dir).expect("fan");
    std::fs::write(dir.join(format!("{orphan}.pack")), b"SATPACK1 junk").expect("orphan");
    let young = gc(&server, &[]);
    assert_eq!(young["orphans_deleted"], 0, "{young}");
    assert!(dir.join(format!("{orphan}.pack")).exists());
    let old = gc(&server, &["--orphan-grace", "0"]);
    assert_eq!(old["orphans_deleted"], 1, "{old}");
    assert_eq!(old["bytes_reclaimed"], 13);
    assert!(!dir.join(format!("{orphan}.pack")).exists());
    assert_identical(&server, &messages);
    // Only administrators run a pass.
    server.add_user("erin", "erin-password");
    let denied = run(server.as_user("erin", "erin-password").args(["repo", "gc"]));
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("not an administrator"));
}

#[test]
fn deletion_and_gc_give_space_back_on_seaweedfs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let server = Server::start_in_with(&data, &seaweed.env());
    let mut add = vec!["repo", "add", "cloud"];
    let args = seaweed.repo_args("gc");
    add.extend(args.iter().map(String::as_str));
    server.admin_ok(&add);
    server.admin_ok(&["mailbox", "add", MB, "--repo", "cloud"]);
    let all = corpus_messages(10);
    import(&server, &all);
    let (victim, others) = all.split_last().expect("messages");
    let packs_before = seaweed.list("gc/packs");
    assert_eq!(packs_before.len(), 1, "{packs_before:?}");

    let done = json(&server.admin_ok(&["delete", MB, &victim.1, "--reason", "s3", "--json"]));
    assert!(
        done["bytes_reclaimed"].as_u64().expect("bytes") > 0,
        "{done}"
    );
    let packs_after = seaweed.list("gc/packs");
    assert_eq!(packs_after.len(), 1, "{packs_after:?}");
    assert_ne!(packs_after, packs_before, "the pack was rewritten");
    assert_identical(&server, others);

    // An orphan object goes at a pass past its grace; the packs stay.
    let orphan = format!("gc/packs/cd/{}.pack", "cd".repeat(32));
    seaweed.put(&orphan, b"SATPACK1".to_vec());
    let pass = gc(&server, &["--orphan-grace", "0"]);
    assert_eq!(pass["orphans_deleted"], 1, "{pass}");
    assert_eq!(seaweed.list("gc/packs"), packs_after, "bucket {BUCKET}");
    assert_identical(&server, others);
}
