//! The console's "Delete from this mailbox" (issue 11 point 6) in headless
//! Chromium against a real `satchel serve`: an administrator deletes a
//! message from its view with a reason and a ticked confirmation (CSRF token
//! checked), it leaves the console's search, the Audit page shows the
//! deletion with its reason; a missing reason or confirmation and a bad token
//! are refused, a legal hold refuses it naming the hold, and someone who is
//! not an administrator never sees the action and cannot post it.

mod common;

use common::browser::Browser;
use common::console::post_form;
use common::{ADMIN_PASSWORD, Server, import_files, json, run};

const MB: &str = "carol@example.com";
const REASON: &str = "GDPR erasure, ticket 4711";

/// Imports one message per subject into MB; their ids.
fn import(server: &Server, dir: &std::path::Path, subjects: &[&str]) -> Vec<String> {
    server.admin_ok(&["mailbox", "add", MB]);
    subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let raw = format!(
                "From: a@example.com\r\nTo: {MB}\r\nSubject: {subject}\r\n\
                 Message-ID: <{i}@example.com>\r\n\r\nAbout the {subject}.\r\n"
            );
            let path = dir.join(format!("{i}.eml"));
            std::fs::write(&path, &raw).expect("write eml");
            import_files(server, MB, &[path]);
            common::sha256_hex(raw.as_bytes())
        })
        .collect()
}

fn sign_in(b: &mut Browser, server: &Server, user: &str, password: &str) {
    b.goto(&format!("{}/console/login", server.url));
    b.fill("#user", user);
    b.fill("#password", password);
    b.click("#signin");
}

/// The message links the console's search for `words` lists.
fn console_hits(b: &mut Browser, server: &Server, words: &str) -> Vec<String> {
    b.goto(&format!("{}/console/search?q={words}", server.url));
    let js = "JSON.stringify([...document.querySelectorAll('#results a')].map(a => a.getAttribute('href')))";
    let v = json(&b.eval_str(js));
    v.as_array()
        .expect("links")
        .iter()
        .map(|l| l.as_str().expect("href").to_string())
        .collect()
}

fn view_url(server: &Server, id: &str) -> String {
    format!("{}/console/messages/{MB}/{id}", server.url)
}

/// From the message's view: "Delete from this mailbox", the reason, the
/// ticked box, the button.
fn delete_through_page(b: &mut Browser, server: &Server, id: &str) {
    b.goto(&view_url(server, id));
    b.click("#delete-link");
    b.fill("#delete-reason", REASON);
    b.check("#delete-confirm");
    b.click("#delete-button");
}

fn session_cookie(b: &mut Browser) -> String {
    format!(
        "satchel_session={}",
        b.cookie("satchel_session").expect("cookie")
    )
}

/// The audit trail's `message.delete` entries, as the CLI lists them.
fn deletions(server: &Server) -> Vec<serde_json::Value> {
    let trail = json(&server.admin_ok(&["audit", "list", "--json"]));
    trail
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "message.delete")
        .cloned()
        .collect()
}

