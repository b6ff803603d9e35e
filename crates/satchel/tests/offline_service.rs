//! Offline synchronization on the service, end to end: the `satchel offline`
//! commands against a real `satchel serve`, the HTTP contract laptops rely on
//! (ETag/304, 403, 400, Range), the schedule, and SIGKILL during an update of
//! the corpus-sized mailbox (issue 4).

mod common;
use common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header;
use satchel_offline::{Manifest, Segment, segment_path, verify_repository};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MB: &str = "carol@example.com";

fn message(tag: &str, days_ago: i64) -> String {
    let date = chrono::Utc::now() - chrono::Duration::days(days_ago);
    format!(
        "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: {tag}\r\nDate: {}\r\nMessage-ID: <{tag}@example.org>\r\n\r\nbody of {tag} {}\r\n",
        date.to_rfc2822(),
        "lorem ipsum ".repeat(40)
    )
}

/// Writes `n` messages tagged `prefix{i}` as a Maildir; returns their ids.
fn write_messages(dir: &Path, prefix: &str, n: usize) -> Vec<String> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    (0..n)
        .map(|i| {
            let raw = message(&format!("{prefix}{i}"), 1);
            let file = dir.join("cur").join(format!("{prefix}{i}:2,S"));
            std::fs::write(file, &raw).expect("write");
            sha256_hex(raw.as_bytes())
        })
        .collect()
}

fn offline_dir(server: &Server, address: &str) -> PathBuf {
    server.data.join("offline").join(address)
}

fn stderr_of(cmd: &mut std::process::Command) -> (bool, String) {
    let out = run(cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn settings_defaults_schedule_and_refusals_through_the_cli() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    write_messages(dir.path(), "m", 5);
    server.admin_ok(&["import", MB, dir.path().to_str().expect("utf8")]);

    let d = json(&server.admin_ok(&["offline", "defaults", "--since", "90", "--json"]));
    assert_eq!(d["since_days"], 90);
    assert!(d["max_bytes"].is_null(), "no cap by default");
    let out = server.admin_ok(&["offline", "enable", MB, "--max-bytes", "5000000"]);
    assert!(out.contains("offline      enabled"), "{out}");
    assert!(out.contains("90 days  (global default)"), "{out}");
    assert!(out.contains("5000000 bytes"), "{out}");
    assert!(out.contains("(set for this mailbox)"), "{out}");
    let st = json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    let m = &st["mailboxes"][0];
    assert_eq!(m["since_days"]["source"], "default");
    assert_eq!(m["max_bytes"]["source"], "mailbox");
    assert_eq!(m["max_bytes"]["value"], 5_000_000);

    // sync-now returns the result; the job is logged.
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    assert_eq!(r["results"][0]["outcome"], "updated");
    assert_eq!(r["results"][0]["messages"], 5);
    let jobs = json(&server.admin_ok(&["jobs", "--json"]));
    assert_eq!(jobs[0]["kind"], "offline-update");
    assert_eq!(jobs[0]["outcome"], "ok");
    assert_eq!(jobs[0]["mailbox"], MB);
    let st = json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    let m = &st["mailboxes"][0];
    assert_eq!(m["messages"], 5);
    assert!(
        m["last_update"].is_string() && m["last_duration_ms"].is_u64(),
        "{m}"
    );

    // Schedule: bad syntax refused with the reason; a good one shows as next run.
    let (ok_, err) = stderr_of(server.admin().args(["offline", "schedule", "61 6 * * *"]));
    assert!(
        !ok_ && err.contains("invalid cron expression") && err.contains("400"),
        "{err}"
    );
    let (ok_, err) = stderr_of(server.admin().args(["offline", "schedule", "every", "day"]));
    assert!(!ok_ && err.contains("expected 5"), "{err}");
    let s = json(&server.admin_ok(&["offline", "schedule", "30 5 * * *", "--json"]));
    assert_eq!(s["cron"], "30 5 * * *");
    assert!(
        s["next_run"].as_str().expect("next").contains("T05:30:00"),
        "{s}"
    );
    let st = json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    assert!(
        st["mailboxes"][0]["next_run"]
            .as_str()
            .expect("next run")
            .contains("T05:30:00"),
        "{st}"
    );
    assert_eq!(st["schedule"]["cron"], "30 5 * * *");

    // Disabled: no next run, left alone by sync-now of all.
    let out = server.admin_ok(&["offline", "disable", MB]);
    assert!(out.contains("offline      disabled"), "{out}");
    let all = json(&server.admin_ok(&["offline", "sync-now", "--json"]));
    assert_eq!(all["results"].as_array().map(Vec::len), Some(0));

    // A cold repository keeps its mailboxes out of offline synchronization.
    let out = server.admin_ok(&["repo", "add", "cloud", "--s3", "s3://bucket/mail", "--cold"]);
    assert!(out.contains("s3") && out.contains("cold"), "{out}");
    server.admin_ok(&["mailbox", "add", "dave@example.com", "--repo", "cloud"]);
    let (ok_, err) = stderr_of(
        server
            .admin()
            .args(["offline", "enable", "dave@example.com"]),
    );
    assert!(!ok_, "enabling a mailbox in cold storage must fail");
    assert!(
        err.contains("repository cloud") && err.contains("409"),
        "{err}"
    );
}

struct Http {
    client: Client,
    base: String,
}

impl Http {
    fn get(&self, user: &str, password: &str, path: &str) -> reqwest::blocking::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .basic_auth(user, Some(password))
    }
}

