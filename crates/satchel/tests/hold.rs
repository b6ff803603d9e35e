//! Legal holds (issue 11 point 2), driven through the `satchel` binary:
//! held messages survive `retention apply` and expire once released; a
//! hold with a query covers only matching mail, including mail imported
//! after it was placed; bad holds and callers are refused.

mod common;
use common::*;
use std::path::Path;

const MB: &str = "matter@example.com";
const OLD: &str = "Mon, 02 Sep 2002 12:00:00 +0000";

/// An old message with `subject`; returns its id.
fn import_old(server: &Server, dir: &Path, subject: &str) -> String {
    let text = format!(
        "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: {subject}\r\nDate: {OLD}\r\n\
         Message-ID: <{}@example.org>\r\n\r\n{subject} body\r\n",
        subject.replace(' ', ".")
    );
    let p = dir.join(format!("{}.eml", subject.replace(' ', "-")));
    std::fs::write(&p, &text).expect("write eml");
    server.admin_ok(&["import", MB, p.to_str().expect("utf8")]);
    sha256_hex(text.as_bytes())
}

fn apply(server: &Server) -> serde_json::Value {
    json(&server.admin_ok(&["retention", "apply", MB, "--json"]))
}

/// A service with MB, a 30-day retention and three old messages.
fn setup(dir: &Path) -> (Server, Vec<String>) {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["retention", "set", MB, "--days", "30"]);
    let ids = ["invoice march", "invoice april", "lunch plans"]
        .iter()
        .map(|s| import_old(&server, dir, s))
        .collect();
    (server, ids)
}

#[test]
fn held_messages_survive_apply_and_expire_after_release() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, ids) = setup(tmp.path());
    let placed = json(&server.admin_ok(&["hold", "add", "case-1", "--mailbox", MB, "--json"]));
    assert_eq!(placed["messages"], 3);
    assert_eq!(placed["placed_by"], "admin");

    let r = apply(&server);
    assert!(removed_ids(&r).is_empty(), "{r}");
    assert_eq!(r["held"]["case-1"], 3, "{r}");
    assert_eq!(server.search_ids(&["invoice", "--mailbox", MB]).len(), 2);

    let shown = json(&server.admin_ok(&["hold", "show", "case-1", "--json"]));
    assert_eq!(shown["mailboxes"], serde_json::json!([MB]));
    assert_eq!(shown["query"], serde_json::Value::Null);
    assert!(
        shown["placed"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{shown}"
    );
    let text = server.admin_ok(&["hold", "list"]);
    assert!(
        text.contains("case-1") && text.contains("(all mail)"),
        "{text}"
    );

    server.admin_ok(&["hold", "release", "case-1"]);
    assert!(server.admin_ok(&["hold", "list"]).contains("no hold"));
    let mut all = ids.clone();
    all.sort();
    assert_eq!(removed_ids(&apply(&server)), all);
    let audit = json(&server.admin_ok(&["audit", "list", "--json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"hold.add") && actions.contains(&"hold.release"),
        "{actions:?}"
    );
}

#[test]
fn a_hold_with_a_query_covers_only_matching_mail_including_later_imports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, ids) = setup(tmp.path());
    let placed = json(&server.admin_ok(&[
        "hold",
        "add",
        "invoices",
        "--mailbox",
        MB,
        "--query",
        "invoice",
        "--json",
    ]));
    assert_eq!(placed["messages"], 2);
    // Archived after the hold was placed, and matching it.
    let later = import_old(&server, tmp.path(), "invoice may");
    let unheld = import_old(&server, tmp.path(), "dinner plans");
    assert_eq!(
        json(&server.admin_ok(&["hold", "show", "invoices", "--json"]))["messages"],
        3
    );

    let r = apply(&server);
    let mut want = vec![ids[2].clone(), unheld];
    want.sort();
    assert_eq!(removed_ids(&r), want, "{r}");
    assert_eq!(r["held"]["invoices"], 3, "{r}");
    let mut kept = server.search_ids(&["invoice", "--mailbox", MB]);
    kept.sort();
    let mut want_kept = vec![ids[0].clone(), ids[1].clone(), later];
    want_kept.sort();
    assert_eq!(kept, want_kept);
}

