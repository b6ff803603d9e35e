//! Offline repositories of bounded segments (issue 12 point 4: the service
//! and the laptop stay under their memory goal whatever the mailbox's
//! size). A full build streams the mailbox into segments of at most the
//! configured size; the laptop downloads, verifies and reads all of them;
//! a later sync hashes only the segment files that changed since they were
//! verified, and still finds a segment damaged in place.

mod common;
use common::*;
use satchel_offline::{Manifest, ReplicaIndex};
use std::path::Path;

const MB: &str = "dora@example.com";
/// The smallest limit the service accepts.
const LIMIT: u64 = 1 << 20;

fn sync(home: &Path) -> serde_json::Value {
    json(&ok(laptop_in(home).args(["sync", "--json"])))
}

/// The whole corpus in MB, offline with segments of at most [`LIMIT`]
/// bytes, built once; carol's laptop synced once.
fn built(home: &Path) -> (Server, serde_json::Value) {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let maildir = corpus().join("maildir");
    server.admin_ok(&["import", MB, maildir.to_str().expect("utf8")]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    let limit = LIMIT.to_string();
    let d = json(&server.admin_ok(&["offline", "defaults", "--segment-bytes", &limit, "--json"]));
    assert_eq!(d["segment_bytes"], LIMIT);
    server.admin_ok(&["offline", "enable", MB]);
    let built = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    laptop_synced(&server, "carol", "carol-password", home);
    (server, built)
}

#[test]
fn a_full_build_writes_bounded_segments_and_the_laptop_reads_them_all() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let (server, _) = built(&home);
    let served = Manifest::load(
        &server
            .data
            .join("offline")
            .join(satchel_offline::mailbox_dir_name(MB)),
    )
    .expect("manifest");
    // 6,046 messages, about 7 MB compressed: several segments, each closed
    // once it reached the limit (so at most one compressed block over it).
    assert!(
        served.segments.len() >= 5,
        "{} segments",
        served.segments.len()
    );
    for s in &served.segments {
        assert!(s.size < 2 * LIMIT, "segment of {} bytes", s.size);
    }
    assert!(served.totals.messages > 6_000, "{:?}", served.totals);

    // The laptop holds every segment and every message, each readable.
    let copy = home.join("replicas").join(MB);
    let local = Manifest::load(&copy).expect("local manifest");
    assert_eq!(local.segments, served.segments);
    let reader = ReplicaIndex::open(&copy).expect("open the copy");
    assert_eq!(reader.len() as u64, served.totals.messages);
    for id in reader.ids() {
        let raw = reader.read(id).expect("a message of the copy");
        assert_eq!(sha256_hex(&raw), id.to_hex());
    }
    assert!(ok(laptop_in(&home).args(["verify"])).contains("ok"));
    let hits = json(&ok(laptop_in(&home).args(["search", "razor", "--json"])));
    assert!(!hits["hits"].as_array().expect("hits").is_empty());
}

#[test]
fn a_sync_hashes_only_changed_segment_files_and_finds_one_damaged_in_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let (_server, _) = built(&home);
    let copy = home.join("replicas").join(MB);
    let local = Manifest::load(&copy).expect("local manifest");

    // Nothing changed: no segment file is read again.
    let report = sync(&home);
    let m = synced_mailbox(&report, MB);
    assert_eq!(m["change"], "unchanged");
    assert_eq!(m["segments_hashed"], 0);

    // One byte flipped in place, size and modification time put back.
    let victim = copy.join("segments").join(&local.segments[2].name);
    let modified = std::fs::metadata(&victim)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[100] ^= 0x01;
    std::fs::write(&victim, &bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .and_then(|f| f.set_modified(modified))
        .expect("set mtime");
    assert_eq!(
        std::fs::metadata(&victim).expect("meta").len(),
        local.segments[2].size
    );

    // The sync hashes that file alone, finds it damaged and fetches it again.
    let report = sync(&home);
    let m = synced_mailbox(&report, MB);
    assert_eq!(m["segments_hashed"], 1, "{m}");
    assert_eq!(m["segments_repaired"], 1, "{m}");
    assert_eq!(m["segment_bytes"], local.segments[2].size);
    assert!(ok(laptop_in(&home).args(["verify"])).contains("ok"));
    let again = sync(&home);
    assert_eq!(synced_mailbox(&again, MB)["segments_hashed"], 0);
}

#[test]
fn a_segment_limit_below_one_mebibyte_is_refused_and_changes_nothing() {
    let server = Server::start();
    let out = run(server
        .admin()
        .args(["offline", "defaults", "--segment-bytes", "1000"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 1048576"), "{err}");
    let d = json(&server.admin_ok(&["offline", "defaults", "--json"]));
    assert_eq!(d["segment_bytes"], satchel_offline::DEFAULT_SEGMENT_BYTES);
}
