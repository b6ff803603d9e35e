//! The audit trail (issue 11 point 4), driven through the `satchel` binary:
//! who signed in, searched, read and changed what appears with the right
//! actor; a row changed or deleted in the catalog makes `audit verify` fail
//! naming it; PostgreSQL appends from two services chain without a fork;
//! only administrators see the trail.

mod common;
use common::*;
use satchel_testkit::postgres::Postgres;
use std::path::{Path, PathBuf};

const MB: &str = "carol@example.com";

fn carol(server: &Server) -> std::process::Command {
    server.as_user("carol", "carol-password")
}

/// Two small messages, as .eml files in `dir`.
fn two_messages(dir: &Path) -> Vec<PathBuf> {
    let texts = [
        "From: a@example.com\nTo: carol@example.com\nSubject: lighthouse keeper\n\nThe lighthouse keeper wrote.\n",
        "From: b@example.com\nTo: carol@example.com\nSubject: harbour dues\n\nHarbour dues are due.\n",
    ];
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.join(format!("m{i}.eml"));
            std::fs::write(&p, t).expect("write eml");
            p
        })
        .collect()
}

fn entries(server: &Server, args: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = server.admin();
    cmd.args(["audit", "list", "--json", "--limit", "1000"])
        .args(args);
    json(&ok(&mut cmd)).as_array().expect("entries").clone()
}

/// The one entry with `action` by `actor` (panics naming the trail if none).
fn find<'a>(all: &'a [serde_json::Value], action: &str, actor: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|e| e["action"] == action && e["actor"] == actor)
        .unwrap_or_else(|| panic!("no {action} by {actor} in {all:#?}"))
}

fn verify(server: &Server) -> std::process::Output {
    run(server.admin().args(["audit", "verify"]))
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sets up carol with a mailbox of two messages; returns one message id.
fn carol_with_mail(server: &Server, dir: &Path) -> String {
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(server, MB, &two_messages(dir));
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    let found = json(&ok(carol(server).args([
        "search",
        "lighthouse",
        "--mailbox",
        MB,
        "--json",
    ])));
    found["hits"][0]["id"].as_str().expect("a hit").to_string()
}

#[test]
fn sign_ins_searches_reads_and_changes_are_recorded_with_their_actor() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let id = carol_with_mail(&server, dir.path());
    ok(carol(&server).args(["get", MB, &id]));
    let wrong = run(server
        .as_user("carol", "not-her-password")
        .args(["search", "x"]));
    assert!(!wrong.status.success(), "a wrong password signed in");
    let unknown = run(server
        .as_user("mallory", "whatever-1")
        .args(["search", "x"]));
    assert!(!unknown.status.success(), "an unknown user signed in");

    let all = entries(&server, &[]);
    let search = find(&all, "search", "carol");
    assert_eq!(search["target"]["query"], "lighthouse", "{search}");
    assert_eq!(
        search["target"]["mailboxes"],
        serde_json::json!([MB]),
        "{search}"
    );
    assert_eq!(search["source"], "127.0.0.1", "{search}");
    let read = find(&all, "message.read", "carol");
    assert_eq!(read["target"]["id"], id.as_str(), "{read}");
    assert_eq!(read["target"]["mailbox"], MB, "{read}");
    assert_eq!(read["target"]["via"], "api", "{read}");
    assert_eq!(read["target"]["part"], "raw", "{read}");
    assert_eq!(find(&all, "signin", "carol")["target"]["via"], "api");
    find(&all, "signin.failed", "carol");
    // An unknown name is not kept: it is often a password typed in the wrong field.
    find(&all, "signin.failed", "-");
    assert!(
        !all.to_vec()
            .iter()
            .any(|e| e.to_string().contains("mallory")),
        "{all:#?}"
    );
    let grant = find(&all, "grant", "admin");
    assert_eq!(grant["target"]["user"], "carol", "{grant}");
    find(&all, "user.add", "admin");
    find(&all, "mailbox.add", "admin");
    find(&all, "import", "admin");
    let seqs: Vec<i64> = all
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // Filters: carol's entries about her mailbox, and nothing from the future.
    let hers = entries(&server, &["--user", "carol", "--mailbox", MB]);
    assert!(!hers.is_empty());
    assert!(hers.iter().all(|e| e["actor"] == "carol"), "{hers:#?}");
    assert!(entries(&server, &["--since", "2999-01-01"]).is_empty());

    let verified = verify(&server);
    assert!(verified.status.success(), "{}", stderr(&verified));
    let head = server.admin_ok(&["audit", "head"]);
    let (seq, hash) = head.trim().split_once(' ').expect("seq and hash");
    assert!(
        seq.parse::<i64>().expect("seq") >= seqs[seqs.len() - 1],
        "{head}"
    );
    assert_eq!(hash.len(), 64, "{head}");
}

