//! Observability (issue 13, point 4): `/metrics` moves with the work and
//! answers only allowed addresses; `/healthz` and `/readyz`; JSON logs with
//! one request id on every line of a request.

mod common;
use common::*;
use std::collections::HashMap;
use std::ffi::OsStr;

const MB: &str = "ops@example.com";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// Every sample of a scrape: "name{labels}" -> value.
fn scrape(server: &Server) -> HashMap<String, f64> {
    let resp = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let text = resp.text().expect("text");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

/// The sum of every sample whose name starts with `prefix` and holds all
/// of `labels` (e.g. every status of a route).
fn sum(samples: &HashMap<String, f64>, prefix: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && labels.iter().all(|l| k.contains(l)))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn the_counters_move_with_the_work() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    let before = scrape(&server);

    let files = corpus_files(0, 5);
    let raw_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).expect("file").len())
        .sum();
    import_files(&server, MB, &files);
    server.admin_ok(&["search", "the"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = tempfile::tempdir().expect("tempdir");
    laptop_synced(
        &server,
        "carol",
        "carol-password",
        &home.path().join("carol"),
    );
    let refused = run(server.as_user("carol", "wrong").args(["mailbox", "list"]));
    assert!(!refused.status.success());

    let after = scrape(&server);
    let moved = |name: &str| value(&after, name) - value(&before, name);
    assert_eq!(
        moved("satchel_messages_archived_total{source=\"import\"}"),
        5.0
    );
    assert_eq!(moved("satchel_bytes_archived_total"), raw_bytes as f64);
    assert!(moved("satchel_import_batch_duration_seconds_count") >= 1.0);
    assert!(
        moved("satchel_offline_update_duration_seconds_count{outcome=\"ok\"}") >= 1.0,
        "{after:?}"
    );
    assert!(moved("satchel_offline_bytes_served_total") > 0.0);
    assert_eq!(moved("satchel_signin_failures_total"), 1.0);
    let searches = sum(
        &after,
        "satchel_http_request_duration_seconds_count",
        &["route=\"/api/v1/search\"", "status=\"200\""],
    );
    assert!(searches >= 1.0, "{after:?}");
    let refused_by_route = sum(
        &after,
        "satchel_http_request_duration_seconds_count",
        &["route=\"/api/v1/mailboxes\"", "status=\"401\""],
    );
    assert_eq!(refused_by_route, 1.0);
    // Routes are templates: no mailbox address or message id in a label.
    assert!(
        after.keys().all(|k| !k.contains(MB)),
        "a raw path in the labels"
    );
    assert!(
        after
            .keys()
            .any(|k| k.contains("route=\"/api/v1/mailboxes/{address}/messages\"")),
        "{after:?}"
    );
    assert!(value(&after, "satchel_catalog_bytes") > 0.0);
    assert!(value(&after, "satchel_index_bytes") > 0.0);
}

#[test]
fn sign_in_lockouts_are_counted() {
    let server = Server::start();
    let limit = satchel_server::throttle::MAX_FAILURES;
    for _ in 0..limit {
        let out = run(server.as_user("admin", "wrong").args(["mailbox", "list"]));
        assert!(!out.status.success());
    }
    let after = scrape(&server);
    assert_eq!(value(&after, "satchel_signin_failures_total"), limit as f64);
    assert_eq!(
        value(&after, "satchel_signin_lockouts_total{locked=\"address\"}"),
        1.0,
        "{after:?}"
    );
}

#[test]
fn the_file_sets_who_may_scrape_and_the_log_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("satchel.toml");
    std::fs::write(&config, "log_format = \"json\"\n\n[metrics]\nallow = []\n").expect("config");
    let server = Server::start_args(&[OsStr::new("--config"), config.as_os_str()], "http");
    let resp = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .expect("GET");
    assert_eq!(resp.status(), 403);
    assert!(resp.text().expect("text").contains("127.0.0.1"));
    let health = http()
        .get(format!("{}/healthz", server.url))
        .send()
        .expect("GET");
    assert_eq!(health.status(), 200);
    // The file's log_format: a failed sign-in's warning is a JSON line.
    let out = run(server.as_user("admin", "wrong").args(["mailbox", "list"]));
    assert!(!out.status.success());
    let log = std::fs::read_to_string(&server.log).expect("log");
    let warning = log
        .lines()
        .find(|l| l.contains("password sign-in failed"))
        .unwrap_or_else(|| panic!("no sign-in warning: {log}"));
    let line: serde_json::Value = serde_json::from_str(warning).expect("a JSON line");
    assert_eq!(line["level"], "WARN");
}

#[test]
fn readyz_names_a_repository_that_is_gone() {
    let server = Server::start();
    let ready = |code: u16| {
        let resp = http()
            .get(format!("{}/readyz", server.url))
            .send()
            .expect("GET /readyz");
        assert_eq!(resp.status(), code);
        resp.text().expect("text")
    };
    assert_eq!(ready(200), "ready\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("extra");
    std::fs::create_dir(&folder).expect("mkdir");
    server.admin_ok(&[
        "repo",
        "add",
        "extra",
        "--disk",
        folder.to_str().expect("utf-8"),
    ]);
    assert_eq!(ready(200), "ready\n");

    std::fs::remove_dir_all(&folder).expect("remove the repository folder");
    let text = ready(503);
    assert!(text.contains("repository extra"), "{text}");
    assert!(
        !text.contains("catalog") && !text.contains("index"),
        "{text}"
    );
}

#[test]
fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_in_with(
        &dir.path().join("data"),
        &[("SATCHEL_LOG_FORMAT", "json"), ("SATCHEL_LOG", "info")],
    );
    let resp = http()
        .get(format!("{}/api/v1/mailboxes", server.url))
        .basic_auth("admin", Some("wrong"))
        .send()
        .expect("GET");
    assert_eq!(resp.status(), 401);
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("the answer names its request id")
        .to_str()
        .expect("ascii")
        .to_string();

    let log = std::fs::read_to_string(&server.log).expect("log");
    // Every tracing line is one JSON object (the service's own
    // "serving ..." line on standard error is plain text by design).
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "satchel service listening"),
        "{log}"
    );
    let of_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == id.as_str())
        .collect();
    let messages: Vec<&str> = of_request
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"password sign-in failed"),
        "{messages:?}\n{log}"
    );
    assert!(
        messages.contains(&"finished processing request"),
        "{messages:?}"
    );
    // No line of that request goes without its id.
    let unmarked: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["message"] == "password sign-in failed" && l["span"]["request_id"] != id.as_str()
        })
        .collect();
    assert!(unmarked.is_empty(), "{unmarked:?}");
    assert_eq!(of_request[0]["span"]["route"], "/api/v1/mailboxes");
}
