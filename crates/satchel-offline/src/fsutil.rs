//! Durable file system steps shared by segments and manifests.
//!
//! The crash-safety argument of the format (see docs/offline-format.md) relies
//! on "write temp, fsync, rename, fsync directory"; it lives here once.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Writes `bytes` to `dir/final_name` so that after return the file is durable
/// and a crash at any point leaves either no file or the complete file (plus,
/// maybe, a `temp_prefix*` leftover for garbage collection).
pub(crate) fn write_atomic(
    dir: &Path,
    final_name: &str,
    temp_name: &str,
    bytes: &[u8],
) -> Result<PathBuf> {
    let tmp = dir.join(temp_name);
    let dest = dir.join(final_name);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))
    })();
    if let Err(e) = written {
        // A failed write (a full disk) leaves no partial file behind: it would
        // hold the space the next attempt needs.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(dest)
}

/// fsyncs a directory so a rename or unlink in it survives a power loss.
/// On platforms where directories cannot be opened (Windows) this is a no-op;
/// NTFS journals renames.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A name unlikely to collide with another writer's temporary file.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// 16 bytes that differ between calls (time, pid, counter hashed); not
/// cryptographic, only needs to make names and epochs distinct.
pub(crate) fn random_bytes16() -> [u8; 16] {
    let digest = crate::sha256(unique_suffix().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Current time as RFC 3339 UTC, e.g. `2026-05-01T06:00:03Z`.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats Unix seconds as RFC 3339 UTC in whole seconds, with chrono (the
/// format the service's endpoints use too). Public because manifests and the
/// laptop's status both speak this format: one copy. Seconds chrono cannot
/// represent (beyond year 262,000) read as the epoch.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_777_615_203), "2026-05-01T06:00:03Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(super::rfc3339(i64::MAX), "1970-01-01T00:00:00Z");
    }
}
