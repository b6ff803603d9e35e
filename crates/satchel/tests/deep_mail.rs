//! Deeply nested mail never takes the service down (issue 9, point 1).
//!
//! Messages nested 100,000+ levels deep (`message/rfc822`, `multipart/mixed`, and
//! the two alternating) go through import, search, the console's message view,
//! an offline update, `laptop sync`, the laptop's search and its agent's view,
//! and an IMAP archive run with stubs. Before the message budget, opening one
//! in the console overflowed the service's stack (25,000 levels) and importing
//! one aborted it (40,000 levels). Throughout, the service keeps answering.

mod common;
mod imap_support;

use common::dovecot::Dovecot;
use common::*;
use imap_support::{IMAP_PW, add_imap_mailbox, archive_ok, get_archived, split_stubs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MB: &str = "deep@example.com";
const LEVELS: usize = 100_000;
const KINDS: [&str; 3] = ["rfc822", "multipart", "alternating"];

/// A message nested `levels` deep, found by the word `marker` in its subject.
fn nested(levels: usize, kind: &str, marker: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Nester <nester@example.org>\r\nTo: {MB}\r\nSubject: {marker} nested {kind}\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\nMIME-Version: 1.0\r\n"
    )
    .into_bytes();
    for i in 0..levels {
        let multipart = kind == "multipart" || (kind == "alternating" && i % 2 == 1);
        if multipart {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        } else {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
    }
    m.extend_from_slice(b"Subject: the bottom\r\n\r\nthe innermost words\r\n");
    m
}

fn ordinary(marker: &str) -> Vec<u8> {
    format!(
        "From: Plain <plain@example.org>\r\nTo: {MB}\r\nSubject: {marker} ordinary\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\n\r\nan ordinary message\r\n"
    )
    .into_bytes()
}

/// The service answers an authenticated request.
fn answers(server: &Server) {
    ok(server.admin().args(["mailbox", "list"]));
}

/// A console session for `user`: the cookie the sign-in form sets.
fn console_cookie(server: &Server, user: &str, password: &str) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client
        .post(format!("{}/console/login", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password={password}"))
        .send()
        .expect("sign in");
    assert_eq!(r.status(), 303, "sign-in");
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie");
    cookie.split(';').next().expect("name=value").to_string()
}

fn get_page(url: &str, cookie: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let mut req = client.get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let r = req.send().expect("GET");
    (r.status().as_u16(), r.text().expect("text"))
}

fn laptop(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

#[test]
fn deep_mail_through_import_console_laptop_and_agent() {
    let mut server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);

    let mut deep = Vec::new();
    for kind in KINDS {
        let marker = format!("zeppelin{kind}");
        let raw = nested(LEVELS, kind, &marker);
        let file = tmp.path().join(format!("{kind}.eml"));
        std::fs::write(&file, &raw).expect("write");
        server.admin_ok(&["import", MB, file.to_str().expect("utf8")]);
        answers(&server);
        deep.push((kind, marker, sha256_hex(&raw), raw));
    }
    let plain = ordinary("ordinarymarker");
    let plain_file = tmp.path().join("plain.eml");
    std::fs::write(&plain_file, &plain).expect("write");
    server.admin_ok(&["import", MB, plain_file.to_str().expect("utf8")]);

    // Archived byte-for-byte and found by their headers.
    for (kind, marker, id, raw) in &deep {
        let got = run(server.admin().args(["get", MB, id]));
        assert!(got.status.success(), "{kind}: get failed");
        assert_eq!(&got.stdout, raw, "{kind}: byte-identical");
        assert_eq!(
            &server.search_ids(&[marker.as_str()]),
            &vec![id.clone()],
            "{kind}"
        );
        assert!(
            server
                .search_ids(&[&format!("from:nester subject:{marker}")])
                .contains(id)
        );
    }

    // The console shows each as raw text with a note; the service keeps answering.
    let cookie = console_cookie(&server, "admin", ADMIN_PASSWORD);
    for (kind, marker, id, _) in &deep {
        let (status, page) = get_page(
            &format!("{}/console/messages/{MB}/{id}", server.url),
            Some(&cookie),
        );
        assert_eq!(status, 200, "{kind}: {page}");
        assert!(page.contains("too deep"), "{kind}: no note");
        assert!(page.contains(&format!("{marker} nested {kind}")), "{kind}");
        assert!(page.contains("Content-Type: message/rfc822") || page.contains("--b0"));
        answers(&server);
    }
    let plain_id = sha256_hex(&plain);
    let (status, page) = get_page(
        &format!("{}/console/messages/{MB}/{plain_id}", server.url),
        Some(&cookie),
    );
    assert_eq!(status, 200);
    assert!(page.contains("an ordinary message") && !page.contains("too deep"));

    // Offline repository, laptop sync, laptop search, agent view.
    server.add_user("dora", "dora-password");
    server.admin_ok(&["mailbox", "grant", MB, "dora"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    answers(&server);
    let home = tmp.path().join("dora");
    run_with_stdin(
        laptop(&home).args([
            "setup",
            "--server",
            &server.url,
            "--user",
            "dora",
            "--password-stdin",
        ]),
        "dora-password",
    );
    let report = json(&ok(laptop(&home).args(["sync", "--json"])));
    assert_eq!(report["mailboxes"][0]["messages"], 4, "{report}");
    answers(&server);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _agent = Kill(
        laptop(&home)
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--interval", "3600"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the agent did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent_views = |when: &str| {
        for (kind, marker, id, _) in &deep {
            let (status, page) = get_page(&format!("{base}/m/{MB}/{id}"), None);
            assert_eq!(status, 200, "{kind}: agent view {when}");
            assert!(
                page.contains("too deep"),
                "{kind}: agent view {when} has no note"
            );
            assert!(page.contains(&format!("{marker} nested {kind}")), "{kind}");
        }
        let (status, _) = get_page(&format!("{base}/m/{MB}/{plain_id}"), None);
        assert_eq!(status, 200, "the agent keeps answering {when}");
    };
    agent_views("online");
    answers(&server);

    // Offline: the laptop's own index and the local copy.
    server.kill();
    for (kind, marker, id, raw) in &deep {
        let hits = json(&ok(laptop(&home).args(["search", marker, "--json"])));
        assert_eq!(hits["source"], "local", "{hits}");
        let found = hits["hits"].as_array().expect("hits");
        assert!(
            found.iter().any(|h| h["id"] == id.as_str()),
            "{kind}: laptop search: {hits}"
        );
        let opened = run(laptop(&home).args(["open", &format!("satchel://{MB}/{id}")]));
        assert!(opened.status.success(), "{kind}: laptop open");
        assert_eq!(&opened.stdout, raw, "{kind}: laptop open is byte-identical");
    }
    agent_views("offline");
}

#[test]
fn deep_mail_through_an_imap_archive_run() {
    let dc = Dovecot::start(&[("deep", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, MB, "deep", IMAP_PW);
    let mut imap = dc.login("deep", IMAP_PW);
    imap.select("INBOX");
    let mut deep = Vec::new();
    for kind in KINDS {
        let marker = format!("imapzeppelin{kind}");
        let raw = nested(LEVELS, kind, &marker);
        imap.append("INBOX", &[], "02-Sep-2002 12:00:00 +0000", &raw);
        deep.push((kind, marker, raw));
    }
    let plain = ordinary("imapordinary");
    imap.append("INBOX", &[], "02-Sep-2002 12:00:00 +0000", &plain);

    let s = archive_ok(&server, &[MB]);
    assert_eq!(s["outcome"], "ok", "{s}");
    assert_eq!(s["archived"], 4, "{s}");
    assert_eq!(s["stubbed"], 4, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    answers(&server);

    imap.select("INBOX");
    let after = imap.messages();
    let (stubs, originals) = split_stubs(&after);
    assert!(originals.is_empty(), "every message archived and stubbed");
    for (kind, marker, raw) in &deep {
        let id = sha256_hex(raw);
        assert_eq!(
            &get_archived(&server, MB, &id),
            raw,
            "{kind}: byte-identical"
        );
        assert_eq!(
            server.search_ids(&[marker.as_str()]),
            vec![id.clone()],
            "{kind}"
        );
        let stub = &stubs.get(&id).unwrap_or_else(|| panic!("{kind}: no stub"))[0];
        let text = String::from_utf8_lossy(&stub.raw);
        assert!(
            text.contains(&format!("{marker} nested {kind}")),
            "{kind}: {text}"
        );
        assert!(
            text.contains("too deep"),
            "{kind}: the stub says why: {text}"
        );
    }
    answers(&server);
}
