//! Offline repositories in a shared S3 store (issue 12 point 3, one node):
//! `offline defaults --store REPO` puts every mailbox's repository in a real
//! SeaweedFS bucket; the node's own folder is only a working copy and cache,
//! so a node started on an emptied folder serves the same repository (same
//! ETag: a laptop's no-change sync downloads nothing) and continues it
//! incrementally. A damaged or missing object is an error, never served.

mod common;
use common::proxy::Proxy;
use common::seaweed::Seaweed;
use common::*;
use std::path::Path;

const MB: &str = "carol@example.com";
/// The mailbox's objects in the bucket: the repository's prefix, `offline/`,
/// and the mailbox's folder name.
const KEYS: &str = "shared/offline/carol@example.com";

fn sync(home: &Path) -> serde_json::Value {
    json(&ok(laptop_in(home).args(["sync", "--json"])))
}

fn mailbox(report: &serde_json::Value) -> &serde_json::Value {
    synced_mailbox(report, MB)
}

/// Points the laptop home at another URL (the node restarted on another port).
fn point_laptop_at(home: &Path, url: &str) {
    let path = home.join("config.json");
    let mut config = json(&std::fs::read_to_string(&path).expect("laptop config"));
    config["server"] = url.into();
    std::fs::write(&path, config.to_string()).expect("laptop config");
}

fn setup_laptop(url: &str, home: &Path) {
    run_with_stdin(
        laptop_in(home)
            .args(["setup", "--server", url, "--user", "carol"])
            .arg("--password-stdin"),
        "carol-password",
    );
}

/// A service whose offline store is the bucket's `shared` prefix, with MB
/// (granted to carol, enabled) holding `n` corpus messages, updated once.
fn service_with_store(seaweed: &Seaweed, data: &Path, n: usize) -> Server {
    let server = Server::start_in_with(data, &seaweed.env());
    let mut add = vec!["repo", "add", "cloud"];
    let args = seaweed.repo_args("shared");
    add.extend(args.iter().map(String::as_str));
    server.admin_ok(&add);
    let out = server.admin_ok(&["offline", "defaults", "--store", "cloud"]);
    assert!(out.contains("repository cloud"), "{out}");
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(&server, MB, &corpus_files(0, n));
    server.add_user("carol", "carol-password");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now", MB]);
    server
}

/// The node's working copy of MB's repository.
fn local_copy(data: &Path) -> std::path::PathBuf {
    data.join("offline").join(MB)
}

#[test]
fn the_shared_store_serves_a_node_whose_offline_folder_was_emptied() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let mut server = service_with_store(&seaweed, &data, 200);

    // The bucket holds the manifest and exactly the segments it names.
    let manifest = satchel_offline::Manifest::load(&local_copy(&data)).expect("manifest");
    let mut want: Vec<String> = manifest
        .segments
        .iter()
        .map(|s| format!("{KEYS}/segments/{}", s.name))
        .collect();
    want.push(format!("{KEYS}/manifest.json"));
    want.sort();
    let mut listed = seaweed.list(KEYS);
    listed.sort();
    assert_eq!(listed, want);
    assert_eq!(
        seaweed.get(&format!("{KEYS}/manifest.json")),
        std::fs::read(local_copy(&data).join("manifest.json")).expect("local manifest")
    );

    // A laptop copies the repository.
    let proxy = Proxy::start(server.port);
    let home = tmp.path().join("carol");
    setup_laptop(&proxy.url, &home);
    assert_eq!(mailbox(&sync(&home))["messages"], 200);

    // The node starts again with its offline folder gone: the store still
    // has the repository, under the same ETag, so the laptop's no-change
    // sync is one conditional manifest request and no segment.
    server.kill();
    std::fs::remove_dir_all(data.join("offline")).expect("empty the offline folder");
    let server = Server::start_in_with(&data, &seaweed.env());
    let proxy = Proxy::start(server.port);
    point_laptop_at(&home, &proxy.url);
    let m = sync(&home);
    let m = mailbox(&m);
    assert_eq!(m["change"], "unchanged", "{m}");
    assert_eq!(m["bytes_downloaded"], 0);
    let lines = proxy.stats.request_lines();
    let segments = lines.iter().filter(|l| l.contains("/segments/")).count();
    assert_eq!(segments, 0, "{lines:?}");

    // A second laptop copies everything through this node, which fills its
    // cache from the store as it serves.
    let second = tmp.path().join("carol-second");
    setup_laptop(&proxy.url, &second);
    assert_eq!(mailbox(&sync(&second))["messages"], 200);
    for s in &manifest.segments {
        assert!(
            local_copy(&data).join("segments").join(&s.name).is_file(),
            "{} is cached",
            s.name
        );
    }

    // New mail: the node continues the repository incrementally (no full
    // reselection), and the laptop downloads the one new segment only.
    import_files(&server, MB, &corpus_files(200, 50));
    let report = json(&server.admin_ok(&["offline", "sync-now", MB, "--json"]));
    let result = &report["results"][0];
    assert_eq!(result["full"], false, "{report}");
    assert_eq!(result["generation"], manifest.generation + 1, "{report}");
    let new_segment = result["segment"]
        .as_str()
        .expect("a new segment")
        .to_string();
    proxy.stats.reset();
    let m = sync(&home);
    let m = mailbox(&m);
    assert_eq!(m["change"], "updated", "{m}");
    assert_eq!(m["messages"], 250);
    assert_eq!(m["segments_downloaded"], 1, "{m}");
    let lines = proxy.stats.request_lines();
    let fetched: Vec<&String> = lines.iter().filter(|l| l.contains("/segments/")).collect();
    assert_eq!(fetched.len(), 1, "{lines:?}");
    assert!(fetched[0].contains(&new_segment), "{lines:?}");
    assert!(
        seaweed
            .list(KEYS)
            .contains(&format!("{KEYS}/segments/{new_segment}"))
    );
    assert!(ok(laptop_in(&home).args(["verify"])).contains("ok"));
}

