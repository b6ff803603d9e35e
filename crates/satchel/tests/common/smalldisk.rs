//! A small real file system for "the disk is full" tests: an ext4 image
//! loop-mounted on a folder of the test's choice, filled and freed on demand.
//! Mounting needs root (CI runs the tests as root); without it the test fails
//! saying so, it never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    pub mount: PathBuf,
    image: PathBuf,
    _images: tempfile::TempDir,
}

fn must(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "this test loop-mounts a small file system and must run as root (CI does); \
         run it with sudo"
    );
}

impl SmallDisk {
    /// Makes a `megabytes` ext4 file system (no reserved blocks) and mounts it
    /// on `mount`, creating the folder if needed.
    pub fn mount_on(mount: &Path, megabytes: u64) -> SmallDisk {
        require_root();
        let images = tempfile::tempdir().expect("tempdir");
        let image = images.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(megabytes * 1024 * 1024))
            .expect("image file");
        must(
            Command::new("mkfs.ext4")
                .args(["-q", "-m", "0"])
                .arg(&image),
        );
        std::fs::create_dir_all(mount).expect("mount point");
        must(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(mount),
        );
        SmallDisk {
            mount: mount.to_path_buf(),
            image,
            _images: images,
        }
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// Writes a file until the file system refuses more bytes.
    pub fn fill(&self) {
        self.fill_leaving(0);
    }

    /// Fills the file system, then gives back `bytes` (so a write may start
    /// and fail half way).
    pub fn fill_leaving(&self, bytes: u64) {
        let mut f = std::fs::File::create(self.filler()).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&chunk).and_then(|_| f.sync_data()).is_err() {
                break;
            }
        }
        // The last partial chunks: down to single blocks.
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|_| f.sync_data()).is_ok() {}
        assert!(self.free_bytes() < 64 * 1024, "the disk is full");
        if bytes > 0 {
            let len = f.metadata().expect("filler size").len();
            f.set_len(len.saturating_sub(bytes))
                .expect("shorten filler");
            f.sync_all().expect("sync filler");
        }
    }

    /// Deletes the filler.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove filler");
        must(&mut Command::new("sync"));
    }

    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df output")
    }

    /// Files anywhere under the mount whose name contains `needle`.
    pub fn files_named_like(&self, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.mount.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if entry.file_name().to_string_lossy().contains(needle) {
                    found.push(path);
                }
            }
        }
        found
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a server that outlived a failing test): detach lazily.
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
        let _ = std::fs::remove_file(&self.image);
    }
}
