//! `satchel export` (issue 11 point 5), driven through the binary: Maildir
//! and mbox exports give back the archived bytes exactly (a body line
//! starting with "From " or ">From " included), `--query` selects, a user
//! without a grant exports nothing, and the export is in the audit trail.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MB: &str = "dora@example.com";

/// Three messages; the first has body lines an mbox must quote.
const MESSAGES: [&str; 3] = [
    "From: a@example.com\nTo: dora@example.com\nSubject: quoting\n\nFrom the start of a line.\n>From already quoted.\n>>From twice.\n\nFrom after a blank line.\n",
    "From: b@example.com\nTo: dora@example.com\nSubject: an invoice\n\nPlease find the invoice.\n",
    "From: c@example.com\r\nTo: dora@example.com\r\nSubject: crlf\r\n\r\nLines end in CRLF.\r\n",
];

fn dora(server: &Server) -> std::process::Command {
    server.as_user("dora", "dora-password")
}

/// A service where dora may search MB, which holds [`MESSAGES`].
fn dora_with_mail(dir: &Path) -> Server {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let files: Vec<PathBuf> = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.join(format!("m{i}.eml"));
            std::fs::write(&p, t).expect("write eml");
            p
        })
        .collect();
    import_files(&server, MB, &files);
    server.add_user("dora", "dora-password");
    server.admin_ok(&["mailbox", "grant", MB, "dora"]);
    server
}

fn ids_of(texts: &[&str]) -> BTreeSet<String> {
    texts.iter().map(|t| sha256_hex(t.as_bytes())).collect()
}

/// The messages of a Maildir's new/, by their SHA-256 (= their ids).
fn maildir_ids(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("new"))
        .expect("new/")
        .map(|e| sha256_hex(&std::fs::read(e.expect("entry").path()).expect("read")))
        .collect()
}

#[test]
fn a_maildir_export_holds_every_message_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = dora_with_mail(dir.path());
    let out = dir.path().join("out");
    let report = json(&ok(dora(&server)
        .args(["export", MB, "--maildir"])
        .arg(&out)
        .arg("--json")));
    assert_eq!(report["messages"], 3, "{report}");
    assert_eq!(maildir_ids(&out), ids_of(&MESSAGES));
    assert_eq!(std::fs::read_dir(out.join("tmp")).expect("tmp/").count(), 0);
}

#[test]
fn an_mbox_export_reads_back_as_the_same_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = dora_with_mail(dir.path());
    let mbox = dir.path().join("dora.mbox");
    ok(dora(&server).args(["export", MB, "--mbox"]).arg(&mbox));
    let text = std::fs::read_to_string(&mbox).expect("mbox");
    assert!(text.starts_with("From MAILER-DAEMON "), "{text}");
    assert!(text.contains("\n>From the start of a line.\n"), "{text}");
    assert!(text.contains("\n>>From already quoted.\n"), "{text}");
    assert!(text.contains("\n>>>From twice.\n"), "{text}");
    assert!(!dir.path().join("dora.mbox.partial").exists());

    // Imported again (mboxrd), the messages hash to the same ids: the same bytes.
    server.admin_ok(&["mailbox", "add", "copy@example.com"]);
    server.admin_ok(&["import", "copy@example.com", mbox.to_str().expect("path")]);
    let back = dir.path().join("back");
    ok(server
        .admin()
        .args(["export", "copy@example.com", "--maildir"])
        .arg(&back));
    assert_eq!(maildir_ids(&back), ids_of(&MESSAGES));

    // An existing file is never overwritten.
    let again = run(dora(&server).args(["export", MB, "--mbox"]).arg(&mbox));
    assert!(
        !again.status.success(),
        "an export overwrote {}",
        mbox.display()
    );
}

#[test]
fn a_query_selects_and_a_user_without_a_grant_exports_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = dora_with_mail(dir.path());
    let some = dir.path().join("some");
    ok(dora(&server)
        .args(["export", MB, "--query", "subject:invoice", "--maildir"])
        .arg(&some));
    assert_eq!(maildir_ids(&some), ids_of(&MESSAGES[1..2]));

    server.add_user("eve", "eve-password");
    let none = dir.path().join("none");
    let refused = run(server
        .as_user("eve", "eve-password")
        .args(["export", MB, "--maildir"])
        .arg(&none));
    assert!(!refused.status.success(), "eve exported {MB}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(
        !none.exists(),
        "a refused export created {}",
        none.display()
    );

    // dora's export is in the audit trail with its query; eve's refusal exported nothing.
    let all = json(&server.admin_ok(&["audit", "list", "--json", "--mailbox", MB]));
    let exports: Vec<&serde_json::Value> = all
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "export")
        .collect();
    assert_eq!(exports.len(), 1, "{all:#}");
    assert_eq!(exports[0]["actor"], "dora");
    assert_eq!(exports[0]["target"]["query"], "subject:invoice");
}
