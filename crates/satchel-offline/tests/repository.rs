//! Repository behaviour: tombstones, compaction, flush, crash safety, GC.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use satchel_offline::repository::segment_path;
use satchel_offline::{
    Error, Manifest, MessageId, ReplicaIndex, Repository, RepositoryOptions, SegmentWriter,
    install_segment, verify_repository,
};

fn opts() -> RepositoryOptions {
    RepositoryOptions {
        level: 3,
        block_size: 16 * 1024,
        ..RepositoryOptions::default()
    }
}

fn live(dir: &Path) -> BTreeSet<MessageId> {
    ReplicaIndex::open(dir).unwrap().ids().copied().collect()
}

fn segment_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn new_repository_is_empty_generation_zero() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    let m = Manifest::load(dir.path()).unwrap();
    assert_eq!(&m, repo.manifest());
    assert_eq!((m.format, m.generation, m.segments.len()), (1, 0, 0));
    assert_eq!(m.etag(), format!("\"{}-0\"", m.epoch));
    assert!(repo.reader().unwrap().is_empty());
}

#[test]
fn tombstones_hide_and_readd_shows_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    let msgs = common::messages(0..10);

    let mut w = repo.new_segment();
    for m in &msgs[..6] {
        w.add(m.clone()).unwrap();
    }
    let m1 = repo.append_segment(w).unwrap();
    assert_eq!((m1.generation, m1.totals.messages), (1, 6));

    // Update 2: remove messages 0 and 1, add 6..10.
    let mut w = repo.new_segment();
    w.tombstone(msgs[0].id);
    w.tombstone(msgs[1].id);
    for m in &msgs[6..] {
        w.add(m.clone()).unwrap();
    }
    let m2 = repo.append_segment(w).unwrap();
    assert_eq!((m2.generation, m2.totals.messages), (2, 8));
    assert_ne!(m1.etag(), m2.etag());

    let r = ReplicaIndex::open(dir.path()).unwrap();
    assert!(!r.contains(&msgs[0].id));
    assert!(matches!(
        r.read(&msgs[1].id),
        Err(Error::MessageNotFound(_))
    ));
    for m in &msgs[2..] {
        assert_eq!(r.read(&m.id).unwrap(), m.raw);
        assert_eq!(r.get(&m.id).unwrap().subject, m.subject);
    }
    let listed: Vec<MessageId> = r.list().iter().map(|e| e.id).collect();
    let expected: Vec<MessageId> = msgs[2..].iter().map(|m| m.id).collect();
    assert_eq!(listed, expected);

    // Update 3: message 0 comes back.
    let mut w = repo.new_segment();
    w.add(msgs[0].clone()).unwrap();
    let m3 = repo.append_segment(w).unwrap();
    assert_eq!((m3.generation, m3.totals.messages), (3, 9));
    let r = ReplicaIndex::open(dir.path()).unwrap();
    assert_eq!(r.read(&msgs[0].id).unwrap(), msgs[0].raw);
    assert!(!r.contains(&msgs[1].id));

    // An empty update changes nothing (no new generation for clients to fetch).
    let m4 = repo.append_segment(repo.new_segment()).unwrap();
    assert_eq!(m4, m3);
    assert!(verify_repository(dir.path()).unwrap().ok);
}

