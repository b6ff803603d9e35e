//! Offline repositories that every node serves (issue 12 point 3): two nodes
//! on one PostgreSQL catalog with a SeaweedFS bucket as the offline store. A
//! laptop synced through node A continues through node B, which updated the
//! repository A wrote: only the new segment comes down, and old and new mail
//! open offline. One update of a mailbox runs at a time across the nodes.

mod common;
use common::cluster::{Cluster, REPO, write_messages};
use common::proxy::Proxy;
use common::*;
use std::path::{Path, PathBuf};

const MB: &str = "carol@example.com";

fn sync(home: &Path) -> serde_json::Value {
    let report = json(&ok(laptop_in(home).args(["sync", "--json"])));
    synced_mailbox(&report, MB).clone()
}

/// Points the laptop home at another node.
fn point_laptop_at(home: &Path, url: &str) {
    let path = home.join("config.json");
    let mut config = json(&std::fs::read_to_string(&path).expect("laptop config"));
    config["server"] = url.into();
    std::fs::write(&path, config.to_string()).expect("laptop config");
}

fn import(server: &Server, messages: &[(PathBuf, String)]) {
    let files: Vec<PathBuf> = messages.iter().map(|(f, _)| f.clone()).collect();
    import_files(server, MB, &files);
}

fn segment_requests(proxy: &Proxy) -> Vec<String> {
    proxy
        .stats
        .request_lines()
        .into_iter()
        .filter(|l| l.contains("/segments/"))
        .collect()
}

/// The ETag of MB's manifest as a node serves it to carol.
fn manifest_etag(url: &str) -> String {
    let answer = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v1/offline/repositories/{MB}/manifest"))
        .basic_auth("carol", Some("carol-password"))
        .send()
        .expect("GET the manifest");
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.headers()["etag"]
        .to_str()
        .expect("an ASCII ETag")
        .to_string()
}

#[test]
fn a_laptop_synced_through_one_node_continues_through_the_other() {
    let cluster = Cluster::start(2);
    let (a, b) = (cluster.node(0), cluster.node(1));
    a.admin_ok(&["offline", "defaults", "--store", REPO]);
    cluster.add_mailbox(MB);
    a.add_user("carol", "carol-password");
    a.admin_ok(&["mailbox", "grant", MB, "carol"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = write_messages(&tmp.path().join("old"), "walrus", 40);
    import(a, &old);
    a.admin_ok(&["offline", "enable", MB]);
    a.admin_ok(&["offline", "sync-now", MB]);

    // The laptop copies the repository through A.
    let proxy_a = Proxy::start(a.port);
    let home = tmp.path().join("carol");
    run_with_stdin(
        laptop_in(&home)
            .args(["setup", "--server", &proxy_a.url, "--user", "carol"])
            .arg("--password-stdin"),
        "carol-password",
    );
    assert_eq!(sync(&home)["messages"], 40);

    // New mail arrives through B, and B updates the repository A wrote: an
    // incremental update, one generation on.
    let new = write_messages(&tmp.path().join("new"), "narwhal", 10);
    import(b, &new);
    let report = json(&b.admin_ok(&["offline", "sync-now", MB, "--json"]));
    let result = &report["results"][0];
    assert_eq!(result["full"], false, "{report}");
    assert_eq!(result["added"], 10, "{report}");
    assert_eq!(result["messages"], 50, "{report}");
    let segment = result["segment"]
        .as_str()
        .expect("a new segment")
        .to_string();

    // Through B, the laptop downloads that one segment and nothing else.
    let proxy_b = Proxy::start(b.port);
    point_laptop_at(&home, &proxy_b.url);
    let m = sync(&home);
    assert_eq!(m["change"], "updated", "{m}");
    assert_eq!(m["messages"], 50);
    assert_eq!(m["segments_downloaded"], 1, "{m}");
    let fetched = segment_requests(&proxy_b);
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(fetched[0].contains(&segment), "{fetched:?}");

    // Back through A, which served (and kept) the manifest before B's
    // update: the catalog's record tells it B published another, so at
    // once it serves B's, the same manifest and ETag: nothing to download.
    assert_eq!(
        manifest_etag(&proxy_a.url),
        manifest_etag(&proxy_b.url),
        "A serves the manifest B published, at once"
    );
    point_laptop_at(&home, &proxy_a.url);
    proxy_a.stats.reset();
    let m = sync(&home);
    assert_eq!(m["change"], "unchanged", "{m}");
    assert!(segment_requests(&proxy_a).is_empty());

    // Both nodes gone: old and new mail open offline.
    let mut cluster = cluster;
    cluster.stop(0);
    cluster.stop(1);
    for (file, id) in [&old[0], &old[39], &new[0], &new[9]] {
        let opened = ok(laptop_in(&home).args(["open", &format!("satchel://{MB}/{id}")]));
        assert_eq!(
            opened.as_bytes(),
            std::fs::read(file).expect("read"),
            "{id}"
        );
    }
}

/// The catalog's advisory lock key of `address`'s offline writer, as the
/// service computes it.
fn writer_lock_key(address: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("satchel offline writer\0{address}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[test]
fn one_update_of_a_mailbox_runs_at_a_time_across_the_nodes() {
    let cluster = Cluster::start(2);
    let (a, b) = (cluster.node(0), cluster.node(1));
    a.admin_ok(&["offline", "defaults", "--store", REPO]);
    cluster.add_mailbox(MB);
    let tmp = tempfile::tempdir().expect("tempdir");
    import(a, &write_messages(&tmp.path().join("m"), "otter", 5));
    a.admin_ok(&["offline", "enable", MB]);

    // Another node holds the mailbox's writer lock in the catalog.
    let holder = cluster.catalog();
    assert!(
        holder
            .db()
            .try_session_lock(writer_lock_key(MB))
            .expect("lock")
    );
    for node in [a, b] {
        let out = run(node.admin().args(["offline", "sync-now", MB]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("409") && err.contains("another node"),
            "{err}"
        );
    }
    holder
        .db()
        .session_unlock(writer_lock_key(MB))
        .expect("unlock");
    let report = json(&b.admin_ok(&["offline", "sync-now", MB, "--json"]));
    assert_eq!(report["results"][0]["messages"], 5, "{report}");
}