/// Reads at once share group commits, and each still has its own entry,
/// in one chain without a gap.
#[test]
fn concurrent_reads_each_have_an_entry_in_one_chain() {
    const READS: usize = 12;
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let id = carol_with_mail(&server, dir.path());
    std::thread::scope(|s| {
        for _ in 0..READS {
            s.spawn(|| ok(carol(&server).args(["get", MB, &id])));
        }
    });
    let all = entries(&server, &[]);
    let reads = all
        .iter()
        .filter(|e| e["action"] == "message.read" && e["actor"] == "carol")
        .count();
    assert_eq!(reads, READS, "{all:#?}");
    let seqs: Vec<i64> = all
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let out = verify(&server);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn only_administrators_see_the_trail() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    carol_with_mail(&server, dir.path());
    for args in [
        &["audit", "list"][..],
        &["audit", "verify"],
        &["audit", "head"],
    ] {
        let out = run(carol(&server).args(args));
        assert!(!out.status.success(), "carol ran {args:?}");
        assert!(
            stderr(&out).contains("HTTP 403"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// The catalog of a SQLite service, opened beside it.
fn catalog(server: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(server.data.join("catalog.sqlite")).expect("open the catalog")
}

#[test]
fn verify_names_a_row_changed_or_deleted_in_the_catalog() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    carol_with_mail(&server, dir.path());
    let all = entries(&server, &[]);
    let search = find(&all, "search", "carol")["seq"].as_i64().expect("seq");
    let db = catalog(&server);
    let target: String = db
        .query_row(
            "SELECT target FROM audit_log WHERE seq = ?1",
            [search],
            |r| r.get(0),
        )
        .expect("the search's row");

    // Someone hides what carol searched for.
    db.execute(
        "UPDATE audit_log SET target = ?1 WHERE seq = ?2",
        rusqlite::params![target.replace("lighthouse", "weather"), search],
    )
    .expect("edit the row");
    let out = verify(&server);
    assert!(!out.status.success(), "an edited row verified");
    assert!(
        stderr(&out).contains(&format!("entry {search} does not match")),
        "{}",
        stderr(&out)
    );

    // Put back exactly as it was, the chain verifies again.
    db.execute(
        "UPDATE audit_log SET target = ?1 WHERE seq = ?2",
        rusqlite::params![target, search],
    )
    .expect("restore the row");
    let out = verify(&server);
    assert!(out.status.success(), "{}", stderr(&out));

    // Someone removes the row altogether.
    db.execute("DELETE FROM audit_log WHERE seq = ?1", [search])
        .expect("delete the row");
    let out = verify(&server);
    assert!(!out.status.success(), "a deleted row verified");
    assert!(
        stderr(&out).contains(&format!("entry {search} is missing")),
        "{}",
        stderr(&out)
    );
    let report = json(&String::from_utf8_lossy(
        &run(server.admin().args(["audit", "verify", "--json"])).stdout,
    ));
    assert_eq!(report["first_bad"], search, "{report}");
}

#[test]
fn two_services_on_one_postgres_catalog_append_one_chain() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("SATCHEL_CATALOG", pg.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = Server::start_in_with(&dir.path().join("one"), &env);
    let two = Server::start_in_with(&dir.path().join("two"), &env);
    one.admin_ok(&["mailbox", "add", MB]);
    let before = entries(&one, &[]).len();

    // Sign-ins on both services at once: every append takes the advisory lock.
    const EACH: usize = 6;
    std::thread::scope(|s| {
        for server in [&one, &two] {
            for _ in 0..EACH {
                s.spawn(|| ok(server.admin().args(["mailbox", "list", "--json"])));
            }
        }
    });
    let out = verify(&two);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = entries(&one, &[]);
    let seqs: Vec<i64> = all
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let signins = all
        .iter()
        .skip(before)
        .filter(|e| e["action"] == "signin")
        .count();
    assert!(signins >= 2 * EACH, "{signins} sign-ins recorded: {all:#?}");
    let mine = find(&all, "mailbox.add", "admin");
    assert_eq!(mine["target"]["mailbox"], MB, "{mine}");
}
