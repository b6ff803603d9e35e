//! Data folders written by released versions must still open and read (like
//! tantivy's compat tests). Fixtures are written once by examples/make_fixture.rs.

use satchel_archive::{Archive, SearchRequest, UserInfo};
use satchel_testkit::copy_dir;
use std::path::Path;

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
        groups: Vec::new(),
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
    let ids: Vec<satchel_archive::MessageId> = archive
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
                &satchel_archive::MessageId::of(&raw),
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

/// Catalogs before version 4 kept IMAP passwords in clear: adopting the key
/// seals them, and no copy of the clear bytes stays in the catalog's files.
#[test]
fn clear_imap_passwords_of_older_catalogs_are_sealed() {
    const CLEAR: &str = "Plaintext-Canary-in-v2";
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v2");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    {
        // What a version-2 service wrote for an IMAP mailbox.
        let conn = rusqlite::Connection::open(dir.path().join("catalog.sqlite")).expect("open");
        conn.execute(
            "INSERT INTO mailboxes(address, repo, imap_url, imap_user, imap_password, created)
             VALUES ('old@example.com', 'default', 'imap://h', 'old', ?1, 0)",
            [CLEAR],
        )
        .expect("insert");
    }
    let key = || satchel_archive::secret::SecretKey::from_hex(&"2a".repeat(32)).expect("key");
    let archive = Archive::open(dir.path()).expect("a v2 data folder opens");
    let sealed = archive
        .catalog()
        .expect("catalog")
        .use_secret_key(key())
        .expect("seal");
    assert_eq!(sealed, 1);
    let password = archive
        .catalog()
        .expect("catalog")
        .imap_password("old@example.com")
        .expect("opens");
    assert_eq!(password.as_deref(), Some(CLEAR));
    for name in ["catalog.sqlite", "catalog.sqlite-wal"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
        assert!(
            !bytes.windows(CLEAR.len()).any(|w| w == CLEAR.as_bytes()),
            "{name} still holds the clear password"
        );
    }
    drop(archive);
    // Reopened: nothing left to seal, and the same key opens it.
    let archive = Archive::open(dir.path()).expect("reopen");
    let mut cat = archive.catalog().expect("catalog");
    assert_eq!(cat.use_secret_key(key()).expect("key"), 0);
    assert_eq!(
        cat.imap_password("old@example.com")
            .expect("opens")
            .as_deref(),
        Some(CLEAR)
    );
}
