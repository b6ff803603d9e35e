//! Directory sign-in (issue 13 point 3) against a real OpenLDAP (Debian's
//! slapd, started by tests/common/ldap.rs): directory users sign in to the
//! API, the console and `satchel laptop setup`; grants name directory
//! groups; members of the admin group administer; a wrong password, a
//! locked account and a stopped directory are refused, and local users keep
//! signing in.

mod common;
use common::ldap::{READER_DN, READER_PW, Slapd, group_dn};
use common::*;
use std::path::Path;
use std::process::Command;

const MB: &str = "sales@example.com";

/// A directory with dana and lee (group sales; lee's account locked), ada
/// (group admins) and sam (also a local user).
fn directory() -> Slapd {
    let slapd = Slapd::start();
    slapd.add_user("dana", "dana-directory-1");
    slapd.add_user("lee", "lee-directory-1");
    slapd.add_user("ada", "ada-directory-1");
    slapd.add_user("sam", "sam-directory-1");
    slapd.add_group("sales", &["dana", "lee"]);
    slapd.add_group("admins", &["ada"]);
    slapd.lock("lee");
    slapd
}

/// `satchel serve` with an `[ldap]` section aimed at `slapd`, searching as
/// the reader account (its password in SATCHEL_LDAP_PASSWORD).
fn service(slapd: &Slapd, dir: &Path) -> Server {
    let config = dir.join("satchel.toml");
    std::fs::write(
        &config,
        format!(
            "[ldap]
url = \"{url}\"
bind_dn = \"{READER_DN}\"
bind_password_env = \"SATCHEL_LDAP_PASSWORD\"
base_dn = \"{people}\"
user_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"
admin_group = \"{admins}\"
",
            url = slapd.url,
            people = common::ldap::PEOPLE,
            admins = group_dn("admins"),
        ),
    )
    .expect("write satchel.toml");
    Server::start_args_env(
        &["--config".as_ref(), config.as_os_str()],
        &[("SATCHEL_LDAP_PASSWORD", READER_PW)],
    )
}