#[test]
fn compaction_drops_tombstoned_messages_and_keeps_the_live_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    let msgs = common::messages(0..20);
    // A big first segment (kept), then several small updates.
    let mut w = repo.new_segment();
    for m in &msgs[..10] {
        w.add(m.clone()).unwrap();
    }
    repo.append_segment(w).unwrap();
    let big = repo.manifest().segments[0].clone();
    for chunk in msgs[10..].chunks(2) {
        let mut w = repo.new_segment();
        for m in chunk {
            w.add(m.clone()).unwrap();
        }
        repo.append_segment(w).unwrap();
    }
    // Tombstone one message of the big segment and two of the small ones,
    // then re-add one of the small ones.
    let mut w = repo.new_segment();
    for i in [3, 11, 14] {
        w.tombstone(msgs[i].id);
    }
    repo.append_segment(w).unwrap();
    let mut w = repo.new_segment();
    w.add(msgs[14].clone()).unwrap();
    repo.append_segment(w).unwrap();

    let before = live(dir.path());
    assert_eq!(before.len(), 18);
    let gen_before = repo.manifest().generation;
    let old_names: BTreeSet<String> = repo
        .manifest()
        .segments
        .iter()
        .map(|s| s.name.clone())
        .collect();

    let m = repo.compact(big.size).unwrap();
    assert_eq!(m.generation, gen_before + 1);
    assert_eq!(m.segments.len(), 2, "big segment kept + one merged segment");
    assert_eq!(m.segments[0], big);
    let merged = &m.segments[1];
    assert_eq!(
        merged.tombstones, 1,
        "only the tombstone hiding message 3 of the kept segment remains"
    );
    assert_eq!(merged.messages, 9, "messages 10..20 minus tombstoned 11");
    assert_eq!(m.totals.messages, 18);
    assert_eq!(live(dir.path()), before);

    let r = ReplicaIndex::open(dir.path()).unwrap();
    for m in &msgs {
        let id = &m.id;
        if before.contains(id) {
            assert_eq!(r.read(id).unwrap(), m.raw);
        } else {
            assert!(!r.contains(id));
        }
    }
    // Old small segment files are gone, only the manifest's remain.
    let names: BTreeSet<String> = m.segments.iter().map(|s| s.name.clone()).collect();
    assert_eq!(segment_files(dir.path()), names);
    assert!(old_names.contains(&big.name));

    // Compacting everything leaves one segment with no tombstones at all.
    let m = repo.compact(u64::MAX).unwrap();
    assert_eq!(m.segments.len(), 1);
    assert_eq!(m.segments[0].tombstones, 0);
    assert_eq!(m.segments[0].messages, 18);
    assert_eq!(live(dir.path()), before);
    assert!(verify_repository(dir.path()).unwrap().ok);

    // Nothing to merge: unchanged.
    let again = repo.compact(u64::MAX).unwrap();
    assert_eq!(again, m);
}

#[test]
fn flush_changes_epoch_and_deletes_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    let mut w = repo.new_segment();
    w.add(common::message(1)).unwrap();
    let m1 = repo.append_segment(w).unwrap();
    let m2 = repo.flush().unwrap();
    assert_ne!(m2.epoch, m1.epoch);
    assert!(m2.generation > m1.generation);
    assert!(m2.segments.is_empty());
    assert_eq!(m2.totals.messages, 0);
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(Manifest::load(dir.path()).unwrap(), m2);
    assert!(
        repo.flush_with_epoch(&m2.epoch).is_err(),
        "a flush must change the epoch"
    );
}

#[test]
fn crash_between_segment_write_and_manifest_switch() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = common::messages(0..4);
    let committed = {
        let mut repo =
            Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
        let mut w = repo.new_segment();
        w.add(msgs[0].clone()).unwrap();
        repo.append_segment(w).unwrap()
    };
    // The "killed" update: segment durable, manifest never switched; plus the
    // temporary files a kill could leave at other instants.
    let mut w = SegmentWriter::new(3);
    w.add(msgs[1].clone()).unwrap();
    let orphan = w.finish_to_dir(&dir.path().join("segments")).unwrap();
    std::fs::write(dir.path().join("segments/.tmp-123-456-0"), b"partial").unwrap();
    std::fs::write(
        dir.path().join("manifest.json.tmp"),
        b"{\"format\": 1, \"mail",
    )
    .unwrap();

    assert_eq!(Manifest::load(dir.path()).unwrap(), committed);
    let r = ReplicaIndex::open(dir.path()).unwrap();
    assert_eq!(r.len(), 1);
    assert!(!r.contains(&msgs[1].id));
    assert!(verify_repository(dir.path()).unwrap().ok);

    let repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    assert_eq!(repo.manifest(), &committed);
    let removed = repo.garbage_collect().unwrap();
    let mut expected = vec![orphan.name.clone(), ".tmp-123-456-0".to_string()];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(!segment_path(dir.path(), &orphan.name).exists());
    assert!(!dir.path().join("manifest.json.tmp").exists());
    assert_eq!(
        segment_files(dir.path()),
        committed.segments.iter().map(|s| s.name.clone()).collect()
    );
}

#[test]
fn one_writer_at_a_time_and_mailbox_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create_or_open(dir.path(), "a@example.com").unwrap();
    assert!(matches!(
        Repository::create_or_open(dir.path(), "a@example.com"),
        Err(Error::Busy(_))
    ));
    drop(repo);
    assert!(matches!(
        Repository::create_or_open(dir.path(), "b@example.com"),
        Err(Error::MailboxMismatch { .. })
    ));
    Repository::create_or_open(dir.path(), "a@example.com").unwrap();
}