#[test]
fn an_administrator_deletes_with_a_reason_and_a_hold_refuses_naming_itself() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = import(
        &server,
        dir.path(),
        &["lighthouse keeper", "harbour master"],
    );
    let mut b = Browser::launch();
    sign_in(&mut b, &server, "admin", ADMIN_PASSWORD);

    b.goto(&view_url(&server, &ids[0]));
    b.click("#delete-link");
    let path = format!("/console/messages/{MB}/{}/delete", ids[0]);
    assert!(b.url().ends_with(&path), "{}", b.url());
    b.screenshot("delete-01-confirm");

    // Without a reason, or without the ticked box (the browser's own checks
    // skipped), nothing is removed.
    b.check("#delete-confirm");
    b.submit_form("#delete");
    assert!(b.text("#error").contains("reason"), "{}", b.body_text());
    b.fill("#delete-reason", REASON);
    b.submit_form("#delete");
    assert!(
        b.text("#error").contains("confirmation"),
        "{}",
        b.body_text()
    );
    let cookie = session_cookie(&mut b);
    let csrf = common::console::csrf_of(&server, &cookie);
    let confirmed = "reason=why&confirm=yes";
    assert_eq!(
        post_form(&server, &cookie, &path, confirmed),
        403,
        "no token"
    );
    let stale = format!("csrf=0{csrf}&{confirmed}");
    assert_eq!(
        post_form(&server, &cookie, &path, &stale),
        403,
        "a wrong token"
    );
    let unreasoned = format!("csrf={csrf}&reason=+&confirm=yes");
    assert_eq!(post_form(&server, &cookie, &path, &unreasoned), 400);
    let unconfirmed = format!("csrf={csrf}&reason=why");
    assert_eq!(post_form(&server, &cookie, &path, &unconfirmed), 400);
    assert_eq!(console_hits(&mut b, &server, "lighthouse").len(), 1);
    assert!(deletions(&server).is_empty());

    // Deleted with its reason: gone from the console's search and from `get`.
    delete_through_page(&mut b, &server, &ids[0]);
    b.screenshot("delete-02-deleted");
    assert!(
        b.text("#notice")
            .contains(&format!("{} deleted from {MB}", ids[0])),
        "{}",
        b.body_text()
    );
    assert!(console_hits(&mut b, &server, "lighthouse").is_empty());
    assert!(
        !run(server.admin().args(["get", MB, &ids[0]]))
            .status
            .success()
    );

    // Under a hold: refused, naming the hold; nothing removed.
    server.admin_ok(&[
        "hold",
        "add",
        "matter-9",
        "--mailbox",
        MB,
        "--query",
        "harbour",
    ]);
    delete_through_page(&mut b, &server, &ids[1]);
    b.screenshot("delete-03-held");
    let error = b.text("#error");
    assert!(
        error.contains("matter-9") && error.contains("legal hold"),
        "{}",
        b.body_text()
    );
    assert_eq!(console_hits(&mut b, &server, "harbour").len(), 1);

    // The Audit page shows the one deletion, with its reason.
    b.goto(&format!("{}/console/audit", server.url));
    let js = "JSON.stringify([...document.querySelectorAll('#audit tbody tr')]\
              .filter(r => r.cells[4].innerText === 'message.delete').map(r => r.cells[5].innerText))";
    let shown = json(&b.eval_str(js));
    let shown = shown.as_array().expect("rows");
    assert_eq!(shown.len(), 1, "{shown:?}");
    let what = shown[0].as_str().expect("what");
    assert!(what.contains(REASON) && what.contains(&ids[0]), "{what}");
    let recorded = deletions(&server);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["actor"], "admin");
}

#[test]
fn someone_who_is_not_an_administrator_never_sees_or_uses_the_action() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let ids = import(&server, dir.path(), &["lighthouse keeper"]);
    server.add_user("bob", "bob-password-1");
    server.admin_ok(&["mailbox", "grant", MB, "bob"]);
    let mut b = Browser::launch();
    sign_in(&mut b, &server, "bob", "bob-password-1");
    b.goto(&view_url(&server, &ids[0]));
    assert!(b.exists("#raw"), "{}", b.body_text());
    assert!(!b.exists("#delete-link"), "{}", b.body_text());

    let cookie = session_cookie(&mut b);
    let path = format!("/console/messages/{MB}/{}/delete", ids[0]);
    let page = common::console::http()
        .get(format!("{}{path}", server.url))
        .header("Cookie", &cookie)
        .send()
        .expect("confirmation page");
    assert_eq!(page.status().as_u16(), 403);
    let csrf = common::console::csrf_on(&server, &cookie, "/console/search");
    let form = format!("csrf={csrf}&reason=mine&confirm=yes");
    assert_eq!(post_form(&server, &cookie, &path, &form), 403);
    assert_eq!(console_hits(&mut b, &server, "lighthouse").len(), 1);
    assert!(deletions(&server).is_empty());
}
