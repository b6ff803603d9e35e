//! Retention and legal hold: wire types (`/api/v1/retention…`,
//! `/api/v1/holds…`; docs/api.md, docs/compliance.md) and their client calls.

use crate::client::{ApiError, Client, segment};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where a mailbox's retention period comes from.
pub const FROM_MAILBOX: &str = "mailbox";
/// The mailbox has no period of its own: the default applies.
pub const FROM_DEFAULT: &str = "default";

/// A mailbox's effective retention period.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retention {
    pub mailbox: String,
    /// Days a message is kept, counted from its `Date:` header (its archive
    /// time when that is missing or unparsable); None keeps it forever.
    pub days: Option<u64>,
    /// [`FROM_MAILBOX`] or [`FROM_DEFAULT`].
    pub source: String,
}

/// The retention settings of the whole service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RetentionReport {
    /// The default period (None: keep forever, the default).
    pub default_days: Option<u64>,
    /// When expiry runs (cron, the service's local time).
    pub schedule: String,
    /// RFC 3339 UTC of the next scheduled run.
    pub next_run: Option<String>,
    /// Every mailbox's effective period.
    pub mailboxes: Vec<Retention>,
}

/// Body of `PUT /api/v1/retention/default` and
/// `PUT /api/v1/retention/mailboxes/{address}`: a period in days, or null
/// to keep forever. `DELETE` on the mailbox's path returns it to the default.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetRetention {
    pub days: Option<u64>,
}

/// Body of `PUT /api/v1/retention/schedule`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetRetentionSchedule {
    pub cron: String,
}

/// The retention schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RetentionSchedule {
    pub cron: String,
    pub next_run: Option<String>,
}

/// Body of `POST /api/v1/retention/apply`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ApplyRetention {
    /// One mailbox, or every mailbox with a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// Only say what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// A message that expired (or would, in a dry run).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Expired {
    pub mailbox: String,
    pub id: crate::MessageId,
    /// RFC 3339 UTC: its `Date:` header, else its archive time (what its age
    /// is counted from).
    pub date: String,
    pub subject: String,
}

/// What an apply removed (or would remove), and what holds kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RetentionApplied {
    pub dry_run: bool,
    /// The job that recorded it (0 for a dry run).
    pub job: i64,
    /// Mailboxes whose period was applied.
    pub mailboxes: Vec<String>,
    pub removed: Vec<Expired>,
    /// Messages past their period that a hold kept, per hold name.
    pub held: std::collections::BTreeMap<String, u64>,
    /// Bytes given back to the repositories by the reclaim pass after it.
    pub reclaimed_bytes: u64,
}

/// Body of `POST /api/v1/holds`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewHold {
    pub name: String,
    pub mailboxes: Vec<String>,
    /// A query in the search language: only matching messages are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A legal hold.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hold {
    pub name: String,
    pub mailboxes: Vec<String>,
    /// None: every message of its mailboxes.
    pub query: Option<String>,
    /// The administrator who placed it.
    pub placed_by: String,
    /// RFC 3339 UTC.
    pub placed: String,
    /// Messages it covers now (a message in two of its mailboxes counts twice).
    pub messages: u64,
}

impl Client {
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Ok(self.send(rb).await?.json().await?)
    }

    pub async fn retention(&self) -> Result<RetentionReport, ApiError> {
        self.call::<(), _>(Method::GET, "/api/v1/retention", None)
            .await
    }

    pub async fn mailbox_retention(&self, address: &str) -> Result<Retention, ApiError> {
        let path = format!("/api/v1/retention/mailboxes/{}", segment(address));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Sets a mailbox's period (`Some(days)` or `Some(None)` for keep
    /// forever), or returns it to the default (`None`).
    pub async fn set_mailbox_retention(
        &self,
        address: &str,
        days: Option<Option<u64>>,
    ) -> Result<Retention, ApiError> {
        let path = format!("/api/v1/retention/mailboxes/{}", segment(address));
        match days {
            Some(days) => {
                self.call(Method::PUT, &path, Some(&SetRetention { days }))
                    .await
            }
            None => self.call::<(), _>(Method::DELETE, &path, None).await,
        }
    }

    pub async fn set_default_retention(
        &self,
        days: Option<u64>,
    ) -> Result<RetentionReport, ApiError> {
        let body = SetRetention { days };
        self.call(Method::PUT, "/api/v1/retention/default", Some(&body))
            .await
    }

    pub async fn set_retention_schedule(&self, cron: &str) -> Result<RetentionSchedule, ApiError> {
        let body = SetRetentionSchedule { cron: cron.into() };
        self.call(Method::PUT, "/api/v1/retention/schedule", Some(&body))
            .await
    }

    pub async fn apply_retention(
        &self,
        body: &ApplyRetention,
    ) -> Result<RetentionApplied, ApiError> {
        self.call(Method::POST, "/api/v1/retention/apply", Some(body))
            .await
    }

    pub async fn add_hold(&self, hold: &NewHold) -> Result<Hold, ApiError> {
        self.call(Method::POST, "/api/v1/holds", Some(hold)).await
    }

    pub async fn holds(&self) -> Result<Vec<Hold>, ApiError> {
        self.call::<(), _>(Method::GET, "/api/v1/holds", None).await
    }

    pub async fn hold(&self, name: &str) -> Result<Hold, ApiError> {
        let path = format!("/api/v1/holds/{}", segment(name));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn release_hold(&self, name: &str) -> Result<Hold, ApiError> {
        let path = format!("/api/v1/holds/{}", segment(name));
        self.call::<(), _>(Method::DELETE, &path, None).await
    }
}
