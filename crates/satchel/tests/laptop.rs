//! The laptop client end to end (issue 5): the real `satchel` binary against
//! a real `satchel serve` over loopback. "Offline" means the service process
//! is killed; byte counts come from a TCP proxy between laptop and service.

mod common;
use common::proxy::Proxy;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MB: &str = "carol@example.com";

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\nSubject: {subject}\r\nDate: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

/// `satchel laptop ...` in `home`.
fn laptop(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

fn setup_home(server_url: &str, user: &str, password: &str, home: &Path) {
    run_with_stdin(
        laptop(home).args([
            "setup",
            "--server",
            server_url,
            "--user",
            user,
            "--password-stdin",
        ]),
        password,
    );
}

fn sync(home: &Path) -> serde_json::Value {
    json(&ok(laptop(home).args(["sync", "--json"])))
}

fn mailbox<'a>(report: &'a serde_json::Value, mb: &str) -> &'a serde_json::Value {
    synced_mailbox(report, mb)
}

fn local_manifest(home: &Path, mb: &str) -> satchel_offline::Manifest {
    satchel_offline::Manifest::load(&home.join("replicas").join(mb)).expect("local manifest")
}

fn write_eml(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write eml");
    p
}

/// A service with mailbox MB (granted to carol, enabled for offline) holding
/// `n` corpus messages, synchronized once.
fn service_with_corpus(n: usize) -> Server {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(&server, MB, &corpus_files(0, n));
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    server
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// A service with mailbox `mb` holding `messages`, granted to carol and
/// synchronized for offline; carol's home set up and synced once.
fn carol_synced(mb: &str, messages: &[String]) -> (Server, tempfile::TempDir, PathBuf) {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", mb]);
    let tmp = tempfile::tempdir().expect("tempdir");
    for (i, m) in messages.iter().enumerate() {
        let eml = write_eml(tmp.path(), &format!("{i}.eml"), m);
        server.admin_ok(&["import", mb, eml.to_str().expect("utf8")]);
    }
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", mb, "carol"]);
    server.admin_ok(&["offline", "enable", mb]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("carol");
    setup_home(&server.url, "carol", "carol-password", &home);
    sync(&home);
    (server, tmp, home)
}

/// Every file under `dir` is 0600 and every folder 0700 (docs/laptop.md).
#[cfg(unix)]
fn assert_private_tree(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_private_tree(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[cfg(unix)]
#[test]
fn every_file_in_the_laptop_home_is_private() {
    let messages: Vec<String> = (0..3)
        .map(|i| message(&format!("private{i}"), "body"))
        .collect();
    let (_server, _tmp, home) = carol_synced(MB, &messages);
    assert!(
        home.join("replicas")
            .join(MB)
            .join("manifest.json")
            .exists()
    );
    assert!(home.join("index").exists());
    assert_private_tree(&home);
}

#[test]
fn setup_then_sync_copies_all_then_only_what_changed() {
    let server = service_with_corpus(300);
    let proxy = Proxy::start(server.port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    setup_home(&proxy.url, "carol", "carol-password", &home);

    // Private home; the token is stored, the password is not.
    #[cfg(unix)]
    {
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&home.join("config.json")), 0o600);
    }
    let config = std::fs::read_to_string(home.join("config.json")).expect("config");
    assert!(!config.contains("carol-password"), "{config}");
    let config = json(&config);
    assert!(config["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(config["user"], "carol");

    // First sync: everything.
    let first = sync(&home);
    let m = mailbox(&first, MB);
    assert_eq!(m["change"], "created");
    assert_eq!(m["messages"], 300);
    assert_eq!(m["segment_bytes"], m["bytes"]);
    #[cfg(unix)]
    {
        assert_eq!(mode(&home.join("replicas")), 0o700);
        assert_eq!(mode(&home.join("replicas").join(MB)), 0o700);
    }
    // The copy is byte-identical: every message of the local copy opens offline later.

    // No change: one conditional manifest request (plus the listing), 0 segment bytes.
    proxy.stats.reset();
    let second = sync(&home);
    let m = mailbox(&second, MB);
    assert_eq!(m["change"], "unchanged");
    assert_eq!(m["bytes_downloaded"], 0);
    let lines = proxy.stats.request_lines();
    let manifests = lines.iter().filter(|l| l.contains("/manifest")).count();
    let segments = lines.iter().filter(|l| l.contains("/segments/")).count();
    assert_eq!((manifests, segments), (1, 0), "{lines:?}");
    let no_change_bytes = proxy.stats.total();
    eprintln!("no-change sync: {no_change_bytes} bytes on the wire ({lines:?})");
    assert!(no_change_bytes < 2048, "{no_change_bytes}");

    // 100 new messages on the service: only the new segment comes down.
    import_files(&server, MB, &corpus_files(300, 100));
    server.admin_ok(&["offline", "sync-now"]);
    proxy.stats.reset();
    let third = sync(&home);
    let m = mailbox(&third, MB);
    assert_eq!(m["change"], "updated");
    assert_eq!(m["messages"], 400);
    assert_eq!(m["segments_downloaded"], 1);
    let local = local_manifest(&home, MB);
    let newest = local.segments.last().expect("a segment");
    assert_eq!(m["segment_bytes"], newest.size);
    let lines = proxy.stats.request_lines();
    assert_eq!(
        lines.iter().filter(|l| l.contains("/segments/")).count(),
        1,
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains(&newest.name)));
    assert_eq!(local.generation, m["generation"].as_u64().expect("gen"));

    // Flush: the laptop drops its copy and rebuilds it.
    let old_epoch = local.epoch.clone();
    server.admin_ok(&["offline", "flush", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let fourth = sync(&home);
    let m = mailbox(&fourth, MB);
    assert_eq!(m["change"], "rebuilt");
    assert_eq!(m["messages"], 400);
    let local = local_manifest(&home, MB);
    assert_ne!(local.epoch, old_epoch);
    let names: Vec<String> = std::fs::read_dir(home.join("replicas").join(MB).join("segments"))
        .expect("segments")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    let wanted: Vec<String> = local.segments.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), wanted.len(), "old segments are gone");
    assert!(ok(laptop(&home).args(["verify"])).contains("ok"));

    // Status shows the copy.
    let status = json(&ok(laptop(&home).args(["status", "--json"])));
    assert_eq!(status["online"], true);
    assert_eq!(status["mailboxes"][0]["mailbox"], MB);
    assert_eq!(status["mailboxes"][0]["generation"], local.generation);
}

#[test]
fn two_users_two_homes_and_offline_open_and_search() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", "dave@example.com"]);
    let carol_msg = write_eml(
        tmp.path(),
        "quokka.eml",
        &message("quokka-report", "the quokka numbers are up"),
    );
    let dave_msg = write_eml(
        tmp.path(),
        "wombat.eml",
        &message("wombat-report", "the wombat numbers"),
    );
    let later = write_eml(
        tmp.path(),
        "later.eml",
        &message("later-report", "arrived after the last sync"),
    );
    server.admin_ok(&["import", MB, carol_msg.to_str().expect("utf8")]);
    server.admin_ok(&[
        "import",
        "dave@example.com",
        dave_msg.to_str().expect("utf8"),
    ]);
    import_files(&server, MB, &corpus_files(0, 50));
    server.add_user("carol", "carol-password");
    server.add_user("dave", "dave-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["mailbox", "grant", "dave@example.com", "dave"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "enable", "dave@example.com"]);
    server.admin_ok(&["offline", "sync-now"]);

    let carol = tmp.path().join("home-carol");
    let dave = tmp.path().join("home-dave");
    setup_home(&server.url, "carol", "carol-password", &carol);
    setup_home(&server.url, "dave", "dave-password", &dave);
    // One home per user: Dave cannot take over Carol's home by accident.
    let mut takeover = laptop(&carol);
    takeover.args([
        "setup",
        "--server",
        &server.url,
        "--user",
        "dave",
        "--password-stdin",
    ]);
    let child = takeover
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut child = child;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"dave-password\n")
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already set up for user carol"));
    }
    let c = sync(&carol);
    let d = sync(&dave);
    assert_eq!(c["mailboxes"].as_array().map(Vec::len), Some(1), "{c}");
    assert_eq!(d["mailboxes"].as_array().map(Vec::len), Some(1), "{d}");
    assert_eq!(c["mailboxes"][0]["mailbox"], MB);
    assert_eq!(d["mailboxes"][0]["mailbox"], "dave@example.com");
    assert!(!carol.join("replicas/dave@example.com").exists());
    assert!(!dave.join("replicas").join(MB).exists());

    let quokka = sha256_hex(&std::fs::read(&carol_msg).expect("read"));
    let wombat = sha256_hex(&std::fs::read(&dave_msg).expect("read"));
    let corpus_one = sha256_hex(&std::fs::read(&corpus_files(7, 1)[0]).expect("read"));
    // A message imported after the last sync: not in the local copy.
    server.admin_ok(&["import", MB, later.to_str().expect("utf8")]);
    let later_id = sha256_hex(&std::fs::read(&later).expect("read"));

    // Online: from the service, identical to `satchel get`.
    for (id, link) in [
        (&quokka, format!("satchel://{MB}/{quokka}")),
        (
            &corpus_one,
            format!("http://127.0.0.1:8481/m/{MB}/{corpus_one}"),
        ),
        (&later_id, format!("satchel://{MB}/{later_id}")),
    ] {
        let got = run(laptop(&carol).args(["open", &link]));
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        let want = run(server
            .as_user("carol", "carol-password")
            .args(["get", MB, id]));
        assert_eq!(got.stdout, want.stdout);
    }
    // Dave cannot read Carol's mail through his home, online or offline.
    let denied = run(laptop(&dave).args(["open", &format!("satchel://{MB}/{quokka}")]));
    assert!(!denied.status.success());
    let found = json(&ok(laptop(&carol).args(["search", "quokka", "--json"])));
    assert_eq!(found["source"], "service");
    assert_eq!(found["hits"][0]["id"], quokka.as_str());

    let online_bytes =
        run(laptop(&carol).args(["open", &format!("satchel://{MB}/{corpus_one}")])).stdout;

    // Offline: the service process is gone.
    let mut server = server;
    server.kill();
    let started = Instant::now();
    let offline = run(laptop(&carol).args(["open", &format!("satchel://{MB}/{corpus_one}")]));
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(
        offline.stdout, online_bytes,
        "offline open is byte-identical"
    );
    assert_eq!(sha256_hex(&offline.stdout), corpus_one);
    assert!(started.elapsed() < Duration::from_secs(5));
    let q = run(laptop(&carol).args(["open", &format!("http://127.0.0.1:8481/m/{MB}/{quokka}")]));
    assert!(q.status.success());
    assert_eq!(q.stdout, std::fs::read(&carol_msg).expect("read"));

    // Offline and not in the local copy: a clear error.
    let missing = run(laptop(&carol).args(["open", &format!("satchel://{MB}/{later_id}")]));
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("offline") && err.contains("not in the local copy"),
        "{err}"
    );
    // Dave's home has no copy of Carol's mailbox.
    let other = run(laptop(&dave).args(["open", &format!("satchel://{MB}/{quokka}")]));
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("not in the local copy"));

    // Offline search: the local index.
    let found = json(&ok(laptop(&carol).args(["search", "quokka", "--json"])));
    assert_eq!(found["source"], "local");
    assert_eq!(found["hits"][0]["id"], quokka.as_str());
    let none = json(&ok(laptop(&carol).args(["search", "wombat", "--json"])));
    assert_eq!(none["hits"].as_array().map(Vec::len), Some(0));
    let found = json(&ok(laptop(&dave).args(["search", "wombat", "--json"])));
    assert_eq!(found["hits"][0]["id"], wombat.as_str());

    // Sync while offline: a clear error, the copy stays.
    let failed = run(laptop(&carol).args(["sync"]));
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("unreachable"));
    let status = json(&ok(laptop(&carol).args(["status", "--json"])));
    assert_eq!(status["online"], false);
    assert_eq!(status["mailboxes"][0]["messages"], 51);
}

