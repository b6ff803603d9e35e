//! The HTTP API of the archive service, as both sides see it: the wire types
//! (`/api/v1`, documented in docs/api.md) and a [`Client`] the command line and the
//! laptop client use. The service and the laptop never depend on each other; both
//! depend on this.

pub mod archive;
pub mod audit;
pub mod backup;
pub mod client;
pub mod removal;
pub mod retention;
pub mod tls;
pub mod types;

pub use archive::*;
pub use audit::*;
pub use backup::*;
pub use client::{ApiError, Auth, Client, ManifestFetch};
pub use removal::*;
pub use retention::*;
pub use tls::{CA_FILE_VAR, PrivateCa};
pub use types::*;
