//! The audit trail's and the export's wire types (`/api/v1/audit`,
//! `/api/v1/mailboxes/{address}/export`; docs/api.md, docs/compliance.md)
//! and their client calls.

use crate::client::{ApiError, Client, segment};
use reqwest::{Method, Response};
use serde::{Deserialize, Serialize};

/// One entry of the audit trail, as stored: its hash covers the hash of the
/// entry before it and every other field of this one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339 UTC, whole seconds.
    pub time: String,
    /// The user, or "-" for a failed sign-in with an unknown user name.
    pub actor: String,
    /// The client's IP address.
    pub source: String,
    /// What was done (`signin`, `search`, `message.read`, ...).
    pub action: String,
    /// What it was done to: mailbox, message id, query, ...
    pub target: serde_json::Value,
    /// SHA-256, 64 lowercase hex digits.
    pub hash: String,
}

/// The latest entry of the trail (`seq` 0 and the zero hash when empty).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// What `audit verify` found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditVerification {
    /// True when every entry chains to the one before it.
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The last entry that verified.
    pub head: AuditHead,
    /// The first entry that does not match (edited, deleted or inserted).
    pub first_bad: Option<i64>,
    /// Why it does not match.
    pub problem: Option<String>,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only entries before this seq: the next page back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
}

/// The line before each message of an export stream; the message's `size`
/// bytes follow it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportItem {
    pub id: crate::MessageId,
    pub size: u64,
    /// The archive time (Unix seconds) of the message in this mailbox.
    pub added: i64,
}

/// The last line of a complete export stream: a stream that ends without it
/// was cut short.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportEnd {
    pub end: bool,
    pub messages: u64,
    pub bytes: u64,
}

impl Client {
    pub async fn audit_head(&self) -> Result<AuditHead, ApiError> {
        let resp = self
            .send(self.request(Method::GET, "/api/v1/audit/head"))
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn audit_verify(&self) -> Result<AuditVerification, ApiError> {
        let resp = self
            .send(self.request(Method::GET, "/api/v1/audit/verify"))
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ApiError> {
        let rb = self.request(Method::GET, "/api/v1/audit").query(filter);
        Ok(self.send(rb).await?.json().await?)
    }

    /// Starts an export of `address` (the messages matching `query`, or
    /// all): the response streams [`ExportItem`] lines, each followed by its
    /// message, then one [`ExportEnd`] line.
    pub async fn export(
        &self,
        address: &str,
        query: Option<&str>,
    ) -> Result<ExportStream, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/export", segment(address));
        let mut rb = self.request(Method::GET, &path);
        if let Some(q) = query {
            rb = rb.query(&[("q", q)]);
        }
        Ok(ExportStream(self.send(rb).await?))
    }
}

/// The body of an export, read chunk by chunk.
pub struct ExportStream(Response);

impl ExportStream {
    /// The next bytes of the stream; None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(self.0.chunk().await?.map(|b| b.to_vec()))
    }
}
