//! Where an index's bytes go (issue 10, point 7): indexes every message of a
//! Maildir (or a folder of message files) with the shared schema, one
//! document per message as the service does, and prints the bytes of each
//! field in each tantivy component (term dictionary, postings, positions,
//! norms, fast columns) and of the doc store.
//!
//! Run: `cargo run -p satchel-search --example index_anatomy -- MAILDIR_OR_DIR`

use std::path::{Path, PathBuf};

use satchel_message::{MessageId, MessageSummary};
use satchel_search::{Fields, document};
use tantivy::Index;
use tantivy::space_usage::PerFieldSpaceUsage;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable folder").flatten() {
        let path = e.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn per_field(what: &str, usage: &PerFieldSpaceUsage) {
    for f in usage.fields() {
        let n = f.total().get_bytes();
        if n > 0 {
            println!("{what:10} {:12} {:>10}", f.field_name(), n);
        }
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: index_anatomy DIR"));
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    paths.sort();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (schema, f) = Fields::schema();
    let index = Index::create_in_dir(tmp.path(), schema).expect("index");
    let mut w: tantivy::IndexWriter = index
        .writer_with_num_threads(1, 64 * 1024 * 1024)
        .expect("writer");
    for path in &paths {
        let raw = std::fs::read(path).expect("readable message");
        let summary = MessageSummary::extract(&raw);
        let id = MessageId::of(&raw);
        w.add_document(document(&f, &id, ["box@example.com"], &summary))
            .expect("add");
    }
    w.commit().expect("commit");
    w.wait_merging_threads().expect("merge");
    let index = Index::open_in_dir(tmp.path()).expect("reopen");
    let searcher = index.reader().expect("reader").searcher();
    let usage = searcher.space_usage().expect("space usage");
    println!(
        "{} messages, {} segments",
        paths.len(),
        usage.segments().len()
    );
    for seg in usage.segments() {
        per_field("termdict", seg.termdict());
        per_field("postings", seg.postings());
        per_field("positions", seg.positions());
        per_field("fieldnorm", seg.fieldnorms());
        per_field("fast", seg.fast_fields());
        println!(
            "{:10} {:12} {:>10}",
            "store",
            "",
            seg.store().total().get_bytes()
        );
    }
    let mut by_ext = std::collections::BTreeMap::<String, u64>::new();
    for e in std::fs::read_dir(tmp.path()).expect("index dir").flatten() {
        let ext = e
            .path()
            .extension()
            .map_or("(none)".into(), |x| x.to_string_lossy().into_owned());
        *by_ext.entry(ext).or_default() += e.metadata().map(|m| m.len()).unwrap_or(0);
    }
    let total: u64 = by_ext.values().sum();
    for (ext, n) in &by_ext {
        println!("file .{ext:8} {n:>10}");
    }
    println!("total {total}");
}
