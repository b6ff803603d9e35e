//! The catalog: the archive's metadata in SQLite (WAL, synchronous=FULL).
//!
//! It knows who the users are, which repositories and mailboxes exist, who may
//! search what, where every message's bytes are, and which mailboxes hold it,
//! with the membership log of every change ([`membership`]). The schema version
//! lives in `PRAGMA user_version`; [`Catalog::open`] migrates.
//!
//! Other crates keep their own tables in the same SQLite file (IMAP run state,
//! offline state, jobs): each is a *component* with its own version in
//! `schema_versions` and its own migrations, applied through
//! [`Catalog::migrate_component`]. The archive neither creates nor reads them.

use crate::error::{ArchiveError, Result};
use crate::message::MessageId;
use crate::params;
use crate::secret::SecretKey;
use crate::store::Span;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

mod batch;
pub mod db;
pub mod gc;
pub mod membership;
pub mod pool;
mod postgres;
mod postgres_schema;
pub use batch::{insert_memberships, insert_messages};
pub use db::{Db, Dialect, FromValue, Row, Tx, Value};
pub use membership::{MemberEntry, insert_membership};
/// The SQLite binding the catalog is made with, for the crates that keep
/// their own tables in the catalog's file (same version, one copy).
pub use rusqlite;

const SCHEMA_VERSION: i64 = 8;

/// Version 2 (with the offline tables, now the service's component
/// `offline`): "what is new in this mailbox since seq N" without a scan.
const SCHEMA_V2: &str = "CREATE INDEX membership_mailbox_seq ON membership(mailbox, seq);
PRAGMA user_version = 2;";

/// Version 3 added the IMAP run state, now satchel-mailbox's component `imap`.
const SCHEMA_V3: &str = "PRAGMA user_version = 3;";

/// Version 4: IMAP passwords are sealed (see [`crate::secret`]) in
/// `imap_secret`; the clear `imap_password` column stays only for the rows
/// [`Catalog::use_secret_key`] has not sealed yet.
const SCHEMA_V4: &str = "ALTER TABLE mailboxes ADD COLUMN imap_secret BLOB;
PRAGMA user_version = 4;";

/// Version 6: an S3 repository records its endpoint (`NULL`: the provider's
/// own, or a disk repository), and any repository may be *cold* (its mail is
/// never synchronized offline).
const SCHEMA_V6: &str = "ALTER TABLE repositories ADD COLUMN endpoint TEXT;
ALTER TABLE repositories ADD COLUMN cold INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 6;";

/// Version 7: no `indexed` flag. Each node's search index follows the
/// membership log from the position its own commits hold (see
/// [`crate::index`]); a flag in the shared catalog could say "indexed" for
/// one node only.
const SCHEMA_V7: &str = "DROP INDEX IF EXISTS messages_unindexed;
ALTER TABLE messages DROP COLUMN indexed;
PRAGMA user_version = 7;";

/// The columns [`repository_row`] reads, in its order.
const REPOSITORY_COLUMNS: &str = "name, kind, path, endpoint, cold";

