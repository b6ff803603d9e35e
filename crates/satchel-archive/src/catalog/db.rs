//! The catalog's portable SQL layer: one connection to SQLite or PostgreSQL,
//! spoken to the same way by the archive and by every component that keeps
//! tables in the catalog.
//!
//! SQL is written once, in the subset both dialects agree on (`INSERT ... ON
//! CONFLICT`, `RETURNING`, `CAST(x AS BIGINT)`, `"user"` quoted), with
//! PostgreSQL's numbered placeholders `$1`, `$2`, ...: SQLite reads them as
//! `?1`, `?2` after [`sqlite_placeholders`]. Values travel as [`Value`] (the
//! four SQLite storage classes the catalog uses); PostgreSQL columns are BIGINT,
//! TEXT and BYTEA, so nothing is lost either way.
//!
//! Why not sqlx or diesel: the catalog is synchronous and called from some 70
//! places, sync and async, through the archive's connections (see
//! [`super::pool`]); an async pool would turn every caller async for no gain,
//! and an ORM would not spare the two schemas.

use super::postgres::{PgConn, PgOpener};
use crate::error::{ArchiveError, Result};
use crate::message::MessageId;
use std::cell::Cell;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One SQL value, as both backends store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    /// A list bound as one PostgreSQL `BIGINT[]` parameter (NULL where
    /// None), for set-based statements over a whole batch (`= ANY($1)`,
    /// `UNNEST($1, $2)`): one round trip instead of one per row. SQLite has
    /// no array parameter; the catalog keeps per-row statements there.
    Ints(Vec<Option<i64>>),
    /// A list bound as one PostgreSQL `TEXT[]` parameter; see [`Value::Ints`].
    Texts(Vec<Option<String>>),
}

impl Value {
    /// Message ids as one `TEXT[]` parameter (lowercase hex, as stored).
    pub fn ids<'a>(ids: impl IntoIterator<Item = &'a MessageId>) -> Value {
        Value::Texts(ids.into_iter().map(|id| Some(id.to_hex())).collect())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

/// Message ids are stored as lowercase hex TEXT in both backends.
impl From<&MessageId> for Value {
    fn from(v: &MessageId) -> Self {
        Value::Text(v.to_hex())
    }
}

impl From<MessageId> for Value {
    fn from(v: MessageId) -> Self {
        Value::Text(v.to_hex())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Self {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// The parameters of one statement: `params![a, b]` is `&[Value::from(a), ...]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::catalog::Value::from($value)),*] as &[$crate::catalog::Value]
    };
}

/// A value read back, converted to the Rust type the caller asks for.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let i = i64::from_value(v)?;
        u64::try_from(i).map_err(|_| format!("expected a count, found {i}"))
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl FromValue for MessageId {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        MessageId::from_hex(&String::from_value(v)?).map_err(|e| e.to_string())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as a `T`; a missing column or another type is an error
    /// naming the column.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).ok_or_else(|| ArchiveError::Invalid {
            what: "catalog row",
            why: format!("no column {i}"),
        })?;
        T::from_value(v).map_err(|why| ArchiveError::Invalid {
            what: "catalog row",
            why: format!("column {i}: {why}"),
        })
    }
}

/// Which SQL dialect a catalog speaks, for the few statements written twice
/// (schemas, SQLite's pragmas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    /// Boxed: its config and statement cache are larger than a SQLite handle.
    Postgres(Box<PgConn>),
}

/// One connection to the catalog.
pub struct Db {
    backend: Backend,
    /// A transaction is open: nested ones are refused, and a lost
    /// PostgreSQL connection is not silently replaced in the middle of one.
    in_tx: Cell<bool>,
    /// Statements sent so far (each a round trip on PostgreSQL), counted
    /// over every connection opened from one another ([`Db::another`]).
    sent: Arc<AtomicU64>,
}

impl Db {
    pub(crate) fn sqlite(conn: rusqlite::Connection) -> Db {
        Db {
            backend: Backend::Sqlite(conn),
            in_tx: Cell::new(false),
            sent: Arc::default(),
        }
    }

    pub(crate) fn postgres(conn: PgConn) -> Db {
        Db {
            backend: Backend::Postgres(Box::new(conn)),
            in_tx: Cell::new(false),
            sent: Arc::default(),
        }
    }

