//! Types the service and the laptop client exchange over HTTP.
//!
//! Kept deliberately small: the manifest (see [`crate::Manifest`]) and the
//! segment files themselves are the rest of the protocol.

use serde::{Deserialize, Serialize};

/// One mailbox offline repository the requesting user may copy, as returned
/// by the service's listing endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRepositoryListing {
    pub mailbox: String,
    pub epoch: String,
    pub generation: u64,
    /// Live messages in the repository.
    pub messages: u64,
    /// Total size of the segments (what a fresh copy downloads).
    pub bytes: u64,
    /// Where to GET the manifest; segments are at `<dir of manifest>/segments/<name>`.
    pub manifest_url: String,
}

/// The listing endpoint's response body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRepositoryList {
    pub repositories: Vec<OfflineRepositoryListing>,
}

impl OfflineRepositoryListing {
    /// The listing of a manifest served at `manifest_url`.
    pub fn from_manifest(m: &crate::Manifest, manifest_url: impl Into<String>) -> Self {
        OfflineRepositoryListing {
            mailbox: m.mailbox.clone(),
            epoch: m.epoch.clone(),
            generation: m.generation,
            messages: m.totals.messages,
            bytes: m.totals.bytes,
            manifest_url: manifest_url.into(),
        }
    }
}
