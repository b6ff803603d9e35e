//! Catalog schema version 2: offline synchronization settings and state, the
//! global settings, and the jobs log.
//!
//! The service (crates/satchel-server/src/offline.rs) owns the algorithm; this
//! module only stores and queries. A message's offline "time" is its Date
//! header, or the time it entered the mailbox when it has none.

use super::Catalog;
use crate::error::Result;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub(super) const SCHEMA_V2: &str = r#"
-- "what is new in this mailbox since seq N" without scanning the mailbox.
CREATE INDEX membership_mailbox_seq ON membership(mailbox, seq);
-- Global key/value settings (offline defaults, schedule).
CREATE TABLE settings(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- One row per mailbox ever enabled for offline synchronization.
-- since_days / max_bytes: NULL = the global default, -1 = no limit.
CREATE TABLE offline_mailboxes(
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
-- The live messages of each offline repository, as of its last update.
CREATE TABLE offline_members(
  mailbox TEXT NOT NULL REFERENCES offline_mailboxes(mailbox) ON DELETE CASCADE,
  id TEXT NOT NULL,
  time INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY(mailbox, id)
);
CREATE INDEX offline_members_age ON offline_members(mailbox, time, seq);
-- Messages that left an offline mailbox since its last update.
CREATE TABLE offline_removed(
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL,
  id TEXT NOT NULL
);
CREATE TRIGGER membership_removed AFTER DELETE ON membership
  WHEN EXISTS (SELECT 1 FROM offline_mailboxes WHERE mailbox = old.mailbox)
BEGIN
  INSERT INTO offline_removed(mailbox, id) VALUES (old.mailbox, old.id);
END;
-- Every offline update (and later every IMAP archive run).
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  mailbox TEXT,
  started INTEGER NOT NULL,
  finished INTEGER,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}'
);
PRAGMA user_version = 2;
"#;

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
    /// Every membership row up to this seq has been considered.
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

/// A message of a mailbox as the offline selection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineCandidate {
    pub seq: i64,
    pub id: String,
    pub size: u64,
    /// Date header (Unix seconds), else the time it entered the mailbox.
    pub time: i64,
}

fn offline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfflineRow> {
    Ok(OfflineRow {
        mailbox: r.get(0)?,
        enabled: r.get(1)?,
        since_days: r.get(2)?,
        max_bytes: r.get(3)?,
        state: OfflineState {
            epoch: r.get(4)?,
            generation: r.get::<_, i64>(5)? as u64,
            last_seq: r.get(6)?,
            applied: r.get(7)?,
            last_update: r.get(8)?,
            last_duration_ms: r.get(9)?,
            messages: r.get::<_, i64>(10)? as u64,
            bytes: r.get::<_, i64>(11)? as u64,
            message_bytes: r.get::<_, i64>(12)? as u64,
        },
    })
}

const OFFLINE_COLUMNS: &str = "mailbox, enabled, since_days, max_bytes, epoch, generation, \
    last_seq, applied, last_update, last_duration_ms, messages, bytes, message_bytes";

fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfflineCandidate> {
    Ok(OfflineCandidate {
        seq: r.get(0)?,
        id: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        time: r.get(3)?,
    })
}

const MEMBER_SELECT: &str = "SELECT m.seq, m.id, g.size, coalesce(g.date, m.added)
     FROM membership m JOIN messages g ON g.id = m.id";

impl Catalog {
    // ---- settings ----

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    // ---- offline settings and state ----

    pub fn offline_mailbox(&self, mailbox: &str) -> Result<Option<OfflineRow>> {
        let sql = format!("SELECT {OFFLINE_COLUMNS} FROM offline_mailboxes WHERE mailbox = ?1");
        Ok(self
            .conn
            .query_row(&sql, [mailbox], offline_row)
            .optional()?)
    }

