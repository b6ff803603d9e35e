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

/// The ten queries of BENCHMARKS.md's million table.
const QUERIES: [&str; 10] = [
    "razor",
    "spamassassin razor",
    "\"spam assassin\"",
    "from:wstearns",
    "subject:satellite",
    "razor after:2002-01-01 before:2003-01-01",
    "linux OR freebsd",
    "razor NOT spamassassin",
    "subject:(perl OR python) NOT subject:re",
    "\"mailing list\"",
];

/// `satchel search QUERY --json --limit LIMIT` as the administrator: the
/// hits, whole (ids, names, snippets), in order.
fn hits(server: &Server, query: &str, limit: &str) -> serde_json::Value {
    let v = json(&server.admin_ok(&["search", query, "--json", "--limit", limit]));
    v["hits"].clone()
}

/// Hits by id.
fn by_id(hits: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    hits.as_array()
        .expect("hits")
        .iter()
        .map(|h| (h["id"].as_str().expect("id").to_string(), h.clone()))
        .collect()
}

/// A service on `data` whose mailbox MB is in the bucket under `prefix`.
fn s3_service(seaweed: &Seaweed, data: &Path, prefix: &str) -> Server {
    let server = Server::start_in_with(data, &seaweed.env());
    let mut add = vec!["repo", "add", "cloud"];
    let args = seaweed.repo_args(prefix);
    add.extend(args.iter().map(String::as_str));
    server.admin_ok(&add);
    server.admin_ok(&["mailbox", "add", MB, "--repo", "cloud"]);
    server
}

#[test]
fn search_through_s3_answers_as_a_disk_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let cloud = s3_service(&seaweed, &tmp.path().join("cloud"), "parity");
    let disk = Server::start_in(&tmp.path().join("disk"));
    disk.admin_ok(&["mailbox", "add", MB]);
    corpus_part(&tmp.path().join("corpus"), 400);
    let corpus = tmp.path().join("corpus");
    for server in [&cloud, &disk] {
        server.admin_ok(&[
            "import",
            MB,
            corpus.to_str().expect("utf8"),
            "--batch",
            "100",
        ]);
    }
    let mut snippets = 0;
    for query in QUERIES {
        // Every match, by id (equal scores may rank in another order in two
        // indexes): the same hits, each named and cut the same.
        let on_disk = by_id(&hits(&disk, query, "10000"));
        assert_eq!(by_id(&hits(&cloud, query, "10000")), on_disk, "{query}");
        snippets += on_disk
            .values()
            .filter(|h| h["snippet"].as_str().is_some_and(|s| !s.is_empty()))
            .count();
        for limit in ["50", "10"] {
            // The first answer reads from the bucket, the second from the
            // node's frame cache: the same, each hit as the disk's.
            let first = hits(&cloud, query, limit);
            assert_eq!(hits(&cloud, query, limit), first, "{query} at {limit}");
            for (id, hit) in by_id(&first) {
                assert_eq!(Some(&hit), on_disk.get(&id), "{query} at {limit}");
            }
        }
    }
    assert!(snippets > 50, "the queries cut snippets from stored bytes");
}

/// Writes three messages, each with its own word, into a Maildir; imported
/// in one request they share one pack.
fn three_messages(dir: &Path) -> Vec<(PathBuf, String)> {
    let messages = write_maildir(dir, "trio", 3);
    for (i, word) in ["aardvark", "bandicoot", "cassowary"].iter().enumerate() {
        let raw = format!(
            "From: s{i}@example.org\r\nTo: {MB}\r\nSubject: animal {i}\r\n\
             Message-ID: <trio-{i}@example.org>\r\n\r\nToday the {word} came by.\r\n"
        );
        std::fs::write(&messages[i].0, &raw).expect("write");
    }
    messages
        .into_iter()
        .map(|(f, _)| {
            let raw = std::fs::read(&f).expect("read");
            (f, sha256_hex(&raw))
        })
        .collect()
}

/// SeaweedFS and a service in `dir`, with [`three_messages`] imported into
/// MB in the bucket under `prefix`.
fn trio_in_bucket(dir: &Path, prefix: &str) -> (Seaweed, Server, Vec<(PathBuf, String)>) {
    let seaweed = Seaweed::start(&dir.join("seaweed"));
    let server = s3_service(&seaweed, &dir.join("data"), prefix);
    let trio = three_messages(&dir.join("trio"));
    let folder = dir.join("trio");
    server.admin_ok(&["import", MB, folder.to_str().expect("utf8")]);
    (seaweed, server, trio)
}

#[test]
fn an_erased_message_is_not_served_from_the_frame_cache() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (seaweed, server, trio) = trio_in_bucket(tmp.path(), "erase");
    let data = tmp.path().join("data");
    let old_packs = catalog_pack_keys(&data, "cloud", "erase");
    assert_eq!(old_packs.len(), 1, "one pack: {old_packs:?}");

    // Read once by a search's snippet and a get: the frame is cached.
    let victim = &trio[0];
    let found = hits(&server, "aardvark", "50");
    assert!(
        found[0]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("aardvark")),
        "{found}"
    );
    assert_get_identical(&server, std::slice::from_ref(victim));

    server.admin_ok(&["delete", MB, &victim.1, "--reason", "erasure"]);
    server.admin_ok(&["repo", "gc", "--threshold", "1", "--orphan-grace", "0"]);

    let out = run(server.admin().args(["get", MB, &victim.1]));
    assert!(!out.status.success(), "an erased message is not served");
    assert!(out.stdout.is_empty());
    assert_eq!(hits(&server, "aardvark", "50"), serde_json::json!([]));
    // Its old pack left the bucket; the others read back from the new one,
    // snippets included.
    let listed: BTreeSet<String> = seaweed.list("erase").into_iter().collect();
    assert!(listed.is_disjoint(&old_packs), "{listed:?}");
    assert_eq!(listed, catalog_pack_keys(&data, "cloud", "erase"));
    assert_get_identical(&server, &trio[1..]);
    let found = hits(&server, "bandicoot", "50");
    assert!(
        found[0]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("bandicoot")),
        "{found}"
    );
}

#[test]
fn a_damaged_object_reports_damage_and_never_wrong_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (seaweed, server, trio) = trio_in_bucket(tmp.path(), "damage");
    let data = tmp.path().join("data");
    let pack = catalog_pack_keys(&data, "cloud", "damage");
    let key = pack.first().expect("one pack");

    // The first message is read (and cached) before the damage.
    assert_get_identical(&server, &trio[..1]);
    let mut bytes = seaweed.get(key);
    for b in bytes.iter_mut().skip(8) {
        *b ^= 0x5a;
    }
    seaweed.put(key, bytes);

    // The others are damage, each time asked: nothing damaged was kept.
    for _ in 0..2 {
        for (_, id) in &trio[1..] {
            let out = run(server.admin().args(["get", MB, id]));
            assert!(!out.status.success(), "damage is an error");
            assert!(out.stdout.is_empty(), "no bytes of a damaged message");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("damaged"), "{err}");
        }
        // A hit on a damaged message stays, without a snippet.
        let found = hits(&server, "bandicoot", "50");
        assert_eq!(found[0]["id"].as_str(), Some(trio[1].1.as_str()), "{found}");
        assert_eq!(found[0]["snippet"], "", "{found}");
    }
    // What was read intact before is served as it was: never wrong bytes.
    assert_get_identical(&server, &trio[..1]);
}
