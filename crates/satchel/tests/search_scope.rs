//! Search shows only what the caller may search (issue 9, point 4): a hit names
//! only the caller's searchable mailboxes, and a `mailbox:` filter on any other
//! mailbox is refused with 403, the same answer whether or not it exists.

mod common;
use common::*;

const CAROL: &str = "carol";
const CAROL_PASSWORD: &str = "carol-password";

/// Carol may search carol@; dave@ holds the same "shared" message and one of
/// its own. The shared message is one message in both mailboxes.
fn setup() -> (Server, tempfile::TempDir) {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("shared.eml");
    std::fs::write(
        &shared,
        "From: Bob <bob@example.org>\r\nTo: carol@example.com, dave@example.com\r\n\
         Subject: quokka minutes\r\nDate: Mon, 02 Sep 2002 12:00:00 +0000\r\n\
         Message-ID: <shared@example.org>\r\n\r\nthe quokka numbers\r\n",
    )
    .expect("write");
    let own = dir.path().join("own.eml");
    std::fs::write(
        &own,
        "From: Bob <bob@example.org>\r\nTo: dave@example.com\r\nSubject: quokka secret\r\n\
         Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <own@example.org>\r\n\r\n\
         dave only\r\n",
    )
    .expect("write");
    let path = |p: &std::path::Path| p.to_str().expect("utf8").to_string();
    server.admin_ok(&["mailbox", "add", "carol@example.com"]);
    server.admin_ok(&["mailbox", "add", "dave@example.com"]);
    server.admin_ok(&["import", "carol@example.com", &path(&shared)]);
    server.admin_ok(&["import", "dave@example.com", &path(&shared), &path(&own)]);
    server.add_user(CAROL, CAROL_PASSWORD);
    server.admin_ok(&["mailbox", "grant", "carol@example.com", CAROL]);
    (server, dir)
}

fn carol(server: &Server) -> std::process::Command {
    server.as_user(CAROL, CAROL_PASSWORD)
}

/// Runs a search that must be refused; returns its stderr.
fn refused(server: &Server, query: &str) -> String {
    let out = run(carol(server).args(["search", query, "--json"]));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{} answered: {}",
        query.chars().take(200).collect::<String>(),
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

#[test]
fn hits_name_only_the_callers_mailboxes() {
    let (server, _dir) = setup();

    // The administrator sees the shared message in both mailboxes.
    let admin = json(&server.admin_ok(&["search", "minutes", "--json"]));
    assert_eq!(
        admin["hits"][0]["mailboxes"],
        serde_json::json!(["carol@example.com", "dave@example.com"]),
        "{admin}"
    );

    // Carol finds it too, but only in the mailbox she may search.
    let found = json(&ok(carol(&server).args(["search", "quokka", "--json"])));
    let hits = found["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(
        hits[0]["mailboxes"],
        serde_json::json!(["carol@example.com"]),
        "{found}"
    );
    let text = ok(carol(&server).args(["search", "quokka"]));
    assert!(!text.contains("dave@"), "{text}");
}

#[test]
fn a_mailbox_filter_in_the_query_is_no_probe() {
    let (server, _dir) = setup();

    // Her own mailbox works as a filter, in the query as in --mailbox.
    let own = json(&ok(carol(&server).args([
        "search",
        "quokka mailbox:carol@example.com",
        "--json",
    ])));
    assert_eq!(own["hits"].as_array().map(Vec::len), Some(1), "{own}");

    // Another mailbox, existing or not, is refused alike, with or without a
    // match, whether it is asked for, excluded or combined.
    let probes = [
        ("quokka mailbox:dave@example.com", "dave@example.com"),
        (
            "nothing-matches mailbox:dave@example.com",
            "dave@example.com",
        ),
        ("quokka -mailbox:dave@example.com", "dave@example.com"),
        (
            "quokka AND (mailbox:carol@example.com OR mailbox:dave@example.com)",
            "dave@example.com",
        ),
        ("quokka mailbox:nobody@example.com", "nobody@example.com"),
        ("quokka mailbox:\"dave@example.com\"", "dave@example.com"),
        ("quokka mailbox:IN [dave@example.com]", "dave@example.com"),
    ];
    for (query, named) in probes {
        let err = refused(&server, query);
        assert!(
            err.contains(&format!("user carol may not search mailbox {named}"))
                && err.contains("HTTP 403"),
            "{query:?}: {err}"
        );
    }
    // The answer for a mailbox that exists and one that does not is the same
    // sentence but for the name.
    let exists = refused(&server, "quokka mailbox:dave@example.com");
    let absent = refused(&server, "quokka mailbox:nobody@example.com");
    assert_eq!(
        exists.replace("dave@example.com", "X"),
        absent.replace("nobody@example.com", "X")
    );
    // The --mailbox parameter answers alike.
    let out = run(carol(&server).args(["search", "quokka", "--mailbox", "nobody@example.com"]));
    let param = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        param.replace("nobody@example.com", "X"),
        absent.replace("nobody@example.com", "X")
    );

    // Ranges and wildcards over mailboxes cannot be checked name by name: refused.
    for query in [
        "quokka mailbox:[a TO z]",
        "quokka mailbox:>a",
        "quokka mailbox:*",
    ] {
        let err = refused(&server, query);
        assert!(err.contains("HTTP 4"), "{query:?}: {err}");
    }
}

