//! Archive runs that go wrong (issue 3, point 5): every IMAP failure is a clear
//! error on that run, and nothing is lost.

mod common;
mod imap_support;

use common::dovecot::Dovecot;
use common::{Server, json};
use imap_support::*;
use std::time::{Duration, Instant};

const MB: &str = "erin@example.com";

fn last_run(server: &Server, address: &str) -> serde_json::Value {
    let runs = json(&server.admin_ok(&["archive", "runs", address, "--json"]));
    runs[0].clone()
}

#[test]
fn refused_login_missing_folder_and_refused_append_are_clear_errors() {
    let dc = Dovecot::start(&[("erin", IMAP_PW)]);
    let server = Server::start();
    let msgs = pick_messages(400, 12, 0);
    let mut imap = dc.login("erin", IMAP_PW);
    for raw in &msgs {
        imap.append("INBOX", &["\\Seen"], OLD_DATE, raw);
    }

    // Wrong password: 502 with Dovecot's words, a failed run record, nothing touched.
    add_imap_mailbox(
        &server,
        &dc,
        "wrong@example.com",
        "erin",
        "not-the-password",
    );
    let err = archive_err(&server, &["wrong@example.com", "--older-than", "1"]);
    assert!(err.contains("HTTP 502"), "{err}");
    assert!(err.contains("refused LOGIN as erin"), "{err}");
    assert!(
        err.contains("Authentication failed"),
        "the server's words: {err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    let run = last_run(&server, "wrong@example.com");
    assert_eq!(run["outcome"], "failed");
    assert!(
        run["detail"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("Authentication failed")
    );

    // Nothing listening: 502 naming the server.
    let gone = common::free_port();
    common::ok(
        server
            .admin()
            .args(["mailbox", "add", "nobody@example.com"])
            .args([
                "--imap",
                &format!("imap://127.0.0.1:{gone}"),
                "--imap-user",
                "x",
            ])
            .args(["--imap-password-env", "SATCHEL_TEST_IMAP_PW"])
            .env("SATCHEL_TEST_IMAP_PW", "x"),
    );
    let err = archive_err(&server, &["nobody@example.com"]);
    assert!(
        err.contains("HTTP 502") && err.contains(&format!("127.0.0.1:{gone}")),
        "{err}"
    );

    // A mailbox without IMAP settings, a non-administrator: refused before any run.
    server.admin_ok(&["mailbox", "add", "plain@example.com"]);
    let err = archive_err(&server, &["plain@example.com"]);
    assert!(
        err.contains("HTTP 400") && err.contains("no IMAP server"),
        "{err}"
    );
    server.add_user("frank", "frank-password-1");
    let out = common::run(
        server
            .as_user("frank", "frank-password-1")
            .args(["archive", MB]),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 403"));

    // A folder that does not exist: 400 with the server's words, nothing moved.
    add_imap_mailbox(&server, &dc, MB, "erin", IMAP_PW);
    let err = archive_err(&server, &[MB, "--folder", "INBOX", "--folder", "Nope"]);
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(err.contains("\"Nope\""), "{err}");
    assert!(
        err.contains("Mailbox doesn't exist"),
        "the server's words: {err}"
    );
    imap.select("INBOX");
    assert_eq!(imap.messages().len(), msgs.len());
    let mb = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    assert_eq!(mb["messages"], 0);

    // The server rejects APPEND (its Maildir tmp/ is not writable): the batch
    // is archived, no stub, nothing expunged; fixed, a re-run completes.
    let tmp = dc.dir.path().join("mail/erin/Maildir/tmp");
    set_mode(&tmp, 0o555);
    let err = archive_err(&server, &[MB, "--older-than", "30"]);
    set_mode(&tmp, 0o700);
    assert!(err.contains("HTTP 502") && err.contains("APPEND"), "{err}");
    assert!(err.contains("nothing was lost"), "{err}");
    imap.select("INBOX");
    let now = imap.messages();
    assert_eq!(
        now.len(),
        msgs.len(),
        "no original expunged without its stub"
    );
    let (o, s) = check_accounted(&server, MB, &now, &msgs);
    assert_eq!((o, s), (msgs.len(), 0));
    let run = last_run(&server, MB);
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["detail"]["archived"], msgs.len(), "{run}");
    let s = archive_ok(&server, &[MB, "--older-than", "30"]);
    assert_eq!(s["archived"], 0, "{s}");
    assert_eq!(s["already_archived"], msgs.len(), "{s}");
    assert_eq!(s["stubbed"], msgs.len(), "{s}");
    imap.select("INBOX");
    let (o, s) = check_accounted(&server, MB, &imap.messages(), &msgs);
    assert_eq!((o, s), (0, msgs.len()));
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn dovecot_killed_mid_run_is_a_clear_error_and_a_rerun_completes() {
    let dc = Dovecot::start(&[("gina", IMAP_PW)]);
    let server = Server::start();
    add_imap_mailbox(&server, &dc, "gina@example.com", "gina", IMAP_PW);
    let msgs = many_messages(1500);
    let mut imap = dc.login("gina", IMAP_PW);
    for (i, raw) in msgs.iter().enumerate() {
        imap.append("INBOX", FLAG_SETS[i % FLAG_SETS.len()], OLD_DATE, raw);
    }
    imap.logout();

    let child = server
        .admin()
        .args([
            "archive",
            "gina@example.com",
            "--older-than",
            "30",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn archive");
    // Kill Dovecot once the run has visibly made progress.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = last_run(&server, "gina@example.com");
        if run["outcome"] == "running" && run["detail"]["archived"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            run["outcome"] != "ok",
            "the run ended before Dovecot could be stopped: {run}"
        );
        assert!(Instant::now() < deadline, "no progress: {run}");
        std::thread::sleep(Duration::from_millis(20));
    }
    dc.kill();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("HTTP 502"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", dc.port)),
        "names the server: {err}"
    );
    assert!(err.contains("nothing was lost"), "{err}");

    dc.restart();
    let mut imap = dc.login("gina", IMAP_PW);
    imap.select("INBOX");
    let (originals, stubbed) =
        check_accounted(&server, "gina@example.com", &imap.messages(), &msgs);
    assert!(originals > 0, "stopped mid-run");
    eprintln!("after the Dovecot kill: {originals} originals, {stubbed} stubbed");

    let s = archive_ok(&server, &["gina@example.com", "--older-than", "30"]);
    assert_eq!(s["outcome"], "ok");
    assert_eq!(s["failed"], 0, "{s}");
    imap.select("INBOX");
    let (originals, stubbed) =
        check_accounted(&server, "gina@example.com", &imap.messages(), &msgs);
    assert_eq!((originals, stubbed), (0, msgs.len()));
    let mb = json(&server.admin_ok(&["mailbox", "show", "gina@example.com", "--json"]));
    assert_eq!(mb["messages"], msgs.len());
}
