//! Deleting a message from a mailbox and reclaiming repository space: the
//! wire types (`DELETE /api/v1/mailboxes/{address}/messages/{id}`,
//! `POST /api/v1/repositories/gc`; docs/api.md, docs/compliance.md) and
//! their client calls.

use crate::MessageId;
use crate::client::{ApiError, Client, segment};
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// The body of a deletion: why (kept in the audit trail).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteMessage {
    pub reason: String,
}

/// What a deletion did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub mailbox: String,
    pub id: MessageId,
    pub reason: String,
    /// The other mailboxes that still hold the message (its bytes stay
    /// while any does).
    pub still_in: Vec<String>,
    /// Repository bytes given back by the deletion (0 while another mailbox
    /// holds the message).
    pub bytes_reclaimed: u64,
}

/// Options of a garbage pass (`POST /api/v1/repositories/gc`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GcRequest {
    /// Report what would be done; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Delete pack files no catalog row names once older than this many
    /// seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan_grace_secs: Option<u64>,
    /// Rewrite a pack whose held bytes are below this fraction of its size
    /// (0 to 1; default 0.5; 1 rewrites every pack with any dead bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// What a garbage pass did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    /// Messages no mailbox held that lost their catalog row.
    pub messages_dropped: u64,
    /// Packs deleted because nothing in them was held.
    pub packs_deleted: u64,
    /// Packs rewritten with only their held messages.
    pub packs_rewritten: u64,
    /// Pack files no catalog row named, deleted.
    pub orphans_deleted: u64,
    /// Bytes the repositories hold no more.
    pub bytes_reclaimed: u64,
    /// Packs left as they were (unreadable, or changed meanwhile); the
    /// service's log says why, and a later pass tries again.
    pub packs_skipped: u64,
}

impl Client {
    /// Deletes message `id` from mailbox `address` (administrators).
    pub async fn delete_message(
        &self,
        address: &str,
        id: &MessageId,
        reason: &str,
    ) -> Result<MessageDeleted, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/messages/{id}", segment(address));
        let body = DeleteMessage {
            reason: reason.to_string(),
        };
        let rb = self.request(Method::DELETE, &path).json(&body);
        Ok(self.send(rb).await?.json().await?)
    }

    /// Runs a garbage pass over every repository (administrators).
    pub async fn collect_garbage(&self, req: &GcRequest) -> Result<GcReport, ApiError> {
        let rb = self
            .request(Method::POST, "/api/v1/repositories/gc")
            .json(req);
        Ok(self.send(rb).await?.json().await?)
    }
}
