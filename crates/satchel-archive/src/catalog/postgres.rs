//! The PostgreSQL connection behind [`super::Db`], through `tokio-postgres`.
//!
//! The catalog is synchronous; tokio-postgres is async. The connection's I/O
//! future runs on a dedicated thread with its own single-threaded tokio
//! runtime, and every call waits for its answer with
//! `futures::executor::block_on`: the client only talks to that thread over
//! channels, so waiting needs no runtime, and (unlike tokio's `block_on`) it
//! works from inside the service's runtime too.
//!
//! A lost connection (the server restarted, the network dropped) makes the
//! call that notices it fail with a clear error; the next call outside a
//! transaction connects again.

use super::db::{Row, Value};
use crate::error::{ArchiveError, Result};
use bytes::BytesMut;
use futures_executor::block_on;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

/// How long connecting may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one statement may run on the server.
const STATEMENT_TIMEOUT: &str = "120s";
/// Unacknowledged data older than this means the server is gone (Linux).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens connections with the settings of an open one (its URL read and
/// completed once).
#[derive(Clone)]
pub struct PgOpener(Config);

impl PgOpener {
    pub fn open(&self) -> Result<PgConn> {
        PgConn::open_with(self.0.clone())
    }
}

/// A PostgreSQL catalog connection (reconnected on demand).
pub struct PgConn {
    config: Config,
    /// Host, port and database, for errors (never the password).
    at: String,
    live: RefCell<Option<Live>>,
}

struct Live {
    client: Client,
    /// Prepared statements by SQL text: each is parsed once per connection.
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
    /// libpq's `key=value` form).
    pub fn connect(url: &str) -> Result<PgConn> {
        let mut config: Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| ArchiveError::Postgres {
                    at: "URL".into(),
                    why: format!("cannot read the catalog URL: {e}"),
                    source: Some(e),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
        config.keepalives(true);
        config.application_name("satchel");
        PgConn::open_with(config)
    }

    /// What opens further connections with this one's settings.
    pub fn opener(&self) -> PgOpener {
        PgOpener(self.config.clone())
    }

    fn open_with(config: Config) -> Result<PgConn> {
        let conn = PgConn {
            at: describe(&config),
            config,
            live: RefCell::new(None),
        };
        conn.live()?;
        Ok(conn)
    }

    fn error(&self, e: tokio_postgres::Error) -> ArchiveError {
        let why = match e.as_db_error() {
            Some(db) => match db.detail() {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_owned(),
            },
            None if e.is_closed() => "the connection to the server was lost".into(),
            None => {
                let mut why = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    why = format!("{why}: {c}");
                    cause = c.source();
                }
                why
            }
        };
        ArchiveError::Postgres {
            at: self.at.clone(),
            why,
            source: Some(e),
        }
    }

