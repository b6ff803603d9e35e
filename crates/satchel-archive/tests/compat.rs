//! Data folders written by released versions must still open and read (like
//! tantivy's compat tests). Fixtures are written once by examples/make_fixture.rs.

use satchel_archive::{Archive, SearchRequest, UserInfo};
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn data_folder_v2_opens_reads_and_searches() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v2");
    let dir = tempfile::tempdir().expect("tempdir");
    // A copy: opening migrates and re-indexes, and the fixture must stay as released.
    copy_dir(&fixture, dir.path());
    let archive = Archive::open(dir.path()).expect("a v2 data folder opens");
    let mailbox = archive
        .catalog()
        .expect("catalog")
        .mailbox("compat@example.com")
        .expect("mailbox");
    assert_eq!(mailbox.messages, 3);
    let admin = UserInfo {
        name: "admin".into(),
        password_hash: String::new(),
        admin: true,
    };
    for n in 1..=3 {
        let req = SearchRequest {
            query: format!("quarkword{n}"),
            mailbox: None,
            limit: 10,
        };
        let hits = archive.search(&admin, &req).expect("search");
        assert_eq!(
            hits.len(),
            1,
            "quarkword{n} found after the index was rebuilt"
        );
        let raw = archive
            .get("compat@example.com", &hits[0].id)
            .expect("read");
        assert!(raw.starts_with(format!("From: Fixture {n} ").as_bytes()));
    }
}

#[test]
fn a_damaged_pack_is_an_error_never_wrong_bytes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v2");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let archive = Archive::open(dir.path()).expect("open");
    let ids: Vec<String> = archive
        .catalog()
        .expect("catalog")
        .members_since("compat@example.com", 0)
        .expect("members")
        .into_iter()
        .map(|m| m.meta.id)
        .collect();
    // Flip one byte in the middle of the pack's last frame.
    let packs = dir.path().join("repositories/default/packs");
    let pack = walk(&packs).into_iter().next().expect("a pack");
    let mut bytes = std::fs::read(&pack).expect("read pack");
    let at = bytes.len() - 20;
    bytes[at] ^= 0x40;
    std::fs::write(&pack, &bytes).expect("write pack");
    let results: Vec<bool> = ids.iter().map(|id| archive.read(id).is_ok()).collect();
    assert!(
        results.iter().any(|ok| !ok),
        "the damaged message is refused"
    );
    for id in &ids {
        if let Ok(raw) = archive.read(id) {
            assert_eq!(
                &satchel_archive::MessageId::of(&raw).to_string(),
                id,
                "never wrong bytes"
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
