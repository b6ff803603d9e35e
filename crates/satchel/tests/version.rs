//! `satchel --version` names the version and the commit it was built from
//! (issue 13, point 7), and a source tree without git says "unknown".

mod common;
use common::*;
use std::path::Path;

#[path = "../build/git.rs"]
mod git;

/// The commit of this source tree, asked of git here (not through build.rs's
/// code), or "unknown" when the workspace is not a git checkout.
fn checked_out_commit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "--show-toplevel", "--short=12", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(top), Some(commit))
            if Path::new(top).canonicalize().ok() == root.canonicalize().ok() =>
        {
            commit.to_string()
        }
        _ => "unknown".to_string(),
    }
}

#[test]
fn version_names_the_version_and_the_commit() {
    let out = ok(satchel().arg("--version"));
    let commit = checked_out_commit();
    assert_eq!(
        out,
        format!("satchel {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
    if commit != "unknown" {
        assert_eq!(commit.len(), 12);
        assert!(commit.bytes().all(|b| b.is_ascii_hexdigit()), "{commit}");
    }
}

#[test]
fn a_source_tree_without_git_reads_as_unknown() {
    // A source tarball unpacked somewhere: crates/satchel inside a folder
    // that no git repository holds.
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("satchel-0.1.0/crates/satchel");
    std::fs::create_dir_all(&crate_dir).expect("mkdir");
    assert_eq!(git::commit(&crate_dir), None);
    assert!(git::watched(&crate_dir).is_empty());
    // This checkout itself has one.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        git::commit(here).unwrap_or_else(|| "unknown".to_string()),
        checked_out_commit()
    );
}