    /// The live connection, connecting first when there is none or the last
    /// one closed (never inside a transaction: it died with the connection).
    fn live(&self) -> Result<std::cell::RefMut<'_, Live>> {
        let mut slot = self.live.borrow_mut();
        if slot.as_ref().is_none_or(|l| l.client.is_closed()) {
            *slot = None;
            let client = self.open()?;
            *slot = Some(Live {
                client,
                statements: HashMap::new(),
            });
        }
        Ok(std::cell::RefMut::map(slot, |l| {
            l.as_mut().expect("the slot was just filled")
        }))
    }

    fn ensure_same_connection(&self, in_tx: bool) -> Result<()> {
        let closed = self
            .live
            .borrow()
            .as_ref()
            .is_none_or(|l| l.client.is_closed());
        if in_tx && closed {
            return Err(ArchiveError::Postgres {
                at: self.at.clone(),
                why: "the connection to the server was lost during a transaction \
                      (nothing of it was kept)"
                    .into(),
                source: None,
            });
        }
        Ok(())
    }

    /// Connects on a new thread that then drives the connection until it
    /// closes.
    fn open(&self) -> Result<Client> {
        let (tx, rx) = std::sync::mpsc::channel();
        let config = self.config.clone();
        let spawned = std::thread::Builder::new()
            .name("satchel-catalog-pg".into())
            .spawn(move || drive(config, tx));
        if let Err(e) = spawned {
            return Err(self.failure(format!("cannot start the connection thread: {e}")));
        }
        let waited = CONNECT_TIMEOUT + Duration::from_secs(5);
        let client = match rx.recv_timeout(waited) {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                let e = self.error(e);
                return Err(self.failure(format!("cannot connect: {}", why_of(&e))));
            }
            Err(_) => return Err(self.failure("cannot connect: no answer in time".into())),
        };
        block_on(client.batch_execute(&format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'")))
            .map_err(|e| self.error(e))?;
        Ok(client)
    }

    fn failure(&self, why: String) -> ArchiveError {
        ArchiveError::Postgres {
            at: self.at.clone(),
            why,
            source: None,
        }
    }

    fn statement(&self, live: &mut Live, sql: &str) -> Result<Statement> {
        if let Some(s) = live.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = block_on(live.client.prepare(sql)).map_err(|e| self.error(e))?;
        live.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    pub fn execute(&self, sql: &str, params: &[Value], in_tx: bool) -> Result<u64> {
        self.ensure_same_connection(in_tx)?;
        let mut live = self.live()?;
        let stmt = self.statement(&mut live, sql)?;
        let args = arguments(params);
        block_on(live.client.execute(&stmt, &args)).map_err(|e| self.error(e))
    }

    pub fn query(&self, sql: &str, params: &[Value], in_tx: bool) -> Result<Vec<Row>> {
        self.ensure_same_connection(in_tx)?;
        let mut live = self.live()?;
        let stmt = self.statement(&mut live, sql)?;
        let args = arguments(params);
        let rows = block_on(live.client.query(&stmt, &args)).map_err(|e| self.error(e))?;
        rows.iter().map(|r| row(r, sql)).collect()
    }

    pub fn batch(&self, sql: &str, in_tx: bool) -> Result<()> {
        self.ensure_same_connection(in_tx)?;
        let live = self.live()?;
        block_on(live.client.batch_execute(sql)).map_err(|e| self.error(e))
    }
}

fn why_of(e: &ArchiveError) -> String {
    match e {
        ArchiveError::Postgres { why, .. } => why.clone(),
        other => other.to_string(),
    }
}

/// Runs on the connection's thread: connects, hands the client back, then
/// drives the connection until it closes.
fn drive(
    config: Config,
    tx: std::sync::mpsc::Sender<std::result::Result<Client, tokio_postgres::Error>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the catalog connection's runtime");
            return;
        }
    };
    runtime.block_on(async move {
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                if tx.send(Ok(client)).is_err() {
                    return;
                }
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "catalog connection to PostgreSQL closed");
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
}

/// `user@host:port/db` of a config, for messages.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("{user}{host}:{port}/{db}")
}

fn arguments(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn row(r: &tokio_postgres::Row, sql: &str) -> Result<Row> {
    let mut values = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let got = match *col.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)
                .map(|v| v.map(Value::Blob)),
            _ => r
                .try_get::<_, Option<String>>(i)
                .map(|v| v.map(Value::Text)),
        };
        let value = got.map_err(|e| ArchiveError::Invalid {
            what: "catalog row",
            why: format!("column {} ({}) of {sql}: {e}", col.name(), col.type_()),
        })?;
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

/// Values bind to whatever type PostgreSQL inferred for the placeholder
/// (`substr(x, 1, $1)` wants an INT4; a column is BIGINT), converted
/// exactly or refused.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("cannot pass an integer as {ty}").into()),
            },
            Value::Text(s) if <String as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            Value::Ints(v) if *ty == Type::INT8_ARRAY => v.to_sql(ty, out),
            Value::Texts(v) if <Vec<Option<String>> as ToSql>::accepts(ty) => v.to_sql(ty, out),
            Value::Ints(_) | Value::Texts(_) => Err(format!("cannot pass a list as {ty}").into()),
            Value::Text(_) => Err(format!("cannot pass text as {ty}").into()),
            Value::Blob(_) => Err(format!("cannot pass bytes as {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
