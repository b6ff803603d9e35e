//! Where packs live: a repository is a local disk folder or an S3-compatible
//! bucket. The pack format itself is [`crate::store`]'s.

pub mod s3;

pub use s3::{S3Location, check_endpoint};
