//! Verification of segment files against the manifest.
//!
//! A segment's name is the SHA-256 of its bytes, so verifying a file needs
//! nothing but the file and its manifest entry. The report lists damaged and
//! missing segments separately so a client re-fetches exactly those.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, VerifyError};
use crate::manifest::Manifest;
use crate::repository::segment_path;
use crate::segment::is_valid_segment_name;

/// Checks that the file at `path` has `expected_size` bytes and hashes to
/// `expected_name`. The size is checked first: it is free and catches
/// partial downloads without reading them.
pub fn verify_segment_file(
    path: &Path,
    expected_name: &str,
    expected_size: u64,
) -> Result<(), VerifyError> {
    if !is_valid_segment_name(expected_name) {
        return Err(VerifyError::InvalidName(expected_name.to_string()));
    }
    let io = |source: std::io::Error| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(VerifyError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(io(e)),
    };
    let actual = file.metadata().map_err(io)?.len();
    if actual != expected_size {
        return Err(VerifyError::SizeMismatch {
            path: path.to_path_buf(),
            expected: expected_size,
            actual,
        });
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected_name {
        return Err(VerifyError::HashMismatch {
            path: path.to_path_buf(),
            expected: expected_name.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Outcome of [`verify_repository`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// True if every segment named by the manifest is present and intact.
    pub ok: bool,
    /// Number of segments the manifest names.
    pub checked: usize,
    /// Segments present but with wrong size or hash (or unreadable), in
    /// manifest order.
    pub damaged: Vec<String>,
    /// Segments named by the manifest but absent, in manifest order.
    pub missing: Vec<String>,
}

/// Verifies every segment the manifest of `dir` names. Fails only if the
/// manifest itself cannot be loaded (then the whole copy must be re-fetched).
pub fn verify_repository(dir: &Path) -> Result<Report> {
    let manifest = Manifest::load(dir)?;
    let mut report = Report {
        ok: true,
        checked: manifest.segments.len(),
        ..Report::default()
    };
    for s in &manifest.segments {
        match verify_segment_file(&segment_path(dir, &s.name), &s.name, s.size) {
            Ok(()) => {}
            Err(VerifyError::Missing(_)) => report.missing.push(s.name.clone()),
            Err(_) => report.damaged.push(s.name.clone()),
        }
    }
    report.ok = report.damaged.is_empty() && report.missing.is_empty();
    Ok(report)
}
