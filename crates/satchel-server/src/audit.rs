//! The audit trail: an append-only record of who signed in, searched, read,
//! downloaded, exported or changed what, from where, and when
//! (docs/compliance.md).
//!
//! Its table (`audit_log`) is the service's component `audit` in the
//! archive's catalog (SQLite or PostgreSQL), with its own migrations
//! ([`migrate`]). Each entry carries `hash = SHA-256(previous hash ||
//! encoding of this entry)` ([`entry_hash`]), so an entry edited, deleted
//! or inserted in the database breaks the chain at that entry, which
//! [`verify`] names. Appends are serialized across every service on one
//! catalog (a PostgreSQL advisory lock held to the end of the transaction;
//! SQLite has one writer at a time), so the chain never forks.
//!
//! Each kind of event is recorded in the one place every way in goes
//! through (the `Service` method, or the sign-in), and a record that cannot
//! be written fails the request: an archive that cannot record a read does
//! not serve it.

use crate::error::ServiceError;
use crate::service::{Caller, Service};
use satchel_api as api;
use satchel_archive::catalog::{Catalog, Db, Dialect, Migration, Row};
use satchel_archive::params;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "audit";

const V1: &str = r#"
CREATE TABLE IF NOT EXISTS audit_log(
  seq INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  actor TEXT NOT NULL,
  source TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log(actor, seq);
"#;

const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS audit_log(
  seq BIGINT PRIMARY KEY,
  time TEXT COLLATE "C" NOT NULL,
  actor TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  action TEXT COLLATE "C" NOT NULL,
  target TEXT COLLATE "C" NOT NULL,
  hash TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log(actor, seq);
"#;

/// Creates or upgrades the audit table; run once when the service opens.
pub fn migrate(cat: &Catalog) -> satchel_archive::Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// What is recorded: the `action` of an entry.
pub mod action {
    pub const SIGNIN: &str = "signin";
    pub const SIGNIN_FAILED: &str = "signin.failed";
    pub const SEARCH: &str = "search";
    pub const MESSAGE_READ: &str = "message.read";
    pub const OFFLINE_DOWNLOAD: &str = "offline.download";
    pub const EXPORT: &str = "export";
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    pub const USER_ADD: &str = "user.add";
    pub const USER_PASSWORD: &str = "user.password";
    pub const USER_REMOVE: &str = "user.remove";
    pub const REPOSITORY_ADD: &str = "repository.add";
    pub const MAILBOX_ADD: &str = "mailbox.add";
    pub const MAILBOX_REPOSITORY: &str = "mailbox.repository";
    pub const GRANT: &str = "grant";
    pub const REVOKE: &str = "revoke";
    pub const IMPORT: &str = "import";
    pub const OFFLINE_ENABLE: &str = "offline.enable";
    pub const OFFLINE_DISABLE: &str = "offline.disable";
    pub const OFFLINE_FLUSH: &str = "offline.flush";
    pub const OFFLINE_SYNC: &str = "offline.sync";
    pub const OFFLINE_DEFAULTS: &str = "offline.defaults";
    pub const OFFLINE_SCHEDULE: &str = "offline.schedule";
    pub const ARCHIVE_RUN: &str = "archive.run";
    pub const ARCHIVE_SCHEDULE: &str = "archive.schedule";
    // Defined for issue 11's retention, hold and deletion; recorded once they land.
    pub const RETENTION_SET: &str = "retention.set";
    pub const RETENTION_APPLY: &str = "retention.apply";
    pub const HOLD_ADD: &str = "hold.add";
    pub const HOLD_RELEASE: &str = "hold.release";
    pub const MESSAGE_DELETE: &str = "message.delete";
}

/// The actor of a failed sign-in whose user name is unknown (the name
/// itself is not kept: it is often a password typed in the wrong field).
pub const UNKNOWN_ACTOR: &str = "-";

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The advisory lock key of audit appends ("satchel" + 3).
const AUDIT_LOCK: i64 = 0x7361_7463_6865_6c03;

/// One entry to append: everything but its seq, time and hash.
pub struct Event<'a> {
    pub actor: &'a str,
    pub source: IpAddr,
    pub action: &'a str,
    pub target: Value,
}

/// `SHA-256(prev || encoding)`, where the encoding is each field (seq in
/// decimal, time, actor, source, action, target as stored) preceded by its
/// length as 8 big-endian bytes: no two different entries encode alike.
pub fn entry_hash(prev: &[u8; 32], e: &api::AuditEntry, target_text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    let seq = e.seq.to_string();
    for field in [
        seq.as_str(),
        &e.time,
        &e.actor,
        &e.source,
        &e.action,
        target_text,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Appends `event` after the latest entry, in one transaction.
pub fn append(db: &Db, event: &Event<'_>) -> Result<api::AuditEntry> {
    let tx = db.transaction()?;
    if tx.dialect() == Dialect::Postgres {
        tx.execute("SELECT pg_advisory_xact_lock($1)", params![AUDIT_LOCK])?;
    }
    let (prev_seq, prev) = match tx.query_opt(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )? {
        Some(r) => (r.get::<i64>(0)?, parse_hash(&r.get::<String>(1)?)?),
        None => (0, GENESIS),
    };
    let target_text = event.target.to_string();
    let mut entry = api::AuditEntry {
        seq: prev_seq + 1,
        time: crate::jobs::time(&chrono::Utc::now()),
        actor: event.actor.to_string(),
        source: event.source.to_string(),
        action: event.action.to_string(),
        target: event.target.clone(),
        hash: String::new(),
    };
    entry.hash = hex::encode(entry_hash(&prev, &entry, &target_text));
    tx.execute(
        "INSERT INTO audit_log(seq, time, actor, source, action, target, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![
            entry.seq,
            &entry.time,
            &entry.actor,
            &entry.source,
            &entry.action,
            target_text,
            &entry.hash
        ],
    )?;
    tx.commit()?;
    Ok(entry)
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| ServiceError::Internal(format!("audit hash {text:?}: {e}")))?;
    Ok(out)
}

/// Records what `caller` did, on the catalog the caller already holds.
pub fn note(cat: &Catalog, caller: &Caller, action: &str, target: Value) -> Result<()> {
    let event = Event {
        actor: &caller.user.name,
        source: caller.source,
        action,
        target,
    };
    append(cat.db(), &event).map(|_| ()).map_err(failed)
}

/// The error of a request whose record could not be written.
fn failed(e: ServiceError) -> ServiceError {
    tracing::error!(error = %e, "cannot write the audit trail: request refused");
    ServiceError::Internal(format!(
        "the audit trail cannot be written, so the request was refused: {e}"
    ))
}

/// One stored row, with its target as stored (what the hash covers).
struct Stored {
    entry: api::AuditEntry,
    target_text: String,
}

const COLUMNS: &str = "seq, time, actor, source, action, target, hash";

fn stored(r: &Row) -> Result<Stored> {
    let target_text: String = r.get(5)?;
    // A target that no longer parses is kept as text: `verify` still
    // checks it, and `list` still shows it.
    let target =
        serde_json::from_str(&target_text).unwrap_or_else(|_| Value::String(target_text.clone()));
    Ok(Stored {
        entry: api::AuditEntry {
            seq: r.get(0)?,
            time: r.get(1)?,
            actor: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            target,
            hash: r.get(6)?,
        },
        target_text,
    })
}

/// Rows read at once: the catalog is locked for one page at a time.
const PAGE: i64 = 1000;

impl Service {
    /// Records what `caller` did (see [`note`] when the catalog is held).
    pub fn audit(&self, caller: &Caller, action: &str, target: Value) -> Result<()> {
        note(&*self.archive.catalog()?, caller, action, target)
    }

    /// Records a search: its query and the mailboxes it covered (`"*"`:
    /// an administrator's search of every mailbox).
    pub fn audit_search(&self, caller: &Caller, query: &str, mailbox: Option<&str>) -> Result<()> {
        let mailboxes: Vec<String> = match mailbox {
            Some(m) => vec![m.to_string()],
            None if caller.user.admin => vec!["*".to_string()],
            None => self.archive.catalog()?.searchable_by(&caller.user)?,
        };
        let target = json!({ "query": query, "mailboxes": mailboxes });
        self.audit(caller, action::SEARCH, target)
    }

    /// Records a download of `address`'s offline manifest (once per laptop
    /// sync that finds it changed), naming the segments it lists; returns
    /// the manifest's bytes to serve.
    pub fn audit_download(
        &self,
        caller: &Caller,
        address: &str,
        manifest: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let path = std::path::Path::new("manifest.json");
        let m = satchel_offline::Manifest::from_json(&manifest, path)
            .map_err(|e| ServiceError::Internal(format!("offline manifest of {address}: {e}")))?;
        let segments: Vec<&str> = m.segments.iter().map(|s| s.name.as_str()).collect();
        let target = json!({
            "mailbox": address,
            "epoch": m.epoch,
            "generation": m.generation,
            "segments": segments,
        });
        self.audit(caller, action::OFFLINE_DOWNLOAD, target)?;
        Ok(manifest)
    }

    /// Records a sign-in or a failed one by `actor` from `source`.
    pub fn audit_signin(&self, actor: &str, source: IpAddr, ok: bool, via: &str) -> Result<()> {
        let event = Event {
            actor,
            source,
            action: if ok {
                action::SIGNIN
            } else {
                action::SIGNIN_FAILED
            },
            target: json!({ "via": via }),
        };
        append(self.archive.catalog()?.db(), &event)
            .map(|_| ())
            .map_err(failed)
    }

    /// The latest entry's seq and hash (seq 0 and the zero hash when empty).
    pub fn audit_head(&self, caller: &Caller) -> Result<api::AuditHead> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        let row = cat.db().query_opt(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        Ok(match row {
            Some(r) => api::AuditHead {
                seq: r.get(0)?,
                hash: r.get(1)?,
            },
            None => api::AuditHead {
                seq: 0,
                hash: hex::encode(GENESIS),
            },
        })
    }

    /// Recomputes the chain from the first entry; stops at the first entry
    /// that does not match.
    pub fn audit_verify(&self, caller: &Caller) -> Result<api::AuditVerification> {
        caller.require_admin()?;
        let mut chain = Chain::default();
        loop {
            let rows = self.archive.catalog()?.db().query(
                &format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"),
                params![chain.seq, PAGE],
            )?;
            if rows.is_empty() {
                return Ok(chain.report(None));
            }
            for r in &rows {
                if let Err(problem) = chain.check(&stored(r)?) {
                    return Ok(chain.report(Some(problem)));
                }
            }
        }
    }

    /// Entries matching `filter`, oldest first: the latest `limit` (100 by
    /// default, at most 10,000).
    pub fn audit_list(
        &self,
        caller: &Caller,
        filter: &api::AuditFilter,
    ) -> Result<Vec<api::AuditEntry>> {
        caller.require_admin()?;
        let since = filter.since.as_deref().map(since_time).transpose()?;
        let limit = filter.limit.unwrap_or(100).clamp(1, 10_000);
        let mut found = Vec::new();
        let mut before = i64::MAX;
        while found.len() < limit {
            let rows = self.archive.catalog()?.db().query(
                &format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE seq < $1
                     AND ($2 = '' OR actor = $2) AND time >= $3
                     ORDER BY seq DESC LIMIT $4"
                ),
                params![
                    before,
                    filter.user.clone().unwrap_or_default(),
                    since.clone().unwrap_or_default(),
                    PAGE
                ],
            )?;
            let Some(last) = rows.last() else { break };
            before = last.get(0)?;
            for r in &rows {
                let e = stored(r)?.entry;
                if filter.mailbox.as_deref().is_none_or(|m| concerns(&e, m)) {
                    found.push(e);
                }
            }
        }
        found.truncate(limit);
        found.reverse();
        Ok(found)
    }
}