#[test]
fn a_damaged_or_missing_object_in_the_store_is_an_error_and_never_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let mut server = service_with_store(&seaweed, &data, 30);
    let manifest = satchel_offline::Manifest::load(&local_copy(&data)).expect("manifest");
    let segment = manifest.segments[0].clone();
    server.kill();
    std::fs::remove_dir_all(data.join("offline")).expect("empty the offline folder");
    let server = Server::start_in_with(&data, &seaweed.env());

    // One byte changed in the store's copy of the segment.
    let key = format!("{KEYS}/segments/{}", segment.name);
    let mut bytes = seaweed.get(&key);
    bytes[100] ^= 0x55;
    seaweed.put(&key, bytes);
    let url = format!(
        "{}/api/v1/offline/repositories/{MB}/segments/{}",
        server.url, segment.name
    );
    let get = || {
        reqwest::blocking::Client::new()
            .get(&url)
            .basic_auth("carol", Some("carol-password"))
            .send()
            .expect("GET the segment")
    };
    let answer = get();
    assert_eq!(answer.status().as_u16(), 502);
    let text = answer.text().expect("body");
    assert!(
        text.contains("damaged") && text.contains(&segment.name) && text.contains("cloud"),
        "{text}"
    );
    let cached = local_copy(&data).join("segments").join(&segment.name);
    assert!(!cached.exists(), "a damaged segment is never kept");
    assert!(
        std::fs::read_dir(local_copy(&data).join("incoming"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "nothing is left half-fetched"
    );

    // The object gone: a clear error too.
    seaweed.delete(&key);
    let answer = get();
    assert_eq!(answer.status().as_u16(), 502);
    let text = answer.text().expect("body");
    assert!(text.contains("missing") && text.contains("cloud"), "{text}");

    // A laptop's sync fails rather than take the bad copy.
    let home = tmp.path().join("carol");
    setup_laptop(&server.url, &home);
    let out = run(laptop_in(&home).args(["sync", "--json"]));
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() || report.contains("error"),
        "{report}"
    );
    assert!(
        !home
            .join("replicas")
            .join(MB)
            .join("segments")
            .join(&segment.name)
            .exists()
    );
}

#[test]
fn only_an_online_s3_repository_can_be_the_offline_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let server = Server::start_in_with(&tmp.path().join("data"), &seaweed.env());
    let mut add = vec!["repo", "add", "vault"];
    let args = seaweed.repo_args("vault");
    add.extend(args.iter().map(String::as_str));
    add.push("--cold");
    server.admin_ok(&add);
    for (repo, says) in [("default", "400"), ("vault", "cold"), ("nosuch", "404")] {
        let out = run(server
            .admin()
            .args(["offline", "defaults", "--store", repo]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{repo}: {err}");
    }
    // Nothing was set: repositories stay in the data folder.
    let out = server.admin_ok(&["offline", "defaults"]);
    assert!(out.contains("each node's data folder"), "{out}");
}

/// A node keeps the store's manifest while the catalog's record of the
/// mailbox's last update names it (issue 12 point 5): a laptop's no-change
/// sync then costs the store nothing, so it answers even with the store
/// stopped (another node's update served at once: two_nodes_offline.rs).
#[test]
fn a_current_manifest_is_served_without_reading_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut seaweed = Seaweed::start(&tmp.path().join("seaweed"));
    let data = tmp.path().join("data");
    let server = service_with_store(&seaweed, &data, 20);
    let home = tmp.path().join("carol");
    setup_laptop(&server.url, &home);
    assert_eq!(mailbox(&sync(&home))["messages"], 20);

    seaweed.stop();
    let m = sync(&home);
    let m = mailbox(&m);
    assert_eq!(m["change"], "unchanged", "{m}");
    assert_eq!(m["messages"], 20, "{m}");
}