    /// What opens further connections to the same PostgreSQL catalog,
    /// counting their statements with this one's. SQLite's catalog keeps
    /// one connection (one writer at a time, in one node's data folder):
    /// None there.
    pub(crate) fn opener(&self) -> Option<Opener> {
        let Backend::Postgres(pg) = &self.backend else {
            return None;
        };
        Some(Opener {
            pg: pg.opener(),
            sent: Arc::clone(&self.sent),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for its pragmas (None on PostgreSQL).
    pub(crate) fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(conn) => Some(conn),
            Backend::Postgres(_) => None,
        }
    }

    /// How many statements this connection and those opened from it have
    /// sent (each one a round trip to a PostgreSQL server): what an import
    /// batch costs is counted, not timed.
    pub fn statements_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.count();
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&sqlite_placeholders(sql))?;
                Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
            }
            Backend::Postgres(pg) => pg.execute(sql, params, self.in_tx.get()),
        }
    }

    /// Every row of a query.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.count();
        match &self.backend {
            Backend::Sqlite(conn) => sqlite_query(conn, sql, params),
            Backend::Postgres(pg) => pg.query(sql, params, self.in_tx.get()),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The one row a query always returns (an aggregate, `RETURNING`).
    pub fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| ArchiveError::Invalid {
                what: "catalog query",
                why: format!("no row from {sql}"),
            })
    }

    /// Whether a query returns any row.
    pub fn exists(&self, sql: &str, params: &[Value]) -> Result<bool> {
        Ok(self.query_opt(sql, params)?.is_some())
    }

    /// Runs statements separated by `;` without parameters (schemas).
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.count();
        match &self.backend {
            Backend::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Backend::Postgres(pg) => pg.batch(sql, self.in_tx.get()),
        }
    }

    /// Opens a transaction on this connection; it rolls back unless
    /// [`Tx::commit`] is called.
    pub fn transaction(&self) -> Result<Tx<'_>> {
        if self.in_tx.get() {
            return Err(ArchiveError::Invalid {
                what: "catalog transaction",
                why: "a transaction is already open on this connection".into(),
            });
        }
        self.batch("BEGIN")?;
        self.in_tx.set(true);
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    /// Serializes writers of the membership log across every connection to
    /// the catalog, until the transaction ends: seqs are then handed out in
    /// commit order, so a reader that saw seq N never later finds a smaller
    /// one committed (PostgreSQL; SQLite has one writer at a time anyway).
    pub fn lock_membership_log(&self) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            self.execute("SELECT pg_advisory_xact_lock($1)", params![MEMBERSHIP_LOCK])?;
        }
        Ok(())
    }

    /// Takes the session-level lock `key` if no other connection holds it
    /// (PostgreSQL `pg_try_advisory_lock`): for work longer than a
    /// transaction that one node of several may do at a time. It lasts until
    /// [`Db::session_unlock`] or the connection's end; a connection lost and
    /// replaced loses it, which [`Db::session_lock_held`] tells. SQLite's
    /// catalog lives in one node's data folder, so there the node's own
    /// locks suffice: always granted.
    pub fn try_session_lock(&self, key: i64) -> Result<bool> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(true);
        }
        self.query_one("SELECT pg_try_advisory_lock($1)", params![key])?
            .get::<Option<bool>>(0)
            .map(|held| held.unwrap_or(false))
    }

    /// Whether this connection still holds session lock `key` (checked
    /// before an irrevocable step, in case the connection was replaced).
    pub fn session_lock_held(&self, key: i64) -> Result<bool> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(true);
        }
        self.exists(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND pid = pg_backend_pid() AND objsubid = 1
               AND ((classid::bigint << 32) | objid::bigint) = $1",
            params![key],
        )
    }

    /// Releases session lock `key`.
    pub fn session_unlock(&self, key: i64) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            self.query("SELECT pg_advisory_unlock($1)", params![key])?;
        }
        Ok(())
    }
}

/// Opens further connections to one PostgreSQL catalog ([`Db::opener`]).
#[derive(Clone)]
pub(crate) struct Opener {
    pg: PgOpener,
    sent: Arc<AtomicU64>,
}

impl Opener {
    pub(crate) fn open(&self) -> Result<Db> {
        Ok(Db {
            backend: Backend::Postgres(Box::new(self.pg.open()?)),
            in_tx: Cell::new(false),
            sent: Arc::clone(&self.sent),
        })
    }
}

/// The advisory lock key of the membership log ("satchel" + 1).
const MEMBERSHIP_LOCK: i64 = 0x7361_7463_6865_6c01;
/// The advisory lock key of schema migrations.
pub(crate) const MIGRATION_LOCK: i64 = 0x7361_7463_6865_6c02;

/// An open transaction; derefs to the connection it runs on.
pub struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    /// Commits; on failure the transaction is rolled back and nothing of
    /// it stays. COMMIT runs while `in_tx` still holds, so a lost PostgreSQL
    /// connection is an error here, never a COMMIT on a fresh connection
    /// that would "succeed" with nothing to commit.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let outcome = self.db.batch("COMMIT");
        self.db.in_tx.set(false);
        if outcome.is_err() && self.db.batch("ROLLBACK").is_err() {
            tracing::debug!("catalog rollback after a failed commit");
        }
        outcome
    }
}

impl Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.db.in_tx.set(false);
            // A failed rollback leaves nothing to undo: the connection is
            // gone (PostgreSQL reconnects on the next call) or the
            // transaction already ended with an error.
            if let Err(e) = self.db.batch("ROLLBACK") {
                tracing::debug!(error = %e, "catalog rollback");
            }
        }
    }
}

/// `$1` → `?1`: PostgreSQL's placeholders in SQLite's spelling. The catalog's
/// SQL never holds a `$` inside a string literal (PostgreSQL-only DDL with
/// `$$` never reaches SQLite).
pub fn sqlite_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn sqlite_query(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&sqlite_placeholders(sql))?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(width);
        for i in 0..width {
            row.push(sqlite_value(r.get_ref(i)?)?);
        }
        out.push(Row(row));
    }
    Ok(out)
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Result<Value> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Real(f) => {
            return Err(ArchiveError::Invalid {
                what: "catalog row",
                why: format!("unexpected real number {f}"),
            });
        }
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Ints(_) | Value::Texts(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite takes no list parameter (PostgreSQL-only batch statement)".into(),
                ));
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlite_numbered_ones() {
        assert_eq!(
            sqlite_placeholders("SELECT a FROM t WHERE b = $1 AND c = $12 OR d = $2"),
            "SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = ?2"
        );
        assert_eq!(sqlite_placeholders("SELECT '$' || x"), "SELECT '$' || x");
    }
}
