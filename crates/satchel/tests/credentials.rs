//! Credentials (issue 9, points 5, 6 and 10): password guessing is throttled
//! per client address and per user, passwords can be changed, API tokens
//! listed and revoked, users removed, and a laptop whose token was revoked
//! says so and keeps serving its local copy.
//!
//! Every client address is a real one: the service listens on 127.0.0.1 and
//! the guesser connects from 127.0.0.2 and up (all of 127/8 is loopback).

mod common;
use common::*;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MB: &str = "carol@example.com";

/// An HTTP client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::blocking::Client {
    let from: IpAddr = from.parse().expect("an address");
    reqwest::blocking::Client::builder()
        .local_address(from)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// `GET /api/v1/whoami` as `user`:`password` from `from`.
fn whoami(server: &Server, from: &str, user: &str, password: &str) -> reqwest::blocking::Response {
    client_from(from)
        .get(format!("{}/api/v1/whoami", server.url))
        .basic_auth(user, Some(password))
        .send()
        .expect("whoami")
}

fn retry_after(r: &reqwest::blocking::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a 429 carries Retry-After in seconds: {:?}", r.headers()))
}

fn log_of(server: &Server) -> String {
    std::fs::read_to_string(&server.log).expect("server log")
}

/// `satchel laptop ...` in `home`.
fn laptop(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

fn setup_home(server: &Server, user: &str, password: &str, home: &Path) -> std::process::Output {
    let mut cmd = laptop(home);
    cmd.args([
        "setup",
        "--server",
        &server.url,
        "--user",
        user,
        "--password-stdin",
    ]);
    output_with_stdin(&mut cmd, password)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Signs in to the console from `from`; the session cookie, or the answer.
fn console_login(
    server: &Server,
    from: &str,
    user: &str,
    password: &str,
) -> Result<String, Box<reqwest::blocking::Response>> {
    let r = client_from(from)
        .post(format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        // Test names and passwords are plain letters, digits and '-'.
        .body(format!("user={user}&password={password}"))
        .send()
        .expect("console login");
    match r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
        Some(c) if r.status().is_redirection() => {
            Ok(c.split(';').next().expect("cookie").to_string())
        }
        _ => Err(Box::new(r)),
    }
}

fn console_page(server: &Server, cookie: &str) -> reqwest::StatusCode {
    client_from("127.0.0.1")
        .get(format!("{}/console/search", server.url))
        .header("cookie", cookie)
        .send()
        .expect("console page")
        .status()
}

#[test]
fn guessing_locks_out_the_guesser_not_the_others() {
    let server = Server::start();
    server.add_user("carol", "carol-password");
    server.add_user("dave", "dave-password");
    // Carol has signed in from her own address before.
    ok(server
        .as_user("carol", "carol-password")
        .args(["mailbox", "list"]));

    // Ten wrong passwords from 127.0.0.2 are ten 401s...
    for n in 0..10 {
        let r = whoami(&server, "127.0.0.2", "carol", &format!("guess-{n}"));
        assert_eq!(r.status(), 401, "guess {n}");
    }
    // ...then 429 with Retry-After, even for the right password: nothing is
    // hashed for that address until the lock expires.
    for (user, password) in [("carol", "guess-10"), ("carol", "carol-password")] {
        let r = whoami(&server, "127.0.0.2", user, password);
        assert_eq!(r.status(), 429, "{user} from the guessing address");
        let secs = retry_after(&r);
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
        let body = r.text().expect("body");
        assert!(body.contains("too many failed sign-ins"), "{body}");
    }
    // The console and another user from that address are locked out too.
    let refused = console_login(&server, "127.0.0.2", "dave", "dave-password")
        .expect_err("the console refuses the guessing address");
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused) >= 1);

    // Another user elsewhere is not affected.
    assert_eq!(
        whoami(&server, "127.0.0.3", "dave", "dave-password").status(),
        200
    );
    console_login(&server, "127.0.0.3", "dave", "dave-password").expect("dave's console");
    // Carol's right password still works from where she signed in before,
    // with the command line and in the console...
    let me = json(&ok(server
        .as_user("carol", "carol-password")
        .args(["mailbox", "list", "--json"])));
    assert!(me.is_array(), "{me}");
    console_login(&server, "127.0.0.1", "carol", "carol-password").expect("carol's console");
    // ...and from an address she never used: one guessing address locks
    // itself, not her.
    assert_eq!(
        whoami(&server, "127.0.0.4", "carol", "carol-password").status(),
        200
    );

    // A guesser spread over many addresses, one guess each: after ten, dave's
    // name is locked for addresses he never signed in from...
    for n in 0..10 {
        let r = whoami(&server, &format!("127.0.2.{}", n + 1), "dave", "guess");
        assert_eq!(r.status(), 401, "spread guess {n}");
    }
    let r = whoami(&server, "127.0.3.1", "dave", "dave-password");
    assert_eq!(r.status(), 429, "dave's name from a new address");
    assert!(retry_after(&r) >= 1);
    // ...but not where he works.
    assert_eq!(
        whoami(&server, "127.0.0.3", "dave", "dave-password").status(),
        200
    );

    // Each failure and the lockouts are in the service's log.
    let log = log_of(&server);
    let failures = log
        .lines()
        .filter(|l| l.contains("password sign-in failed") && l.contains("127.0.0.2"))
        .count();
    assert_eq!(failures, 10, "{log}");
    assert!(
        log.lines().any(
            |l| l.contains("sign-in lockout: client address locked") && l.contains("127.0.0.2")
        ),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("sign-in lockout: user locked") && l.contains("\"dave\"")),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("sign-in lockout: user locked") && l.contains("\"carol\"")),
        "{log}"
    );
}

