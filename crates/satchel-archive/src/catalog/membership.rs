//! The membership log: every message that joined or left a mailbox, with an
//! ever-growing `seq` shared by additions and removals. A message's `seq` in
//! `membership` is the seq of the log entry that added it, so "what changed in
//! this mailbox since seq N" is one range scan of the log. Offline updates (and
//! any other incremental reader) keep the last seq they considered and read
//! the log from there; the archive knows nothing about them.

use super::{Catalog, Db, MessageMeta, RepositoryInfo, Row, now};
use crate::error::{ArchiveError, Result};
use crate::message::MessageId;
use crate::params;

/// Catalog version 5: the membership log, seeded with every membership row
/// under its own seq (so seqs recorded before stay valid), and the component
/// versions of the tables other crates keep in this file.
pub(super) const SCHEMA_V5: &str = r#"
CREATE TABLE membership_log(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL,
  id TEXT NOT NULL,
  change TEXT NOT NULL CHECK(change IN ('add', 'remove')),
  at INTEGER NOT NULL
);
CREATE INDEX membership_log_mailbox ON membership_log(mailbox, seq);
INSERT INTO membership_log(seq, mailbox, id, change, at)
  SELECT seq, mailbox, id, 'add', added FROM membership ORDER BY seq;
-- A seq is never handed out twice: the log goes on after the highest seq
-- membership ever had (rows may have left since).
DELETE FROM sqlite_sequence WHERE name = 'membership_log';
INSERT INTO sqlite_sequence(name, seq)
  SELECT 'membership_log', coalesce(max(seq), 0) FROM (
    SELECT seq FROM sqlite_sequence WHERE name = 'membership'
    UNION ALL SELECT max(seq) FROM membership_log);
