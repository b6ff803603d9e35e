//! `POST /api/v1/backup`'s wire types and client call (docs/api.md,
//! docs/backup.md).

use crate::client::{ApiError, Client};
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// What `satchel backup DIR` asks for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupRequest {
    /// An absolute folder on the service's machine, absent or empty.
    pub dir: String,
}

/// What a backup wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupReport {
    pub dir: String,
    pub mailboxes: u64,
    pub messages: u64,
    /// Packs copied (of the disk repositories) and their bytes.
    pub packs: u64,
    pub pack_bytes: u64,
    pub catalog_bytes: u64,
    /// Repositories whose packs are not in the backup (S3).
    pub not_copied: Vec<String>,
    pub seconds: f64,
}

impl Client {
    /// Asks the service to write a backup into `dir` on its machine
    /// (administrators); answers once it is complete.
    pub async fn backup(&self, dir: &str) -> Result<BackupReport, ApiError> {
        let body = BackupRequest {
            dir: dir.to_string(),
        };
        let rb = self.request(Method::POST, "/api/v1/backup").json(&body);
        Ok(self.send(rb).await?.json().await?)
    }
}
