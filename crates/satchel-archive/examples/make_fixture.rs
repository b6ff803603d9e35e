//! Writes the archive compatibility fixture: a small data folder (catalog + packs,
//! no index) that every later version of Satchel must still open and read.
//!
//!     cargo run -p satchel-archive --example make_fixture -- crates/satchel-archive/tests/fixtures/data-v2
//!
//! Run it once per released format version, into a new folder; never regenerate an
//! old one.

use satchel_archive::{Archive, BatchItem};
use std::path::PathBuf;

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: Fixture {n} <fixture{n}@example.org>\r\nTo: compat@example.com\r\nSubject: compat fixture {n} quarkword{n}\r\nDate: Thu, 0{n} Jan 2026 09:00:00 +0000\r\nMessage-ID: <fixture{n}@example.org>\r\n\r\nBody of fixture {n}.\r\n"
    )
    .into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = std::env::args()
        .nth(1)
        .ok_or("usage: make_fixture OUTPUT_FOLDER")?
        .into();
    if out.exists() {
        return Err(format!("{} exists: fixtures are never regenerated", out.display()).into());
    }
    {
        let archive = Archive::open(&out)?;
        archive
            .catalog()?
            .add_mailbox("compat@example.com", "default", None)?;
        let items = (1..=3)
            .map(|n| BatchItem {
                origin: format!("fixture {n}"),
                folder: "INBOX".into(),
                raw: message(n),
            })
            .collect();
        archive.add_messages("compat@example.com", items)?;
        archive.commit_index()?;
    }
    // The index is derived data: leave it out, the reader must rebuild it.
    std::fs::remove_dir_all(out.join("index"))?;
    for wal in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(out.join(wal));
    }
    println!("wrote {}", out.display());
    Ok(())
}
