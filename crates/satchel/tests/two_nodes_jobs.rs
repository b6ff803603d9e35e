//! What a second node needs besides the archive (issue 12 point 3), with two
//! `satchel serve` nodes on one PostgreSQL catalog (tests/common/cluster.rs):
//! a schedule fires once across the nodes, not once per node; an archive run
//! of a mailbox runs on one node at a time whichever node it was asked of; a
//! console session works on every node and survives a restart; a disk
//! repository inside the data folder is each node's own folder.

mod common;
use common::cluster::Cluster;
use common::console::{sign_in, sign_out, status_with};
use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MB: &str = "alice@example.com";

/// The jobs log through node `i` (the most recent 1,000).
fn jobs(cluster: &Cluster, i: usize) -> Vec<serde_json::Value> {
    let out = cluster
        .node(i)
        .admin_ok(&["jobs", "--json", "--limit", "1000"]);
    json(&out).as_array().expect("a list of jobs").clone()
}

/// Scheduled offline updates, counted per firing.
fn rows_per_firing(jobs: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    for j in jobs.iter().filter(|j| j["kind"] == "offline-update") {
        if let Some(firing) = j["firing"].as_str() {
            *per.entry(firing.to_string()).or_insert(0) += 1;
        }
    }
    per
}

#[test]
fn a_schedule_on_two_nodes_fires_once_per_firing() {
    let mut cluster = Cluster::start(1);
    cluster.add_mailbox(MB);
    cluster.node(0).admin_ok(&["offline", "enable", MB]);
    // Every 2 seconds (6 fields: seconds first), read by node 1 at its start.
    cluster
        .node(0)
        .admin_ok(&["offline", "schedule", "*/2 * * * * *"]);
    cluster.add_node();
    let since = satchel_offline::rfc3339(chrono::Utc::now().timestamp());

    // Both nodes wake for every firing; wait for five firings after node 1
    // came up.
    cluster.wait_for(1, Duration::from_secs(120), "5 scheduled updates", |_| {
        let per = rows_per_firing(&jobs(&cluster, 1));
        per.range(since.clone()..).count() >= 5
    });
    cluster
        .node(1)
        .admin_ok(&["offline", "schedule", "0 6 * * *"]);
    cluster.wait_for(0, Duration::from_secs(60), "no job running", |_| {
        jobs(&cluster, 0).iter().all(|j| j["outcome"] != "running")
    });

    let all = jobs(&cluster, 0);
    let per = rows_per_firing(&all);
    let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "firings run more than once: {twice:?}\n{all:#?}"
    );
    for j in all.iter().filter(|j| j["firing"].is_string()) {
        assert_eq!(j["outcome"], "ok", "{j}");
        assert!(j["node"].is_string(), "the node that ran it: {j}");
    }
}

/// An IMAP server that greets and then says nothing more until released: an
/// archive run against it stays in progress (its LOGIN waits) for as long as
/// the test needs. Released, it closes every connection and stops listening,
/// so the run fails at once and later runs cannot connect.
struct StalledImap {
    port: u16,
    held: Arc<Mutex<Option<Vec<TcpStream>>>>,
}

impl StalledImap {
    fn start() -> StalledImap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = Arc::new(Mutex::new(Some(Vec::new())));
        let keep = held.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut held = keep.lock().expect("held");
                let Some(list) = held.as_mut() else { return };
                let _ = conn.write_all(b"* OK [CAPABILITY IMAP4rev1] stalled\r\n");
                list.push(conn);
            }
        });
        StalledImap { port, held }
    }

    fn release(&self) {
        // Dropping the streams closes them; the listener goes with the
        // thread at its next connection (or the test's end).
        self.held.lock().expect("held").take();
    }
}

/// `satchel archive MB` through node `i`: its output.
fn archive(cluster: &Cluster, i: usize) -> std::process::Output {
    run(cluster.node(i).admin().args(["archive", MB]))
}

#[test]
fn an_archive_run_in_progress_on_one_node_refuses_another_on_any_node() {
    let cluster = Cluster::start(2);
    let imap = StalledImap::start();
    ok(cluster
        .node(0)
        .admin()
        .args(["mailbox", "add", MB, "--repo", common::cluster::REPO])
        .args(["--imap", &format!("imap://127.0.0.1:{}", imap.port)])
        .args(["--imap-user", "alice", "--imap-password-env", "PW"])
        .env("PW", "secret"));

    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| archive(&cluster, 0));
        cluster.wait_for(1, Duration::from_secs(60), "a running archive run", |_| {
            jobs(&cluster, 1)
                .iter()
                .any(|j| j["kind"] == "archive" && j["outcome"] == "running")
        });
        for i in [1, 0] {
            let again = archive(&cluster, i);
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(!again.status.success(), "node {i} started a second run");
            assert!(
                err.contains("409") && err.contains("already in progress"),
                "node {i}: {err}"
            );
        }
        imap.release();
        first.join().expect("the first run's thread")
    });
    assert!(
        !first.status.success(),
        "the stalled run fails once released"
    );

    // The run ended: its lease is given back, so node 1 may run one (which
    // fails to connect: a 502, not a 409).
    let after = archive(&cluster, 1);
    let err = String::from_utf8_lossy(&after.stderr);
    assert!(!err.contains("409"), "{err}");
    let runs = jobs(&cluster, 0);
    let archive_runs: Vec<_> = runs.iter().filter(|j| j["kind"] == "archive").collect();
    assert_eq!(archive_runs.len(), 2, "{runs:#?}");
    assert!(
        archive_runs.iter().all(|j| j["outcome"] == "failed"),
        "{runs:#?}"
    );
}

#[test]
fn a_console_session_works_on_every_node_and_after_a_restart() {
    let mut cluster = Cluster::start(2);
    let cookie = sign_in(cluster.node(0));
    assert_eq!(
        status_with(cluster.node(1), &cookie),
        200,
        "node 1 knows it"
    );
    cluster.restart(0);
    assert_eq!(
        status_with(cluster.node(0), &cookie),
        200,
        "after a restart"
    );
    sign_out(cluster.node(1), &cookie);
    assert_eq!(
        status_with(cluster.node(0), &cookie),
        303,
        "signed out on all"
    );
}

#[test]
fn a_disk_repository_in_the_data_folder_is_each_nodes_own_folder() {
    let cluster = Cluster::start(2);
    let folder = cluster.data(0).join("more-packs");
    let folder = folder.to_str().expect("a UTF-8 path");
    cluster
        .node(0)
        .admin_ok(&["repo", "add", "local", "--disk", folder]);
    for i in [0, 1] {
        let repos = json(&cluster.node(i).admin_ok(&["repo", "list", "--json"]));
        let local = repos
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "local"))
            .unwrap_or_else(|| panic!("no repository local: {repos}"));
        let expected = cluster.data(i).join("more-packs");
        assert_eq!(local["path"], expected.display().to_string(), "node {i}");
    }
}
