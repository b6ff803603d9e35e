//! Request and response bodies of `/api/v1`. Field names are the JSON names.

/// A message's id: hex in JSON, one type on both sides (satchel-message's).
pub use satchel_message::MessageId;
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

/// `PUT /api/v1/users/{name}/password`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetPassword {
    pub password: String,
}

/// A password change: the user's API tokens are all revoked with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user: String,
    pub tokens_revoked: usize,
}

/// `DELETE /api/v1/users/{name}`: what the user held is gone with them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRemoved {
    pub user: String,
    pub tokens_revoked: usize,
    pub grants_revoked: usize,
}

/// An API token as listed (`GET /api/v1/tokens`); the secret is never shown
/// again after its creation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenListing {
    /// The first 16 hex digits of the token's SHA-256: what `DELETE
    /// /api/v1/tokens/{id}` takes.
    pub id: String,
    pub user: String,
    pub label: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewRepository {
    pub name: String,
    /// A local disk folder, created if missing.
    #[serde(default)]
    pub disk: String,
    /// An S3-compatible object store, `s3://BUCKET[/PREFIX]`. Exactly one of
    /// `disk` and `s3` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    /// The S3 endpoint URL (`http(s)://HOST[:PORT]`); none for AWS itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Cold storage: mailboxes with mail there are not synchronized offline.
    #[serde(default)]
    pub cold: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub kind: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub cold: bool,
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
    pub id: Option<MessageId>,
    pub status: ImportStatus,
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the service accepts (`GET /limits`), so that a client can refuse
/// what would be refused before sending it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    /// The largest request body, in bytes: an import batch, multipart framing
    /// included.
    pub max_request_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub results: Vec<ImportResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: MessageId,
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

// ---- offline synchronization (docs/offline-api.md) ----

/// `GET /api/v1/offline/repositories` answers with the offline crate's own
/// protocol type, so service and laptop cannot disagree on it.
pub use satchel_offline::protocol::{OfflineRepositoryList, OfflineRepositoryListing};

/// A limit as an administrator sets it: a number, `"none"` (no limit) or
/// `"default"` (use the global offline default; per-mailbox settings only).
/// On the wire: a JSON number or one of those two strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Default,
    Unlimited,
    Value(u64),
}

impl std::str::FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "default" => Ok(Limit::Default),
            "none" | "unlimited" => Ok(Limit::Unlimited),
            n => n
                .parse::<u64>()
                .map(Limit::Value)
                .map_err(|_| format!("{s:?} is not a number, \"none\" (no limit) or \"default\"")),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Default => f.write_str("default"),
            Limit::Unlimited => f.write_str("none"),
            Limit::Value(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Value(n) => s.serialize_u64(*n),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Limit::Value(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// `PUT /api/v1/offline/mailboxes/{address}`: enables offline
/// synchronization. An absent field keeps the mailbox's current setting (the
/// global default for a mailbox enabled for the first time).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OfflineEnable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_days: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Limit>,
}

/// The global offline defaults; `null` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineDefaults {
    pub since_days: Option<u64>,
    pub max_bytes: Option<u64>,
    /// The S3 repository holding every mailbox's offline repository, so that
    /// every node serves them; `None`: each node's data folder (one node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Size in bytes at which an update starts a new segment file (a full
    /// build of a large mailbox writes several); the service fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
}

/// `PUT /api/v1/offline/defaults`: absent fields are unchanged; `"none"`
/// removes the limit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SetOfflineDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_days: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Limit>,
    /// A repository's name, or `"none"` for the data folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Segment size limit in bytes (at least 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
}

/// The update schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineSchedule {
    /// As the administrator gave it (5-field cron, or 6/7 fields with seconds),
    /// in the service's local time.
    pub cron: String,
    /// The next run, RFC 3339 UTC (`Z`, whole seconds).
    pub next_run: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetOfflineSchedule {
    pub cron: String,
}

/// An effective setting and where it came from: `"mailbox"` (an override)
/// or `"default"` (the global default). `value` null = no limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingValue {
    pub value: Option<u64>,
    pub source: String,
}

/// One mailbox's offline synchronization.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineMailboxStatus {
    pub mailbox: String,
    pub enabled: bool,
    pub since_days: SettingValue,
    pub max_bytes: SettingValue,
    /// Null until the first update.
    pub epoch: Option<String>,
    pub generation: u64,
    pub segments: u64,
    /// Live messages in the offline repository.
    pub messages: u64,
    /// Sum of the segment file sizes (what a fresh laptop downloads).
    pub bytes: u64,
    /// Sum of the raw sizes of the live messages (what max_bytes limits).
    pub message_bytes: u64,
    /// RFC 3339 (UTC) end of the last completed update.
    pub last_update: Option<String>,
    pub last_duration_ms: Option<u64>,
    /// RFC 3339 UTC of the next scheduled update; null if disabled.
    pub next_run: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineStatusReport {
    pub schedule: OfflineSchedule,
    pub defaults: OfflineDefaults,
    pub mailboxes: Vec<OfflineMailboxStatus>,
}

/// `POST /api/v1/offline/sync`: one mailbox, or every enabled one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineSyncRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

/// What one update (or flush) did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineUpdateResult {
    pub mailbox: String,
    /// "updated", "unchanged" or "failed".
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub job: i64,
    /// The update re-selected the whole mailbox (first update, changed
    /// settings, flush, or recovery after an interrupted update).
    pub full: bool,
    pub flushed: bool,
    pub added: u64,
    pub removed: u64,
    /// The new segment, if one was written.
    pub segment: Option<String>,
    pub compacted: bool,
    pub epoch: String,
    pub generation: u64,
    pub messages: u64,
    pub bytes: u64,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineSyncReport {
    pub results: Vec<OfflineUpdateResult>,
}

/// An entry of the jobs log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub mailbox: Option<String>,
    /// RFC 3339 UTC (`Z`, whole seconds), like every time the API gives.
    pub started: String,
    pub finished: Option<String>,
    /// "running", "ok", "failed", "interrupted" (its node stopped) or
    /// "abandoned" (its node stopped beating; seen by another node).
    pub outcome: String,
    pub detail: serde_json::Value,
    /// The node (service) that ran it, when several share one catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The scheduled instant that started it, if a schedule did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing: Option<String>,
}