const SCHEMA_V1: &str = r#"
CREATE TABLE users(
  name TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL
);
CREATE TABLE tokens(
  hash TEXT PRIMARY KEY,
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  label TEXT NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE repositories(
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE mailboxes(
  address TEXT PRIMARY KEY,
  repo TEXT NOT NULL REFERENCES repositories(name),
  imap_url TEXT,
  imap_user TEXT,
  imap_password TEXT,
  created INTEGER NOT NULL
);
CREATE TABLE grants(
  mailbox TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  PRIMARY KEY(mailbox, user)
);
CREATE TABLE packs(
  name TEXT PRIMARY KEY,
  repo TEXT NOT NULL REFERENCES repositories(name),
  size INTEGER NOT NULL
);
CREATE TABLE messages(
  id TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  pack TEXT NOT NULL REFERENCES packs(name),
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  date INTEGER,
  sender TEXT NOT NULL,
  subject TEXT NOT NULL,
  indexed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_unindexed ON messages(indexed) WHERE indexed = 0;
-- seq grows with every message added to a mailbox, so "what is new since" is a
-- range scan (offline repositories and incremental work build on it).
CREATE TABLE membership(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  id TEXT NOT NULL REFERENCES messages(id),
  folder TEXT NOT NULL DEFAULT '',
  added INTEGER NOT NULL,
  UNIQUE(mailbox, id)
);
CREATE INDEX membership_id ON membership(id);
"#;

pub struct Catalog {
    db: Db,
    /// Seals and opens IMAP passwords; set by [`Catalog::use_secret_key`],
    /// shared by every connection opened from this one ([`Catalog::another`]).
    secret: Arc<RwLock<Option<Arc<SecretKey>>>>,
}

/// One schema step of a component, written for each dialect: both take the
/// component from one version to the next and reach the same tables.
#[derive(Clone, Copy, Debug)]
pub struct Migration<'a> {
    pub sqlite: &'a str,
    pub postgres: &'a str,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub admin: bool,
    /// The directory groups (DNs) the user is a member of, of those named in
    /// grants: filled at sign-in for a directory user, never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl UserInfo {
    /// An identity the service acts as itself (a hold's searcher, the
    /// scheduler, a readiness probe): no password, no groups, never stored.
    pub fn internal(name: &str, admin: bool) -> UserInfo {
        UserInfo {
            name: name.to_string(),
            password_hash: String::new(),
            admin,
            groups: Vec::new(),
        }
    }
}

/// How a grant names a directory group in lists and in the grants API:
/// `group:` and the group's DN.
pub const GROUP_PREFIX: &str = "group:";

/// Hex digits of a token's SHA-256 that name it in lists and revocations
/// (the token itself is never stored).
pub const TOKEN_ID_LEN: usize = 16;

/// An API token as listed: never the secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub label: String,
    /// Unix seconds.
    pub created: i64,
}

/// What removing a user took away.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct RemovedUser {
    pub tokens: usize,
    pub grants: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepositoryInfo {
    pub name: String,
    /// `disk` or `s3`.
    pub kind: String,
    /// A disk repository's folder (relative to the data folder or absolute),
    /// or an S3 repository's `s3://BUCKET/PREFIX`.
    pub path: PathBuf,
    /// An S3 repository's endpoint URL; `None` for the provider's own (AWS).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Cold storage: mail there is not synchronized offline.
    #[serde(default)]
    pub cold: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxInfo {
    pub address: String,
    pub repo: String,
    pub imap_url: Option<String>,
    pub imap_user: Option<String>,
    pub messages: u64,
    pub bytes: u64,
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grant {
    pub mailbox: String,
    pub user: String,
}

/// A stored message's catalog entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageMeta {
    pub id: MessageId,
    pub size: u64,
    pub date: Option<i64>,
    pub from: String,
    pub subject: String,
}

/// A message's place in a mailbox, in the order it arrived there.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub seq: i64,
    pub meta: MessageMeta,
    pub folder: String,
}

/// Where a message's bytes are.
#[derive(Clone, Debug)]
pub struct Location {
    /// The repository's name (the archive keeps one handle per repository).
    pub repo: String,
    pub pack: String,
    pub span: Span,
    pub size: u64,
}

/// A message ready to enter the catalog after its pack is durable.
pub struct NewMessage<'a> {
    pub id: &'a MessageId,
    pub size: u64,
    pub span: Span,
    pub date: Option<i64>,
    pub from: &'a str,
    pub subject: &'a str,
}

/// Opens further connections to one PostgreSQL catalog
/// ([`Catalog::opener`]).
pub(crate) struct CatalogOpener {
    db: db::Opener,
    secret: Arc<RwLock<Option<Arc<SecretKey>>>>,
}

impl CatalogOpener {
    pub(crate) fn open(&self) -> Result<Catalog> {
        Ok(Catalog {
            db: self.db.open()?,
            secret: Arc::clone(&self.secret),
        })
    }
}

