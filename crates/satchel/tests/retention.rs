//! Retention (issue 11 point 1), driven through the `satchel` binary:
//! periods per mailbox and by default, a dry run that removes nothing, an
//! apply whose messages leave search, `get`, the offline repository and a
//! synced laptop copy while another mailbox keeps a shared message, and the
//! scheduled expiry.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MB: &str = "ret@example.com";
const KEEP: &str = "keep@example.com";

/// A message with `subject`, dated `date` (an RFC 2822 date, or None: no
/// Date header at all).
fn mail(subject: &str, date: Option<&str>) -> String {
    let date = date.map(|d| format!("Date: {d}\r\n")).unwrap_or_default();
    format!(
        "From: Bob <bob@example.org>\r\nTo: ret@example.com\r\nSubject: {subject}\r\n{date}\
         Message-ID: <{}@example.org>\r\n\r\n{subject} body\r\n",
        subject.replace(' ', ".")
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write eml");
    p
}

const OLD: &str = "Mon, 02 Sep 2002 12:00:00 +0000";

/// Imports the messages, one file each; returns their ids in order.
fn import(server: &Server, mb: &str, dir: &Path, messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = write(dir, &format!("{mb}-{i}.eml"), m);
            server.admin_ok(&["import", mb, p.to_str().expect("utf8")]);
            sha256_hex(m.as_bytes())
        })
        .collect()
}

fn apply(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut cmd = server.admin();
    cmd.args(["retention", "apply", "--json"]).args(args);
    json(&ok(&mut cmd))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn expired_mail_leaves_search_get_the_offline_repository_and_a_laptop() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", KEEP]);
    let now = chrono::Utc::now().to_rfc2822();
    let ids = import(
        &server,
        MB,
        tmp.path(),
        &[
            mail("ancient quokka", Some(OLD)),
            mail("ancient wombat", Some("Tue, 01 Apr 2003 08:00:00 +0000")),
            mail("fresh platypus", Some(&now)),
            // No Date header: its age counts from its archive time (now).
            mail("undated ancient echidna", None),
            mail("shared ancient numbat", Some(OLD)),
        ],
    );
    let shared = ids[4].clone();
    import(
        &server,
        KEEP,
        tmp.path(),
        &[mail("shared ancient numbat", Some(OLD))],
    );
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tmp.path().join("carol");
    laptop_synced(&server, "carol", "carol-password", &home);

    server.admin_ok(&["retention", "set", MB, "--days", "30"]);
    let shown = json(&server.admin_ok(&["retention", "show", MB, "--json"]));
    assert_eq!(
        (shown["days"].as_u64(), shown["source"].as_str()),
        (Some(30), Some("mailbox"))
    );
    let keep = json(&server.admin_ok(&["retention", "show", KEEP, "--json"]));
    assert_eq!(
        (keep["days"].as_u64(), keep["source"].as_str()),
        (None, Some("default"))
    );

    let expected = sorted(vec![ids[0].clone(), ids[1].clone(), shared.clone()]);
    let dry = apply(&server, &[MB, "--dry-run"]);
    assert_eq!(removed_ids(&dry), expected, "{dry}");
    assert_eq!(dry["dry_run"], true);
    let quokka = dry["removed"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == ids[0].as_str()))
        .expect("quokka listed");
    assert_eq!(quokka["date"], "2002-09-02T12:00:00Z");
    assert_eq!(quokka["subject"], "ancient quokka");
    assert_eq!(quokka["mailbox"], MB);
    assert_eq!(
        server.search_ids(&["ancient", "--mailbox", MB]).len(),
        4,
        "a dry run removes nothing"
    );

    let packs_before = common::pack_bytes(&server.data);
    let text = server.admin_ok(&["retention", "apply", MB]);
    // quokka and wombat are in no mailbox now: their pack was rewritten
    // without them (the numbat stays for the other mailbox).
    let packs_after = common::pack_bytes(&server.data);
    assert!(
        packs_after < packs_before,
        "expired bytes left the disk: {packs_before} -> {packs_after}"
    );
    assert!(
        text.contains(&ids[0]) && text.contains("ancient quokka"),
        "{text}"
    );
    assert!(text.contains("removed 3 message(s)"), "{text}");
    assert!(
        apply(&server, &[MB])["removed"]
            .as_array()
            .expect("removed")
            .is_empty()
    );

    assert_eq!(
        server.search_ids(&["ancient", "--mailbox", MB]),
        vec![ids[3].clone()],
        "only the undated message (archived now) is left"
    );
    let gone = run(server.admin().args(["get", MB, &ids[0]]));
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("404"),
        "{gone:?}"
    );
    // The other mailbox keeps forever: the shared message stays there.
    ok(server.admin().args(["get", KEEP, &shared]));
    assert_eq!(
        server.search_ids(&["numbat", "--mailbox", KEEP]),
        vec![shared.clone()]
    );

    let audit = json(&server.admin_ok(&["audit", "list", "--json", "--mailbox", MB]));
    let deleted = audit
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "message.delete")
        .unwrap_or_else(|| panic!("no message.delete in {audit}"));
    assert_eq!(deleted["target"]["reason"], "retention");
    assert!(
        audit
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "retention.set")
    );

    // The next offline update carries the removals to the laptop's copy.
    server.admin_ok(&["offline", "sync-now"]);
    ok(laptop_in(&home).args(["sync", "--json"]));
    let mut server = server;
    server.kill();
    let local = json(&ok(laptop_in(&home).args(["search", "ancient", "--json"])));
    assert_eq!(local["source"], "local", "{local}");
    let local_ids: Vec<&str> = local["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert_eq!(local_ids, vec![ids[3].as_str()], "{local}");
    let fresh = json(&ok(laptop_in(&home).args(["search", "platypus", "--json"])));
    assert_eq!(fresh["hits"].as_array().map(Vec::len), Some(1), "{fresh}");
}

