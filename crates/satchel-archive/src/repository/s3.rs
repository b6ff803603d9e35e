//! S3-compatible repositories: packs as objects in a bucket, through the
//! `object_store` crate (Apache Arrow's).
//!
//! A pack is one object, `PREFIX/packs/<aa>/<name>.pack`, PUT whole; the PUT's
//! success is confirmed (a HEAD sees the full size) before the catalog names
//! it, as a disk pack is fsynced and renamed first. Messages are read back by
//! ranged GETs.
//!
//! The archive is called from plain threads (rayon imports) and from inside
//! the service's tokio runtime, where `block_on` would panic. So every
//! repository owns a small runtime of its own (one worker thread): a call is
//! spawned there, and the caller waits on a channel, never on a runtime.
//! Every call has a time budget.

use super::{FrameCache, PackStore, StoredPack, pack_name_of};
use crate::catalog::RepositoryInfo;
use crate::error::{ArchiveError, IoContext, Result, S3Failure};
use crate::store::{Span, pack_key};
use futures::{StreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The longest one S3 call (with its retries) may take before it fails.
const CALL_BUDGET: Duration = Duration::from_secs(120);
/// One HTTP request's budget; a call retries a failed request twice.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ranged GETs one [`PackStore::read_spans`] keeps in flight at once: a
/// search answer's hits (up to 50) in a few round trips, without opening a
/// connection per hit.
const SPANS_IN_FLIGHT: usize = 16;
/// The region when `AWS_REGION` is unset (what S3-compatible servers expect).
const DEFAULT_REGION: &str = "us-east-1";

/// An S3 repository's place: `s3://BUCKET[/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| ArchiveError::Invalid {
            what: "S3 URL",
            why: format!("{url:?} {why} (expected s3://BUCKET[/PREFIX])"),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(invalid("has no valid bucket name"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// An S3 endpoint is an `http://` or `https://` URL with a host.
pub fn check_endpoint(endpoint: &str) -> Result<()> {
    let host = ["http://", "https://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with('/') => Ok(()),
        _ => Err(ArchiveError::Invalid {
            what: "S3 endpoint",
            why: format!("{endpoint:?} is not an http:// or https:// URL with a host"),
        }),
    }
}

/// An S3 repository: its client and the runtime the client runs on.
pub struct S3Repository {
    /// The repository's name and endpoint, for every error message.
    name: String,
    endpoint: String,
    prefix: String,
    store: Arc<AmazonS3>,
    /// `Some` until dropped: see [`Drop`].
    runtime: Option<tokio::runtime::Runtime>,
    /// The node's cache of verified frames, for the archive's reads (an
    /// offline store's handle keeps none).
    frames: Option<Arc<FrameCache>>,
}

impl S3Repository {
    /// Builds the client from the catalog's row and the service's
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`).
    /// Contacts nothing yet.
    pub fn open(info: &RepositoryInfo) -> Result<Self> {
        let location = S3Location::parse(&info.path.to_string_lossy())?;
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.into());
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_region(region)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: CALL_BUDGET / 2,
            });
        let mut options = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        if let Some(endpoint) = &info.endpoint {
            check_endpoint(endpoint)?;
            builder = builder.with_endpoint(endpoint);
            options = options.with_allow_http(endpoint.starts_with("http://"));
        }
        let failed = |source| ArchiveError::S3 {
            repo: info.name.clone(),
            endpoint: endpoint_name(info),
            what: "setting up the client".into(),
            source: Box::new(source),
        };
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| failed(S3Failure::Store(e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("s3-{}", info.name))
            .enable_all()
            .build()
            .map_err(|e| failed(S3Failure::Runtime(e)))?;
        Ok(S3Repository {
            name: info.name.clone(),
            endpoint: endpoint_name(info),
            prefix: location.prefix,
            store: Arc::new(store),
            runtime: Some(runtime),
            frames: None,
        })
    }

    /// This repository's message reads go through `frames`, and its pack
    /// deletions forget their frames there.
    pub fn with_frames(mut self, frames: Arc<FrameCache>) -> Self {
        self.frames = Some(frames);
        self
    }

    fn key(&self, name: &str) -> ObjectPath {
        let key = pack_key(name);
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Runs `call` on this repository's runtime within [`CALL_BUDGET`] and
    /// waits for it on a channel (safe inside another runtime, unlike
    /// `block_on`). `what` says what was being done, for the error.
    fn run<T, F>(&self, what: String, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let outcome = match &self.runtime {
            Some(runtime) => {
                runtime.spawn(async move {
                    let done = match tokio::time::timeout(CALL_BUDGET, call).await {
                        Ok(r) => r.map_err(S3Failure::Store),
                        Err(_) => Err(S3Failure::Timeout(CALL_BUDGET)),
                    };
                    // The caller is waiting on the other end.
                    let _ = tx.send(done);
                });
                rx.recv().unwrap_or(Err(S3Failure::Stopped))
            }
            None => Err(S3Failure::Stopped),
        };
        outcome.map_err(|source| self.failure(what, source))
    }
}

/// Objects beside the packs, for the service's other shared data (offline
/// repositories: `PREFIX/offline/...`). Keys are relative to the
/// repository's prefix; every call has the same budget and error naming as
/// a pack's.
impl S3Repository {
    /// Uploads the file at `path` as object `key` and confirms (HEAD) that the
    /// bucket holds all of it before returning. Files above [`WHOLE_PUT`] go up
    /// in parts, so a large file is never held in memory.
    pub fn put_object_file(&self, key: &str, path: &Path) -> Result<()> {
        let location = self.object_key(key);
        let size = std::fs::metadata(path).at(path)?.len();
        let store = Arc::clone(&self.store);
        let what = format!("storing {location}");
        let file = path.to_path_buf();
        let stored = self.run(what.clone(), async move {
            if size <= WHOLE_PUT as u64 {
                let bytes = std::fs::read(&file).map_err(|e| local_file(&file, e))?;
                store.put(&location, bytes.into()).await?;
            } else {
                put_in_parts(&store, &location, &file).await?;
            }
            store.head(&location).await
        })?;
        if stored.size != size {
            return Err(self.failure(
                what,
                S3Failure::Short {
                    stored: stored.size,
                    sent: size,
                },
            ));
        }
        Ok(())
    }

    /// The whole object `key`, or `None` if there is none.
    pub fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let location = self.object_key(key);
        let store = Arc::clone(&self.store);
        let what = format!("reading {location}");
        let got = self.run(what, async move {
            match store.get(&location).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(got.map(|b| b.to_vec()))
    }

    /// The size of object `key`, or `None` if there is none.
    pub fn object_size(&self, key: &str) -> Result<Option<u64>> {
        let location = self.object_key(key);
        let store = Arc::clone(&self.store);
        let what = format!("looking up {location}");
        self.run(what, async move {
            match store.head(&location).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Bytes `range` of object `key` (a ranged GET).
    pub fn read_object_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let location = self.object_key(key);
        let store = Arc::clone(&self.store);
        let what = format!("reading bytes {}..{} of {location}", range.start, range.end);
        let bytes = self.run(what, async move { store.get_range(&location, range).await })?;
        Ok(bytes.to_vec())
    }

    /// The names (last key part) of the objects directly under `dir`.
    pub fn list_objects(&self, dir: &str) -> Result<Vec<String>> {
        let location = self.object_key(dir);
        let store = Arc::clone(&self.store);
        let what = format!("listing {location}");
        let listed = self.run(what, async move {
            store.list_with_delimiter(Some(&location)).await
        })?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect())
    }

    /// Deletes object `key` (nothing happens if there is none).
    pub fn delete_object(&self, key: &str) -> Result<()> {
        let location = self.object_key(key);
        let store = Arc::clone(&self.store);
        let what = format!("deleting {location}");
        self.run(what, async move {
            match store.delete(&location).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        })
    }

    /// The repository's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn object_key(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn failure(&self, what: String, source: S3Failure) -> ArchiveError {
        ArchiveError::S3 {
            repo: self.name.clone(),
            endpoint: self.endpoint.clone(),
            what,
            source: Box::new(source),
        }
    }
}

/// Files up to this size are PUT whole; larger ones in parts of this size.
const WHOLE_PUT: usize = 16 * 1024 * 1024;

/// A multipart upload of `file`, read one part at a time.
async fn put_in_parts(
    store: &AmazonS3,
    location: &ObjectPath,
    file: &Path,
) -> object_store::Result<()> {
    use std::io::Read;
    let upload = store.put_multipart(location).await?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, WHOLE_PUT);
    let mut f = std::fs::File::open(file).map_err(|e| local_file(file, e))?;
    let mut buf = vec![0u8; WHOLE_PUT];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                // Best effort: the bucket drops unfinished uploads' parts.
                let _ = writer.abort().await;
                return Err(local_file(file, e));
            }
        };
        writer.wait_for_capacity(2).await?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map(|_| ())
}

/// A local file's failure, in object_store's error type (the call's).
fn local_file(path: &Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "local file",
        source: Box::new(std::io::Error::new(
            source.kind(),
            format!("{}: {source}", path.display()),
        )),
    }
}

impl PackStore for S3Repository {
    fn put_pack(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(name);
        let size = bytes.len() as u64;
        let store = Arc::clone(&self.store);
        let what = format!("storing pack {key}");
        let stored = self.run(what.clone(), async move {
            store.put(&key, bytes.into()).await?;
            // Confirmed only when the bucket shows the whole object.
            store.head(&key).await
        })?;
        if stored.size != size {
            let short = S3Failure::Short {
                stored: stored.size,
                sent: size,
            };
            return Err(self.failure(what, short));
        }
        Ok(())
    }

    fn read_span(&self, name: &str, span: Span) -> Result<Vec<u8>> {
        let key = self.key(name);
        let store = Arc::clone(&self.store);
        let what = span_read(&key, span);
        let range = span.offset..span.offset + span.length;
        let bytes = self.run(what, async move { store.get_range(&key, range).await })?;
        Ok(bytes.to_vec())
    }

    /// One call on the repository's runtime, [`SPANS_IN_FLIGHT`] ranged GETs
    /// at a time, answers kept in the order asked; each span fails alone.
    fn read_spans(&self, spans: &[(String, Span)]) -> Vec<Result<Vec<u8>>> {
        let keys: Vec<ObjectPath> = spans.iter().map(|(name, _)| self.key(name)).collect();
        let asked: Vec<(ObjectPath, std::ops::Range<u64>)> = keys
            .iter()
            .zip(spans)
            .map(|(key, (_, span))| (key.clone(), span.offset..span.offset + span.length))
            .collect();
        let store = Arc::clone(&self.store);
        let what = format!("reading {} messages", spans.len());
        let read = self.run(what, async move {
            let each = stream::iter(asked)
                .map(|(key, range)| {
                    let store = Arc::clone(&store);
                    async move { store.get_range(&key, range).await }
                })
                .buffered(SPANS_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await;
            Ok(each)
        });
        let whole = |span: (&ObjectPath, Span), e: &ArchiveError| {
            // The call as a whole failed (no answer in time, a stopped
            // client): each span says so.
            let failure = match e {
                ArchiveError::S3 { source, .. } => match **source {
                    S3Failure::Timeout(d) => S3Failure::Timeout(d),
                    _ => S3Failure::Stopped,
                },
                _ => S3Failure::Stopped,
            };
            self.failure(span_read(span.0, span.1), failure)
        };
        match read {
            Ok(each) => each
                .into_iter()
                .zip(keys.iter().zip(spans))
                .map(|(got, (key, (_, span)))| {
                    got.map(|b| b.to_vec())
                        .map_err(|e| self.failure(span_read(key, *span), S3Failure::Store(e)))
                })
                .collect(),
            Err(e) => keys
                .iter()
                .zip(spans)
                .map(|(key, (_, span))| Err(whole((key, *span), &e)))
                .collect(),
        }
    }

    fn frames(&self) -> Option<&FrameCache> {
        self.frames.as_deref()
    }

    /// Forgets the pack's cached frames once the object is gone (or its
    /// deletion failed): none of its bytes stay in this node's memory. (The
    /// catalog stopped naming the pack before, so no read finds them anyway.)
    fn delete_pack(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        let store = Arc::clone(&self.store);
        let what = format!("deleting pack {key}");
        let deleted = self.run(what, async move {
            match store.delete(&key).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        });
        if let Some(frames) = &self.frames {
            frames.forget_pack(name);
        }
        deleted
    }

    /// One listing of `packs/`, then one of each fan-out folder in it.
    fn list_packs(&self) -> Result<Vec<StoredPack>> {
        let root = self.object_key("packs");
        let store = Arc::clone(&self.store);
        let what = format!("listing {root}");
        let packs = self.run(what, async move {
            let fans = store.list_with_delimiter(Some(&root)).await?;
            let mut packs = Vec::new();
            for fan in fans.common_prefixes {
                let listed = store.list_with_delimiter(Some(&fan)).await?;
                for o in listed.objects {
                    let Some(name) = o.location.filename().and_then(pack_name_of) else {
                        continue;
                    };
                    packs.push(StoredPack {
                        name: name.to_string(),
                        size: o.size,
                        modified: o.last_modified.into(),
                    });
                }
            }
            Ok(packs)
        })?;
        Ok(packs)
    }
}

impl Drop for S3Repository {
    /// Dropping a runtime blocks until its threads end, which panics inside
    /// another runtime (the service's): let them end in the background.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What reading `span` of the pack at `key` is called in an error.
fn span_read(key: &ObjectPath, span: Span) -> String {
    format!(
        "reading {} bytes at {} of pack {key}",
        span.length, span.offset
    )
}

/// How errors name a repository's endpoint.
fn endpoint_name(info: &RepositoryInfo) -> String {
    info.endpoint
        .clone()
        .unwrap_or_else(|| "the AWS endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://mail-bucket/archive/one/").expect("valid");
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("mail-bucket", "archive/one")
        );
        let l = S3Location::parse("s3://mail-bucket").expect("valid");
        assert_eq!(l.prefix, "");
        for bad in ["http://host/bucket", "s3://", "s3://A_B/x", "s3:///x"] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:8333").is_ok());
        assert!(check_endpoint("ftp://x").is_err());
        assert!(check_endpoint("http://").is_err());
    }
}
