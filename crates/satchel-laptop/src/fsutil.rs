//! Small durable-file helpers for the home folder: private directories
//! (0700), private files (0600) written atomically, and time formatting.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Creates `dir` (and parents) and makes it readable by its owner only.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync
/// directory). The file is created with mode 0600, so it is never readable by
/// others, not even for an instant.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    remove_file_if_exists(&tmp)?;
    {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(dir)
}

/// fsyncs a directory (no-op where directories cannot be opened).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(crate) fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub(crate) fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC, e.g. `2026-05-01T06:00:03Z` (the offline
/// format's own formatter, so manifests and status read alike).
pub use satchel_offline::rfc3339;

/// The name earlier versions gave a mailbox's local copy folder: only
/// `[A-Za-z0-9@_+-]` and non-leading dots stay, the rest percent-encoded.
/// Safe too, but it kept capitals (two mailboxes differing in case shared a
/// folder on a case-insensitive file system) and differed from the service's
/// names; kept only to find such a folder and move it to
/// [`satchel_offline::mailbox_dir_name`].
pub(crate) fn legacy_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'@' | b'_' | b'+' | b'-' => {
                out.push(b as char)
            }
            b'.' if i > 0 => out.push('.'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_safe() {
        for s in [
            "alice@example.com",
            "..",
            ".hidden",
            "a/b",
            "x y%z",
            "bob+tag@ex.org",
        ] {
            for e in [legacy_name(s), satchel_offline::mailbox_dir_name(s)] {
                assert!(!e.contains('/') && !e.starts_with('.'), "{e}");
                assert_eq!(
                    satchel_message::link::decode_segment(&e).as_deref(),
                    Some(s)
                );
            }
        }
        assert_eq!(legacy_name("alice@example.com"), "alice@example.com");
    }
}
