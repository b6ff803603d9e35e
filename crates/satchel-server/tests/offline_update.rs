//! Offline repository updates at the library level: incremental cost, size
//! cap and since-window, disable/enable, flush, compaction, settings.

use satchel_api::{self as api, Limit};
use satchel_archive::BatchItem;
use satchel_offline::{Manifest, MessageId, ReplicaIndex, Segment, segment_path};
use satchel_server::{Caller, Service};
use std::collections::HashSet;

const MB: &str = "alice@example.com";

struct Env {
    service: Service,
    admin: Caller,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Service::open(&dir.path().join("data"), Some("admin-password".into()))
        .expect("service opens");
    let admin = Caller::local(&service, "admin")
        .expect("query")
        .expect("admin exists");
    service
        .add_mailbox(
            &admin,
            &api::NewMailbox {
                address: MB.into(),
                ..Default::default()
            },
        )
        .expect("mailbox");
    Env {
        service,
        admin,
        _dir: dir,
    }
}

/// A message dated `days_ago` days before now with a body of `body` bytes.
fn message(tag: &str, days_ago: i64, body: usize) -> Vec<u8> {
    let date = chrono::Utc::now() - chrono::Duration::days(days_ago);
    let filler: String = (0..body)
        .map(|i| (b'a' + ((i * 7 + tag.len()) % 26) as u8) as char)
        .collect();
    format!(
        "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: {tag}\r\nDate: {}\r\nMessage-ID: <{tag}@example.org>\r\n\r\n{filler}\r\n",
        date.to_rfc2822()
    )
    .into_bytes()
}

impl Env {
    fn import(&self, messages: Vec<Vec<u8>>) -> Vec<MessageId> {
        let items = messages
            .into_iter()
            .enumerate()
            .map(|(i, raw)| BatchItem {
                origin: format!("m{i}"),
                folder: String::new(),
                raw,
            })
            .collect();
        let report = self.service.import(&self.admin, MB, items).expect("import");
        report
            .results
            .into_iter()
            .map(|r| r.id.expect("imported"))
            .collect()
    }

    fn enable(&self, since: Option<Limit>, max: Option<Limit>) -> api::OfflineMailboxStatus {
        let body = api::OfflineEnable {
            since_days: since,
            max_bytes: max,
        };
        self.service
            .offline_enable(&self.admin, MB, &body)
            .expect("enable")
    }

    fn sync(&self) -> api::OfflineUpdateResult {
        let mut r = self
            .service
            .offline_sync(&self.admin, Some(MB))
            .expect("sync");
        r.results.remove(0)
    }

    fn dir(&self) -> std::path::PathBuf {
        self.service.offline_dir(MB)
    }

    fn live(&self) -> HashSet<MessageId> {
        ReplicaIndex::open(&self.dir())
            .expect("repository opens")
            .ids()
            .copied()
            .collect()
    }
}

fn ids(v: &[MessageId]) -> HashSet<MessageId> {
    v.iter().copied().collect()
}

#[test]
fn an_update_writes_exactly_the_new_messages() {
    let e = env();
    let first = e.import(
        (0..300)
            .map(|i| message(&format!("old{i}"), 10, 400))
            .collect(),
    );
    e.enable(None, None);
    let r1 = e.sync();
    assert!(r1.full, "the first update selects the whole mailbox");
    assert_eq!(r1.added, 300);
    let seg1 = r1.segment.clone().expect("a segment");
    let seg1_bytes = std::fs::read(segment_path(&e.dir(), &seg1)).expect("segment 1");

    let new = e.import(
        (0..100)
            .map(|i| message(&format!("new{i}"), 1, 500))
            .collect(),
    );
    let r2 = e.sync();
    assert!(!r2.full, "the second update is incremental");
    assert_eq!((r2.added, r2.removed), (100, 0));
    let seg2 = r2.segment.clone().expect("a new segment");
    let seg = Segment::open(&segment_path(&e.dir(), &seg2)).expect("segment 2 opens");
    let in_seg: HashSet<MessageId> = seg.entries().iter().map(|en| en.id).collect();
    assert_eq!(
        in_seg,
        ids(&new),
        "the new segment holds exactly the 100 new messages"
    );
    assert!(seg.tombstones().is_empty());
    assert_eq!(
        std::fs::read(segment_path(&e.dir(), &seg1)).expect("segment 1 still there"),
        seg1_bytes,
        "earlier segments are unchanged"
    );
    let m = Manifest::load(&e.dir()).expect("manifest");
    assert_eq!(m.segments.len(), 2);
    assert_eq!(m.generation, r1.generation + 1);
    let mut all = ids(&first);
    all.extend(new);
    assert_eq!(e.live(), all);

    // Nothing new: nothing written, the manifest (and its ETag) unchanged.
    let r3 = e.sync();
    assert_eq!(r3.outcome, "unchanged");
    assert_eq!(
        Manifest::load(&e.dir()).expect("manifest").generation,
        m.generation
    );
}

