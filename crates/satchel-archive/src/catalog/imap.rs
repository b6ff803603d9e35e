//! Catalog schema version 3: the state of IMAP archive runs.
//!
//! - `imap_folders`: per mailbox and IMAP folder, the UIDVALIDITY the recorded
//!   UIDs belong to. When the server reports another one, every UID recorded for
//!   that folder is forgotten and the folder is scanned afresh.
//! - `imap_uids`: UIDs known to hold a message already in the archive (so a
//!   `--no-stub` re-run need not download them again).
//! - `archive_schedules`: the per-mailbox archive schedule (cron) and the policy
//!   it runs with (JSON, owned by satchel-mailbox). No row = no schedule (off).
//!
//! Archive runs are recorded in the `jobs` table (kind `archive`).

use super::{Catalog, now};
use crate::error::Result;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(super) const SCHEMA_V3: &str = r#"
CREATE TABLE imap_folders(
  mailbox TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  folder TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  last_run INTEGER,
  PRIMARY KEY(mailbox, folder)
);
CREATE TABLE imap_uids(
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid INTEGER NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY(mailbox, folder, uid)
);
CREATE TABLE archive_schedules(
  mailbox TEXT PRIMARY KEY REFERENCES mailboxes(address) ON DELETE CASCADE,
  cron TEXT NOT NULL,
  policy TEXT NOT NULL,
  updated INTEGER NOT NULL
);
PRAGMA user_version = 3;
"#;

/// A mailbox's archive schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchiveSchedule {
    pub mailbox: String,
    pub cron: String,
    /// The run's policy as JSON (satchel-mailbox's `Policy`).
    pub policy: serde_json::Value,
}

impl Catalog {
    /// Records the folder's UIDVALIDITY. When it differs from the recorded one,
    /// the folder's recorded UIDs are forgotten; returns true then.
    pub fn imap_folder_validity(
        &mut self,
        mailbox: &str,
        folder: &str,
        uidvalidity: u32,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let old: Option<i64> = tx
            .query_row(
                "SELECT uidvalidity FROM imap_folders WHERE mailbox = ?1 AND folder = ?2",
                params![mailbox, folder],
                |r| r.get(0),
            )
            .optional()?;
        let changed = old.is_some_and(|v| v != uidvalidity as i64);
        if changed {
            tx.execute(
                "DELETE FROM imap_uids WHERE mailbox = ?1 AND folder = ?2",
                params![mailbox, folder],
            )?;
        }
        tx.execute(
            "INSERT INTO imap_folders(mailbox, folder, uidvalidity, last_run) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(mailbox, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               last_run = excluded.last_run",
            params![mailbox, folder, uidvalidity as i64, now()],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    /// The UIDs of a folder known to hold archived messages, with their ids.
    pub fn imap_known_uids(&self, mailbox: &str, folder: &str) -> Result<HashMap<u32, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT uid, id FROM imap_uids WHERE mailbox = ?1 AND folder = ?2")?;
        let rows = stmt.query_map(params![mailbox, folder], |r| {
            Ok((r.get::<_, i64>(0)? as u32, r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn imap_record_uids(
        &mut self,
        mailbox: &str,
        folder: &str,
        uids: &[(u32, String)],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO imap_uids(mailbox, folder, uid, id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (uid, id) in uids {
                stmt.execute(params![mailbox, folder, *uid as i64, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn imap_forget_uids(&mut self, mailbox: &str, folder: &str, uids: &[u32]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM imap_uids WHERE mailbox = ?1 AND folder = ?2 AND uid = ?3",
            )?;
            for uid in uids {
                stmt.execute(params![mailbox, folder, *uid as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ---- schedules ----

    pub fn archive_schedule(&self, mailbox: &str) -> Result<Option<ArchiveSchedule>> {
        Ok(self
            .conn
            .query_row(
                "SELECT mailbox, cron, policy FROM archive_schedules WHERE mailbox = ?1",
                [mailbox],
                schedule_row,
            )
            .optional()?)
    }

    pub fn archive_schedules(&self) -> Result<Vec<ArchiveSchedule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT mailbox, cron, policy FROM archive_schedules ORDER BY mailbox")?;
        let rows = stmt.query_map([], schedule_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets (Some) or removes (None) a mailbox's archive schedule.
    pub fn set_archive_schedule(
        &self,
        mailbox: &str,
        schedule: Option<(&str, &serde_json::Value)>,
    ) -> Result<()> {
        self.mailbox(mailbox)?;
        match schedule {
            Some((cron, policy)) => self.conn.execute(
                "INSERT INTO archive_schedules(mailbox, cron, policy, updated) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(mailbox) DO UPDATE SET cron = excluded.cron, policy = excluded.policy,
                   updated = excluded.updated",
                params![mailbox, cron, policy.to_string(), now()],
            )?,
            None => self
                .conn
                .execute("DELETE FROM archive_schedules WHERE mailbox = ?1", [mailbox])?,
        };
        Ok(())
    }
}

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArchiveSchedule> {
    let policy: String = r.get(2)?;
    Ok(ArchiveSchedule {
        mailbox: r.get(0)?,
        cron: r.get(1)?,
        policy: serde_json::from_str(&policy).unwrap_or(serde_json::Value::Null),
    })
}
