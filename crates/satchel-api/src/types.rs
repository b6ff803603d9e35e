//! Request and response bodies of `/api/v1`. Field names are the JSON names.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Whoami {
    pub name: String,
    pub admin: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub admin: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewToken {
    #[serde(default)]
    pub label: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Token {
    pub token: String,
    pub user: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewRepository {
    pub name: String,
    /// A local disk folder, created if missing.
    pub disk: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub kind: String,
    pub path: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewMailbox {
    pub address: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub imap_url: Option<String>,
    #[serde(default)]
    pub imap_user: Option<String>,
    /// Stored by the service, never returned.
    #[serde(default)]
    pub imap_password: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mailbox {
    pub address: String,
    pub repo: String,
    pub imap_url: Option<String>,
    pub imap_user: Option<String>,
    pub messages: u64,
    pub bytes: u64,
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetRepository {
    pub repo: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Imported,
    Duplicate,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportResult {
    pub origin: String,
    pub id: Option<String>,
    pub status: ImportStatus,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub results: Vec<ImportResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: String,
    pub mailboxes: Vec<String>,
    /// Unix seconds.
    pub date: Option<i64>,
    pub from: String,
    pub subject: String,
    pub snippet: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResults {
    pub query: String,
    pub hits: Vec<SearchHit>,
}