-- However a message leaves a mailbox (removal, a mailbox's deletion), the
-- log says so.
CREATE TRIGGER membership_log_remove AFTER DELETE ON membership
BEGIN
  INSERT INTO membership_log(mailbox, id, change, at)
    VALUES (old.mailbox, old.id, 'remove', CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TABLE schema_versions(
  component TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
PRAGMA user_version = 5;
"#;

/// A message of a mailbox as incremental readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    pub seq: i64,
    pub id: String,
    pub size: u64,
    /// Date header (Unix seconds), else the time it entered the mailbox.
    pub time: i64,
}

impl MemberEntry {
    /// A row of `seq, id, size, time`.
    pub fn from_row(r: &Row) -> Result<MemberEntry> {
        Ok(MemberEntry {
            seq: r.get(0)?,
            id: r.get(1)?,
            size: r.get(2)?,
            time: r.get(3)?,
        })
    }
}

const MEMBER_SELECT: &str = "SELECT m.seq, m.id, g.size, coalesce(g.date, m.added)
     FROM membership m JOIN messages g ON g.id = m.id";

/// Adds a message to a mailbox, logging the addition; false if it was
/// already there. The caller's transaction must hold
/// [`Db::lock_membership_log`], so seqs are handed out in commit order.
pub fn insert_membership(tx: &Db, mailbox: &str, id: &MessageId, folder: &str) -> Result<bool> {
    let there = tx.exists(
        "SELECT 1 FROM membership WHERE mailbox = $1 AND id = $2",
        params![mailbox, id],
    )?;
    if there {
        return Ok(false);
    }
    let at = now();
    // The seq comes from the log's own counter (AUTOINCREMENT, an identity
    // column in PostgreSQL), never from max(seq) + 1.
    let seq: i64 = tx
        .query_one(
            "INSERT INTO membership_log(mailbox, id, change, at) VALUES ($1, $2, 'add', $3)
             RETURNING seq",
            params![mailbox, id, at],
        )?
        .get(0)?;
    tx.execute(
        "INSERT INTO membership(seq, mailbox, id, folder, added) VALUES ($1, $2, $3, $4, $5)",
        params![seq, mailbox, id, folder, at],
    )?;
    Ok(true)
}

impl Catalog {
    /// Takes a message out of a mailbox (its bytes stay in the store); the
    /// log records the removal (a trigger, whatever deletes the row). False
    /// if it was not there.
    pub fn remove_membership(&mut self, mailbox: &str, id: &MessageId) -> Result<bool> {
        Ok(self.remove_memberships(mailbox, std::slice::from_ref(id))? > 0)
    }

    /// Takes several messages out of a mailbox in one transaction (one
    /// commit for a page of expiries); how many of them were there.
    pub fn remove_memberships(&mut self, mailbox: &str, ids: &[MessageId]) -> Result<u64> {
        let tx = self.db.transaction()?;
        tx.lock_membership_log()?;
        let mut removed = 0;
        for id in ids {
            removed += tx.execute(
                "DELETE FROM membership WHERE mailbox = $1 AND id = $2",
                params![mailbox, id],
            )?;
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Up to `limit` log entries after `after_seq`, oldest first: (seq, id)
    /// of every addition and removal in any mailbox. Each node's search
    /// index reads the log this way, a page per statement, from the position
    /// its last commit holds (see [`crate::index`]).
    pub fn log_after(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, MessageId)>> {
        self.db
            .query(
                "SELECT seq, id FROM membership_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                params![after_seq, limit as i64],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    }

    /// The highest seq the log has handed out (0 for an empty log).
    pub fn log_head(&self) -> Result<i64> {
        self.db
            .query_one(
                "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM membership_log",
                &[],
            )?
            .get(0)
    }

    /// Up to `limit` of a mailbox's messages after `after_seq`, in the order
    /// they joined it: (seq, id, time added). A reader that pages with the
    /// last seq it saw never holds a whole mailbox (an export).
    pub fn member_page(
        &self,
        mailbox: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, MessageId, i64)>> {
        self.db
            .query(
                "SELECT seq, id, added FROM membership WHERE mailbox = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                params![mailbox, after_seq, limit],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
    }

    /// The highest log seq of the mailbox (0 if nothing ever happened in it).
    pub fn last_seq(&self, mailbox: &str) -> Result<i64> {
        self.db
            .query_one(
                "SELECT CAST(coalesce(max(seq), 0) AS BIGINT) FROM membership_log
                 WHERE mailbox = $1",
                params![mailbox],
            )?
            .get(0)
    }

    /// Messages that left the mailbox after `after_seq` up to `upto`:
    /// (seq, id), oldest first.
    pub fn removals_between(
        &self,
        mailbox: &str,
        after_seq: i64,
        upto: i64,
    ) -> Result<Vec<(i64, String)>> {
        self.db
            .query(
                "SELECT seq, id FROM membership_log WHERE mailbox = $1 AND change = 'remove'
                   AND seq > $2 AND seq <= $3 ORDER BY seq",
                params![mailbox, after_seq, upto],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    }

    /// The mailbox's messages that arrived after `after_seq` (and are still
    /// there), oldest first.
    pub fn member_entries_since(&self, mailbox: &str, after_seq: i64) -> Result<Vec<MemberEntry>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.mailbox = $1 AND m.seq > $2 ORDER BY m.seq");
        self.db
            .query(&sql, params![mailbox, after_seq])?
            .iter()
            .map(MemberEntry::from_row)
            .collect()
    }

    /// Up to `limit` of the mailbox's messages with `after_seq < seq <=
    /// upto`, oldest first: a whole mailbox read in bounded pages.
    pub fn member_entries_page(
        &self,
        mailbox: &str,
        after_seq: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<MemberEntry>> {
        let sql = format!(
            "{MEMBER_SELECT} WHERE m.mailbox = $1 AND m.seq > $2 AND m.seq <= $3
             ORDER BY m.seq LIMIT $4"
        );
        self.db
            .query(&sql, params![mailbox, after_seq, upto, limit as i64])?
            .iter()
            .map(MemberEntry::from_row)
            .collect()
    }

    /// Of the mailbox's messages with `seq <= upto`, `time >= min_time` and
    /// `size <= max_size`, taken newest first (time, then seq) while their
    /// sizes sum to at most `cap`: the (time, seq) of the oldest one taken,
    /// `None` if not even the newest fits. The database sorts and sums, so
    /// the caller never holds the mailbox.
    pub fn newest_within(
        &self,
        mailbox: &str,
        upto: i64,
        min_time: i64,
        max_size: u64,
        cap: u64,
    ) -> Result<Option<(i64, i64)>> {
        let sql = "SELECT t, seq FROM (
               SELECT coalesce(g.date, m.added) AS t, m.seq AS seq,
                 CAST(sum(g.size) OVER (ORDER BY coalesce(g.date, m.added) DESC,
                   m.seq DESC ROWS UNBOUNDED PRECEDING) AS BIGINT) AS running
               FROM membership m JOIN messages g ON g.id = m.id
               WHERE m.mailbox = $1 AND m.seq <= $2
                 AND coalesce(g.date, m.added) >= $3 AND g.size <= $4) w
             WHERE running <= $5 ORDER BY t, seq LIMIT 1";
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.db
            .query_opt(
                sql,
                params![mailbox, upto, min_time, clamp(max_size), clamp(cap)],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
    }

    /// A stored message's catalog entry.
    pub fn message_meta(&self, id: &MessageId) -> Result<Option<MessageMeta>> {
        self.db
            .query_opt(
                "SELECT id, size, date, sender, subject FROM messages WHERE id = $1",
                params![id],
            )?
            .as_ref()
            .map(meta_row)
            .transpose()
    }

    /// A mailbox's default repository (one indexed lookup, unlike
    /// [`Catalog::mailbox`] which counts the mailbox's messages).
    pub fn default_repository(&self, address: &str) -> Result<RepositoryInfo> {
        self.db
            .query_opt(
                "SELECT r.name, r.kind, r.path, r.endpoint, r.cold FROM mailboxes b
                 JOIN repositories r ON r.name = b.repo WHERE b.address = $1",
                params![address],
            )?
            .as_ref()
            .map(super::repository_row)
            .transpose()?
            .ok_or_else(|| ArchiveError::NoMailbox(address.into()))
    }
}

/// A row of `id, size, date, sender, subject` from `messages`.
pub(super) fn meta_row(r: &Row) -> Result<MessageMeta> {
    Ok(MessageMeta {
        id: r.get(0)?,
        size: r.get(1)?,
        date: r.get(2)?,
        from: r.get(3)?,
        subject: r.get(4)?,
    })
}
