//! Import from mbox, Maildir and .eml, malformed input, re-runs, repositories
//! (issue: archive core, points 3 and 4).

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn import_json(server: &Server, mailbox: &str, paths: &[PathBuf]) -> (i32, serde_json::Value) {
    let out = run(server
        .admin()
        .args(["import", mailbox, "--json"])
        .args(paths));
    let code = out.status.code().unwrap_or(-1);
    (code, json(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn malformed_mail_is_archived_byte_for_byte_and_non_mail_is_reported() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "alice@example.com"]);
    let paths = files_in(&fixtures().join("malformed"));
    let (code, report) = import_json(&server, "alice@example.com", &paths);
    assert_eq!(code, 2, "an import with failures exits 2: {report}");
    assert_eq!(report["imported"], 10, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let failures = report["failures"].as_array().expect("failures");
    let reason_of = |name: &str| {
        failures
            .iter()
            .find(|f| f["origin"].as_str().is_some_and(|o| o.ends_with(name)))
            .and_then(|f| f["reason"].as_str())
            .unwrap_or_else(|| panic!("{name} not reported: {report}"))
            .to_string()
    };
    assert!(reason_of("notmail.png").contains("not a mail message"));
    assert!(reason_of("empty.eml").contains("empty"));

    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
    {
        let original = std::fs::read(path).expect("fixture");
        if original.is_empty() {
            continue;
        }
        let id = sha256_hex(&original);
        let got = run(server.admin().args(["get", "alice@example.com", &id]));
        assert!(
            got.status.success(),
            "get {}: {}",
            path.display(),
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(
            got.stdout,
            original,
            "{} comes back byte-for-byte",
            path.display()
        );
    }
    // Searchable as far as each parses: every fixture's subject marker is found,
    // and the body markers of the ones whose body survives parsing.
    for n in 1..=10 {
        let found = server.search_ids(&[&format!("mfx{n}word")]);
        assert_eq!(found.len(), 1, "subject marker mfx{n}word");
    }
    for n in [1, 3, 4, 6, 7, 8, 9, 10] {
        assert_eq!(
            server.search_ids(&[&format!("mfx{n}body")]).len(),
            1,
            "body marker mfx{n}body"
        );
    }
    assert_eq!(
        server.search_ids(&["attachment:mfx2report"]).len(),
        1,
        "attachment name"
    );

    // Re-running adds nothing.
    let (_, again) = import_json(&server, "alice@example.com", &paths);
    assert_eq!(again["imported"], 0);
    assert_eq!(again["duplicate"], 10);
}

fn message(n: usize, body: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <s{n}@example.org>\nTo: alice@example.com\nCc: Charlie <charlie{n}@example.net>\nSubject: mixed source {n}\nDate: Wed, 0{d} Oct 2002 10:00:00 +0000\n\n{body}\n",
        d = 1 + n % 9
    )
    .into_bytes()
}

#[test]
fn mbox_maildir_and_eml_in_one_run_round_trip() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "alice@example.com"]);
    let dir = tempfile::tempdir().expect("tempdir");

    // mbox with bodies that contain From lines, quoted and not.
    let tricky = [
        message(1, "From the desk of nobody\n>From a quote\n>>From deeper"),
        message(2, "plain body"),
        message(3, "ends without newline")
            .strip_suffix(b"\n")
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    ];
    let mut mbox = Vec::new();
    for m in &tricky[..2] {
        satchel_archive::import::write_mbox(
            &mut mbox,
            b"From x@example.org Wed Oct  2 10:00:00 2002",
            m,
        )
        .expect("mbox");
    }
    let mbox_path = dir.path().join("box.mbox");
    std::fs::write(&mbox_path, &mbox).expect("write");

    // Maildir with a Maildir++ subfolder.
    let md = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp", ".Work/cur", ".Work/new", ".Work/tmp"] {
        std::fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    std::fs::write(md.join("new/1.host"), message(4, "inbox message")).expect("write");
    std::fs::write(
        md.join(".Work/cur/2.host:2,S"),
        message(5, "work folder message"),
    )
    .expect("write");

    let eml = dir.path().join("single.eml");
    std::fs::write(&eml, &tricky[2]).expect("write");

    let (code, report) = import_json(&server, "alice@example.com", &[mbox_path, md, eml]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["imported"], 5, "{report}");

    for raw in tricky.iter().chain([
        &message(4, "inbox message"),
        &message(5, "work folder message"),
    ]) {
        let id = sha256_hex(raw);
        let got = run(server.admin().args(["get", "alice@example.com", &id]));
        assert_eq!(&got.stdout, raw, "byte-identical after import");
    }
    assert_eq!(
        server.search_ids(&["cc:charlie4"]).len(),
        1,
        "cc is searchable"
    );
    assert_eq!(server.search_ids(&["from:s5"]).len(), 1);
    assert_eq!(
        server
            .search_ids(&["after:2002-10-02 before:2002-10-04"])
            .len(),
        2,
        "date range"
    );
}