#[test]
fn bad_holds_and_callers_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, _) = setup(tmp.path());
    let stderr = |args: &[&str]| {
        let o = run(server.admin().args(args));
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = stderr(&["hold", "add", "x", "--mailbox", "nobody@example.com"]);
    assert!(e.contains("404"), "{e}");
    let e = stderr(&["hold", "add", "x", "--mailbox", MB, "--query", "(unclosed"]);
    assert!(e.contains("400"), "{e}");
    let e = stderr(&["hold", "add", "bad name", "--mailbox", MB]);
    assert!(e.contains("400"), "{e}");
    server.admin_ok(&["hold", "add", "x", "--mailbox", MB]);
    let e = stderr(&["hold", "add", "x", "--mailbox", MB]);
    assert!(e.contains("409") && e.contains("exists"), "{e}");
    let e = stderr(&["hold", "release", "nope"]);
    assert!(e.contains("404"), "{e}");
    server.add_user("carol", "carol-password");
    let carol = run(server
        .as_user("carol", "carol-password")
        .args(["hold", "release", "x"]));
    assert!(
        String::from_utf8_lossy(&carol.stderr).contains("403"),
        "{carol:?}"
    );
    let list = json(&server.admin_ok(&["hold", "list", "--json"]));
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing but x: {list}"
    );
}

/// `satchel delete` of `id` in MB; the command's output.
fn delete(server: &Server, id: &str) -> std::process::Output {
    run(server
        .admin()
        .args(["delete", MB, id, "--reason", "GDPR erasure, ticket 7"]))
}

/// `id` is in MB: found by a search for `words` and served by `get`.
fn present(server: &Server, words: &str, id: &str) -> bool {
    let found = server
        .search_ids(&[words, "--mailbox", MB])
        .iter()
        .any(|h| h == id);
    let got = run(server.admin().args(["get", MB, id])).status.success();
    assert_eq!(found, got, "search and get disagree about {id}");
    found
}

/// Asserts the delete of `id` is refused with 409 naming `hold`, and
/// that the message is still searchable and readable.
fn assert_refused(server: &Server, id: &str, words: &str, hold: &str) {
    let out = delete(server, id);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "deleted under hold {hold}: {out:?}");
    assert!(
        err.contains("409") && err.contains(hold),
        "the refusal names neither 409 nor {hold}: {err}"
    );
    assert!(present(server, words, id), "{id} left under hold {hold}");
}

#[test]
fn deletion_is_refused_naming_the_hold_and_succeeds_once_released() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, ids) = setup(tmp.path());
    server.admin_ok(&[
        "hold",
        "add",
        "invoices",
        "--mailbox",
        MB,
        "--query",
        "invoice",
    ]);
    server.admin_ok(&["hold", "add", "everything", "--mailbox", MB]);

    // "lunch plans" matches only the hold without a query.
    assert_refused(&server, &ids[2], "lunch", "everything");
    server.admin_ok(&["hold", "release", "everything"]);
    // "invoice march" is still covered by the hold with a query.
    assert_refused(&server, &ids[0], "invoice", "invoices");
    server.admin_ok(&["hold", "release", "invoices"]);

    for (id, words) in [(&ids[0], "invoice"), (&ids[2], "lunch")] {
        let out = delete(&server, id);
        assert!(out.status.success(), "delete after release: {out:?}");
        assert!(
            !present(&server, words, id),
            "{id} still there after delete"
        );
    }
    assert!(present(&server, "invoice", &ids[1]), "a bystander left");
    let audit = json(&server.admin_ok(&["audit", "list", "--json"]));
    let deletions = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "message.delete")
        .count();
    assert_eq!(deletions, 2, "only the successful deletions are recorded");
}
