//! The pack format: compressed messages in immutable *packs*.
//!
//! Why packs and not a file (or object) per message: durability costs an fsync
//! (or a PUT), and an fsync costs ~0.2 ms here. One pack per import batch makes
//! a thousand messages durable with one write. Where a pack is kept, and how it
//! is made durable before the catalog names it, is the repository's business
//! ([`crate::repository`]); this module only builds packs and opens frames.
//!
//! Pack layout (version 1): the 8 bytes `SATPACK1`, then one zstd frame per message.
//! The catalog records each message's offset and length in its pack.

use crate::error::{IoContext, Result};
use sha2::{Digest, Sha256};

pub const PACK_MAGIC: &[u8; 8] = b"SATPACK1";
/// zstd level for archived messages: level 3 is zstd's own default, fast enough to
/// keep an import well above the disk's fsync rate.
pub const LEVEL: i32 = 3;

/// Where one message sits inside a pack.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub offset: u64,
    pub length: u64,
}

#[derive(Clone, Debug)]
pub struct PackRef {
    pub name: String,
    pub size: u64,
    pub spans: Vec<Span>,
}

pub fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(raw, LEVEL)
}

/// Lays already compressed frames out as one pack: its bytes, and its name
/// (the SHA-256 of those bytes) with where each frame landed.
pub fn build_pack(frames: &[&[u8]]) -> (PackRef, Vec<u8>) {
    let mut bytes = Vec::with_capacity(8 + frames.iter().map(|f| f.len()).sum::<usize>());
    bytes.extend_from_slice(PACK_MAGIC);
    let mut spans = Vec::with_capacity(frames.len());
    for frame in frames {
        spans.push(Span {
            offset: bytes.len() as u64,
            length: frame.len() as u64,
        });
        bytes.extend_from_slice(frame);
    }
    let pack = PackRef {
        name: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        spans,
    };
    (pack, bytes)
}

/// The path of a pack inside its repository, the same for a folder and a
/// bucket: `packs/<aa>/<name>.pack`, `<aa>` the name's first two hex digits.
pub fn pack_key(name: &str) -> String {
    let fan = name.get(..2).unwrap_or(name);
    format!("packs/{fan}/{name}.pack")
}

/// Decompresses one message's frame. The catalog knows the exact size, so
/// decompression never needs to guess.
pub fn decompress(frame: &[u8], raw_size: u64) -> Result<Vec<u8>> {
    zstd::bulk::decompress(frame, raw_size as usize).at("zstd frame")
}
