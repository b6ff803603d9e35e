//! The web console (issue 6) in headless Chromium against a real `satchel serve`:
//! sign-in, Mailbox Manager, Properties (offline sync with an override, grants,
//! flush with confirmation), Status (schedule, Synchronize now, jobs), search and
//! a hostile message that must not run anything; a non-administrator gets 403.
//! Screenshots of every page go to target/screenshots/.

mod common;

use common::browser::Browser;
use common::{ADMIN_PASSWORD, Server, sha256_hex};
use std::path::Path;

const MB: &str = "alice@example.com";
const BOB: &str = "bob";
const BOB_PASSWORD: &str = "bob-password-1";

fn eml(subject: &str, html: &str) -> String {
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "From: Carol <carol@example.org>\r\nTo: Alice <alice@example.com>\r\n\
Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{}@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n\
--BOUND\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n\
--BOUND\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\
Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nattached notes for {subject}\r\n\
--BOUND--\r\n",
        sha256_hex(subject.as_bytes())
    )
}

/// Writes messages as a Maildir and imports them with the CLI; returns their ids.
fn import(server: &Server, dir: &Path, messages: &[String]) -> Vec<String> {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
    let ids = messages
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let name = format!("{}-{i}:2,S", sha256_hex(raw.as_bytes()));
            std::fs::write(dir.join("cur").join(name), raw).expect("write");
            sha256_hex(raw.as_bytes())
        })
        .collect();
    server.admin_ok(&["import", MB, dir.to_str().expect("utf8")]);
    ids
}