#[test]
fn repositories_are_served_to_readers_only_with_etag_and_range() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", "dave@example.com"]);
    write_messages(dir.path(), "m", 40);
    server.admin_ok(&["import", MB, dir.path().to_str().expect("utf8")]);
    server.add_user("carol", "carol-password");
    server.add_user("eve", "eve-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now", MB]);
    let http = Http {
        client: Client::new(),
        base: server.url.clone(),
    };
    let carol = |p: &str| http.get("carol", "carol-password", p);
    let eve = |p: &str| http.get("eve", "eve-password", p);

    // Listing: carol sees her mailbox, eve nothing.
    let list: serde_json::Value = carol("/api/v1/offline/repositories")
        .send()
        .expect("list")
        .json()
        .expect("json");
    let repos = list["repositories"].as_array().expect("array");
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0]["mailbox"], MB);
    let manifest_url = repos[0]["manifest_url"].as_str().expect("url").to_string();
    assert_eq!(
        manifest_url,
        format!("/api/v1/offline/repositories/{MB}/manifest")
    );
    let list: serde_json::Value = eve("/api/v1/offline/repositories")
        .send()
        .expect("list")
        .json()
        .expect("json");
    assert_eq!(list["repositories"].as_array().map(Vec::len), Some(0));

    // Manifest: ETag, no-cache, 304 on a match with an empty body.
    let resp = carol(&manifest_url).send().expect("manifest");
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()[header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
    let manifest: Manifest = serde_json::from_slice(&resp.bytes().expect("body")).expect("parses");
    assert_eq!(etag, manifest.etag());
    let resp = carol(&manifest_url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .expect("conditional");
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.bytes().expect("body").is_empty());
    let resp = carol(&manifest_url)
        .header(header::IF_NONE_MATCH, "\"other-1\"")
        .send()
        .expect("conditional");
    assert_eq!(resp.status(), StatusCode::OK);

    // Segments: whole, ranges, caching headers.
    let seg = &manifest.segments[0];
    let seg_url = format!("/api/v1/offline/repositories/{MB}/segments/{}", seg.name);
    let resp = carol(&seg_url).send().expect("segment");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CACHE_CONTROL],
        "private, max-age=31536000, immutable"
    );
    assert_eq!(resp.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    let whole = resp.bytes().expect("bytes").to_vec();
    assert_eq!(whole.len() as u64, seg.size);
    assert_eq!(sha256_hex(&whole), seg.name, "the name is the hash");
    for (range, from, to) in [
        ("bytes=100-", 100, whole.len() - 1),
        ("bytes=10-19", 10, 19),
    ] {
        let resp = carol(&seg_url)
            .header(header::RANGE, range)
            .send()
            .expect("range");
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            resp.headers()[header::CONTENT_RANGE].to_str().expect("cr"),
            format!("bytes {from}-{to}/{}", whole.len())
        );
        assert_eq!(resp.bytes().expect("bytes").as_ref(), &whole[from..=to]);
    }
    let resp = carol(&seg_url)
        .header(header::RANGE, format!("bytes={}-", whole.len()))
        .send()
        .expect("range");
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        resp.headers()[header::CONTENT_RANGE].to_str().expect("cr"),
        format!("bytes */{}", whole.len())
    );

    // Another user's mailbox: 403 on manifest and segment.
    assert_eq!(
        eve(&manifest_url).send().expect("m").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        eve(&seg_url).send().expect("s").status(),
        StatusCode::FORBIDDEN
    );
    // Not a segment name: 400, never a path. Unknown segment: 404.
    for bad in ["..%2F..%2Fcatalog.sqlite", "abc", &seg.name.to_uppercase()] {
        let url = format!("/api/v1/offline/repositories/{MB}/segments/{bad}");
        let resp = carol(&url).send().expect("bad name");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let zeros = "0".repeat(64);
    let url = format!("/api/v1/offline/repositories/{MB}/segments/{zeros}");
    assert_eq!(
        carol(&url).send().expect("404").status(),
        StatusCode::NOT_FOUND
    );
    // A mailbox without an offline repository: 404 for someone allowed.
    let url = "/api/v1/offline/repositories/dave@example.com/manifest";
    assert_eq!(
        http.get("admin", ADMIN_PASSWORD, url)
            .send()
            .expect("404")
            .status(),
        StatusCode::NOT_FOUND
    );
    // No credentials: 401.
    let resp = http
        .client
        .get(format!("{}{manifest_url}", server.url))
        .send()
        .expect("anon");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // After an update the old ETag no longer matches; a flush changes the epoch.
    let more = tempfile::tempdir().expect("tempdir");
    write_messages(more.path(), "n", 3);
    server.admin_ok(&["import", MB, more.path().to_str().expect("utf8")]);
    server.admin_ok(&["offline", "sync-now", MB]);
    let resp = carol(&manifest_url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .expect("conditional");
    assert_eq!(resp.status(), StatusCode::OK);
    let flushed = json(&server.admin_ok(&["offline", "flush", MB, "--json"]));
    assert_ne!(flushed["epoch"], manifest.epoch.as_str());
    assert!(flushed["generation"].as_u64().expect("gen") > manifest.generation);
    assert_eq!(flushed["messages"], 43);
}

fn import_corpus(server: &Server) {
    let maildir = corpus().join("maildir");
    server.admin_ok(&["import", MB, maildir.to_str().expect("utf8")]);
}

fn live_ids(dir: &Path) -> HashSet<String> {
    satchel_offline::ReplicaIndex::open(dir)
        .expect("repository opens")
        .ids()
        .map(|id| id.to_hex())
        .collect()
}

#[test]
fn corpus_updates_are_incremental_and_survive_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data);
    server.admin_ok(&["mailbox", "add", MB]);
    import_corpus(&server);
    let total = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]))["messages"]
        .as_u64()
        .expect("count");
    assert!(total > 6000, "{total}");
    server.admin_ok(&["offline", "enable", MB]);
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    assert_eq!(r["results"][0]["messages"].as_u64(), Some(total));
    let dir = offline_dir(&server, MB);
    let first = Manifest::load(&dir).expect("manifest");
    let first_seg = std::fs::read(segment_path(&dir, &first.segments[0].name)).expect("seg");

    // 100 new messages: the update writes exactly those.
    let new_dir = tmp.path().join("new");
    let new_ids: HashSet<String> = write_messages(&new_dir, "new", 100).into_iter().collect();
    server.admin_ok(&["import", MB, new_dir.to_str().expect("utf8")]);
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    let r = &r["results"][0];
    assert_eq!(r["full"], false);
    assert_eq!(r["added"], 100);
    let name = r["segment"].as_str().expect("new segment");
    let seg = Segment::open(&segment_path(&dir, name)).expect("opens");
    let in_seg: HashSet<String> = seg.entries().iter().map(|e| e.id.to_hex()).collect();
    assert_eq!(in_seg, new_ids, "exactly the 100 new messages");
    assert!(seg.tombstones().is_empty());
    assert_eq!(
        std::fs::read(segment_path(&dir, &first.segments[0].name)).expect("seg"),
        first_seg,
        "the earlier segment is untouched"
    );
    let total = total + 100;

    // SIGKILL at several points of a full rebuild (flush) of the mailbox.
    let mut seen = Vec::new();
    for delay_ms in [100u64, 300, 700, 1200] {
        let mut flush = server
            .admin()
            .args(["offline", "flush", MB])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("flush");
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill();
        let _ = flush.wait();
        let m = Manifest::load(&dir).expect("the manifest loads after SIGKILL");
        let report = verify_repository(&dir).expect("verifies");
        assert!(
            report.ok,
            "after SIGKILL at {delay_ms} ms: damaged {:?} missing {:?}",
            report.damaged, report.missing
        );
        let n = live_ids(&dir).len() as u64;
        assert!(n == 0 || n == total, "a complete state, not a mix: {n}");
        seen.push((delay_ms, m.generation, n));
        assert_eq!(m.mailbox, MB);
        server = Server::start_in(&data);
    }
    eprintln!("after SIGKILL (delay ms, generation, live messages): {seen:?}");
    let started = Instant::now();
    let r = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    assert_ne!(r["results"][0]["outcome"], "failed", "{r}");
    assert_eq!(r["results"][0]["messages"].as_u64(), Some(total), "{r}");
    assert!(started.elapsed() < Duration::from_secs(300));
    assert!(verify_repository(&dir).expect("verify").ok);
    assert_eq!(live_ids(&dir).len() as u64, total);
    let jobs = json(&server.admin_ok(&["jobs", "--json", "--limit", "100"]));
    let outcomes: Vec<&str> = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"interrupted"),
        "killed jobs are recorded as interrupted: {outcomes:?}"
    );
}

