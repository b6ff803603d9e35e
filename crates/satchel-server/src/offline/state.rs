//! The offline state, kept in the archive's catalog (SQLite or PostgreSQL) as
//! the service's component `offline` (its own migrations and version in `schema_versions`):
//! the global settings, each mailbox's offline settings and the state of its
//! repository, and the live set of each repository. What left a mailbox is
//! read from the archive's membership log after the state's `last_seq`.
//!
//! A message's offline "time" is its Date header, or the time it entered the
//! mailbox when it has none ([`OfflineCandidate::time`]).

use satchel_archive::Result;
use satchel_archive::catalog::{Catalog, Db, MemberEntry, Migration, Row};
use satchel_archive::params;
use serde::{Deserialize, Serialize};

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "offline";

/// A message of a mailbox as the offline selection sees it.
pub type OfflineCandidate = MemberEntry;

/// Version 1: the tables catalog version 2 created (`IF NOT EXISTS`, so a
/// catalog of that time keeps its rows), without the removal queue: removals
/// come from the membership log now. A mailbox with removals still queued is
/// re-selected in full at its next update, which takes them into account.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS settings(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- since_days / max_bytes: NULL = the global default, -1 = no limit.
CREATE TABLE IF NOT EXISTS offline_mailboxes(
  mailbox TEXT PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  enabled INTEGER NOT NULL,
  since_days INTEGER,
  max_bytes INTEGER,
  epoch TEXT,
  generation INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  applied TEXT,
  last_update INTEGER,
  last_duration_ms INTEGER,
  messages INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  message_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS offline_members(
  mailbox TEXT NOT NULL REFERENCES offline_mailboxes(mailbox) ON DELETE CASCADE,
  id TEXT NOT NULL,
  time INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY(mailbox, id)
);
CREATE INDEX IF NOT EXISTS offline_members_age ON offline_members(mailbox, time, seq);
DROP TRIGGER IF EXISTS membership_removed;
CREATE TABLE IF NOT EXISTS offline_removed(n INTEGER PRIMARY KEY, mailbox TEXT, id TEXT);
UPDATE offline_mailboxes SET applied = NULL
  WHERE mailbox IN (SELECT mailbox FROM offline_removed);
DROP TABLE offline_removed;
"#;

/// Version 1 in PostgreSQL: the same tables.
const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS settings(
  key TEXT COLLATE "C" PRIMARY KEY,
  value TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS offline_mailboxes(
  mailbox TEXT COLLATE "C" PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  enabled BIGINT NOT NULL,
  since_days BIGINT,
  max_bytes BIGINT,
  epoch TEXT COLLATE "C",
  generation BIGINT NOT NULL DEFAULT 0,
  last_seq BIGINT NOT NULL DEFAULT 0,
  applied TEXT COLLATE "C",
  last_update BIGINT,
  last_duration_ms BIGINT,
  messages BIGINT NOT NULL DEFAULT 0,
  bytes BIGINT NOT NULL DEFAULT 0,
  message_bytes BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS offline_members(
  mailbox TEXT COLLATE "C" NOT NULL REFERENCES offline_mailboxes(mailbox) ON DELETE CASCADE,
  id TEXT COLLATE "C" NOT NULL,
  time BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  size BIGINT NOT NULL,
  PRIMARY KEY(mailbox, id)
);
CREATE INDEX IF NOT EXISTS offline_members_age ON offline_members(mailbox, time, seq);
"#;

/// Creates or upgrades the offline tables; run once when the service opens.
pub fn migrate(cat: &Catalog) -> Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// A mailbox's offline settings and the state of its repository.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OfflineRow {
    pub mailbox: String,
    pub enabled: bool,
    /// NULL = the global default, -1 = no limit.
    pub since_days: Option<i64>,
    pub max_bytes: Option<i64>,
    pub state: OfflineState,
}

/// What the last completed update left behind.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OfflineState {
    pub epoch: Option<String>,
    pub generation: u64,
    /// Every membership log entry of the mailbox up to this seq has been
    /// considered.
    pub last_seq: i64,
    /// The effective settings the live set was selected with (JSON).
    pub applied: Option<String>,
    pub last_update: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub messages: u64,
    /// Sum of the segment file sizes (manifest totals.bytes).
    pub bytes: u64,
    /// Sum of the raw sizes of the live messages.
    pub message_bytes: u64,
}

/// Everything one completed update records.
#[derive(Clone, Debug, Default)]
pub struct OfflineCommit {
    /// Forget the recorded live set first (full reselection, flush).
    pub replace_all: bool,
    pub added: Vec<OfflineCandidate>,
    pub removed: Vec<String>,
    pub state: OfflineState,
}

fn offline_row(r: &Row) -> Result<OfflineRow> {
    Ok(OfflineRow {
        mailbox: r.get(0)?,
        enabled: r.get(1)?,
        since_days: r.get(2)?,
        max_bytes: r.get(3)?,
        state: OfflineState {
            epoch: r.get(4)?,
            generation: r.get(5)?,
            last_seq: r.get(6)?,
            applied: r.get(7)?,
            last_update: r.get(8)?,
            last_duration_ms: r.get(9)?,
            messages: r.get(10)?,
            bytes: r.get(11)?,
            message_bytes: r.get(12)?,
        },
    })
}

const OFFLINE_COLUMNS: &str = "mailbox, enabled, since_days, max_bytes, epoch, generation, \
    last_seq, applied, last_update, last_duration_ms, messages, bytes, message_bytes";

/// Inserts (or refreshes) live offline messages inside the caller's
/// transaction.
fn put_members(tx: &Db, mailbox: &str, members: &[OfflineCandidate]) -> Result<()> {
    for m in members {
        tx.execute(
            "INSERT INTO offline_members(mailbox, id, time, seq, size)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(mailbox, id) DO UPDATE SET time = excluded.time,
               seq = excluded.seq, size = excluded.size",
            params![mailbox, &m.id, m.time, m.seq, m.size as i64],
        )?;
    }
    Ok(())
}

fn candidates(rows: Vec<Row>) -> Result<Vec<OfflineCandidate>> {
    rows.iter().map(OfflineCandidate::from_row).collect()
}

/// The offline tables, on the catalog's connection.
pub trait OfflineTables {
    fn setting(&self, key: &str) -> Result<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    fn offline_mailbox(&self, mailbox: &str) -> Result<Option<OfflineRow>>;
    fn offline_mailboxes(&self) -> Result<Vec<OfflineRow>>;
    /// Creates or updates a mailbox's offline settings (state untouched).
    fn put_offline_settings(
        &self,
        mailbox: &str,
        enabled: bool,
        since_days: Option<i64>,
        max_bytes: Option<i64>,
    ) -> Result<()>;
    fn set_offline_enabled(&self, mailbox: &str, enabled: bool) -> Result<bool>;
    /// The live messages of the mailbox's offline repository (as recorded).
    fn offline_live(&self, mailbox: &str) -> Result<Vec<OfflineCandidate>>;
    /// Live offline messages older than `cutoff` (they left the since-window).
    fn offline_older_than(&self, mailbox: &str, cutoff: i64) -> Result<Vec<OfflineCandidate>>;
    /// The `limit` oldest live offline messages after skipping `skip`
    /// (order: time, then seq), for evicting under the size cap.
    fn offline_oldest(
        &self,
        mailbox: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<OfflineCandidate>>;
    /// One live offline message of the mailbox, if recorded.
    fn offline_member(&self, mailbox: &str, id: &str) -> Result<Option<OfflineCandidate>>;
    /// Records a completed update in one transaction: the live set changes
    /// and the new state.
    fn commit_offline_update(&self, mailbox: &str, c: &OfflineCommit) -> Result<()>;
    /// Starts recording a streamed full build: forgets the live set and marks
    /// the state not applied, so a build that does not finish is followed by
    /// another full build.
    fn offline_members_reset(&self, mailbox: &str) -> Result<()>;
    /// Records one page of a streamed full build's live set.
    fn offline_members_put(&self, mailbox: &str, page: &[OfflineCandidate]) -> Result<()>;
}

impl OfflineTables for Catalog {
    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.db()
            .query_opt("SELECT value FROM settings WHERE key = $1", params![key])?
            .map(|r| r.get(0))
            .transpose()
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO settings(key, value) VALUES ($1, $2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn offline_mailbox(&self, mailbox: &str) -> Result<Option<OfflineRow>> {
        let sql = format!("SELECT {OFFLINE_COLUMNS} FROM offline_mailboxes WHERE mailbox = $1");
        self.db()
            .query_opt(&sql, params![mailbox])?
            .as_ref()
            .map(offline_row)
            .transpose()
    }

    fn offline_mailboxes(&self) -> Result<Vec<OfflineRow>> {
        let sql = format!("SELECT {OFFLINE_COLUMNS} FROM offline_mailboxes ORDER BY mailbox");
        self.db()
            .query(&sql, &[])?
            .iter()
            .map(offline_row)
            .collect()
    }

    fn put_offline_settings(
        &self,
        mailbox: &str,
        enabled: bool,
        since_days: Option<i64>,
        max_bytes: Option<i64>,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO offline_mailboxes(mailbox, enabled, since_days, max_bytes)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT(mailbox) DO UPDATE SET enabled = excluded.enabled,
               since_days = excluded.since_days, max_bytes = excluded.max_bytes",
            params![mailbox, enabled, since_days, max_bytes],
        )?;
        Ok(())
    }

    fn set_offline_enabled(&self, mailbox: &str, enabled: bool) -> Result<bool> {
        let n = self.db().execute(
            "UPDATE offline_mailboxes SET enabled = $2 WHERE mailbox = $1",
            params![mailbox, enabled],
        )?;
        Ok(n > 0)
    }

    fn offline_live(&self, mailbox: &str) -> Result<Vec<OfflineCandidate>> {
        candidates(self.db().query(
            "SELECT seq, id, size, time FROM offline_members WHERE mailbox = $1",
            params![mailbox],
        )?)
    }

    fn offline_older_than(&self, mailbox: &str, cutoff: i64) -> Result<Vec<OfflineCandidate>> {
        candidates(self.db().query(
            "SELECT seq, id, size, time FROM offline_members
             WHERE mailbox = $1 AND time < $2",
            params![mailbox, cutoff],
        )?)
    }

    fn offline_oldest(
        &self,
        mailbox: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<OfflineCandidate>> {
        candidates(self.db().query(
            "SELECT seq, id, size, time FROM offline_members WHERE mailbox = $1
             ORDER BY time, seq LIMIT $2 OFFSET $3",
            params![mailbox, limit as i64, skip as i64],
        )?)
    }

    fn offline_member(&self, mailbox: &str, id: &str) -> Result<Option<OfflineCandidate>> {
        self.db()
            .query_opt(
                "SELECT seq, id, size, time FROM offline_members WHERE mailbox = $1 AND id = $2",
                params![mailbox, id],
            )?
            .as_ref()
            .map(OfflineCandidate::from_row)
            .transpose()
    }

    fn offline_members_reset(&self, mailbox: &str) -> Result<()> {
        let tx = self.transaction()?;
        tx.execute(
            "UPDATE offline_mailboxes SET applied = NULL WHERE mailbox = $1",
            params![mailbox],
        )?;
        tx.execute(
            "DELETE FROM offline_members WHERE mailbox = $1",
            params![mailbox],
        )?;
        tx.commit()
    }

    fn offline_members_put(&self, mailbox: &str, page: &[OfflineCandidate]) -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        let tx = self.transaction()?;
        put_members(&tx, mailbox, page)?;
        tx.commit()
    }

    fn commit_offline_update(&self, mailbox: &str, c: &OfflineCommit) -> Result<()> {
        let tx = self.transaction()?;
        if c.replace_all {
            tx.execute(
                "DELETE FROM offline_members WHERE mailbox = $1",
                params![mailbox],
            )?;
        }
        for id in &c.removed {
            tx.execute(
                "DELETE FROM offline_members WHERE mailbox = $1 AND id = $2",
                params![mailbox, id],
            )?;
        }
        put_members(&tx, mailbox, &c.added)?;
        let s = &c.state;
        tx.execute(
            "UPDATE offline_mailboxes SET epoch = $2, generation = $3, last_seq = $4,
               applied = $5, last_update = $6, last_duration_ms = $7, messages = $8,
               bytes = $9, message_bytes = $10
             WHERE mailbox = $1",
            params![
                mailbox,
                &s.epoch,
                s.generation as i64,
                s.last_seq,
                &s.applied,
                s.last_update,
                s.last_duration_ms,
                s.messages as i64,
                s.bytes as i64,
                s.message_bytes as i64
            ],
        )?;
        tx.commit()
    }
}