/// Mailbox MB with one message, granted to the directory group sales and
/// synchronized for laptops.
fn sales_mailbox(server: &Server, dir: &Path) {
    server.admin_ok(&["mailbox", "add", MB]);
    let eml = dir.join("m.eml");
    std::fs::write(
        &eml,
        "From: Bob <bob@example.org>\r\nTo: sales@example.com\r\nSubject: lighthouse plans\r\n\
         Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <lighthouse@example.org>\r\n\r\n\
         The lighthouse opens in May.\r\n",
    )
    .expect("write eml");
    server.admin_ok(&["import", MB, eml.to_str().expect("utf8")]);
    let group = format!("group:{}", group_dn("sales"));
    let shown = server.admin_ok(&["mailbox", "grant", MB, &group]);
    assert!(shown.contains(&group), "{shown}");
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn laptop(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

/// The status and body of `GET /api/v1/whoami` as `user`.
fn whoami(server: &Server, user: &str, password: &str) -> (u16, String) {
    let r = console::http()
        .get(format!("{}/api/v1/whoami", server.url))
        .basic_auth(user, Some(password))
        .send()
        .expect("whoami");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn directory_users_sign_in_to_the_api_the_console_and_a_laptop() {
    let slapd = directory();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = service(&slapd, tmp.path());
    sales_mailbox(&server, tmp.path());

    // The API: dana searches the mailbox granted to her group.
    let found = json(&ok(server.as_user("dana", "dana-directory-1").args([
        "search",
        "lighthouse",
        "--json",
    ])));
    assert_eq!(found["hits"][0]["mailboxes"][0], MB, "{found}");
    let (status, body) = whoami(&server, "dana", "dana-directory-1");
    assert_eq!(
        (status, body.contains("\"admin\":false")),
        (200, true),
        "{body}"
    );
    // She is no administrator.
    let refused = run(server
        .as_user("dana", "dana-directory-1")
        .args(["user", "list"]));
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not an administrator"),
        "{}",
        stderr(&refused)
    );

    // The console, through its sign-in form.
    let cookie = console::sign_in_as(&server, "dana", "dana-directory-1");
    let page = console::http()
        .get(format!("{}/console/search?q=lighthouse", server.url))
        .header("Cookie", &cookie)
        .send()
        .expect("search page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().expect("body").contains("lighthouse plans"));

    // A laptop: set up with the directory password, then synchronized
    // with the API token it made.
    let home = tmp.path().join("dana-laptop");
    let setup = run_with_stdin(
        laptop(&home).args([
            "setup",
            "--server",
            &server.url,
            "--user",
            "dana",
            "--password-stdin",
        ]),
        "dana-directory-1",
    );
    assert!(setup.status.success(), "laptop setup: {}", stderr(&setup));
    let report = json(&ok(laptop(&home).args(["sync", "--json"])));
    let synced = synced_mailbox(&report, MB);
    assert_eq!(synced["messages"], 1, "{report}");

    // The sign-ins are in the audit trail, marked as the directory's.
    let audit = json(&server.admin_ok(&["audit", "list", "--json", "--limit", "1000"]));
    let entries = audit.as_array().expect("entries");
    for via in ["api+ldap", "console+ldap"] {
        assert!(
            entries.iter().any(|e| e["action"] == "signin"
                && e["actor"] == "dana"
                && e["target"]["via"] == via),
            "no directory sign-in of dana via {via}: {audit:#}"
        );
    }
}

#[test]
fn a_member_of_the_admin_group_administers() {
    let slapd = directory();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = service(&slapd, tmp.path());
    let ada = |args: &[&str]| ok(server.as_user("ada", "ada-directory-1").args(args));
    ada(&["mailbox", "add", MB]);
    let users = ada(&["user", "list"]);
    assert!(users.contains("admin"), "{users}");
    // A directory user can be granted a mailbox before their first sign-in.
    let shown = ada(&["mailbox", "grant", MB, "dana"]);
    assert!(shown.contains("dana"), "{shown}");
    let mailboxes = ok(server
        .as_user("dana", "dana-directory-1")
        .args(["mailbox", "list"]));
    assert!(mailboxes.contains(MB), "{mailboxes}");
}

#[test]
fn wrong_passwords_locked_accounts_and_a_stopped_directory_are_refused() {
    let mut slapd = directory();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = service(&slapd, tmp.path());
    server.add_user("sam", "sam-local-pw-1");

    let (status, body) = whoami(&server, "dana", "not-her-password");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("wrong user name or password"), "{body}");
    // An empty password is an anonymous bind to LDAP: never a sign-in.
    assert_eq!(whoami(&server, "dana", "").0, 401);
    // lee's password is right, but the directory locked the account.
    let (status, body) = whoami(&server, "lee", "lee-directory-1");
    assert_eq!(status, 401, "{body}");
    // A local user of the same name wins: sam's directory password is not his.
    assert_eq!(whoami(&server, "sam", "sam-directory-1").0, 401);
    assert_eq!(whoami(&server, "sam", "sam-local-pw-1").0, 200);
    let audit = json(&server.admin_ok(&["audit", "list", "--json", "--limit", "1000"]));
    for who in ["dana", "lee"] {
        assert!(
            audit
                .as_array()
                .expect("entries")
                .iter()
                .any(|e| e["action"] == "signin.failed" && e["actor"] == who),
            "no failed sign-in of {who}: {audit:#}"
        );
    }

    // The directory stops: its users get a 503 naming it, local users sign
    // in as before.
    let url = slapd.url.clone();
    slapd.stop();
    let (status, body) = whoami(&server, "dana", "dana-directory-1");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&url), "{body}");
    let cli = run(server
        .as_user("dana", "dana-directory-1")
        .args(["mailbox", "list"]));
    assert!(!cli.status.success());
    assert!(stderr(&cli).contains(&url), "{}", stderr(&cli));
    assert_eq!(whoami(&server, "sam", "sam-local-pw-1").0, 200);
    server.admin_ok(&["user", "list"]);
}

#[test]
fn wrong_directory_passwords_are_throttled() {
    let slapd = directory();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = service(&slapd, tmp.path());
    for _ in 0..10 {
        assert_eq!(whoami(&server, "dana", "guess-guess-1").0, 401);
    }
    // Locked out: even the right password waits.
    let (status, body) = whoami(&server, "dana", "dana-directory-1");
    assert_eq!(status, 429, "{body}");
}