#[test]
fn interrupted_download_resumes_with_range() {
    let server = service_with_corpus(100);
    let proxy = Proxy::start(server.port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    setup_home(&proxy.url, "carol", "carol-password", &home);
    sync(&home);
    let before = local_manifest(&home, MB);

    // A big update: about 1,500 messages in one new segment.
    import_files(&server, MB, &corpus_files(100, 1500));
    server.admin_ok(&["offline", "sync-now"]);

    // The connection is cut 400 KB into the segment download.
    proxy.stats.reset();
    *proxy.stats.cut_after.lock().expect("lock") = Some(400_000);
    let cut = run(laptop(&home).args(["sync", "--json"]));
    assert!(!cut.status.success(), "the cut sync reports failure");
    assert_eq!(proxy.stats.cuts.load(Ordering::SeqCst), 1);
    // The previous complete copy is untouched and usable.
    assert_eq!(local_manifest(&home, MB), before);
    assert!(ok(laptop(&home).args(["verify"])).contains("ok"));
    let first_part = proxy.stats.segment_down.load(Ordering::SeqCst);

    // The next sync resumes where the cut left off.
    let report = sync(&home);
    let m = mailbox(&report, MB);
    assert_eq!(m["segments_resumed"], 1, "{report}");
    assert_eq!(m["messages"], 1600);
    let heads = proxy.stats.requests.lock().expect("lock").join("\n---\n");
    assert!(
        heads.to_ascii_lowercase().contains("range: bytes="),
        "{heads}"
    );
    let after = local_manifest(&home, MB);
    let segment = after.segments.last().expect("segment").size;
    let total = proxy.stats.segment_down.load(Ordering::SeqCst);
    eprintln!(
        "segment {segment} bytes; on the wire {first_part} + {} = {total}",
        total - first_part
    );
    assert!(total < 2 * segment, "{total} >= 2 x {segment}");
    assert!(
        total < segment + 64 * 1024,
        "resumed, not restarted: {total} vs {segment}"
    );
    assert!(ok(laptop(&home).args(["verify"])).contains("ok"));
}

#[test]
fn damaged_copy_is_detected_refetched_and_never_served() {
    let mut server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    // Four segments of 40 messages.
    for i in 0..4 {
        import_files(&server, MB, &corpus_files(i * 40, 40));
        server.admin_ok(&["offline", "sync-now"]);
    }
    let proxy = Proxy::start(server.port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    setup_home(&proxy.url, "carol", "carol-password", &home);
    sync(&home);
    let local = local_manifest(&home, MB);
    assert!(local.segments.len() >= 4, "{local:?}");
    let segs = home.join("replicas").join(MB).join("segments");
    let s = &local.segments;
    // A message in segment 0's first block, to try to open while damaged.
    let victim = satchel_offline::Segment::open(&segs.join(&s[0].name))
        .expect("open")
        .entries()[0]
        .id
        .to_hex();

    // Flip a byte in segment 0, truncate segment 1, delete segment 2.
    let p0 = segs.join(&s[0].name);
    let mut bytes = std::fs::read(&p0).expect("read");
    bytes[40] ^= 0x55;
    std::fs::write(&p0, bytes).expect("write");
    let p1 = segs.join(&s[1].name);
    let bytes = std::fs::read(&p1).expect("read");
    std::fs::write(&p1, &bytes[..bytes.len() - 100]).expect("write");
    std::fs::remove_file(segs.join(&s[2].name)).expect("rm");

    let v = run(laptop(&home).args(["verify", "--json"]));
    assert!(!v.status.success(), "verify fails on a damaged copy");
    let v = json(&String::from_utf8_lossy(&v.stdout));
    assert_eq!(
        v["mailboxes"][0]["damaged"],
        serde_json::json!([s[0].name, s[1].name])
    );
    assert_eq!(v["mailboxes"][0]["missing"], serde_json::json!([s[2].name]));

    // Offline, the damaged copy is never served.
    let port = server.port;
    server.kill();
    let out = run(laptop(&home).args(["open", &format!("satchel://{MB}/{victim}")]));
    assert!(!out.status.success(), "a damaged message is never served");
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged"));

    // Back online: sync re-fetches exactly the three bad segments.
    let _again = Server::start_in_at(&server.data, port);
    proxy.stats.reset();
    let report = sync(&home);
    let m = mailbox(&report, MB);
    assert_eq!(m["change"], "unchanged");
    assert_eq!(m["segments_repaired"], 3);
    assert_eq!(m["segment_bytes"], s[0].size + s[1].size + s[2].size);
    let fetched: Vec<String> = proxy
        .stats
        .request_lines()
        .into_iter()
        .filter(|l| l.contains("/segments/"))
        .collect();
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert!(ok(laptop(&home).args(["verify"])).contains("ok"));
    let out = run(laptop(&home).args(["open", &format!("satchel://{MB}/{victim}")]));
    assert!(out.status.success());
    assert_eq!(sha256_hex(&out.stdout), victim);
}

fn get(url: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[test]
fn agent_serves_links_online_and_offline() {
    let mut server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    let html = write_eml(
        tmp.path(),
        "html.eml",
        "From: Mallory <m@example.org>\r\nTo: carol@example.com\r\nSubject: a <b>bold</b> offer\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <html@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><p>Hello numbat friends</p><script>alert('x')</script>\
<img src=\"http://tracker.example/pixel.png\" onerror=\"alert(1)\"><a href=\"javascript:alert(2)\">click</a></body></html>\r\n\
--XYZ\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n\
attached numbat notes\r\n--XYZ--\r\n",
    );
    server.admin_ok(&["import", MB, html.to_str().expect("utf8")]);
    import_files(&server, MB, &corpus_files(0, 20));
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("carol");
    setup_home(&server.url, "carol", "carol-password", &home);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _agent = Kill(
        laptop(&home)
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--interval",
                "2",
                "--min-retry",
                "1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );

    // The agent syncs by itself once it sees the service.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{base}/status.json"))
            && let Ok(v) = r.json::<serde_json::Value>()
            && v["mailboxes"][0]["messages"] == 21
        {
            break;
        }
        assert!(Instant::now() < deadline, "the agent did not sync");
        std::thread::sleep(Duration::from_millis(200));
    }

    let id = sha256_hex(&std::fs::read(&html).expect("read"));
    let page_url = format!("{base}/m/{MB}/{id}");
    let check_page = |expected_source: &str| {
        let r = get(&page_url);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-satchel-source"], expected_source);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .to_string();
        assert!(csp.contains("default-src 'none'"));
        let body = r.text().expect("text");
        assert!(body.contains("Hello numbat friends"), "{body}");
        for bad in [
            "<script",
            "alert(",
            "onerror",
            "tracker.example",
            "javascript:",
        ] {
            assert!(!body.contains(bad), "{bad} in {body}");
        }
        assert!(body.contains("a &lt;b&gt;bold&lt;/b&gt; offer"));
        assert!(body.contains(&format!("/m/{MB}/{id}.eml")));
        assert!(body.contains(&format!("/m/{MB}/{id}/attachments/0")));
        let raw = get(&format!("{page_url}.eml"));
        assert_eq!(raw.status(), 200);
        assert_eq!(
            raw.bytes().expect("bytes").as_ref(),
            std::fs::read(&html).expect("read")
        );
        let att = get(&format!("{page_url}/attachments/0"));
        assert_eq!(att.status(), 200);
        assert!(
            att.headers()["content-disposition"]
                .to_str()
                .expect("cd")
                .contains("attachment")
        );
        assert_eq!(att.text().expect("text").trim(), "attached numbat notes");
    };
    check_page("service");
    let status = get(&format!("{base}/")).text().expect("status");
    assert!(status.contains(MB) && status.contains("online"), "{status}");
    // The copy's size as the CLI prints it (indicatif's decimal units).
    let json: serde_json::Value = get(&format!("{base}/status.json")).json().expect("json");
    let size = indicatif::DecimalBytes(json["mailboxes"][0]["bytes"].as_u64().expect("bytes"));
    assert!(
        status.contains(&format!("<td>{size}</td>")),
        "{size}: {status}"
    );

    // The service goes away: links keep working from the local copy.
    server.kill();
    check_page("local-copy");
    let corpus_id = sha256_hex(&std::fs::read(&corpus_files(3, 1)[0]).expect("read"));
    let r = get(&format!("{base}/m/{MB}/{corpus_id}.eml"));
    assert_eq!(r.status(), 200);
    assert_eq!(sha256_hex(&r.bytes().expect("bytes")), corpus_id);
    let status = get(&format!("{base}/")).text().expect("status");
    assert!(status.contains(">offline<"), "{status}");
    assert!(status.contains(MB));
    // Not in the local copy (and not this user's mailbox): 404, clearly.
    let r = get(&format!("{base}/m/dave@example.com/{corpus_id}"));
    assert_eq!(r.status(), 404);
    assert!(r.text().expect("text").contains("not in the local copy"));
}

/// The status code of `GET path` sent to the agent on `port` with this
/// `Host` header (none: an HTTP/1.0 request without one), as a browser
/// tricked by DNS rebinding would send it.
fn status_for_host(port: u16, path: &str, host: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let request = match host {
        Some(h) => format!("GET {path} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n\r\n"),
    };
    s.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"))
}

#[test]
fn agent_answers_only_to_its_own_name() {
    let raw = message("rebinding", "secret wombat");
    let (_server, _tmp, home) = carol_synced(MB, std::slice::from_ref(&raw));
    let port = free_port();
    let _agent = Kill(
        laptop(&home)
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("http://127.0.0.1:{port}/status.json")).is_err() {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = sha256_hex(raw.as_bytes());
    let message = format!("/m/{MB}/{id}.eml");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(status_for_host(port, &message, Some(&host)), 200, "{host}");
    }
    for host in [
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "localhost".to_string(),
        format!("localhost:{}", port + 1),
    ] {
        for path in ["/", "/status.json", message.as_str()] {
            assert_eq!(
                status_for_host(port, path, Some(&host)),
                421,
                "{host} {path}"
            );
        }
    }
    assert_eq!(status_for_host(port, &message, None), 421, "no Host");
}

#[test]
fn copies_are_named_as_on_the_service_and_old_names_are_moved() {
    let mb = "Carol+list@example.com";
    let raw = message("legacy", "kept numbat");
    let (mut server, _tmp, home) = carol_synced(mb, std::slice::from_ref(&raw));
    let replicas = home.join("replicas");
    let named = replicas.join("%43arol%2Blist@example.com");
    assert!(named.join("manifest.json").exists(), "{}", named.display());
    assert!(
        server
            .data
            .join("offline")
            .join("%43arol%2Blist@example.com")
            .exists()
    );

    // The copy as an earlier version named it (capital and + kept): offline,
    // the link still opens, and the folder gets its new name.
    let legacy = replicas.join(mb);
    std::fs::rename(&named, &legacy).expect("rename");
    server.kill();
    let id = sha256_hex(raw.as_bytes());
    let out = run(laptop(&home).args(["open", &format!("satchel://{mb}/{id}")]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, raw.as_bytes());
    assert!(named.exists() && !legacy.exists());
}

/// Kills the child process when dropped (the agent runs until stopped).
#[test]
fn install_handler_registers_the_satchel_scheme() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(satchel()
        .env("HOME", tmp.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .args(["laptop", "install-handler"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = std::fs::read_to_string(
        tmp.path()
            .join(".local/share/applications/satchel-link.desktop"),
    )
    .expect("desktop entry written");
    assert!(entry.contains("MimeType=x-scheme-handler/satchel;"));
    assert!(entry.contains(" laptop open %u"));
    if Command::new("xdg-mime").arg("--version").output().is_ok() {
        let q = Command::new("xdg-mime")
            .env("HOME", tmp.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .args(["query", "default", "x-scheme-handler/satchel"])
            .output()
            .expect("xdg-mime");
        assert_eq!(
            String::from_utf8_lossy(&q.stdout).trim(),
            "satchel-link.desktop"
        );
    }
}

#[test]
fn withdrawn_access_removes_the_local_copy() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    let msg = write_eml(
        tmp.path(),
        "numbat.eml",
        &message("numbat-report", "numbat numbers"),
    );
    server.admin_ok(&["import", MB, msg.to_str().expect("utf8")]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("home");
    setup_home(&server.url, "carol", "carol-password", &home);
    sync(&home);
    let replica = home.join("replicas").join(MB);
    assert!(replica.join("manifest.json").exists(), "copied first");

    server.admin_ok(&["mailbox", "revoke", MB, "carol"]);
    let report = sync(&home);
    assert!(
        !replica.exists(),
        "the copy is gone once access is withdrawn: {report}"
    );
    let id = sha256_hex(&std::fs::read(&msg).expect("read"));
    let out = run(laptop(&home).args(["open", &format!("satchel://{MB}/{id}")]));
    assert!(!out.status.success(), "nothing left to open");
}
