//! The commit `satchel --version` names, shared by build.rs and
//! tests/version.rs. A source tree that is not a git checkout (a source
//! tarball), or a machine without git, gives `None`: the version then says
//! "unknown" and the build still succeeds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git -C dir ARGS` and returns its first output line, if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// The workspace root of the crate at `manifest_dir` (two folders up).
fn workspace_root(manifest_dir: &Path) -> Option<PathBuf> {
    manifest_dir.parent()?.parent()?.canonicalize().ok()
}

/// The git folder of the checkout whose top is the workspace root; `None` for
/// a tree that is not its own checkout (a tarball unpacked inside some other
/// repository would otherwise report that repository's commit).
fn checkout(manifest_dir: &Path) -> Option<PathBuf> {
    let root = workspace_root(manifest_dir)?;
    let top = PathBuf::from(git(&root, &["rev-parse", "--show-toplevel"])?);
    (top.canonicalize().ok()? == root).then_some(root)
}

/// The abbreviated (12 hex digits) commit of the checkout, or `None`.
pub fn commit(manifest_dir: &Path) -> Option<String> {
    let root = checkout(manifest_dir)?;
    git(&root, &["rev-parse", "--short=12", "HEAD"])
}

/// The files whose change means another commit is checked out: HEAD, the
/// branch it names and packed-refs (absolute paths; works in a worktree,
/// whose `.git` is a file). Only those that exist.
#[allow(dead_code)]
pub fn watched(manifest_dir: &Path) -> Vec<PathBuf> {
    let Some(root) = checkout(manifest_dir) else {
        return Vec::new();
    };
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { root.join(p) }
    };
    let mut files = Vec::new();
    if let Some(dir) = git(&root, &["rev-parse", "--git-dir"]).map(abs) {
        files.push(dir.join("HEAD"));
    }
    if let Some(common) = git(&root, &["rev-parse", "--git-common-dir"]).map(abs) {
        files.push(common.join("packed-refs"));
        if let Some(branch) = git(&root, &["rev-parse", "--symbolic-full-name", "HEAD"])
            && branch.starts_with("refs/")
        {
            files.push(common.join(branch));
        }
    }
    // A missing file would make cargo run the build script on every build.
    files.retain(|f| f.exists());
    files
}