/// The chain as [`Service::audit_verify`] walks it.
struct Chain {
    seq: i64,
    hash: [u8; 32],
    entries: u64,
    first_bad: Option<i64>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            seq: 0,
            hash: GENESIS,
            entries: 0,
            first_bad: None,
        }
    }
}

impl Chain {
    /// Accepts the next stored entry, or says why it does not follow.
    fn check(&mut self, s: &Stored) -> std::result::Result<(), String> {
        let e = &s.entry;
        let expected = self.seq + 1;
        if e.seq != expected {
            self.first_bad = Some(expected);
            return Err(format!(
                "entry {expected} is missing: entry {} follows entry {}",
                e.seq, self.seq
            ));
        }
        let hash = entry_hash(&self.hash, e, &s.target_text);
        if hex::encode(hash) != e.hash {
            self.first_bad = Some(e.seq);
            return Err(format!(
                "entry {} does not match its hash: it was changed, or inserted",
                e.seq
            ));
        }
        self.seq = e.seq;
        self.hash = hash;
        self.entries += 1;
        Ok(())
    }

    fn report(&self, problem: Option<String>) -> api::AuditVerification {
        api::AuditVerification {
            ok: problem.is_none(),
            entries: self.entries,
            head: api::AuditHead {
                seq: self.seq,
                hash: hex::encode(self.hash),
            },
            first_bad: self.first_bad,
            problem,
        }
    }
}

