//! The catalog's side of reclaiming space ([`crate::archive`]'s garbage
//! pass): messages no mailbox holds lose their row, and packs are rewritten
//! or dropped. Every statement that could race an import runs in a
//! transaction holding [`Db::lock_membership_log`], the lock every writer
//! of memberships holds: an import either added its membership first (the
//! message is held, and kept) or finds the row gone and stores the bytes
//! anew ([`crate::Archive::add_messages`] checks again under the lock).

use super::{Catalog, Db, Location, Row};
use crate::error::Result;
use crate::message::MessageId;
use crate::params;
use crate::store::PackRef;
use std::collections::BTreeSet;

/// Catalog version 8: messages by pack, so a pack's survivors are found
/// (and moved) without reading every message row.
pub(super) const SCHEMA_V8: &str = "CREATE INDEX IF NOT EXISTS messages_pack ON messages(pack);
PRAGMA user_version = 8;";

/// The same step for PostgreSQL.
pub(super) const PG_V8: &str = "CREATE INDEX IF NOT EXISTS messages_pack ON messages(pack);";

/// How many message rows one garbage transaction drops at most, so the
/// membership log's lock (which imports wait for) is held briefly.
const DROP_PAGE: i64 = 1000;

/// Rows of messages no mailbox holds (dropped, or that would be).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unheld {
    pub messages: u64,
    /// Their compressed bytes in packs.
    pub stored_bytes: u64,
    /// The packs their bytes are in (filled when rows are dropped).
    pub packs: BTreeSet<String>,
}

/// A pack and what of it the catalog still names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackUsage {
    pub name: String,
    pub repo: String,
    /// The pack's size in its repository.
    pub size: u64,
    /// Messages whose bytes are in it.
    pub messages: u64,
    /// The compressed bytes of those messages.
    pub live_bytes: u64,
}

/// A message whose frame a rewrite copies: its id and where it is now.
#[derive(Clone, Debug)]
pub struct Survivor {
    pub id: MessageId,
    pub location: Location,
}

const UNHELD: &str = "NOT EXISTS (SELECT 1 FROM membership m WHERE m.id = messages.id)";

impl Catalog {
    /// Counts the messages no mailbox holds (a dry run's figure), among
    /// `only` if given.
    pub fn unheld_messages(&self, only: Option<&[MessageId]>) -> Result<Unheld> {
        let select = "SELECT count(*), CAST(coalesce(sum(length), 0) AS BIGINT) FROM messages";
        let mut total = Unheld::default();
        let mut add = |r: Row| -> Result<()> {
            total.messages += r.get::<u64>(0)?;
            total.stored_bytes += r.get::<u64>(1)?;
            Ok(())
        };
        match only {
            None => add(self
                .db
                .query_one(&format!("{select} WHERE {UNHELD}"), &[])?)?,
            Some(ids) => {
                for id in ids {
                    let sql = format!("{select} WHERE {UNHELD} AND id = $1");
                    add(self.db.query_one(&sql, params![id])?)?;
                }
            }
        }
        Ok(total)
    }

    /// Drops the rows of messages no mailbox holds (among `only` if given),
    /// a page per transaction under the membership log's lock; returns what
    /// was dropped. Their bytes stay in their packs until the packs are
    /// rewritten or dropped.
    pub fn drop_unheld_messages(&self, only: Option<&[MessageId]>) -> Result<Unheld> {
        let mut dropped = Unheld::default();
        loop {
            let tx = self.db.transaction()?;
            tx.lock_membership_log()?;
            let rows = match only {
                None => tx.query(
                    &format!(
                        "SELECT id, length, pack FROM messages WHERE {UNHELD} LIMIT {DROP_PAGE}"
                    ),
                    &[],
                )?,
                Some(ids) => {
                    let mut rows = Vec::new();
                    for id in ids {
                        rows.extend(tx.query(
                            &format!(
                                "SELECT id, length, pack FROM messages WHERE {UNHELD} AND id = $1"
                            ),
                            params![id],
                        )?);
                    }
                    rows
                }
            };
            for r in &rows {
                let id: MessageId = r.get(0)?;
                tx.execute("DELETE FROM messages WHERE id = $1", params![id])?;
                dropped.messages += 1;
                dropped.stored_bytes += r.get::<u64>(1)?;
                dropped.packs.insert(r.get(2)?);
            }
            tx.commit()?;
            if only.is_some() || (rows.len() as i64) < DROP_PAGE {
                return Ok(dropped);
            }
        }
    }