fn sign_in(b: &mut Browser, server: &Server, user: &str, password: &str) {
    b.goto(&format!("{}/", server.url));
    assert!(b.url().ends_with("/console/login"), "{}", b.url());
    b.fill("#user", user);
    b.fill("#password", password);
    b.click("#signin");
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn status_row_number(b: &mut Browser, class: &str) -> u64 {
    let t = b.text(&format!("#offline tr[data-mailbox=\"{MB}\"] .{class}"));
    t.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number in .{class}: {t:?}"))
}

const HOSTILE: &str = "<h1 id=\"greeting\">Quarterly figures</h1>\
<p>Numbers inside.</p>\
<script>document.title = 'PWNED-BY-SCRIPT'; document.body.setAttribute('data-pwned', 'script');</script>\
<img id=\"trap\" src=\"x\" onerror=\"document.title = 'PWNED-BY-ONERROR'; document.body.setAttribute('data-pwned', 'onerror')\">\
<img id=\"beacon\" src=\"http://127.0.0.1:BEACON/beacon.png\">\
<img alt=\"inline\" src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\
<a href=\"javascript:document.title='PWNED-BY-LINK'\" id=\"jslink\">click</a>\
<p onmouseover=\"document.title='PWNED-BY-HOVER'\">hover</p>";

#[test]
fn console_in_chromium() {
    let server = Server::start();
    server.add_user(BOB, BOB_PASSWORD);
    let mut b = Browser::launch();

    // ---- sign-in: a wrong password is refused, the right one opens a session ----
    b.goto(&format!("{}/", server.url));
    assert!(b.url().ends_with("/console/login"), "{}", b.url());
    b.screenshot("01-sign-in");
    b.fill("#user", "admin");
    b.fill("#password", "not-the-password");
    b.click("#signin");
    assert!(
        b.text(".error").contains("wrong user name or password"),
        "{}",
        b.body_text()
    );
    b.fill("#password", ADMIN_PASSWORD);
    b.click("#signin");
    assert!(b.url().ends_with("/console/mailboxes"), "{}", b.url());
    let cookie = b.cookie_record("satchel_session").expect("session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");
    let admin_cookie = format!("satchel_session={}", cookie["value"].as_str().unwrap());

    // ---- Mailbox Manager: add a mailbox ----
    b.fill("#address", MB);
    b.click("#add");
    assert!(
        b.url().contains("/console/mailboxes/alice@example.com"),
        "{}",
        b.url()
    );
    assert!(b.text("#notice").contains("added"), "{}", b.body_text());

    // A remote image must never be fetched: nothing may connect here.
    let beacon = std::net::TcpListener::bind("127.0.0.1:0").expect("beacon");
    beacon.set_nonblocking(true).expect("nonblocking");
    let beacon_port = beacon.local_addr().expect("addr").port();
    let mail = tempfile::tempdir().expect("tempdir");
    let first: Vec<String> = (0..3)
        .map(|i| {
            eml(
                &format!("Plain report {i}"),
                &format!("<p>report body {i}</p>"),
            )
        })
        .chain([eml(
            "Quarterly figures",
            &HOSTILE.replace("BEACON", &beacon_port.to_string()),
        )])
        .collect();
    let ids = import(&server, &mail.path().join("one"), &first);
    let hostile_id = ids[3].clone();

    b.goto(&format!("{}/console/mailboxes", server.url));
    let row = b.text(&format!("#mailboxes tr[data-mailbox=\"{MB}\"]"));
    assert!(row.contains("default"), "{row}");
    assert!(row.contains('4'), "4 archived messages: {row}");
    assert_eq!(
        b.text(&format!("#mailboxes tr[data-mailbox=\"{MB}\"] .offline")),
        "off"
    );
    b.screenshot("02-mailbox-manager");

    // ---- Properties: grant, enable offline sync with an override ----
    b.click(&format!("#mailboxes tr[data-mailbox=\"{MB}\"] a"));
    assert_eq!(b.text("#offline-state"), "Disabled");
    b.fill("#grant-user", BOB);
    b.click("#grant button");
    assert!(b.text("#grants").contains(BOB), "{}", b.body_text());

    b.fill("#since_days", "30");
    b.fill("#max_bytes", "default");
    b.click("#enable");
    assert!(b.text("#notice").contains("enabled"), "{}", b.body_text());
    assert_eq!(b.text("#offline-state"), "Enabled");
    let since_src = b.text("#since-source");
    assert!(
        since_src.contains("30 days") && since_src.contains("this mailbox"),
        "{since_src}"
    );
    let max_src = b.text("#max-source");
    assert!(
        max_src.contains("no limit") && max_src.contains("global default"),
        "{max_src}"
    );
    assert!(
        b.body_text()
            .contains("global defaults: how far back no limit; size cap no limit"),
        "{}",
        b.body_text()
    );
    b.screenshot("03-properties");
    let cli = common::json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    let cli = if cli["mailboxes"].is_array() {
        cli["mailboxes"][0].clone()
    } else {
        cli
    };
    assert_eq!(cli["since_days"]["value"], 30, "{cli}");
    assert_eq!(cli["since_days"]["source"], "mailbox", "{cli}");

    // ---- Status: schedule (an invalid one is refused with the reason) ----
    b.goto(&format!("{}/console/status", server.url));
    b.fill("#cron", "61 * * * *");
    b.click("#save-schedule");
    let err = b.text("#error");
    assert!(!err.is_empty(), "no error shown: {}", b.body_text());
    assert_eq!(
        b.eval_str("document.querySelector('#cron').value"),
        "61 * * * *"
    );
    b.screenshot("04-status-invalid-schedule");
    b.fill("#cron", "30 5 * * 1-5");
    b.click("#save-schedule");
    assert!(
        b.text("#notice").contains("30 5 * * 1-5"),
        "{}",
        b.body_text()
    );
    assert_eq!(
        b.eval_str("document.querySelector('#cron').value"),
        "30 5 * * 1-5"
    );

    // ---- Synchronize now: the generation grows ----
    let g0 = status_row_number(&mut b, "generation");
    b.click("#sync-now");
    assert!(
        b.text("#notice").contains("Synchronized"),
        "{}",
        b.body_text()
    );
    let g1 = status_row_number(&mut b, "generation");
    assert!(g1 > g0, "generation {g0} -> {g1}");
    assert_eq!(status_row_number(&mut b, "messages"), 4);
    import(
        &server,
        &mail.path().join("two"),
        &[eml("Late addition", "<p>one more</p>")],
    );
    b.click("#sync-now");
    let g2 = status_row_number(&mut b, "generation");
    assert!(g2 > g1, "generation {g1} -> {g2}");
    assert_eq!(status_row_number(&mut b, "messages"), 5);
    let jobs = b.text("#jobs");
    assert!(
        jobs.contains("offline-update") && jobs.contains("ok"),
        "{jobs}"
    );
    b.screenshot("05-status");

    // ---- Flush behind a confirmation: the epoch changes ----
    b.goto(&format!("{}/console/mailboxes/{MB}", server.url));
    let epoch0 = b.text("#epoch");
    assert_eq!(epoch0.len(), 16, "{epoch0}");
    b.click("#flush-link");
    assert!(b.exists("#confirm"));
    b.screenshot("06-flush-confirm");
    // Submitting without the box ticked (bypassing the browser's own check) is refused.
    b.submit_form("#flush");
    assert!(
        b.text("#error").contains("confirmation"),
        "{}",
        b.body_text()
    );
    let st = common::json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    assert_eq!(
        st["mailboxes"][0]["epoch"],
        epoch0.as_str(),
        "not flushed: {st}"
    );
    b.check("#confirm");
    b.click("#flush-button");
    assert!(b.text("#notice").contains("Flushed"), "{}", b.body_text());
    let epoch1 = b.text("#epoch");
    assert_eq!(epoch1.len(), 16, "{epoch1}");
    assert_ne!(epoch0, epoch1, "flush must change the epoch");

    // ---- CSRF: a changing request without the form's token is 403 ----
    let c = http();
    let r = c
        .post(format!("{}/console/status/schedule", server.url))
        .header("Cookie", &admin_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("cron=0+1+*+*+*")
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(format!("{}/console/status/schedule", server.url))
        .header("Cookie", &admin_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("cron=0+1+*+*+*&csrf=0000")
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let csp = c
        .get(format!("{}/console/status", server.url))
        .header("Cookie", &admin_cookie)
        .send()
        .expect("get");
    assert_eq!(csp.status().as_u16(), 200);
    let policy = csp.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let st = common::json(&server.admin_ok(&["offline", "status", MB, "--json"]));
    assert_eq!(st["schedule"]["cron"], "30 5 * * 1-5", "{st}");

    // ---- search, and a hostile message that runs nothing ----
    b.goto(&format!("{}/console/search", server.url));
    b.fill("#q", "quarterly");
    b.click("#go");
    assert!(
        b.text("#hit-count").starts_with("1 result"),
        "{}",
        b.body_text()
    );
    b.screenshot("07-search");
    b.click("#results tr.hit a");
    assert!(b.url().contains(&hostile_id), "{}", b.url());
    // Give a script or an error handler every chance to run.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let title = b.title();
    assert!(title.starts_with("Quarterly figures"), "title {title:?}");
    assert!(!title.contains("PWNED"));
    assert_eq!(
        b.eval("document.body.hasAttribute('data-pwned')"),
        serde_json::Value::Bool(false)
    );
    assert_eq!(b.text("#mailbody h1"), "Quarterly figures");
    assert!(!b.exists("#mailbody script"));
    assert!(!b.exists("#mailbody [onerror]"));
    assert!(!b.exists("#mailbody [onmouseover]"));
    assert!(!b.exists("#mailbody img[src^=\"http\"]"));
    assert!(
        b.exists("#mailbody img[src^=\"data:image/gif\"]"),
        "inline image kept"
    );
    assert!(
        beacon.accept().is_err(),
        "the browser fetched the remote image"
    );
    assert!(!b.exists("#mailbody img[src=\"x\"]"));
    assert!(!b.exists("#mailbody a[href^=\"javascript\"]"));
    assert!(b.text("#attachments").contains("notes.txt"));
    // Sizes are indicatif's HumanBytes (binary units, two decimals).
    let size = indicatif::HumanBytes(first[3].len() as u64).to_string();
    assert!(
        b.text("#headers").contains(&size),
        "size {size}: {}",
        b.text("#headers")
    );
    b.screenshot("08-message");

    let raw = c
        .get(format!(
            "{}/console/messages/{MB}/{hostile_id}/raw",
            server.url
        ))
        .header("Cookie", &admin_cookie)
        .send()
        .expect("raw");
    assert_eq!(raw.status().as_u16(), 200);
    assert_eq!(raw.bytes().expect("bytes").as_ref(), first[3].as_bytes());
    let att = c
        .get(format!(
            "{}/console/messages/{MB}/{hostile_id}/attachments/0",
            server.url
        ))
        .header("Cookie", &admin_cookie)
        .send()
        .expect("attachment");
    assert_eq!(att.status().as_u16(), 200);
    assert!(
        att.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("notes.txt")
    );
    assert_eq!(
        att.text().expect("text").trim(),
        "attached notes for Quarterly figures"
    );

    // ---- sign out; a user who is not an administrator ----
    b.click("#signout");
    assert!(b.url().ends_with("/console/login"), "{}", b.url());
    // The removal cookie names the same path: the browser no longer has it.
    assert_eq!(
        b.cookie("satchel_session"),
        None,
        "sign-out drops the cookie"
    );
    let r = c
        .get(format!("{}/console/status", server.url))
        .header("Cookie", &admin_cookie)
        .send()
        .expect("get");
    assert_eq!(r.status().as_u16(), 303, "the signed-out session is gone");

    sign_in(&mut b, &server, BOB, BOB_PASSWORD);
    assert!(b.url().ends_with("/console/search"), "{}", b.url());
    assert!(
        !b.exists("a[href=\"/console/status\"]"),
        "no admin navigation"
    );
    b.fill("#q", "report");
    b.click("#go");
    assert!(
        b.text("#hit-count").starts_with("3 results"),
        "{}",
        b.body_text()
    );
    b.goto(&format!("{}/console/status", server.url));
    assert!(b.text("h1").starts_with("403"), "{}", b.body_text());
    b.screenshot("09-non-admin-403");
    let bob_cookie = format!(
        "satchel_session={}",
        b.cookie("satchel_session").expect("bob's session")
    );
    for path in [
        "/console/mailboxes",
        "/console/status",
        "/console/mailboxes/alice@example.com",
        "/console/mailboxes/alice@example.com/flush",
    ] {
        let r = c
            .get(format!("{}{path}", server.url))
            .header("Cookie", &bob_cookie)
            .send()
            .expect("get");
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
}

#[test]
fn console_refusals_repository_change_and_disable() {
    let server = Server::start();
    server.add_user(BOB, BOB_PASSWORD);
    let second = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["repo", "add", "cloud", "--s3", "s3://bucket/mail", "--cold"]);
    server.admin_ok(&[
        "repo",
        "add",
        "second",
        "--disk",
        second.path().to_str().expect("utf8"),
    ]);
    let mut b = Browser::launch();
    sign_in(&mut b, &server, "admin", ADMIN_PASSWORD);

    // A mailbox in cold storage cannot be enabled: the reason names it.
    b.fill("#address", "dave@example.com");
    b.fill("#repo", "cloud");
    b.click("#add");
    assert!(b.url().contains("dave@example.com"), "{}", b.url());
    b.click("#enable");
    let err = b.text("#error");
    assert!(err.contains("repository cloud"), "{err}");
    assert_eq!(b.text("#offline-state"), "Disabled");
    b.screenshot("10-enable-refused");

    // An existing address is refused with the reason.
    b.goto(&format!("{}/console/mailboxes", server.url));
    b.fill("#address", "dave@example.com");
    b.click("#add");
    assert!(!b.text("#error").is_empty(), "{}", b.body_text());

    // Change the default repository; enable, then disable.
    b.fill("#address", "erin@example.com");
    b.click("#add");
    b.fill("#repo", "second");
    b.click("#set-repo button");
    assert!(b.text("#notice").contains("second"), "{}", b.body_text());
    assert_eq!(
        b.eval_str("document.querySelector('#repo').value"),
        "second"
    );
    let shown = common::json(&server.admin_ok(&["mailbox", "show", "erin@example.com", "--json"]));
    assert_eq!(shown["repo"], "second", "{shown}");
    b.fill("#max_bytes", "5000000");
    b.click("#enable");
    assert_eq!(b.text("#offline-state"), "Enabled");
    assert!(b.text("#max-source").contains("5000000 bytes"));
    b.click("#disable button");
    assert_eq!(b.text("#offline-state"), "Disabled");
    b.goto(&format!("{}/console/mailboxes", server.url));
    assert_eq!(
        b.text("#mailboxes tr[data-mailbox=\"erin@example.com\"] .offline"),
        "off"
    );
    b.click("#signout");

    // A non-administrator with a valid session and CSRF token is still refused
    // by the service's own check.
    sign_in(&mut b, &server, BOB, BOB_PASSWORD);
    let csrf = b.eval_str("document.querySelector('input[name=csrf]').value");
    assert_eq!(csrf.len(), 64, "{csrf}");
    let bob_cookie = format!(
        "satchel_session={}",
        b.cookie("satchel_session").expect("session")
    );
    let r = http()
        .post(format!("{}/console/status/sync", server.url))
        .header("Cookie", &bob_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let r = http()
        .post(format!("{}/console/mailboxes", server.url))
        .header("Cookie", &bob_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&address=eve%40example.com"))
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    // Bob may search nothing yet: an empty search page, no admin navigation.
    b.fill("#q", "anything");
    b.click("#go");
    assert!(
        b.text("#hit-count").starts_with("0 results"),
        "{}",
        b.body_text()
    );
}
