//! Import uploads: each part of the multipart body streams into one anonymous
//! file in the data folder (never whole into memory, never in /tmp, which may
//! be memory itself), then is archived from there in steps of bounded size.

use super::{IMPORT, Result, too_large};
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use satchel_api as api;
use satchel_archive::BatchItem;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Messages archived together from a received upload: memory holds at most
/// this much of it at a time (plus one message, if a message is larger).
/// As much as `satchel import` sends in one request.
const ARCHIVE_STEP_BYTES: u64 = 16 * 1024 * 1024;

/// A received upload: the parts, one after the other, in an unnamed file that
/// disappears when it is dropped (or the service stops, however it stops).
pub struct Spool {
    file: std::fs::File,
    parts: Vec<Part>,
}

struct Part {
    origin: String,
    offset: u64,
    len: u64,
}

/// Where uploads are spooled: on the archive's own disk.
fn spool_dir(service: &Service) -> PathBuf {
    service.archive().root().join("uploads")
}

fn io_error(what: &str, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// Reads the multipart body into a [`Spool`]. The body limit is enforced as
/// it streams (axum's `DefaultBodyLimit` on the route): past `limit` bytes,
/// 413 with the limit, and nothing of the request is archived.
pub async fn receive(service: &Service, mut form: Multipart, limit: u64) -> Result<Spool> {
    let dir = spool_dir(service);
    let file = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        tempfile::tempfile_in(&dir)
    })
    .await?
    .map_err(|e| io_error("creating the upload file", e))?;
    let mut out = tokio::fs::File::from_std(file);
    let mut parts = Vec::new();
    let mut offset = 0u64;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| upload_error(e, limit, "the upload"))?
    {
        let origin = field
            .file_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("part {}", parts.len() + 1));
        let start = offset;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| upload_error(e, limit, &origin))?
        {
            out.write_all(&chunk)
                .await
                .map_err(|e| io_error("writing the upload file", e))?;
            offset += chunk.len() as u64;
        }
        parts.push(Part {
            origin,
            offset: start,
            len: offset - start,
        });
    }
    out.flush()
        .await
        .map_err(|e| io_error("writing the upload file", e))?;
    Ok(Spool {
        file: out.into_std().await,
        parts,
    })
}

/// A body past the limit is a 413 saying the limit; anything else is the
/// client's malformed upload.
fn upload_error(e: MultipartError, limit: u64, reading: &str) -> ServiceError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit, IMPORT)
    } else {
        ServiceError::BadRequest(format!("reading {reading}: {}", e.body_text()))
    }
}

/// Archives a received upload in steps of at most [`ARCHIVE_STEP_BYTES`];
/// each step is durable when the next begins. The report lists every part in
/// order, as one request would.
pub fn archive(
    service: &Service,
    caller: &Caller,
    address: &str,
    folder: &str,
    spool: Spool,
) -> Result<api::ImportReport> {
    let mut results = Vec::with_capacity(spool.parts.len());
    let mut step: Vec<BatchItem> = Vec::new();
    let mut step_bytes = 0u64;
    for part in spool.parts {
        if !step.is_empty() && step_bytes + part.len > ARCHIVE_STEP_BYTES {
            let report = service.import(caller, address, std::mem::take(&mut step))?;
            results.extend(report.results);
            step_bytes = 0;
        }
        let len = usize::try_from(part.len)
            .map_err(|_| ServiceError::PayloadTooLarge(format!("{} is too large", part.origin)))?;
        let mut raw = vec![0u8; len];
        spool
            .file
            .read_exact_at(&mut raw, part.offset)
            .map_err(|e| io_error("reading the upload file", e))?;
        step_bytes += part.len;
        step.push(BatchItem {
            origin: part.origin,
            folder: folder.to_string(),
            raw,
        });
    }
    if !step.is_empty() {
        results.extend(service.import(caller, address, step)?.results);
    }
    Ok(api::ImportReport { results })
}