/// The newest-first prefix that fits under `cap` raw bytes.
fn expected_under_cap(msgs: &[(MessageId, usize)], cap: usize) -> HashSet<MessageId> {
    let mut total = 0;
    msgs.iter()
        .rev()
        .take_while(|(_, n)| {
            total += n;
            total <= cap
        })
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn the_size_cap_keeps_the_newest_and_is_never_exceeded() {
    let e = env();
    // 60 messages, oldest first (day 60 .. day 1), sizes varying.
    let raws: Vec<Vec<u8>> = (0..60)
        .map(|i| message(&format!("c{i}"), 60 - i, 300 + (i as usize * 37) % 900))
        .collect();
    let sizes: Vec<usize> = raws.iter().map(Vec::len).collect();
    let got = e.import(raws);
    let msgs: Vec<(MessageId, usize)> = got.into_iter().zip(sizes).collect();
    let cap = 20_000usize;
    let st = e.enable(None, Some(Limit::Value(cap as u64)));
    assert_eq!(st.max_bytes.value, Some(cap as u64));
    assert_eq!(st.max_bytes.source, "mailbox");
    e.sync();
    let live = e.live();
    assert_eq!(live, expected_under_cap(&msgs, cap));
    let raw_total: usize = msgs
        .iter()
        .filter(|(id, _)| live.contains(id))
        .map(|m| m.1)
        .sum();
    assert!(raw_total <= cap);
    assert!(Manifest::load(&e.dir()).expect("m").totals.bytes <= cap as u64);

    // Newer mail pushes the oldest out, incrementally, with tombstones.
    let more: Vec<Vec<u8>> = (0..10).map(|i| message(&format!("d{i}"), 0, 700)).collect();
    let sizes: Vec<usize> = more.iter().map(Vec::len).collect();
    let got = e.import(more);
    let mut msgs = msgs;
    msgs.extend(got.into_iter().zip(sizes));
    let r = e.sync();
    assert!(!r.full);
    assert!(r.removed > 0, "older messages were evicted");
    assert_eq!(e.live(), expected_under_cap(&msgs, cap));
    let st = e
        .service
        .offline_status(&e.admin, Some(MB))
        .expect("status");
    assert!(st.mailboxes[0].message_bytes <= cap as u64);
    assert!(st.mailboxes[0].bytes <= cap as u64);

    // A lower cap re-selects fully and still keeps the newest.
    e.enable(None, Some(Limit::Value(5_000)));
    let r = e.sync();
    assert!(r.full, "changed settings re-select");
    assert_eq!(e.live(), expected_under_cap(&msgs, 5_000));
}

#[test]
fn the_since_window_keeps_recent_mail_and_ages_out_old_mail() {
    let e = env();
    let recent = e.import(vec![message("r1", 1, 100), message("r2", 5, 100)]);
    let old = e.import(vec![message("o1", 40, 100), message("o2", 400, 100)]);
    e.enable(Some(Limit::Value(30)), None);
    e.sync();
    assert_eq!(e.live(), ids(&recent));
    // Widening the window brings back the 40-day-old message.
    e.enable(Some(Limit::Value(60)), None);
    e.sync();
    let mut want = ids(&recent);
    want.insert(old[0]);
    assert_eq!(e.live(), want);
    // Back to "default" (no limit): everything.
    e.enable(Some(Limit::Default), None);
    e.sync();
    assert_eq!(e.live().len(), 4);
}

#[test]
fn a_disabled_mailbox_is_left_alone_then_catches_up() {
    let e = env();
    e.import((0..20).map(|i| message(&format!("a{i}"), 3, 200)).collect());
    e.enable(None, None);
    e.sync();
    let before = Manifest::load(&e.dir()).expect("manifest");
    e.service.offline_disable(&e.admin, MB).expect("disable");
    let new = e.import((0..7).map(|i| message(&format!("b{i}"), 1, 200)).collect());
    let all = e.service.offline_sync(&e.admin, None).expect("sync all");
    assert!(all.results.is_empty(), "a disabled mailbox is not updated");
    let err = e
        .service
        .offline_sync(&e.admin, Some(MB))
        .expect_err("named sync of a disabled mailbox");
    assert!(err.to_string().contains("disabled"), "{err}");
    assert_eq!(Manifest::load(&e.dir()).expect("manifest"), before);

    e.enable(None, None);
    let r = e.sync();
    assert!(!r.full, "re-enabling catches up incrementally");
    assert_eq!(r.added, 7);
    let seg = Segment::open(&segment_path(&e.dir(), &r.segment.expect("seg"))).expect("open");
    let in_seg: HashSet<MessageId> = seg.entries().iter().map(|en| en.id).collect();
    assert_eq!(in_seg, ids(&new));
}

#[test]
fn flush_changes_the_epoch_and_rebuilds() {
    let e = env();
    e.import((0..30).map(|i| message(&format!("f{i}"), 2, 200)).collect());
    e.enable(None, None);
    let r1 = e.sync();
    let r2 = e.service.offline_flush(&e.admin, MB).expect("flush");
    assert!(r2.flushed);
    assert_ne!(r2.epoch, r1.epoch, "a flush changes the epoch");
    assert!(
        r2.generation > r1.generation,
        "the generation keeps growing"
    );
    assert_eq!(r2.messages, 30, "rebuilt from the archive");
    let m = Manifest::load(&e.dir()).expect("manifest");
    assert_eq!(m.epoch, r2.epoch);
    assert_eq!(m.segments.len(), 1);
    // The next update is incremental again under the new epoch.
    e.import(vec![message("after-flush", 0, 100)]);
    let r3 = e.sync();
    assert!(!r3.full);
    assert_eq!(r3.added, 1);
}

#[test]
fn small_segments_are_compacted() {
    let e = env();
    e.enable(None, None);
    let mut compacted = false;
    for round in 0..9 {
        e.import(vec![message(&format!("s{round}"), 0, 200)]);
        compacted |= e.sync().compacted;
    }
    assert!(compacted, "8 small segments trigger a compaction");
    let m = Manifest::load(&e.dir()).expect("manifest");
    assert!(m.segments.len() < 8, "{} segments", m.segments.len());
    assert_eq!(e.live().len(), 9);
}

#[test]
fn settings_say_where_they_come_from() {
    let e = env();
    let d = e
        .service
        .set_offline_defaults(
            &e.admin,
            &api::SetOfflineDefaults {
                since_days: Some(Limit::Value(90)),
                max_bytes: None,
                store: None,
                segment_bytes: None,
            },
        )
        .expect("defaults");
    assert_eq!(d.since_days, Some(90));
    assert_eq!(d.max_bytes, None);
    let st = e.enable(None, Some(Limit::Value(1_000_000)));
    assert_eq!(
        st.since_days,
        api::SettingValue {
            value: Some(90),
            source: "default".into()
        }
    );
    assert_eq!(st.max_bytes.source, "mailbox");
    // An explicit "none" overrides a default limit.
    let st = e.enable(Some(Limit::Unlimited), None);
    assert_eq!(st.since_days.value, None);
    assert_eq!(st.since_days.source, "mailbox");
    assert_eq!(st.max_bytes.value, Some(1_000_000), "kept when not given");
    assert!(st.next_run.is_some(), "enabled: scheduled");
    let zero = api::OfflineEnable {
        since_days: None,
        max_bytes: Some(Limit::Value(0)),
    };
    let err = e
        .service
        .offline_enable(&e.admin, MB, &zero)
        .expect_err("0 is refused");
    assert!(err.to_string().contains("none"), "{err}");
}

/// Cold repositories keep their mail out of offline synchronization, by
/// name; S3 is on-line storage and is not refused.
#[test]
fn cold_repositories_are_refused_by_name() {
    let e = env();
    let vault = tempfile::tempdir().expect("tempdir");
    let add = |name: &str, disk: &str, s3: Option<&str>, cold: bool| {
        e.service
            .add_repository(
                &e.admin,
                &api::NewRepository {
                    name: name.into(),
                    disk: disk.into(),
                    s3: s3.map(Into::into),
                    endpoint: None,
                    cold,
                },
            )
            .expect("a repository is recorded")
    };
    assert!(add("vault", &vault.path().display().to_string(), None, true).cold);
    add("cloud", "", Some("s3://bucket/mail"), false);
    let mailbox = |address: &str, repo: &str| {
        e.service
            .add_mailbox(
                &e.admin,
                &api::NewMailbox {
                    address: address.into(),
                    repo: Some(repo.into()),
                    ..Default::default()
                },
            )
            .expect("mailbox")
    };
    mailbox("carol@example.com", "cloud");
    e.service
        .offline_enable(
            &e.admin,
            "carol@example.com",
            &api::OfflineEnable::default(),
        )
        .expect("an S3 mailbox is synchronized offline");
    mailbox("bob@example.com", "vault");
    let err = e
        .service
        .offline_enable(&e.admin, "bob@example.com", &api::OfflineEnable::default())
        .expect_err("refused");
    assert!(
        err.to_string().contains("repository vault is cold storage"),
        "{err}"
    );
    // Cold storage is archived into as ever.
    let items = vec![BatchItem {
        origin: "x".into(),
        folder: String::new(),
        raw: message("cold", 0, 10),
    }];
    e.service
        .import(&e.admin, "bob@example.com", items)
        .expect("archived in cold storage");
    // Moving alice's default to the vault makes her mailbox ineligible too.
    e.service
        .set_repository(&e.admin, MB, "vault")
        .expect("set-repo");
    let err = e
        .service
        .offline_enable(&e.admin, MB, &api::OfflineEnable::default())
        .expect_err("refused");
    assert!(err.to_string().contains("vault"), "{err}");
}

/// Removals reach the offline repository through the archive's membership
/// log (no trigger into an offline queue): the next update is incremental and
/// tombstones exactly the message that left; one that left and came back is
/// live again.
#[test]
fn a_message_that_leaves_the_mailbox_leaves_the_offline_repository() {
    let e = env();
    let raws: Vec<Vec<u8>> = (0..5).map(|i| message(&format!("r{i}"), 3, 300)).collect();
    let ids = e.import(raws.clone());
    e.enable(None, None);
    assert_eq!(e.sync().added, 5);
    let removed = |id: &MessageId| {
        let mut cat = e.service.archive().catalog().expect("catalog");
        assert!(cat.remove_membership(MB, id).expect("remove"), "was there");
    };
    removed(&ids[0]);
    removed(&ids[1]);
    let r = e.sync();
    assert!(!r.full, "incremental: {r:?}");
    assert_eq!((r.added, r.removed, r.messages), (0, 2, 3), "{r:?}");
    assert_eq!(e.live(), ids[2..].iter().cloned().collect::<HashSet<_>>());

    // Back again: a later log entry, so a new addition. The same bytes:
    // `message` dates a message now, so made again a second later it would
    // be another message.
    e.import(vec![raws[1].clone()]);
    let r = e.sync();
    assert_eq!((r.added, r.removed, r.messages), (1, 0, 4), "{r:?}");
    assert!(e.live().contains(&ids[1]));
    assert_eq!(e.sync().outcome, "unchanged");
}
