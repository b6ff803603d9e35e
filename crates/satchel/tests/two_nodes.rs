//! Two (and three) `satchel serve` nodes on one PostgreSQL catalog and one
//! SeaweedFS bucket (issue 12 point 3), driven through the `satchel` binary:
//! what one node archives, every node serves.

mod common;
use common::cluster::{Cluster, get, write_messages};
use common::*;

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
