//! A bounded in-memory cache of message frames (a message's compressed bytes
//! as its pack holds them) read from S3 repositories, one per node.
//!
//! On an object store every read is a round trip (about 5 ms on loopback,
//! more across a network), and a search answer reads up to 50 messages for
//! its snippets, again for every repeated search; a disk repository's reads
//! are page cache hits already and keep none.
//!
//! Why entries never go stale: a pack's name is the SHA-256 of its bytes
//! ([`crate::store::build_pack`]) and packs are written once, so (pack,
//! span) always names the same bytes; a garbage pass that rewrites a pack
//! writes a new name. Only frames that decompressed and hashed to their
//! message's id are kept (the archive's read path checks before it keeps),
//! and every hit is checked again on the way out, so damage is never hidden
//! by, nor served from, the cache. Deleting a pack (a garbage pass, an
//! erasure) forgets its frames at once: an erased message's bytes leave this
//! node's memory with its pack, whatever the catalog says.

use crate::store::Span;
use bytes::Bytes;
use quick_cache::{Weighter, sync::Cache};

/// The frames a node keeps when its configuration names no size: 256 MiB,
/// about 50,000 typical messages (5 KiB compressed).
pub const DEFAULT_BYTES: u64 = 256 * 1024 * 1024;

/// What a kept frame costs beyond its bytes (key, entry, allocation).
const ENTRY_OVERHEAD: u64 = 128;

/// The typical frame, for the cache's first sizing of its tables.
const TYPICAL_FRAME: u64 = 4 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    pack: String,
    offset: u64,
    length: u64,
}

impl Key {
    fn of(pack: &str, span: Span) -> Self {
        Key {
            pack: pack.to_string(),
            offset: span.offset,
            length: span.length,
        }
    }
}

/// Weighs an entry by its bytes, so the bound is in bytes.
#[derive(Clone)]
struct FrameWeight;

impl Weighter<Key, Bytes> for FrameWeight {
    fn weight(&self, key: &Key, frame: &Bytes) -> u64 {
        frame.len() as u64 + key.pack.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Verified frames by (pack, span), at most a configured number of bytes.
pub struct FrameCache {
    /// `None` when the bound is 0: nothing is kept.
    frames: Option<Cache<Key, Bytes, FrameWeight>>,
}

impl FrameCache {
    /// A cache of at most `bytes` bytes (0: none).
    pub fn new(bytes: u64) -> Self {
        let frames = (bytes > 0).then(|| {
            let items = usize::try_from(bytes / TYPICAL_FRAME).unwrap_or(usize::MAX);
            Cache::with_weighter(items.max(16), bytes, FrameWeight)
        });
        FrameCache { frames }
    }

    /// The frame of `span` in pack `pack`, if kept.
    pub fn get(&self, pack: &str, span: Span) -> Option<Vec<u8>> {
        let frame = self.frames.as_ref()?.get(&Key::of(pack, span))?;
        Some(frame.to_vec())
    }

    /// Keeps a frame the caller verified (it decompressed and hashed to its
    /// message's id).
    pub fn keep(&self, pack: &str, span: Span, frame: &[u8]) {
        if let Some(frames) = &self.frames {
            frames.insert(Key::of(pack, span), Bytes::copy_from_slice(frame));
        }
    }

    /// Forgets every frame of pack `pack` (it is being deleted).
    pub fn forget_pack(&self, pack: &str) {
        if let Some(frames) = &self.frames {
            frames.retain(|key, _| key.pack != pack);
        }
    }

    /// The bytes the kept frames weigh now.
    pub fn weight(&self) -> u64 {
        self.frames.as_ref().map_or(0, Cache::weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: u64, length: u64) -> Span {
        Span { offset, length }
    }

    #[test]
    fn keeps_within_its_bound_and_forgets_a_deleted_pack() {
        let cache = FrameCache::new(64 * 1024);
        for i in 0..100 {
            cache.keep("a", span(i * 1000, 1000), &[i as u8; 1000]);
        }
        assert!(cache.weight() <= 64 * 1024, "bounded: {}", cache.weight());
        cache.keep("b", span(8, 3), b"xyz");
        assert_eq!(cache.get("b", span(8, 3)).as_deref(), Some(&b"xyz"[..]));
        assert_eq!(
            cache.get("b", span(8, 4)),
            None,
            "another span is another key"
        );
        cache.forget_pack("b");
        assert_eq!(cache.get("b", span(8, 3)), None);
    }

    #[test]
    fn a_zero_bound_keeps_nothing() {
        let cache = FrameCache::new(0);
        cache.keep("a", span(8, 3), b"xyz");
        assert_eq!(cache.get("a", span(8, 3)), None);
    }
}
