//! The state of IMAP archive runs, kept in the archive's catalog (SQLite or
//! PostgreSQL) as the component `imap` (its own migrations, its own version in
//! `schema_versions`; see [`Catalog::migrate_component`]).
//!
//! - `imap_folders`: per mailbox and IMAP folder, the UIDVALIDITY the recorded
//!   UIDs belong to. When the server reports another one, every UID recorded
//!   for that folder is forgotten and the folder is scanned afresh.
//! - `imap_uids`: UIDs known to hold a message already in the archive (so a
//!   `--no-stub` re-run need not download them again).

use satchel_archive::MessageId;
use satchel_archive::Result;
use satchel_archive::catalog::{Catalog, Migration, now};
use satchel_archive::params;
use std::collections::HashMap;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "imap";

/// Version 1: the tables catalog version 3 created, so that a catalog of
/// that time keeps its rows (`IF NOT EXISTS`).
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS imap_folders(
  mailbox TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  folder TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  last_run INTEGER,
  PRIMARY KEY(mailbox, folder)
);
CREATE TABLE IF NOT EXISTS imap_uids(
  mailbox TEXT NOT NULL,
  folder TEXT NOT NULL,
  uid INTEGER NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY(mailbox, folder, uid)
);
"#;

/// Version 1 in PostgreSQL: the same tables.
const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS imap_folders(
  mailbox TEXT COLLATE "C" NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  folder TEXT COLLATE "C" NOT NULL,
  uidvalidity BIGINT NOT NULL,
  last_run BIGINT,
  PRIMARY KEY(mailbox, folder)
);
CREATE TABLE IF NOT EXISTS imap_uids(
  mailbox TEXT COLLATE "C" NOT NULL,
  folder TEXT COLLATE "C" NOT NULL,
  uid BIGINT NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY(mailbox, folder, uid)
);
"#;

/// Creates or upgrades the IMAP tables; run once when the service opens.
pub fn migrate(cat: &Catalog) -> Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// The IMAP run state, on the catalog's connection.
pub trait ImapState {
    /// Records the folder's UIDVALIDITY. When it differs from the recorded
    /// one, the folder's recorded UIDs are forgotten; returns true then.
    fn imap_folder_validity(&self, mailbox: &str, folder: &str, uidvalidity: u32) -> Result<bool>;
    /// The UIDs of a folder known to hold archived messages, with their ids.
    fn imap_known_uids(&self, mailbox: &str, folder: &str) -> Result<HashMap<u32, MessageId>>;
    fn imap_record_uids(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[(u32, MessageId)],
    ) -> Result<()>;
    fn imap_forget_uids(&self, mailbox: &str, folder: &str, uids: &[u32]) -> Result<()>;
}

impl ImapState for Catalog {
    fn imap_folder_validity(&self, mailbox: &str, folder: &str, uidvalidity: u32) -> Result<bool> {
        let tx = self.transaction()?;
        let old: Option<i64> = tx
            .query_opt(
                "SELECT uidvalidity FROM imap_folders WHERE mailbox = $1 AND folder = $2",
                params![mailbox, folder],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        let changed = old.is_some_and(|v| v != i64::from(uidvalidity));
        if changed {
            tx.execute(
                "DELETE FROM imap_uids WHERE mailbox = $1 AND folder = $2",
                params![mailbox, folder],
            )?;
        }
        tx.execute(
            "INSERT INTO imap_folders(mailbox, folder, uidvalidity, last_run) VALUES ($1, $2, $3, $4)
             ON CONFLICT(mailbox, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               last_run = excluded.last_run",
            params![mailbox, folder, i64::from(uidvalidity), now()],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    fn imap_known_uids(&self, mailbox: &str, folder: &str) -> Result<HashMap<u32, MessageId>> {
        self.db()
            .query(
                "SELECT uid, id FROM imap_uids WHERE mailbox = $1 AND folder = $2",
                params![mailbox, folder],
            )?
            .iter()
            .map(|r| Ok((r.get::<i64>(0)? as u32, r.get(1)?)))
            .collect()
    }

    fn imap_record_uids(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[(u32, MessageId)],
    ) -> Result<()> {
        let tx = self.transaction()?;
        for (uid, id) in uids {
            tx.execute(
                "INSERT INTO imap_uids(mailbox, folder, uid, id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(mailbox, folder, uid) DO UPDATE SET id = excluded.id",
                params![mailbox, folder, i64::from(*uid), id],
            )?;
        }
        tx.commit()
    }

    fn imap_forget_uids(&self, mailbox: &str, folder: &str, uids: &[u32]) -> Result<()> {
        let tx = self.transaction()?;
        for uid in uids {
            tx.execute(
                "DELETE FROM imap_uids WHERE mailbox = $1 AND folder = $2 AND uid = $3",
                params![mailbox, folder, i64::from(*uid)],
            )?;
        }
        tx.commit()
    }
}
