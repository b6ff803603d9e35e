//! Helpers of Satchel's scale benchmarks (issue 12): a counting TCP proxy,
//! percentiles, and the resident memory of a process. The binaries under
//! `src/bin/` are driven by scripts in `benches/`; nothing here is part of the
//! product, and no product crate depends on this one.

pub mod proxy;
pub mod rss;
pub mod stats;
