//! A search index written by an older satchel (tests/fixtures/index-v2: the
//! index of the data-v4 folder as satchel wrote it at index version 2, with
//! word positions and the ids stored as text) is rebuilt when the service
//! opens it: the schema changed (issue 10 point 7), and opening the old files
//! with the new schema would fail or find nothing.

mod common;

use common::{Server, json};
use satchel_testkit::copy_dir;
use std::path::Path;

const KEY: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

#[test]
fn an_index_of_the_old_schema_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    copy_dir(&common::fixtures().join("data-v4"), &data);
    copy_dir(&common::fixtures().join("index-v2"), &data.join("index"));
    // The schema (meta.json) says which fields keep word positions.
    let positions = |data: &Path| {
        let meta = std::fs::read_to_string(data.join("index/meta.json")).expect("meta.json");
        let meta = json(&meta);
        let fields = meta["schema"].as_array().expect("schema").clone();
        fields
            .iter()
            .filter(|f| f["options"]["indexing"]["record"] == "position")
            .count()
    };
    assert!(positions(&data) > 0, "the fixture has word positions");

    let mut server = Server::start_in_with(&data, &[("SATCHEL_KEY", KEY)]);
    assert_eq!(server.search_ids(&["zorbleword2"]).len(), 1);
    let any = ["zorbleword1 OR zorbleword2 OR zorbleword3"];
    assert_eq!(server.search_ids(&any).len(), 3);
    server.kill();

    let version =
        std::fs::read_to_string(data.join("index/satchel-index-version")).expect("version marker");
    assert_ne!(
        version.trim(),
        "2",
        "the index was rebuilt at the new version"
    );
    assert_eq!(positions(&data), 0, "the rebuilt index keeps no positions");
}