/// Signs in to the console over plain HTTP; returns the session cookie.
fn console_session(server: &Server, user: &str, password: &str) -> String {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let resp = http
        .post(format!("{}/console/login", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password={password}"))
        .send()
        .expect("sign in");
    resp.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

fn console_search(server: &Server, cookie: &str, query: &str) -> String {
    let http = reqwest::blocking::Client::new();
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    http.get(format!("{}/console/search?q={q}", server.url))
        .header("Cookie", cookie)
        .send()
        .and_then(|r| r.text())
        .expect("search page")
}

#[test]
fn the_console_search_keeps_the_same_rule() {
    let (server, _dir) = setup();
    let cookie = console_session(&server, CAROL, CAROL_PASSWORD);

    let page = console_search(&server, &cookie, "quokka");
    assert!(page.contains("1 result for"), "{page}");
    assert!(page.contains("carol@example.com"), "{page}");
    assert!(!page.contains("dave@example.com"), "{page}");

    let page = console_search(&server, &cookie, "quokka mailbox:dave@example.com");
    assert!(
        page.contains("may not search mailbox dave@example.com"),
        "{page}"
    );
    assert!(!page.contains("result for"), "{page}");
}

/// A query nested thousands of levels deep overflowed the service's stack and
/// aborted it; now it is a 400 and the service keeps answering. (8,000 levels:
/// as deep as fits in a URL; 5,000 were enough to abort the service.)
#[test]
fn a_deeply_nested_query_is_refused_and_the_service_keeps_answering() {
    let (server, _dir) = setup();
    let deep = 8_000;
    for query in [
        format!("{}quokka{}", "(".repeat(deep), ")".repeat(deep)),
        format!("{}quokka", "NOT ".repeat(deep)),
        format!("subject:{}quokka{}", "(".repeat(deep), ")".repeat(deep)),
    ] {
        let err = refused(&server, &query);
        let short: String = err.chars().take(300).collect();
        assert!(
            err.contains("nests parentheses and NOTs") && err.contains("HTTP 400"),
            "{short}"
        );
    }
    // A flat query of thousands of words is no problem.
    let flat = vec!["quokka"; 2_000].join(" OR ");
    let found = json(&ok(carol(&server).args(["search", &flat, "--json"])));
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1));
    // Reasonable nesting works, and the service is still there.
    let nested = "((quokka OR wombat) AND (minutes OR NOT secret))";
    let found = json(&ok(carol(&server).args(["search", nested, "--json"])));
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1), "{found}");
}