#[test]
fn mailbox_addresses_are_names_and_their_folders_stay_in_offline() {
    let server = Server::start();
    for bad in [
        "..@example.com",
        ".alice@example.com",
        "alice@..",
        "alice@example..com",
        "a\\b@example.com",
        "a/b@example.com",
        "a@b@example.com",
        "..",
    ] {
        let (ok, err) = stderr_of(server.admin().args(["mailbox", "add", bad]));
        assert!(!ok, "{bad} was accepted");
        assert!(err.contains("not a mailbox address"), "{bad}: {err}");
    }
    let list = json(&server.admin_ok(&["mailbox", "list", "--json"]));
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");

    // A capital and a +: percent-encoded, inside offline/.
    let mb = "Zed+list@example.com";
    server.admin_ok(&["mailbox", "add", mb]);
    let dir = tempfile::tempdir().expect("tempdir");
    write_messages(dir.path(), "zed", 3);
    server.admin_ok(&["import", mb, dir.path().to_str().expect("utf8")]);
    server.admin_ok(&["offline", "enable", mb]);
    server.admin_ok(&["offline", "sync-now", mb]);
    let repo = server.data.join("offline").join("%5Aed%2Blist@example.com");
    assert!(repo.join("manifest.json").exists(), "{}", repo.display());
}