    pub fn offline_mailboxes(&self) -> Result<Vec<OfflineRow>> {
        let sql = format!("SELECT {OFFLINE_COLUMNS} FROM offline_mailboxes ORDER BY mailbox");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], offline_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates or updates a mailbox's offline settings (state untouched).
    pub fn put_offline_settings(
        &self,
        mailbox: &str,
        enabled: bool,
        since_days: Option<i64>,
        max_bytes: Option<i64>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO offline_mailboxes(mailbox, enabled, since_days, max_bytes)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(mailbox) DO UPDATE SET enabled = excluded.enabled,
               since_days = excluded.since_days, max_bytes = excluded.max_bytes",
            params![mailbox, enabled, since_days, max_bytes],
        )?;
        Ok(())
    }

    pub fn set_offline_enabled(&self, mailbox: &str, enabled: bool) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE offline_mailboxes SET enabled = ?2 WHERE mailbox = ?1",
            params![mailbox, enabled],
        )?;
        Ok(n > 0)
    }

    /// The mailbox's messages that arrived after `after_seq`, oldest first.
    pub fn offline_new_members(
        &self,
        mailbox: &str,
        after_seq: i64,
    ) -> Result<Vec<OfflineCandidate>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.mailbox = ?1 AND m.seq > ?2 ORDER BY m.seq");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![mailbox, after_seq], candidate)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The live messages of the mailbox's offline repository (as recorded).
    pub fn offline_live(&self, mailbox: &str) -> Result<Vec<OfflineCandidate>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, id, size, time FROM offline_members WHERE mailbox = ?1")?;
        let rows = stmt.query_map([mailbox], candidate)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Live offline messages older than `cutoff` (they left the since-window).
    pub fn offline_older_than(&self, mailbox: &str, cutoff: i64) -> Result<Vec<OfflineCandidate>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, size, time FROM offline_members
             WHERE mailbox = ?1 AND time < ?2",
        )?;
        let rows = stmt.query_map(params![mailbox, cutoff], candidate)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `limit` oldest live offline messages after skipping `skip`
    /// (order: time, then seq), for evicting under the size cap.
    pub fn offline_oldest(
        &self,
        mailbox: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<OfflineCandidate>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, size, time FROM offline_members WHERE mailbox = ?1
             ORDER BY time, seq LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![mailbox, limit as i64, skip as i64], candidate)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Ids removed from the mailbox since the last update: (queue position, id).
    pub fn offline_removed(&self, mailbox: &str) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT n, id FROM offline_removed WHERE mailbox = ?1 ORDER BY n")?;
        let rows = stmt.query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a completed update in one transaction: the live set changes,
    /// the consumed removal queue, and the new state.
    pub fn commit_offline_update(&mut self, mailbox: &str, c: &OfflineCommit) -> Result<()> {
        let tx = self.conn.transaction()?;
        if c.replace_all {
            tx.execute("DELETE FROM offline_members WHERE mailbox = ?1", [mailbox])?;
        }
        {
            let mut del =
                tx.prepare_cached("DELETE FROM offline_members WHERE mailbox = ?1 AND id = ?2")?;
            for id in &c.removed {
                del.execute(params![mailbox, id])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO offline_members(mailbox, id, time, seq, size)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for m in &c.added {
                ins.execute(params![mailbox, m.id, m.time, m.seq, m.size as i64])?;
            }
        }
        tx.execute(
            "DELETE FROM offline_removed WHERE mailbox = ?1 AND n <= ?2",
            params![mailbox, c.removed_upto],
        )?;
        let s = &c.state;
        tx.execute(
            "UPDATE offline_mailboxes SET epoch = ?2, generation = ?3, last_seq = ?4,
               applied = ?5, last_update = ?6, last_duration_ms = ?7, messages = ?8,
               bytes = ?9, message_bytes = ?10
             WHERE mailbox = ?1",
            params![
                mailbox,
                s.epoch,
                s.generation as i64,
                s.last_seq,
                s.applied,
                s.last_update,
                s.last_duration_ms,
                s.messages as i64,
                s.bytes as i64,
                s.message_bytes as i64
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The mailbox's messages, for a full reselection (metadata only).
    pub fn offline_all_members(&self, mailbox: &str) -> Result<Vec<OfflineCandidate>> {
        self.offline_new_members(mailbox, 0)
    }

    /// The highest membership seq of the mailbox (0 if empty).
    pub fn last_seq(&self, mailbox: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT coalesce(max(seq), 0) FROM membership WHERE mailbox = ?1",
            [mailbox],
            |r| r.get(0),
        )?)
    }

    /// Catalog facts about messages by id (size and offline time), for
    /// rebuilding the recorded live set from a manifest.
    pub fn offline_candidates_of(
        &self,
        mailbox: &str,
        ids: &[String],
    ) -> Result<Vec<OfflineCandidate>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.mailbox = ?1 AND m.id = ?2");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = stmt.query_row(params![mailbox, id], candidate).optional()? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// One live offline message of the mailbox, if recorded.
    pub fn offline_member(&self, mailbox: &str, id: &str) -> Result<Option<OfflineCandidate>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT seq, id, size, time FROM offline_members WHERE mailbox = ?1 AND id = ?2",
            )?
            .query_row(params![mailbox, id], candidate)
            .optional()?)
    }

    /// A stored message's catalog entry (listing headers for a segment).
    pub fn message_meta(&self, id: &str) -> Result<Option<super::MessageMeta>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, size, date, sender, subject FROM messages WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(super::MessageMeta {
                    id: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    date: r.get(2)?,
                    from: r.get(3)?,
                    subject: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// A mailbox's default repository (one indexed lookup, unlike
    /// [`Catalog::mailbox`] which counts the mailbox's messages).
    pub fn default_repository(&self, address: &str) -> Result<super::RepositoryInfo> {
        self.conn
            .prepare_cached(
                "SELECT r.name, r.kind, r.path FROM mailboxes b
                 JOIN repositories r ON r.name = b.repo WHERE b.address = ?1",
            )?
            .query_row([address], super::repository_row)
            .optional()?
            .ok_or_else(|| crate::ArchiveError::NoMailbox(address.into()))
    }
}

/// Everything one completed update records.
#[derive(Clone, Debug, Default)]
pub struct OfflineCommit {
    /// Forget the recorded live set first (full reselection, flush).
    pub replace_all: bool,
    pub added: Vec<OfflineCandidate>,
    pub removed: Vec<String>,
    /// Removal-queue entries up to this position were taken into account.
    pub removed_upto: i64,
    pub state: OfflineState,
}