/// Whether an entry concerns mailbox `address`: its target names it
/// (`mailbox`, or among `mailboxes`; `"*"` is every mailbox).
fn concerns(e: &api::AuditEntry, address: &str) -> bool {
    let t = &e.target;
    t["mailbox"] == address
        || t["mailboxes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m == address || m == "*"))
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, in the trail's time format.
fn since_time(text: &str) -> Result<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(crate::jobs::time(
            &d.and_time(chrono::NaiveTime::MIN).and_utc(),
        ));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| crate::jobs::time(&t))
        .map_err(|_| {
            ServiceError::BadRequest(format!(
                "--since {text:?}: use YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, target: &str) -> api::AuditEntry {
        api::AuditEntry {
            seq,
            time: "2026-01-01T00:00:00Z".into(),
            actor: "alice".into(),
            source: "127.0.0.1".into(),
            action: "search".into(),
            target: serde_json::from_str(target).unwrap_or_default(),
            hash: String::new(),
        }
    }

    #[test]
    fn fields_cannot_borrow_from_each_other() {
        let mut a = entry(1, "{}");
        let mut b = entry(1, "{}");
        a.actor = "al".into();
        a.source = "ice127.0.0.1".into();
        b.actor = "alice".into();
        assert_ne!(
            entry_hash(&GENESIS, &a, "{}"),
            entry_hash(&GENESIS, &b, "{}")
        );
    }

    #[test]
    fn the_hash_covers_the_previous_one() {
        let e = entry(2, "{}");
        assert_ne!(
            entry_hash(&GENESIS, &e, "{}"),
            entry_hash(&[1; 32], &e, "{}")
        );
    }

    #[test]
    fn since_accepts_a_date_or_a_time() {
        assert_eq!(
            since_time("2026-03-04").ok().as_deref(),
            Some("2026-03-04T00:00:00Z")
        );
        assert_eq!(
            since_time("2026-03-04T05:06:07+01:00").ok().as_deref(),
            Some("2026-03-04T04:06:07Z")
        );
        assert!(since_time("yesterday").is_err());
    }
}
