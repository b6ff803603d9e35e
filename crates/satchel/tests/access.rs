//! Who may do what: credentials, grants, administrators (issue: archive core, 5).

mod common;
use common::*;

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\nSubject: {subject}\r\nDate: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

fn setup() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    for (mb, word) in [
        ("carol@example.com", "quokka"),
        ("dave@example.com", "wombat"),
    ] {
        server.admin_ok(&["mailbox", "add", mb]);
        let file = dir.path().join(format!("{word}.eml"));
        std::fs::write(
            &file,
            message(&format!("{word}-report"), &format!("the {word} numbers")),
        )
        .expect("write");
        server.admin_ok(&["import", mb, file.to_str().expect("utf8")]);
    }
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", "carol@example.com", "carol"]);
    (server, dir)
}

fn stderr_of(cmd: &mut std::process::Command) -> (bool, String) {
    let out = run(cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn grants_decide_what_a_user_finds_and_reads() {
    let (server, _dir) = setup();
    let carol = || server.as_user("carol", "carol-password");

    // Carol finds her mailbox's mail and not Dave's.
    let found = json(&ok(carol().args(["search", "quokka", "--json"])));
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1));
    let none = json(&ok(carol().args(["search", "wombat", "--json"])));
    assert_eq!(
        none["hits"].as_array().map(Vec::len),
        Some(0),
        "no grant, no hits"
    );

    // Asking for the other mailbox by name is refused with 403.
    let (success, err) =
        stderr_of(carol().args(["search", "wombat", "--mailbox", "dave@example.com"]));
    assert!(!success);
    assert!(
        err.contains("may not search mailbox dave@example.com") && err.contains("403"),
        "{err}"
    );

    // Reading a message of the other mailbox is refused too, even with its id.
    let admin_hits = json(&server.admin_ok(&["search", "wombat", "--json"]));
    let id = admin_hits["hits"][0]["id"]
        .as_str()
        .expect("admin sees all")
        .to_string();
    let (success, err) = stderr_of(carol().args(["get", "dave@example.com", &id]));
    assert!(!success && err.contains("403"), "{err}");
    // ... and through a mailbox she may read, because it is not in it.
    let (success, err) = stderr_of(carol().args(["get", "carol@example.com", &id]));
    assert!(!success && err.contains("404"), "{err}");

    // Her own mail she can read.
    let own = found["hits"][0]["id"].as_str().expect("id");
    let raw = run(carol().args(["get", "carol@example.com", own]));
    assert!(raw.status.success());
    assert_eq!(sha256_hex(&raw.stdout), own);

    // Mailbox list shows only hers.
    let list = json(&ok(carol().args(["mailbox", "list", "--json"])));
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["address"].as_str())
        .collect();
    assert_eq!(names, ["carol@example.com"]);
}

#[test]
fn missing_or_wrong_credentials_are_refused() {
    let (server, _dir) = setup();
    let (success, err) = stderr_of(
        satchel()
            .env("SATCHEL_SERVER", &server.url)
            .args(["search", "quokka"]),
    );
    assert!(
        !success && err.contains("credentials required") && err.contains("401"),
        "{err}"
    );

    let (success, err) = stderr_of(
        server
            .as_user("carol", "not-her-password")
            .args(["search", "quokka"]),
    );
    assert!(
        !success && err.contains("wrong user name or password") && err.contains("401"),
        "{err}"
    );

    let (success, err) = stderr_of(
        server
            .as_user("nobody", "whatever1")
            .args(["search", "quokka"]),
    );
    assert!(!success && err.contains("401"), "{err}");
}

#[test]
fn only_administrators_manage() {
    let (server, dir) = setup();
    let carol = || server.as_user("carol", "carol-password");
    let (success, err) = stderr_of(carol().args(["mailbox", "add", "eve@example.com"]));
    assert!(
        !success && err.contains("not an administrator") && err.contains("403"),
        "{err}"
    );
    let file = dir.path().join("quokka.eml");
    let (success, err) =
        stderr_of(carol().args(["import", "carol@example.com", file.to_str().expect("utf8")]));
    assert!(!success && err.contains("403"), "{err}");
    let (success, err) = stderr_of(carol().args(["mailbox", "grant", "dave@example.com", "carol"]));
    assert!(!success && err.contains("403"), "{err}");
}

#[test]
fn first_start_without_a_password_prints_a_generated_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let log = dir.path().join("log");
    let mut child = satchel()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("data"))
        .env_remove("SATCHEL_ADMIN_PASSWORD")
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let password = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("created user admin with password ").nth(1) {
            break rest.lines().next().unwrap_or_default().trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no password printed: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(password.len() >= 16, "{password}");
    let url = format!("http://127.0.0.1:{port}");
    let who = ok(satchel()
        .env("SATCHEL_SERVER", &url)
        .env("SATCHEL_USER", "admin")
        .env("SATCHEL_PASSWORD", &password)
        .args(["mailbox", "list", "--json"]));
    assert_eq!(json(&who).as_array().map(Vec::len), Some(0));
    let _ = child.kill();
    let _ = child.wait();
}