    /// Every pack with what of it mailboxes still hold (`only` those packs
    /// if given): after [`Catalog::drop_unheld_messages`] that is every
    /// message it names; before (a dry run), what would survive.
    pub fn pack_usage(&self, only: Option<&[String]>) -> Result<Vec<PackUsage>> {
        let held = "FROM messages g WHERE g.pack = p.name
                      AND EXISTS (SELECT 1 FROM membership m WHERE m.id = g.id)";
        let base = format!(
            "SELECT p.name, p.repo, p.size, (SELECT count(*) {held}),
               (SELECT CAST(coalesce(sum(g.length), 0) AS BIGINT) {held})
             FROM packs p"
        );
        let rows = match only {
            None => self.db.query(&format!("{base} ORDER BY p.name"), &[])?,
            Some(names) => {
                let mut rows = Vec::new();
                for name in names {
                    rows.extend(
                        self.db
                            .query(&format!("{base} WHERE p.name = $1"), params![name])?,
                    );
                }
                rows
            }
        };
        rows.iter().map(usage_row).collect()
    }

    /// The names of the packs the catalog records in repository `repo`.
    pub fn pack_names(&self, repo: &str) -> Result<BTreeSet<String>> {
        self.db
            .query("SELECT name FROM packs WHERE repo = $1", params![repo])?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The messages whose bytes are in `pack`, in pack order.
    pub fn pack_survivors(&self, pack: &str) -> Result<Vec<Survivor>> {
        self.db
            .query(
                r#"SELECT g.id, p.repo, g.pack, g."offset", g.length, g.size FROM messages g
                   JOIN packs p ON p.name = g.pack WHERE g.pack = $1 ORDER BY g."offset""#,
                params![pack],
            )?
            .iter()
            .map(|r| {
                Ok(Survivor {
                    id: r.get(0)?,
                    location: super::location_row(r, 1)?,
                })
            })
            .collect()
    }

    /// One transaction: the survivors of `old` now live at their places in
    /// `new` (already durable in `repo`), and `old`'s row goes. False (and
    /// nothing changed) if one of `moved` is no longer in `old`, or `old`
    /// holds a message not in `moved` (none can join a pack once written;
    /// checked all the same).
    pub fn move_pack(
        &self,
        old: &str,
        repo: &str,
        new: &PackRef,
        moved: &[MessageId],
    ) -> Result<bool> {
        let tx = self.db.transaction()?;
        tx.lock_membership_log()?;
        super::insert_pack(&tx, &new.name, repo, new.size)?;
        for (id, span) in moved.iter().zip(&new.spans) {
            let n = tx.execute(
                r#"UPDATE messages SET pack = $1, "offset" = $2, length = $3
                   WHERE id = $4 AND pack = $5"#,
                params![&new.name, span.offset as i64, span.length as i64, id, old],
            )?;
            if n != 1 {
                // Moved or dropped by someone else: change nothing.
                return Ok(false);
            }
        }
        if !drop_pack_row(&tx, old)? {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Drops the row of a pack no message is in; false if one is (then
    /// nothing changed).
    pub fn drop_pack(&self, name: &str) -> Result<bool> {
        let tx = self.db.transaction()?;
        tx.lock_membership_log()?;
        if !drop_pack_row(&tx, name)? {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Whether the catalog names pack `name`.
    pub fn has_pack(&self, name: &str) -> Result<bool> {
        self.db
            .exists("SELECT 1 FROM packs WHERE name = $1", params![name])
    }
}

fn drop_pack_row(tx: &Db, name: &str) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM packs WHERE name = $1
           AND NOT EXISTS (SELECT 1 FROM messages g WHERE g.pack = $1)",
        params![name],
    )?;
    Ok(n > 0)
}

fn usage_row(r: &Row) -> Result<PackUsage> {
    Ok(PackUsage {
        name: r.get(0)?,
        repo: r.get(1)?,
        size: r.get(2)?,
        messages: r.get(3)?,
        live_bytes: r.get(4)?,
    })
}
