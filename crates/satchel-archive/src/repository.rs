//! Where packs live: a repository is a local disk folder ([`disk`]) or an
//! S3-compatible bucket ([`s3`]), behind one interface, [`PackStore`]. The
//! pack format itself is [`crate::store`]'s.

pub mod cache;
pub mod disk;
pub mod s3;

pub use cache::FrameCache;
pub use s3::{S3Location, check_endpoint};

use crate::catalog::RepositoryInfo;
use crate::error::{ArchiveError, Result};
use crate::store::Span;
use std::path::Path;
use std::sync::Arc;

/// One repository's packs.
pub trait PackStore: Send + Sync {
    /// Stores a complete pack under `name`. Returns only once the pack is
    /// durable (fsynced and renamed; or PUT and confirmed), so the catalog may
    /// name it; on an error nothing that the catalog will name was kept.
    fn put_pack(&self, name: &str, bytes: Vec<u8>) -> Result<()>;

    /// The bytes of `span` in pack `name` (a ranged read).
    fn read_span(&self, name: &str, span: Span) -> Result<Vec<u8>>;

    /// The bytes of several spans (pack name, span), one result per span in
    /// order: what one search answer shows. A store whose reads wait on the
    /// network reads them concurrently; a disk reads them one by one (page
    /// cache hits).
    fn read_spans(&self, spans: &[(String, Span)]) -> Vec<Result<Vec<u8>>> {
        spans
            .iter()
            .map(|(name, span)| self.read_span(name, *span))
            .collect()
    }

    /// The cache of verified frames this store's reads go through, if it
    /// keeps one (an S3 repository: each read there is a round trip).
    fn frames(&self) -> Option<&FrameCache> {
        None
    }

    /// Deletes pack `name` (nothing happens if there is none): for the
    /// garbage pass, once the catalog no longer names it.
    fn delete_pack(&self, name: &str) -> Result<()>;

    /// Every complete pack the repository holds (not a write in progress's
    /// temporary file), for the garbage pass to find packs no catalog row
    /// names.
    fn list_packs(&self) -> Result<Vec<StoredPack>>;
}

/// A pack as its repository lists it.
#[derive(Clone, Debug)]
pub struct StoredPack {
    pub name: String,
    pub size: u64,
    /// When it was written; an import writes its pack before the catalog
    /// names it, so a young unnamed pack may be an import in progress.
    pub modified: std::time::SystemTime,
}

/// The pack name in a listed file or object name `NAME.pack`.
pub fn pack_name_of(file: &str) -> Option<&str> {
    let name = file.strip_suffix(".pack")?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then_some(name)
}

/// Opens a repository recorded in the catalog; `root` is the data folder that
/// relative disk paths are relative to; an S3 repository's reads go through
/// `frames` (the node's). Opening contacts nothing.
pub fn open(
    info: &RepositoryInfo,
    root: &Path,
    frames: &Arc<FrameCache>,
) -> Result<Arc<dyn PackStore>> {
    match info.kind.as_str() {
        "disk" => Ok(Arc::new(disk::DiskRepository::new(root.join(&info.path)))),
        "s3" => Ok(Arc::new(
            s3::S3Repository::open(info)?.with_frames(Arc::clone(frames)),
        )),
        other => Err(ArchiveError::Invalid {
            what: "repository",
            why: format!("repository {} is of unknown kind {other:?}", info.name),
        }),
    }
}