#[test]
fn laptop_setup_is_throttled_like_the_api() {
    let server = Server::start();
    server.add_user("erin", "erin-password");
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("erin");
    for n in 0..10 {
        let out = setup_home(&server, "erin", &format!("wrong-{n}"), &home);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    }
    let out = setup_home(&server, "erin", "erin-password", &home);
    assert!(!out.status.success(), "locked out");
    let err = stderr(&out);
    assert!(
        err.contains("429") && err.contains("too many failed sign-ins"),
        "{err}"
    );
}

#[test]
fn a_flood_of_guesses_hashes_a_few_at_a_time() {
    let server = Server::start_with(&[("SATCHEL_PASSWORD_CHECKS", "2")]);
    server.add_user("frank", "frank-password");
    let token = json(
        &client_from("127.0.0.1")
            .post(format!("{}/api/v1/tokens", server.url))
            .basic_auth("frank", Some("frank-password"))
            .json(&serde_json::json!({"label": "test"}))
            .send()
            .expect("token")
            .text()
            .expect("body"),
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    // 48 guessers from 48 addresses, each for another name, all at once.
    let guessers: Vec<_> = (0..48)
        .map(|i| {
            let url = format!("{}/api/v1/whoami", server.url);
            std::thread::spawn(move || {
                client_from(&format!("127.0.1.{}", i + 1))
                    .get(url)
                    .basic_auth(format!("nobody{i}"), Some("guess"))
                    .send()
                    .expect("guess")
                    .status()
            })
        })
        .collect();
    // Meanwhile a token still gets its answer.
    let r = client_from("127.0.0.1")
        .get(format!("{}/api/v1/whoami", server.url))
        .bearer_auth(&token)
        .send()
        .expect("whoami by token");
    assert_eq!(r.status(), 200);
    for g in guessers {
        assert_eq!(g.join().expect("guesser"), 401);
    }
    let log = log_of(&server);
    let running: Vec<usize> = log
        .lines()
        .filter(|l| l.contains("password sign-in failed"))
        .filter_map(|l| l.split("concurrent_hashes=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(running.len(), 48, "{log}");
    assert!(
        running.iter().all(|&n| (1..=2).contains(&n)),
        "at most 2 hashes at once: {running:?}"
    );
}

#[test]
fn scheme_names_are_case_insensitive() {
    let server = Server::start();
    let http = client_from("127.0.0.1");
    let url = format!("{}/api/v1/whoami", server.url);
    // What reqwest would send, without its "Basic " prefix.
    let basic = http
        .get(&url)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .build()
        .expect("request")
        .headers()["authorization"]
        .to_str()
        .expect("ascii")
        .strip_prefix("Basic ")
        .expect("Basic")
        .to_string();
    for scheme in ["Basic", "basic", "BASIC"] {
        let r = http
            .get(&url)
            .header("authorization", format!("{scheme} {basic}"))
            .send()
            .expect("whoami");
        assert_eq!(r.status(), 200, "scheme {scheme}");
    }
    let token = json(&server.admin_ok(&["token", "list", "--json"]));
    assert_eq!(token.as_array().map(Vec::len), Some(0));
    let created = json(
        &http
            .post(format!("{}/api/v1/tokens", server.url))
            .header("authorization", format!("bAsIc {basic}"))
            .json(&serde_json::json!({"label": "case"}))
            .send()
            .expect("token")
            .text()
            .expect("body"),
    );
    let token = created["token"].as_str().expect("token");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = http
            .get(&url)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .expect("whoami");
        assert_eq!(r.status(), 200, "scheme {scheme}");
    }
}

/// A service with MB granted to carol and enabled offline, and carol's laptop
/// home synchronized with it. Returns the id of a message in the local copy.
fn carol_with_laptop(server: &Server, home: &Path) -> String {
    let dir = home.parent().expect("parent");
    let eml = dir.join("numbat.eml");
    std::fs::write(
        &eml,
        "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\nSubject: numbat report\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <numbat@example.org>\r\n\r\nthe numbat numbers\r\n",
    )
    .expect("write");
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["import", MB, eml.to_str().expect("utf8")]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let out = setup_home(server, "carol", "carol-password", home);
    assert!(out.status.success(), "{}", stderr(&out));
    ok(laptop(home).args(["sync"]));
    sha256_hex(&std::fs::read(&eml).expect("read"))
}

/// The laptop says its token was revoked, and serves its local copy.
fn assert_laptop_revoked_but_serving(home: &Path, id: &str) {
    let out = run(laptop(home).args(["sync"]));
    assert!(!out.status.success(), "sync with a revoked token fails");
    let err = stderr(&out);
    assert!(
        err.contains("token revoked") && err.contains("satchel laptop setup"),
        "{err}"
    );
    let out = run(laptop(home).args(["open", &format!("satchel://{MB}/{id}")]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sha256_hex(&out.stdout), id, "the local copy's bytes");
    assert!(stderr(&out).contains("token revoked"), "{}", stderr(&out));
    let found = run(laptop(home).args(["search", "numbat"]));
    assert!(found.status.success(), "{}", stderr(&found));
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("from the local index"),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
    let status = ok(laptop(home).args(["status"]));
    assert!(status.contains("token revoked"), "{status}");
    assert!(
        home.join("replicas").join(MB).exists(),
        "the local copy stays"
    );
}

#[test]
fn a_password_change_revokes_the_users_tokens() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let id = carol_with_laptop(&server, &home);
    server.add_user("dave", "dave-password");
    let carol = |password: &str| server.as_user("carol", password);
    let listed = json(&ok(
        carol("carol-password").args(["token", "list", "--json"])
    ));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let cookie =
        console_login(&server, "127.0.0.1", "carol", "carol-password").expect("console session");
    assert_eq!(console_page(&server, &cookie), 200);

    // Not someone else's password, and not with a token.
    let out = output_with_stdin(
        carol("carol-password").args(["user", "passwd", "dave", "--password-stdin"]),
        "dave-new-password",
    );
    assert!(
        !out.status.success() && stderr(&out).contains("403"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        json(&std::fs::read_to_string(home.join("config.json")).expect("config"));
    let token = config["token"].as_str().expect("token in the home");
    let mut by_token = satchel();
    by_token
        .env("SATCHEL_SERVER", &server.url)
        .env("SATCHEL_TOKEN", token)
        .args(["user", "passwd", "carol", "--password-stdin"]);
    let out = output_with_stdin(&mut by_token, "stolen-token-password");
    assert!(
        !out.status.success() && stderr(&out).contains("not an API token"),
        "{}",
        stderr(&out)
    );

    // Her own: the laptop's token goes with the old password.
    let out = output_with_stdin(
        carol("carol-password").args(["user", "passwd", "carol", "--password-stdin"]),
        "carol-new-password",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 API token(s) revoked"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let old = run(carol("carol-password").args(["mailbox", "list"]));
    assert!(!old.status.success() && stderr(&old).contains("401"));
    let listed = json(&ok(
        carol("carol-new-password").args(["token", "list", "--json"])
    ));
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    assert_eq!(
        console_page(&server, &cookie),
        303,
        "the console session ends"
    );
    assert_laptop_revoked_but_serving(&home, &id);

    // Setting up again brings the laptop back.
    let out = setup_home(&server, "carol", "carol-new-password", &home);
    assert!(out.status.success(), "{}", stderr(&out));
    ok(laptop(&home).args(["sync"]));

    // An administrator may change anyone's password.
    let out = output_with_stdin(
        server
            .admin()
            .args(["user", "passwd", "dave", "--password-stdin"]),
        "dave-new-password",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    ok(server
        .as_user("dave", "dave-new-password")
        .args(["mailbox", "list"]));
}

#[test]
fn tokens_are_listed_and_revoked_by_their_owner_or_an_admin() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let id = carol_with_laptop(&server, &home);
    server.add_user("dave", "dave-password");
    let dave_home = tmp.path().join("dave");
    let out = setup_home(&server, "dave", "dave-password", &dave_home);
    assert!(out.status.success(), "{}", stderr(&out));

    let carol = || server.as_user("carol", "carol-password");
    let mine = json(&ok(carol().args(["token", "list", "--json"])));
    let mine = mine.as_array().expect("list");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["user"], "carol");
    assert!(
        mine[0]["label"]
            .as_str()
            .expect("label")
            .contains("satchel laptop")
    );
    let token_id = mine[0]["id"].as_str().expect("id").to_string();
    assert_eq!(token_id.len(), 16);
    let all = json(&server.admin_ok(&["token", "list", "--json"]));
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(2),
        "admin sees all: {all}"
    );

    // Dave cannot revoke carol's token: to him it does not exist.
    let out = run(server
        .as_user("dave", "dave-password")
        .args(["token", "revoke", &token_id]));
    assert!(
        !out.status.success() && stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
    let bad = run(carol().args(["token", "revoke", "../../etc"]));
    assert!(!bad.status.success() && stderr(&bad).contains("400"));

    let out = ok(carol().args(["token", "revoke", &token_id]));
    assert!(out.contains(&token_id), "{out}");
    assert_laptop_revoked_but_serving(&home, &id);
    // Dave's laptop is untouched.
    ok(laptop(&dave_home).args(["sync"]));
}

#[test]
fn removing_a_user_revokes_everything_they_hold() {
    let mut server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let id = carol_with_laptop(&server, &home);
    let cookie =
        console_login(&server, "127.0.0.1", "carol", "carol-password").expect("console session");

    let out = run(server
        .as_user("carol", "carol-password")
        .args(["user", "remove", "carol"]));
    assert!(!out.status.success() && stderr(&out).contains("403"));
    let out = server.admin_ok(&["user", "remove", "carol"]);
    assert!(
        out.contains("1 API token(s) and 1 grant(s) revoked"),
        "{out}"
    );
    let gone = run(server
        .as_user("carol", "carol-password")
        .args(["mailbox", "list"]));
    assert!(!gone.status.success() && stderr(&gone).contains("401"));
    assert_eq!(console_page(&server, &cookie), 303);
    let mb = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    assert_eq!(mb["grants"], serde_json::json!([]));
    assert_laptop_revoked_but_serving(&home, &id);

    // The last administrator stays; with another one, admin can go, and a
    // restart does not bring it back.
    let out = run(server.admin().args(["user", "remove", "admin"]));
    assert!(
        !out.status.success() && stderr(&out).contains("last administrator"),
        "{}",
        stderr(&out)
    );
    let out = output_with_stdin(
        server
            .admin()
            .args(["user", "add", "root", "--admin", "--password-stdin"]),
        "root-password",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    ok(server
        .as_user("root", "root-password")
        .args(["user", "remove", "admin"]));
    let data = server.data.clone();
    server.kill();
    let server = Server::start_in(&data);
    let users = json(&ok(server
        .as_user("root", "root-password")
        .args(["user", "list", "--json"])));
    let names: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["root"]);
}

/// Kills the child process when dropped (the agent runs until stopped).
/// Polls `url` until `done` holds for its JSON, for at most a minute.
fn wait_for_json(url: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client_from("127.0.0.1").get(url).send()
            && let Ok(v) = r.json::<serde_json::Value>()
            && done(&v)
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_revoked_laptop_agent_says_so_and_serves_its_local_copy() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("carol");
    let id = carol_with_laptop(&server, &home);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _agent = Kill(
        laptop(&home)
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--interval", "1", "--min-retry", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    wait_for_json(&format!("{base}/status.json"), "the agent syncs", |v| {
        v["mailboxes"][0]["messages"] == 1
    });
    let tokens = json(&server.admin_ok(&["token", "list", "--json"]));
    let token_id = tokens[0]["id"].as_str().expect("carol's token");
    server.admin_ok(&["token", "revoke", token_id]);

    // Its next check finds out, and says what to do.
    wait_for_json(
        &format!("{base}/status.json"),
        "the agent reports the revoked token",
        |v| {
            v["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("token revoked") && e.contains("satchel laptop setup"))
        },
    );
    // Links still open, from the local copy.
    let r = client_from("127.0.0.1")
        .get(format!("{base}/m/{MB}/{id}.eml"))
        .send()
        .expect("link");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-satchel-source"], "local-copy");
    assert_eq!(sha256_hex(&r.bytes().expect("bytes")), id);
    let page = client_from("127.0.0.1")
        .get(format!("{base}/"))
        .send()
        .expect("status page")
        .text()
        .expect("text");
    assert!(page.contains("token revoked"), "{page}");
}
