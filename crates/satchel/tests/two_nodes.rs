//! Two (and three) `satchel serve` nodes on one PostgreSQL catalog and one
//! SeaweedFS bucket (issue 12 point 3), driven through the `satchel` binary:
//! what one node archives, every node serves.

mod common;
use common::cluster::{Cluster, get, write_messages};
use common::*;
use satchel_archive::MessageId;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MB: &str = "alice@example.com";

#[test]
fn a_message_imported_through_one_node_is_read_through_another_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(2);
    cluster.add_mailbox(MB);
    let messages = write_messages(&tmp.path().join("mail"), "quokka", 3);
    let mut import = cluster.node(0).admin();
    import.args(["import", MB]);
    for (file, _) in &messages {
        import.arg(file);
    }
    ok(&mut import);
    for (file, id) in &messages {
        let raw = get(cluster.node(1), MB, id);
        assert_eq!(raw, std::fs::read(file).expect("read"), "{id}");
    }
}

/// How long a node may take to learn from the catalog what another did (its
/// log follower runs every second): a bound for a test that would
/// otherwise hang, not a timing assertion.
const WITHIN: Duration = Duration::from_secs(60);

fn import(server: &Server, messages: &[(PathBuf, String)]) {
    let mut cmd = server.admin();
    cmd.args(["import", MB]);
    for (file, _) in messages {
        cmd.arg(file);
    }
    ok(&mut cmd);
}

fn ids_of(messages: &[(PathBuf, String)]) -> BTreeSet<String> {
    messages.iter().map(|(_, id)| id.clone()).collect()
}

/// Waits until `query` finds exactly `want` through node `i`.
fn wait_for_hits(cluster: &Cluster, i: usize, query: &str, want: &BTreeSet<String>) {
    let what = format!("{query:?} finding {} messages", want.len());
    cluster.wait_for(i, WITHIN, &what, |node| {
        node.search_ids(&[query])
            .into_iter()
            .collect::<BTreeSet<_>>()
            == *want
    });
}

/// The log lines of a node's index saying how it started.
fn index_start_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("search index"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_node_follows_the_catalog_into_its_own_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cluster = Cluster::start(2);
    cluster.add_mailbox(MB);

    // Imported through A: searchable through A at once, through B within
    // seconds (B's index follows the catalog's membership log).
    let quokkas = write_messages(&tmp.path().join("q"), "quokka", 3);
    import(cluster.node(0), &quokkas);
    assert_eq!(
        cluster
            .node(0)
            .search_ids(&["quokka"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        ids_of(&quokkas),
        "the importing node finds its import at once"
    );
    wait_for_hits(&cluster, 1, "quokka", &ids_of(&quokkas));

    // Imported through B: A learns it the same way.
    let wombats = write_messages(&tmp.path().join("w"), "wombat", 2);
    import(cluster.node(1), &wombats);
    wait_for_hits(&cluster, 0, "wombat", &ids_of(&wombats));

    // A message taken out of the mailbox (no command does that yet: the
    // catalog does, as an administrator's tool would) leaves every node's
    // search.
    let gone: MessageId = quokkas[0].1.parse().expect("id");
    let mut catalog = cluster.catalog();
    assert!(catalog.remove_membership(MB, &gone).expect("remove"));
    drop(catalog);
    let left = ids_of(&quokkas[1..]);
    wait_for_hits(&cluster, 1, "quokka", &left);
    wait_for_hits(&cluster, 0, "quokka", &left);

    // A third node on an empty data folder builds its index from the log
    // and finds everything.
    let third = cluster.add_node();
    wait_for_hits(&cluster, third, "quokka", &left);
    wait_for_hits(&cluster, third, "wombat", &ids_of(&wombats));
    let lines = index_start_lines(&cluster.node(third).log);
    assert!(
        lines.iter().any(|l| l.contains("built anew")),
        "a new node builds its index: {lines:?}"
    );

    // A restarted node resumes from the position its last commit holds
    // (no rebuild), and goes on following the log.
    cluster.restart(1);
    let lines = index_start_lines(&cluster.node(1).log);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("resumes from its position")),
        "a restarted node resumes: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("built anew") || l.contains("position=0 ")),
        "a restarted node does not rebuild: {lines:?}"
    );
    wait_for_hits(&cluster, 1, "quokka", &left);
    let numbats = write_messages(&tmp.path().join("n"), "numbat", 2);
    import(cluster.node(0), &numbats);
    wait_for_hits(&cluster, 1, "numbat", &ids_of(&numbats));
}