#[test]
fn reader_refuses_missing_or_resized_segments_and_verify_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    for n in 0..3 {
        let mut w = repo.new_segment();
        w.add(common::message(n)).unwrap();
        repo.append_segment(w).unwrap();
    }
    let segs = repo.manifest().segments.clone();
    drop(repo);
    std::fs::remove_file(segment_path(dir.path(), &segs[2].name)).unwrap();
    let p1 = segment_path(dir.path(), &segs[1].name);
    let mut bytes = std::fs::read(&p1).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&p1, &bytes).unwrap();

    let report = verify_repository(dir.path()).unwrap();
    assert!(!report.ok);
    assert_eq!(report.checked, 3);
    assert_eq!(report.damaged, vec![segs[1].name.clone()]);
    assert_eq!(report.missing, vec![segs[2].name.clone()]);
    assert!(matches!(
        ReplicaIndex::open(dir.path()),
        Err(Error::SegmentUnusable { .. })
    ));
}

#[test]
fn client_installs_only_verified_downloads() {
    let server = tempfile::tempdir().unwrap();
    let client = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(server.path(), "a@example.com", opts()).unwrap();
    let mut w = repo.new_segment();
    w.add(common::message(5)).unwrap();
    let m = repo.append_segment(w).unwrap();
    let seg = &m.segments[0];
    let bytes = std::fs::read(segment_path(server.path(), &seg.name)).unwrap();

    let partial = client.path().join("download.part");
    std::fs::write(&partial, &bytes[..bytes.len() - 3]).unwrap();
    assert!(install_segment(client.path(), seg, &partial).is_err());
    assert!(!segment_path(client.path(), &seg.name).exists());

    std::fs::write(&partial, &bytes).unwrap();
    install_segment(client.path(), seg, &partial).unwrap();
    m.write_atomic(client.path()).unwrap();
    let r = ReplicaIndex::open(client.path()).unwrap();
    assert_eq!(
        r.read(&common::message(5).id).unwrap(),
        common::message(5).raw
    );
}

#[test]
fn manifest_rejects_unknown_format_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        br#"{"format": 2, "anything": "else"}"#,
    )
    .unwrap();
    assert!(matches!(
        Manifest::load(dir.path()),
        Err(Error::UnsupportedManifestFormat { format: 2, .. })
    ));
    let mut m = Manifest::new("a@example.com", "e1");
    m.segments.push(satchel_offline::SegmentRef {
        name: "../../etc/passwd".into(),
        size: 1,
        messages: 0,
        tombstones: 0,
    });
    m.set_totals(0);
    assert!(matches!(
        m.write_atomic(dir.path()),
        Err(Error::InvalidManifest { .. })
    ));
    std::fs::write(dir.path().join("manifest.json"), b"not json").unwrap();
    assert!(matches!(
        Manifest::load(dir.path()),
        Err(Error::ManifestParse { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Manifest::load(empty.path()),
        Err(Error::NoRepository(_))
    ));
}

#[test]
fn an_appender_splits_at_the_segment_size_in_one_manifest_switch() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = Repository::create_or_open_with(dir.path(), "a@example.com", opts()).unwrap();
    // A limit of one byte: each segment takes one message.
    repo.set_segment_bytes(1);
    let msgs = common::messages(0..200);
    let mut out = repo.appender();
    for m in &msgs {
        assert!(out.add(m.clone()).unwrap());
    }
    let (closed, _) = out.progress();
    assert!(closed >= 2, "{closed} segments closed");
    let m = out.commit(None).unwrap();
    assert_eq!(m.generation, 1, "one switch");
    assert!(m.segments.len() >= 3, "{} segments", m.segments.len());
    assert_eq!(m.totals.messages, 200);
    assert_eq!(live(dir.path()), msgs.iter().map(|m| m.id).collect());
    assert_eq!(
        segment_files(dir.path()),
        m.segments.iter().map(|s| s.name.clone()).collect(),
        "no temporary file left"
    );
    assert!(satchel_offline::verify_repository(dir.path()).unwrap().ok);

    // Dropped before its commit: nothing it wrote stays, nothing is named.
    let mut out = repo.appender();
    for m in common::messages(200..300) {
        out.add(m).unwrap();
    }
    drop(out);
    assert_eq!(Manifest::load(dir.path()).unwrap(), m);
    assert_eq!(
        segment_files(dir.path()),
        m.segments.iter().map(|s| s.name.clone()).collect()
    );
}
