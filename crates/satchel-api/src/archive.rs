//! Wire types of IMAP archive runs (docs/api.md, "Archive runs").

use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// What an archive run takes from a mailbox: messages matching every given
/// criterion, in the given folders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivePolicy {
    /// Only messages whose IMAP INTERNALDATE is more than DAYS days ago
    /// (IMAP `SEARCH BEFORE`, whole UTC days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_days: Option<u32>,
    /// Only messages larger than BYTES (IMAP `SEARCH LARGER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub larger_than: Option<u64>,
    /// The folders to archive from; empty means INBOX.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Every selectable folder of the account (IMAP LIST), instead of `folders`.
    #[serde(default)]
    pub all_folders: bool,
    /// Replace each archived original by a stub (default). False: archive only,
    /// the mailbox is left unchanged.
    #[serde(default = "yes")]
    pub stub: bool,
}

impl Default for ArchivePolicy {
    fn default() -> Self {
        ArchivePolicy {
            older_than_days: None,
            larger_than: None,
            folders: Vec::new(),
            all_folders: false,
            stub: true,
        }
    }
}

/// One message an archive run could not archive, and why. It stays in its
/// folder untouched.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchiveRunFailure {
    pub folder: String,
    pub uid: u32,
    pub reason: String,
}

/// One folder's part of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveFolderSummary {
    pub folder: String,
    pub uidvalidity: u32,
    /// The folder's UIDVALIDITY differed from the previous run's: what was
    /// recorded about its UIDs was dropped and the folder scanned afresh.
    pub uidvalidity_changed: bool,
    pub examined: u64,
    pub archived: u64,
    pub already_archived: u64,
    pub stubbed: u64,
    pub expunged: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// The summary of an archive run (also the run record's detail).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveRunSummary {
    /// The run record (jobs table) of this run.
    pub job: i64,
    pub mailbox: String,
    /// "running", "ok" or "failed".
    pub outcome: String,
    /// Why the run stopped early (the IMAP server's own words where it had some).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub policy: ArchivePolicy,
    /// Messages that matched the policy (stubs included).
    pub examined: u64,
    /// Newly stored in this mailbox's archive.
    pub archived: u64,
    /// Already in the archive (an earlier run stored them): not stored again.
    pub already_archived: u64,
    /// Stubs appended.
    pub stubbed: u64,
    /// Originals removed from the mailbox (after their copy was verified and their stub was in place).
    pub expunged: u64,
    /// Stubs (never archived again) and messages a mail client marked \Deleted.
    pub skipped: u64,
    pub skipped_stubs: u64,
    pub skipped_deleted: u64,
    pub failed: u64,
    pub failures: Vec<ArchiveRunFailure>,
    /// Bytes of the messages archived by this run.
    pub bytes: u64,
    pub folders: Vec<ArchiveFolderSummary>,
    /// Anything worth knowing that is not a failure (UIDVALIDITY changes, a
    /// server without UIDPLUS).
    #[serde(default)]
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

/// A mailbox's archive schedule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveScheduleView {
    pub mailbox: String,
    /// Cron (minute hour day month weekday, local time); None = off.
    pub cron: Option<String>,
    pub policy: Option<ArchivePolicy>,
    /// RFC 3339 UTC (`Z`, whole seconds).
    pub next_run: Option<String>,
}

/// `PUT /mailboxes/{address}/archive-schedule`: a cron expression, or "off".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetArchiveSchedule {
    pub cron: String,
    #[serde(default)]
    pub policy: ArchivePolicy,
}

// ---- client calls ----

use crate::client::{ApiError, Client, segment};
use crate::types::JobView;
use reqwest::Method;

impl Client {
    /// Runs an archive run and waits for its summary (a run takes as long as it takes).
    pub async fn archive_run(
        &self,
        address: &str,
        policy: &ArchivePolicy,
    ) -> Result<ArchiveRunSummary, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/archive-runs", segment(address));
        let resp = self
            .send(self.request(Method::POST, &path).json(policy))
            .await?;
        Ok(resp.json().await?)
    }

    /// Run records, the most recent first: of one mailbox, or of all.
    pub async fn archive_runs(
        &self,
        address: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobView>, ApiError> {
        let rb = match address {
            Some(a) => self.request(
                Method::GET,
                &format!("/api/v1/mailboxes/{}/archive-runs", segment(a)),
            ),
            None => self.request(Method::GET, "/api/v1/archive-runs"),
        };
        let resp = self.send(rb.query(&[("limit", limit.to_string())])).await?;
        Ok(resp.json().await?)
    }

    pub async fn archive_schedule(&self, address: &str) -> Result<ArchiveScheduleView, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/archive-schedule", segment(address));
        Ok(self
            .send(self.request(Method::GET, &path))
            .await?
            .json()
            .await?)
    }

    pub async fn set_archive_schedule(
        &self,
        address: &str,
        body: &SetArchiveSchedule,
    ) -> Result<ArchiveScheduleView, ApiError> {
        let path = format!("/api/v1/mailboxes/{}/archive-schedule", segment(address));
        let rb = self.request(Method::PUT, &path).json(body);
        Ok(self.send(rb).await?.json().await?)
    }
}
