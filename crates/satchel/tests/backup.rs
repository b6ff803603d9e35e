//! Backup and restore (issue 13 point 6): `satchel backup DIR` while an
//! import runs, `satchel restore DIR --data NEW`, and a service on NEW that
//! gives back every message reported imported before the backup started,
//! byte for byte, and finds it.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MB: &str = "backup@example.com";

fn messages_in(server: &Server, mailbox: &str) -> u64 {
    let shown = json(&server.admin_ok(&["mailbox", "show", mailbox, "--json"]));
    shown["messages"].as_u64().expect("messages")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every id the service finds in MB, once its index has caught up with
/// `expected` messages (the restored service rebuilds its index from the
/// membership log in the background).
fn all_found(server: &Server, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ids = server.search_ids(&["", "--mailbox", MB]);
        if ids.len() >= expected || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_backup_taken_during_an_import_restores_every_message_reported_before_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    // Reported imported: these imports have finished before the backup.
    let files = corpus_files(0, 300);
    import_files(&server, MB, &files);
    let reported: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|f| {
            let raw = std::fs::read(f).expect("read corpus file");
            (sha256_hex(&raw), raw)
        })
        .collect();

    // The whole corpus as one mbox, imported in the background.
    let mbox = corpus().join("corpus.mbox");
    let mut import = Kill(
        server
            .admin()
            .args(["import", MB, "--json", path(&mbox)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the import"),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while messages_in(&server, MB) <= reported.len() as u64 {
        assert!(Instant::now() < deadline, "the import added nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = messages_in(&server, MB);
    assert!(
        import.0.try_wait().expect("import status").is_none(),
        "the import ended before the backup started: it must run during it"
    );
    let dir = work.path().join("backup");
    let report = json(&server.admin_ok(&["backup", path(&dir), "--json"]));
    let backed_up = report["messages"].as_u64().expect("messages");
    assert!(
        backed_up >= before,
        "{report}: fewer than the {before} before"
    );
    assert!(report["packs"].as_u64() > Some(0), "{report}");
    assert_eq!(report["not_copied"], serde_json::json!([]), "{report}");
    assert!(!dir.join("node-id").exists() && !dir.join("index").exists());
    assert!(
        import.0.wait().expect("import").success(),
        "the import failed"
    );
    let all = messages_in(&server, MB);

    let data = work.path().join("restored");
    let restored = json(&ok(satchel().args([
        "restore",
        path(&dir),
        "--data",
        path(&data),
        "--json",
    ])));
    assert_eq!(restored["messages"].as_u64(), Some(backed_up), "{restored}");
    assert_eq!(restored["packs"], report["packs"], "{restored}");

    let again = Server::start_in(&data);
    assert_eq!(messages_in(&again, MB), backed_up);
    for (id, raw) in &reported {
        let got = run(again.admin().args(["get", MB, id]));
        assert!(got.status.success(), "{id}: {:?}", got);
        assert!(got.stdout == *raw, "{id} is not byte-identical");
    }
    let found = all_found(&again, backed_up as usize);
    assert_eq!(
        found.len() as u64,
        backed_up,
        "found {} of {backed_up}",
        found.len()
    );
    for id in reported.keys() {
        assert!(found.contains(id), "{id} is not found after the restore");
    }
    // The original service kept everything it imported after the backup.
    assert!(all >= backed_up);
}

#[test]
fn backup_and_restore_refuse_what_would_lose_or_mix_data() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(&server, MB, &corpus_files(0, 20));
    server.add_user("carol", "carol-password-1");

    // Only an administrator; an absolute folder; an empty one; not inside the data folder.
    let dir = work.path().join("b");
    let carol = run(server
        .as_user("carol", "carol-password-1")
        .args(["backup", path(&dir)]));
    assert!(!carol.status.success());
    assert!(
        String::from_utf8_lossy(&carol.stderr).contains("admin"),
        "{carol:?}"
    );
    assert!(!dir.exists(), "a refused backup wrote {}", dir.display());
    let relative = run(server.admin().args(["backup", "relative/folder"]));
    assert!(String::from_utf8_lossy(&relative.stderr).contains("absolute path"));
    let full = work.path().join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    std::fs::write(full.join("keep.txt"), b"mine").expect("write");
    let busy = run(server.admin().args(["backup", path(&full)]));
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("not empty"),
        "{busy:?}"
    );
    assert_eq!(std::fs::read(full.join("keep.txt")).expect("kept"), b"mine");
    let inside = server.data.join("backup-here");
    let refused = run(server.admin().args(["backup", path(&inside)]));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("inside the data folder"));

    let report = json(&server.admin_ok(&["backup", path(&dir), "--json"]));
    assert_eq!(report["messages"].as_u64(), Some(20));
    let listed = json(&server.admin_ok(&["audit", "list", "--json"]));
    let backups: Vec<_> = listed
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "backup")
        .collect();
    assert_eq!(backups.len(), 1, "{listed}");
    assert_eq!(backups[0]["target"]["dir"], path(&dir));

    // Restore: never into a non-empty folder.
    let restore = |data: &Path| run(satchel().args(["restore", path(&dir), "--data", path(data)]));
    let out = restore(&full);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    // A damaged pack is named, and the new folder is left empty.
    let packs = walk(&dir.join("repositories"));
    let pack = packs.first().expect("a pack in the backup");
    let mut bytes = std::fs::read(pack).expect("read pack");
    bytes[0] ^= 0xff;
    std::fs::write(pack, &bytes).expect("damage pack");
    let fresh = work.path().join("fresh");
    let out = restore(&fresh);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(std::fs::read_dir(&fresh).expect("fresh").count(), 0);
    bytes[0] ^= 0xff;
    std::fs::write(pack, &bytes).expect("mend pack");
    // A backup without backup.json (cut short) is refused.
    std::fs::rename(dir.join("backup.json"), work.path().join("m.json")).expect("move");
    let out = restore(&fresh);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a complete backup"));
    std::fs::rename(work.path().join("m.json"), dir.join("backup.json")).expect("move");
    ok(satchel().args(["restore", path(&dir), "--data", path(&fresh)]));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