#[test]
fn the_default_period_applies_to_mailboxes_without_their_own() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", KEEP]);
    let old_ret = import(&server, MB, tmp.path(), &[mail("old ret", Some(OLD))]);
    import(&server, KEEP, tmp.path(), &[mail("old keep", Some(OLD))]);

    // Keep forever is the default: nothing expires.
    assert!(removed_ids(&apply(&server, &[])).is_empty());
    server.admin_ok(&["retention", "set", "--default", "--days", "365"]);
    server.admin_ok(&["retention", "set", KEEP, "--days", "none"]);
    let report = json(&server.admin_ok(&["retention", "show", "--json"]));
    assert_eq!(report["default_days"], 365);
    assert_eq!(report["schedule"], "0 3 * * *");
    let ret = json(&server.admin_ok(&["retention", "show", MB, "--json"]));
    assert_eq!(
        (ret["days"].as_u64(), ret["source"].as_str()),
        (Some(365), Some("default"))
    );

    let r = apply(&server, &[]);
    assert_eq!(removed_ids(&r), old_ret);
    assert_eq!(r["mailboxes"], serde_json::json!([MB]));
    assert_eq!(server.search_ids(&["old", "--mailbox", KEEP]).len(), 1);

    // Back to the default: the mailbox's old mail now expires too.
    server.admin_ok(&["retention", "set", KEEP, "--days", "default"]);
    let keep = json(&server.admin_ok(&["retention", "show", KEEP, "--json"]));
    assert_eq!(keep["source"], "default");
    assert_eq!(
        apply(&server, &[KEEP])["removed"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn bad_settings_and_callers_are_refused_and_change_nothing() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let zero = run(server.admin().args(["retention", "set", MB, "--days", "0"]));
    assert!(!zero.status.success());
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("at least 1 day"),
        "{zero:?}"
    );
    let unknown =
        run(server
            .admin()
            .args(["retention", "set", "nobody@example.com", "--days", "5"]));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("404"),
        "{unknown:?}"
    );
    let words = run(server
        .admin()
        .args(["retention", "set", MB, "--days", "soon"]));
    assert!(!words.status.success());
    let cron = run(server.admin().args(["retention", "schedule", "every day"]));
    assert!(
        String::from_utf8_lossy(&cron.stderr).contains("cron"),
        "{cron:?}"
    );
    server.add_user("carol", "carol-password");
    let carol = run(server.as_user("carol", "carol-password").args([
        "retention",
        "set",
        MB,
        "--days",
        "5",
    ]));
    assert!(
        String::from_utf8_lossy(&carol.stderr).contains("403"),
        "{carol:?}"
    );
    let carol_apply = run(server
        .as_user("carol", "carol-password")
        .args(["retention", "apply"]));
    assert!(String::from_utf8_lossy(&carol_apply.stderr).contains("403"));
    let shown = json(&server.admin_ok(&["retention", "show", MB, "--json"]));
    assert_eq!(
        (shown["days"].as_u64(), shown["source"].as_str()),
        (None, Some("default"))
    );
}

#[test]
fn the_scheduled_expiry_runs() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    let ids = import(&server, MB, tmp.path(), &[mail("old scheduled", Some(OLD))]);
    server.admin_ok(&["retention", "set", MB, "--days", "10"]);
    // Every two seconds (seconds first: 6 fields).
    let s = json(&server.admin_ok(&["retention", "schedule", "*/2 * * * * *", "--json"]));
    assert_eq!(s["cron"], "*/2 * * * * *");
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let jobs = json(&server.admin_ok(&["jobs", "--json"]));
        let done = jobs.as_array().and_then(|a| {
            a.iter()
                .find(|j| j["kind"] == "retention" && j["outcome"] == "ok")
                .cloned()
        });
        if let Some(j) = done {
            break j;
        }
        assert!(Instant::now() < deadline, "no retention job ran: {jobs}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(job["detail"]["trigger"], "schedule", "{job}");
    assert!(job["firing"].is_string(), "{job}");
    let gone = run(server.admin().args(["get", MB, &ids[0]]));
    assert!(!gone.status.success(), "the scheduled expiry removed it");
}