fn pack_count(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n);
            } else if p.extension().is_some_and(|x| x == "pack") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

#[test]
fn one_copy_across_mailboxes_and_earlier_mail_survives_a_new_default_repository() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", "alice@example.com"]);
    server.admin_ok(&["mailbox", "add", "bob@example.com"]);
    let first = dir.path().join("first.eml");
    std::fs::write(&first, message(1, "shared message")).expect("write");
    server.admin_ok(&["import", "alice@example.com", first.to_str().expect("utf8")]);
    let packs = pack_count(&server.data);
    server.admin_ok(&["import", "bob@example.com", first.to_str().expect("utf8")]);
    assert_eq!(
        pack_count(&server.data),
        packs,
        "the same message is stored once"
    );
    let bob = json(&server.admin_ok(&["mailbox", "show", "bob@example.com", "--json"]));
    assert_eq!(bob["messages"], 1);

    let second_repo = dir.path().join("second-repo");
    server.admin_ok(&[
        "repo",
        "add",
        "second",
        "--disk",
        second_repo.to_str().expect("utf8"),
    ]);
    server.admin_ok(&["mailbox", "set-repo", "alice@example.com", "second"]);
    let later = dir.path().join("later.eml");
    std::fs::write(&later, message(2, "after the move")).expect("write");
    server.admin_ok(&["import", "alice@example.com", later.to_str().expect("utf8")]);
    assert_eq!(
        pack_count(&second_repo),
        1,
        "new mail goes to the new default"
    );
    for file in [&first, &later] {
        let raw = std::fs::read(file).expect("read");
        let got = run(server
            .admin()
            .args(["get", "alice@example.com", &sha256_hex(&raw)]));
        assert_eq!(got.stdout, raw, "reachable after the default changed");
    }
    let shown = json(&server.admin_ok(&["mailbox", "show", "alice@example.com", "--json"]));
    assert_eq!(shown["repo"], "second");
}

#[test]
fn a_killed_service_loses_no_imported_message_nor_its_searchability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data);
    server.admin_ok(&["mailbox", "add", "alice@example.com"]);
    let files: Vec<PathBuf> = (0..50)
        .map(|n| {
            let p = dir.path().join(format!("{n}.eml"));
            std::fs::write(&p, message(n, &format!("kill test body zorblat{n}"))).expect("write");
            p
        })
        .collect();
    let (code, report) = import_json(&server, "alice@example.com", &files);
    assert_eq!((code, report["imported"].as_u64()), (0, Some(50)));
    // SIGKILL right after the import answered: the index commit may not have run.
    server.kill();
    let server = Server::start_in(&data);
    for n in [0, 17, 49] {
        assert_eq!(
            server.search_ids(&[&format!("zorblat{n}")]).len(),
            1,
            "zorblat{n} searchable after restart"
        );
        let raw = message(n, &format!("kill test body zorblat{n}"));
        let got = run(server
            .admin()
            .args(["get", "alice@example.com", &sha256_hex(&raw)]));
        assert_eq!(got.stdout, raw);
    }
}

#[test]
fn import_takes_rfc5322_obsolete_syntax_and_names_what_is_not_mail() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "alice@example.com"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let files: [(&str, &[u8]); 4] = [
        // RFC 5322 4.5.6: white space before the colon (obs-optional etc.).
        (
            "obsolete.eml",
            b"Subject : obsolete obswordone\r\nFrom : a@example.org\r\nDate\t: Mon, 2 Sep 2002 12:00:00 +0000\r\n\r\nbody\r\n",
        ),
        ("tab.eml", b"Subject\t:obswordtwo\n\nbody\n"),
        ("notes.eml", b"Dear diary, today: nothing.\n"),
        ("folded.eml", b" Subject: a continuation with no field\n\nbody\n"),
    ];
    let mut paths = Vec::new();
    for (name, raw) in &files {
        let p = dir.path().join(name);
        std::fs::write(&p, raw).expect("write");
        paths.push(p);
    }
    let (code, report) = import_json(&server, "alice@example.com", &paths);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let failures = report["failures"].as_array().expect("failures");
    for name in ["notes.eml", "folded.eml"] {
        assert!(
            failures
                .iter()
                .any(|f| f["origin"].as_str().is_some_and(|o| o.ends_with(name))
                    && f["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("not a mail message"))),
            "{name} is named: {report}"
        );
    }
    for (word, (_, raw)) in ["obswordone", "obswordtwo"].iter().zip(&files) {
        assert_eq!(server.search_ids(&[word]), vec![sha256_hex(raw)], "{word}");
    }
}