fn poisoned_secret() -> ArchiveError {
    ArchiveError::Invalid {
        what: "catalog secret key",
        why: "a previous user panicked".into(),
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Catalog {
    /// Opens (or creates) the SQLite catalog at `path`, migrating it.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit that returned is on disk — imports report a message only
        // once it is.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let catalog = Catalog {
            db: Db::sqlite(conn),
            secret: Arc::default(),
        };
        catalog.migrate_sqlite()?;
        catalog.migrate_group_grants()?;
        Ok(catalog)
    }

    /// Connects to a PostgreSQL catalog (`postgres://USER@HOST:PORT/DB`),
    /// creating or migrating its tables.
    pub fn connect(url: &str) -> Result<Self> {
        let catalog = Catalog {
            db: Db::postgres(postgres::PgConn::connect(url)?),
            secret: Arc::default(),
        };
        catalog.migrate_steps("catalog", postgres_schema::CATALOG)?;
        catalog.migrate_group_grants()?;
        Ok(catalog)
    }

    /// What opens further connections to this PostgreSQL catalog (already
    /// migrated), sharing this one's secret key; None on SQLite, which
    /// keeps one connection.
    pub(crate) fn opener(&self) -> Option<CatalogOpener> {
        Some(CatalogOpener {
            db: self.db.opener()?,
            secret: Arc::clone(&self.secret),
        })
    }

    fn migrate_sqlite(&self) -> Result<()> {
        let version: i64 = self.db.query_one("PRAGMA user_version", &[])?.get(0)?;
        if version > SCHEMA_VERSION {
            return Err(ArchiveError::Invalid {
                what: "catalog",
                why: format!(
                    "schema version {version} is newer than this satchel ({SCHEMA_VERSION})"
                ),
            });
        }
        if version < 1 {
            self.db.batch(SCHEMA_V1)?;
            self.db.batch("PRAGMA user_version = 1")?;
        }
        // One transaction per step: a crash mid-migration leaves the
        // previous version intact.
        let steps = [
            (2, SCHEMA_V2),
            (3, SCHEMA_V3),
            (4, SCHEMA_V4),
            (5, membership::SCHEMA_V5),
            (6, SCHEMA_V6),
            (7, SCHEMA_V7),
            (8, gc::SCHEMA_V8),
        ];
        for (step, sql) in steps {
            if version < step {
                self.db.batch(&format!("BEGIN;\n{sql}\nCOMMIT;"))?;
            }
        }
        Ok(())
    }

    /// Brings another crate's tables in this catalog to their latest version:
    /// `steps[i]` takes `component` from version i to i + 1 (in the
    /// catalog's dialect), applied in one transaction with its version row in
    /// `schema_versions`. A version newer than `steps` knows is refused, as
    /// for the catalog.
    pub fn migrate_component(
        &self,
        component: &'static str,
        steps: &[Migration<'_>],
    ) -> Result<()> {
        let dialect = self.db.dialect();
        let steps: Vec<(i64, &str)> = (1..)
            .zip(steps)
            .map(|(v, m)| match dialect {
                Dialect::Sqlite => (v, m.sqlite),
                Dialect::Postgres => (v, m.postgres),
            })
            .collect();
        self.migrate_steps(component, &steps)
    }

    /// Applies every step `(version it reaches, SQL)` beyond `component`'s
    /// version, one transaction each. On PostgreSQL each step first takes the
    /// migration lock and reads the version again, so two services starting
    /// at once on one catalog migrate it once.
    fn migrate_steps(&self, component: &'static str, steps: &[(i64, &str)]) -> Result<()> {
        if self.db.dialect() == Dialect::Postgres {
            self.db.batch(postgres_schema::SCHEMA_VERSIONS)?;
        }
        let known = steps.last().map_or(0, |s| s.0);
        loop {
            let tx = self.db.transaction()?;
            if tx.dialect() == Dialect::Postgres {
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1)",
                    params![db::MIGRATION_LOCK],
                )?;
            }
            let version: i64 = tx
                .query_opt(
                    "SELECT version FROM schema_versions WHERE component = $1",
                    params![component],
                )?
                .map(|r| r.get(0))
                .transpose()?
                .unwrap_or(0);
            if version > known {
                return Err(ArchiveError::Invalid {
                    what: component,
                    why: format!("schema version {version} is newer than this satchel ({known})"),
                });
            }
            let Some(&(reached, sql)) = steps.iter().find(|s| s.0 > version) else {
                return tx.commit();
            };
            tx.batch(sql)?;
            tx.execute(
                "INSERT INTO schema_versions(component, version) VALUES ($1, $2)
                 ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                params![component, reached],
            )?;
            tx.commit()?;
        }
    }

    /// Adopts the key that seals IMAP passwords, and seals every password
    /// still stored in clear (catalogs before version 4). On SQLite the clear
    /// bytes are overwritten (`secure_delete`) and the WAL is checkpointed
    /// and truncated, so no copy of them stays in the catalog's files.
    /// Returns how many passwords were sealed.
    pub fn use_secret_key(&mut self, key: SecretKey) -> Result<usize> {
        let clear: Vec<(String, String)> = self
            .db
            .query(
                "SELECT address, imap_password FROM mailboxes WHERE imap_password IS NOT NULL",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect::<Result<_>>()?;
        if !clear.is_empty() {
            let sqlite = self.db.sqlite_conn();
            if let Some(conn) = sqlite {
                conn.pragma_update(None, "secure_delete", "ON")?;
            }
            let tx = self.db.transaction()?;
            for (address, password) in &clear {
                tx.execute(
                    "UPDATE mailboxes SET imap_secret = $2, imap_password = NULL WHERE address = $1",
                    params![address, key.seal(address, password)?],
                )?;
            }
            tx.commit()?;
            if let Some(conn) = sqlite {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                conn.pragma_update(None, "secure_delete", "OFF")?;
            }
        }
        *self.secret.write().map_err(|_| poisoned_secret())? = Some(Arc::new(key));
        Ok(clear.len())
    }

    fn secret_key(&self) -> Result<Arc<SecretKey>> {
        self.secret
            .read()
            .map_err(|_| poisoned_secret())?
            .clone()
            .ok_or_else(|| ArchiveError::Invalid {
                what: "catalog",
                why: "no secret key to seal or open IMAP passwords with".into(),
            })
    }

    /// The catalog's connection, for the components' tables.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn transaction(&self) -> Result<Tx<'_>> {
        self.db.transaction()
    }

    // ---- users and tokens ----

    pub fn add_user(&self, name: &str, password_hash: &str, admin: bool) -> Result<()> {
        let n = self.db.execute(
            "INSERT INTO users(name, password_hash, admin, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            params![name, password_hash, admin, now()],
        )?;
        if n == 0 {
            return Err(ArchiveError::Exists(format!("user {name}")));
        }
        Ok(())
    }

    /// Sets a user's password and revokes all their API tokens in one
    /// transaction: whoever held the old password may have made tokens with
    /// it. Returns how many tokens were revoked.
    pub fn set_password(&mut self, name: &str, password_hash: &str) -> Result<usize> {
        let tx = self.db.transaction()?;
        let n = tx.execute(
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            params![name, password_hash],
        )?;
        if n == 0 {
            return Err(ArchiveError::NoUser(name.into()));
        }
        let revoked = tx.execute(r#"DELETE FROM tokens WHERE "user" = $1"#, params![name])?;
        tx.commit()?;
        Ok(revoked as usize)
    }

    /// Removes a user with everything they hold: API tokens and grants.
    pub fn remove_user(&mut self, name: &str) -> Result<RemovedUser> {
        let tx = self.db.transaction()?;
        let count = |sql: &str| -> Result<usize> {
            Ok(tx.query_one(sql, params![name])?.get::<u64>(0)? as usize)
        };
        let removed = RemovedUser {
            tokens: count(r#"SELECT count(*) FROM tokens WHERE "user" = $1"#)?,
            grants: count(r#"SELECT count(*) FROM grants WHERE "user" = $1"#)?,
        };
        tx.execute(r#"DELETE FROM tokens WHERE "user" = $1"#, params![name])?;
        tx.execute(r#"DELETE FROM grants WHERE "user" = $1"#, params![name])?;
        if tx.execute("DELETE FROM users WHERE name = $1", params![name])? == 0 {
            return Err(ArchiveError::NoUser(name.into()));
        }
        tx.commit()?;
        Ok(removed)
    }

    pub fn user(&self, name: &str) -> Result<Option<UserInfo>> {
        self.db
            .query_opt(
                "SELECT name, password_hash, admin FROM users WHERE name = $1",
                params![name],
            )?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.db
            .query(
                "SELECT name, password_hash, admin FROM users ORDER BY name",
                &[],
            )?
            .iter()
            .map(user_row)
            .collect()
    }

    pub fn add_token(&self, hash: &str, user: &str, label: &str) -> Result<()> {
        self.db.execute(
            r#"INSERT INTO tokens(hash, "user", label, created) VALUES ($1, $2, $3, $4)"#,
            params![hash, user, label, now()],
        )?;
        Ok(())
    }

    /// API tokens, oldest first: `user`'s, or everyone's.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        self.db
            .query(
                r#"SELECT hash, "user", label, created FROM tokens
                   WHERE CAST($1 AS TEXT) IS NULL OR "user" = $1 ORDER BY created, hash"#,
                params![user],
            )?
            .iter()
            .map(token_row)
            .collect()
    }

    /// Revokes the token with this id (of `user`, if given); `None` if there
    /// is no such token (or it is someone else's).
    pub fn revoke_token(&self, id: &str, user: Option<&str>) -> Result<Option<TokenInfo>> {
        let found = self
            .db
            .query_opt(
                r#"SELECT hash, "user", label, created FROM tokens
                   WHERE substr(hash, 1, $1) = $2 AND (CAST($3 AS TEXT) IS NULL OR "user" = $3)"#,
                params![TOKEN_ID_LEN as i64, id, user],
            )?
            .as_ref()
            .map(token_row)
            .transpose()?;
        if let Some(t) = &found {
            self.db.execute(
                "DELETE FROM tokens WHERE substr(hash, 1, $1) = $2",
                params![TOKEN_ID_LEN as i64, &t.id],
            )?;
        }
        Ok(found)
    }

    pub fn token_user(&self, hash: &str) -> Result<Option<String>> {
        self.db
            .query_opt(
                r#"SELECT "user" FROM tokens WHERE hash = $1"#,
                params![hash],
            )?
            .map(|r| r.get(0))
            .transpose()
    }

    // ---- repositories ----

    pub fn add_repository(&self, repo: &RepositoryInfo) -> Result<()> {
        let n = self.db.execute(
            "INSERT INTO repositories(name, kind, path, endpoint, cold, created)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            params![
                &repo.name,
                &repo.kind,
                repo.path.to_string_lossy().into_owned(),
                &repo.endpoint,
                repo.cold,
                now()
            ],
        )?;
        if n == 0 {
            return Err(ArchiveError::Exists(format!("repository {}", repo.name)));
        }
        Ok(())
    }

    pub fn repository(&self, name: &str) -> Result<RepositoryInfo> {
        self.db
            .query_opt(
                &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = $1"),
                params![name],
            )?
            .as_ref()
            .map(repository_row)
            .transpose()?
            .ok_or_else(|| ArchiveError::NoRepository(name.into()))
    }

    pub fn repositories(&self) -> Result<Vec<RepositoryInfo>> {
        self.db
            .query(
                &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories ORDER BY name"),
                &[],
            )?
            .iter()
            .map(repository_row)
            .collect()
    }

    /// Every repository that holds some of a mailbox's messages, and its default.
    /// Offline synchronization needs them all: earlier mail stays where it was
    /// written when the default changes.
    pub fn mailbox_repositories(&self, address: &str) -> Result<Vec<RepositoryInfo>> {
        self.db
            .query(
                &format!(
                    "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name IN (
                   SELECT repo FROM mailboxes WHERE address = $1
                   UNION
                   SELECT p.repo FROM membership m JOIN messages g ON g.id = m.id
                     JOIN packs p ON p.name = g.pack WHERE m.mailbox = $1)
                 ORDER BY name"
                ),
                params![address],
            )?
            .iter()
            .map(repository_row)
            .collect()
    }

    // ---- mailboxes and grants ----

    pub fn add_mailbox(
        &self,
        address: &str,
        repo: &str,
        imap: Option<(&str, &str, &str)>,
    ) -> Result<()> {
        crate::address::check_address(address)?;
        self.repository(repo)?;
        let (url, user, sealed) = match imap {
            Some((u, n, p)) => (Some(u), Some(n), Some(self.secret_key()?.seal(address, p)?)),
            None => (None, None, None),
        };
        let n = self.db.execute(
            "INSERT INTO mailboxes(address, repo, imap_url, imap_user, imap_secret, created)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            params![address, repo, url, user, sealed, now()],
        )?;
        if n == 0 {
            return Err(ArchiveError::Exists(format!("mailbox {address}")));
        }
        Ok(())
    }

    /// Fails with [`ArchiveError::NoMailbox`] unless `address` is a mailbox: a
    /// primary-key lookup, for the paths (every import batch, every job) that
    /// only need to know it exists. [`Catalog::mailbox`] counts the mailbox's
    /// messages and bytes, which costs O(mailbox): at 150,000 messages it was
    /// 65% of an import's CPU when the import path called it per batch.
    pub fn require_mailbox(&self, address: &str) -> Result<()> {
        let found = self.db.exists(
            "SELECT 1 FROM mailboxes WHERE address = $1",
            params![address],
        )?;
        if found {
            Ok(())
        } else {
            Err(ArchiveError::NoMailbox(address.into()))
        }
    }

    /// The mailbox with its counts and grants, as shown to people.
    pub fn mailbox(&self, address: &str) -> Result<MailboxInfo> {
        let mut info = self
            .db
            .query_opt(
                "SELECT address, repo, imap_url, imap_user,
                   (SELECT count(*) FROM membership m WHERE m.mailbox = address),
                   (SELECT CAST(coalesce(sum(g.size), 0) AS BIGINT)
                      FROM membership m JOIN messages g ON g.id = m.id
                      WHERE m.mailbox = address)
                 FROM mailboxes WHERE address = $1",
                params![address],
            )?
            .as_ref()
            .map(mailbox_row)
            .transpose()?
            .ok_or_else(|| ArchiveError::NoMailbox(address.into()))?;
        info.grants = self.grants_of(address)?;
        Ok(info)
    }

    pub fn mailboxes(&self) -> Result<Vec<MailboxInfo>> {
        let mut list: Vec<MailboxInfo> = self
            .db
            .query(
                "SELECT b.address, b.repo, b.imap_url, b.imap_user, count(m.id),
                   CAST(coalesce(sum(g.size), 0) AS BIGINT)
                 FROM mailboxes b LEFT JOIN membership m ON m.mailbox = b.address
                   LEFT JOIN messages g ON g.id = m.id
                 GROUP BY b.address ORDER BY b.address",
                &[],
            )?
            .iter()
            .map(mailbox_row)
            .collect::<Result<_>>()?;
        for mb in &mut list {
            mb.grants = self.grants_of(&mb.address)?;
        }
        Ok(list)
    }

    /// The mailbox's IMAP password, opened with the secret key. For the
    /// archive run only: never logged, never returned by the API.
    pub fn imap_password(&self, address: &str) -> Result<Option<String>> {
        let row = self.db.query_opt(
            "SELECT imap_secret, imap_password FROM mailboxes WHERE address = $1",
            params![address],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        match row.get::<Option<Vec<u8>>>(0)? {
            Some(sealed) => Ok(Some(self.secret_key()?.open(address, &sealed)?)),
            None => row.get(1),
        }
    }

    pub fn set_mailbox_repository(&self, address: &str, repo: &str) -> Result<()> {
        self.repository(repo)?;
        let n = self.db.execute(
            "UPDATE mailboxes SET repo = $2 WHERE address = $1",
            params![address, repo],
        )?;
        if n == 0 {
            return Err(ArchiveError::NoMailbox(address.into()));
        }
        Ok(())
    }

    pub fn grant(&self, mailbox: &str, user: &str) -> Result<()> {
        self.require_mailbox(mailbox)?;
        if self.user(user)?.is_none() {
            return Err(ArchiveError::NoUser(user.into()));
        }
        self.db.execute(
            r#"INSERT INTO grants(mailbox, "user") VALUES ($1, $2) ON CONFLICT DO NOTHING"#,
            params![mailbox, user],
        )?;
        Ok(())
    }

    pub fn revoke(&self, mailbox: &str, user: &str) -> Result<()> {
        self.db.execute(
            r#"DELETE FROM grants WHERE mailbox = $1 AND "user" = $2"#,
            params![mailbox, user],
        )?;
        Ok(())
    }

    /// Who may search `mailbox`: user names, then `group:DN` for each
    /// directory group granted it.
    pub fn grants_of(&self, mailbox: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .db
            .query(
                r#"SELECT "user" FROM grants WHERE mailbox = $1 ORDER BY "user""#,
                params![mailbox],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_>>()?;
        for group in self.db.query(
            "SELECT group_dn FROM group_grants WHERE mailbox = $1 ORDER BY group_dn",
            params![mailbox],
        )? {
            names.push(format!("{GROUP_PREFIX}{}", group.get::<String>(0)?));
        }
        Ok(names)
    }

    /// The mailboxes a user may search: all of them for an administrator;
    /// else those granted to the user or to one of `user.groups`.
    pub fn searchable_by(&self, user: &UserInfo) -> Result<Vec<String>> {
        if user.admin {
            let rows = self
                .db
                .query("SELECT address FROM mailboxes ORDER BY address", &[])?;
            return rows.iter().map(|r| r.get(0)).collect();
        }
        let mut rows = self.db.query(
            r#"SELECT mailbox FROM grants WHERE "user" = $1"#,
            params![&user.name],
        )?;
        for group in &user.groups {
            rows.extend(self.db.query(
                "SELECT mailbox FROM group_grants WHERE group_dn = $1",
                params![group],
            )?);
        }
        let mut mailboxes = rows
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<Vec<String>>>()?;
        mailboxes.sort();
        mailboxes.dedup();
        Ok(mailboxes)
    }

    pub fn may_search(&self, user: &UserInfo, mailbox: &str) -> Result<bool> {
        if user.admin {
            return Ok(true);
        }
        if self.db.exists(
            r#"SELECT 1 FROM grants WHERE "user" = $1 AND mailbox = $2"#,
            params![&user.name, mailbox],
        )? {
            return Ok(true);
        }
        for group in &user.groups {
            if self.db.exists(
                "SELECT 1 FROM group_grants WHERE group_dn = $1 AND mailbox = $2",
                params![group, mailbox],
            )? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ---- directory group grants ----

    /// The table of grants to directory groups: the catalog's component
    /// `group_grants`, in both dialects.
    fn migrate_group_grants(&self) -> Result<()> {
        self.migrate_component(
            "group_grants",
            &[Migration {
                sqlite: "CREATE TABLE IF NOT EXISTS group_grants(
  mailbox TEXT NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  group_dn TEXT NOT NULL,
  PRIMARY KEY(mailbox, group_dn)
);",
                postgres: r#"CREATE TABLE IF NOT EXISTS group_grants(
  mailbox TEXT COLLATE "C" NOT NULL REFERENCES mailboxes(address) ON DELETE CASCADE,
  group_dn TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY(mailbox, group_dn)
);"#,
            }],
        )
    }

    /// Lets the members of the directory group `group_dn` search `mailbox`.
    pub fn grant_group(&self, mailbox: &str, group_dn: &str) -> Result<()> {
        self.require_mailbox(mailbox)?;
        self.db.execute(
            "INSERT INTO group_grants(mailbox, group_dn) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![mailbox, group_dn],
        )?;
        Ok(())
    }

    pub fn revoke_group(&self, mailbox: &str, group_dn: &str) -> Result<()> {
        self.db.execute(
            "DELETE FROM group_grants WHERE mailbox = $1 AND group_dn = $2",
            params![mailbox, group_dn],
        )?;
        Ok(())
    }

    /// Every directory group named in a grant: the groups whose membership
    /// a directory sign-in asks about.
    pub fn granted_groups(&self) -> Result<Vec<String>> {
        self.db
            .query(
                "SELECT DISTINCT group_dn FROM group_grants ORDER BY group_dn",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    // ---- messages ----

    pub fn location(&self, id: &MessageId) -> Result<Option<Location>> {
        let row = self.db.query_opt(
            r#"SELECT p.repo, g.pack, g."offset", g.length, g.size FROM messages g
               JOIN packs p ON p.name = g.pack WHERE g.id = $1"#,
            params![id],
        )?;
        row.map(|r| location_row(&r, 0)).transpose()
    }

    pub fn in_mailbox(&self, mailbox: &str, id: &MessageId) -> Result<bool> {
        self.db.exists(
            "SELECT 1 FROM membership WHERE mailbox = $1 AND id = $2",
            params![mailbox, id],
        )
    }

    pub fn mailboxes_of(&self, id: &MessageId) -> Result<Vec<String>> {
        self.db
            .query(
                "SELECT mailbox FROM membership WHERE id = $1 ORDER BY mailbox",
                params![id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// A mailbox's messages that arrived after `after_seq`, oldest first.
    pub fn members_since(&self, mailbox: &str, after_seq: i64) -> Result<Vec<MemberRow>> {
        self.db
            .query(
                "SELECT m.seq, g.id, g.size, g.date, g.sender, g.subject, m.folder
                 FROM membership m JOIN messages g ON g.id = m.id
                 WHERE m.mailbox = $1 AND m.seq > $2 ORDER BY m.seq",
                params![mailbox, after_seq],
            )?
            .iter()
            .map(|r| {
                Ok(MemberRow {
                    seq: r.get(0)?,
                    meta: MessageMeta {
                        id: r.get(1)?,
                        size: r.get(2)?,
                        date: r.get(3)?,
                        from: r.get(4)?,
                        subject: r.get(5)?,
                    },
                    folder: r.get(6)?,
                })
            })
            .collect()
    }
}

/// Writes of one import batch, inside the caller's transaction.
pub fn insert_pack(tx: &Db, name: &str, repo: &str, size: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO packs(name, repo, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        params![name, repo, size as i64],
    )?;
    Ok(())
}

pub fn insert_message(tx: &Db, pack: &str, m: &NewMessage<'_>) -> Result<()> {
    tx.execute(
        r#"INSERT INTO messages(id, size, pack, "offset", length, date, sender, subject)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"#,
        params![
            m.id,
            m.size as i64,
            pack,
            m.span.offset as i64,
            m.span.length as i64,
            m.date,
            m.from,
            m.subject
        ],
    )?;
    Ok(())
}

/// A [`Location`] from the columns `repo, pack, offset, length, size` of
/// `r`, the first at `at`.
fn location_row(r: &Row, at: usize) -> Result<Location> {
    Ok(Location {
        repo: r.get(at)?,
        pack: r.get(at + 1)?,
        span: Span {
            offset: r.get(at + 2)?,
            length: r.get(at + 3)?,
        },
        size: r.get(at + 4)?,
    })
}

fn user_row(r: &Row) -> Result<UserInfo> {
    Ok(UserInfo {
        name: r.get(0)?,
        password_hash: r.get(1)?,
        admin: r.get(2)?,
        groups: Vec::new(),
    })
}

fn token_row(r: &Row) -> Result<TokenInfo> {
    let hash: String = r.get(0)?;
    Ok(TokenInfo {
        id: hash.chars().take(TOKEN_ID_LEN).collect(),
        user: r.get(1)?,
        label: r.get(2)?,
        created: r.get(3)?,
    })
}

fn repository_row(r: &Row) -> Result<RepositoryInfo> {
    Ok(RepositoryInfo {
        name: r.get(0)?,
        kind: r.get(1)?,
        path: PathBuf::from(r.get::<String>(2)?),
        endpoint: r.get(3)?,
        cold: r.get(4)?,
    })
}

fn mailbox_row(r: &Row) -> Result<MailboxInfo> {
    Ok(MailboxInfo {
        address: r.get(0)?,
        repo: r.get(1)?,
        imap_url: r.get(2)?,
        imap_user: r.get(3)?,
        messages: r.get(4)?,
        bytes: r.get(5)?,
        grants: Vec::new(),
    })
}
