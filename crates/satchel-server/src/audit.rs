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
//! Appends are group-committed ([`GroupCommit`]): a request's entry joins a
//! queue, and one request at a time writes everything queued in one
//! transaction, so concurrent requests share one commit (one fsync) instead
//! of waiting for one each. Every request still returns only once the
//! commit holding its entry is durable.
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
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

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
    pub const BACKUP: &str = "backup";
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

/// Which way a message was read: its `message.read` entry says so.
#[derive(Clone, Copy, Debug)]
pub enum Read {
    /// `GET /api/v1/mailboxes/{address}/messages/{id}` (`satchel get`): the raw bytes.
    Api,
    /// The console's message view.
    ConsoleView,
    /// The console's original-message (.eml) download.
    ConsoleRaw,
    /// The console's download of attachment N.
    ConsoleAttachment(usize),
}

impl Read {
    /// `mailbox`, `id`, `via` (`api`, `console`), `part` (`raw`, `view`,
    /// `attachment` with its number in `attachment`).
    pub fn target(self, address: &str, id: &satchel_archive::MessageId) -> Value {
        let (via, part) = match self {
            Read::Api => ("api", "raw"),
            Read::ConsoleView => ("console", "view"),
            Read::ConsoleRaw => ("console", "raw"),
            Read::ConsoleAttachment(_) => ("console", "attachment"),
        };
        let mut t = json!({ "mailbox": address, "id": id, "via": via, "part": part });
        if let Read::ConsoleAttachment(n) = self {
            t["attachment"] = json!(n);
        }
        t
    }
}

/// The actor of a failed sign-in whose user name is unknown (the name
/// itself is not kept: it is often a password typed in the wrong field).
pub const UNKNOWN_ACTOR: &str = "-";

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The advisory lock key of audit appends ("satchel" + 3).
const AUDIT_LOCK: i64 = 0x7361_7463_6865_6c03;

/// One entry to append: everything but its seq, time and hash.
pub struct Event {
    pub actor: String,
    pub source: IpAddr,
    pub action: String,
    pub target: Value,
}

impl Event {
    fn by(caller: &Caller, action: &str, target: Value) -> Event {
        Event {
            actor: caller.user.name.clone(),
            source: caller.source,
            action: action.to_string(),
            target,
        }
    }
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

/// Entries written per INSERT statement (7 parameters each).
const INSERT_ROWS: usize = 100;

/// Entries written in one transaction at most; more wait for the next.
const MAX_GROUP: usize = 1000;

/// Appends `events`, in order, after the latest entry, in one transaction:
/// one commit for all of them.
pub fn append_all(db: &Db, events: &[Event]) -> Result<Vec<api::AuditEntry>> {
    let tx = db.transaction()?;
    if tx.dialect() == Dialect::Postgres {
        tx.execute("SELECT pg_advisory_xact_lock($1)", params![AUDIT_LOCK])?;
    }
    let (mut seq, mut prev) = match head(&tx)? {
        Some((seq, hash)) => (seq, parse_hash(&hash)?),
        None => (0, GENESIS),
    };
    let time = crate::jobs::time(&chrono::Utc::now());
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let target_text = event.target.to_string();
        let mut entry = api::AuditEntry {
            seq,
            time: time.clone(),
            actor: event.actor.clone(),
            source: event.source.to_string(),
            action: event.action.clone(),
            target: event.target.clone(),
            hash: String::new(),
        };
        prev = entry_hash(&prev, &entry, &target_text);
        entry.hash = hex::encode(prev);
        rows.push((entry, target_text));
    }
    for chunk in rows.chunks(INSERT_ROWS) {
        insert(&tx, chunk)?;
    }
    tx.commit()?;
    Ok(rows.into_iter().map(|(entry, _)| entry).collect())
}

/// One multi-row INSERT of `rows` (entries with their target as stored).
fn insert(db: &Db, rows: &[(api::AuditEntry, String)]) -> Result<()> {
    let mut sql = String::from(
        "INSERT INTO audit_log(seq, time, actor, source, action, target, hash) VALUES ",
    );
    let mut values = Vec::with_capacity(rows.len() * 7);
    for (i, (e, target_text)) in rows.iter().enumerate() {
        let n = i * 7;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7
        ));
        values.extend([
            e.seq.into(),
            e.time.as_str().into(),
            e.actor.as_str().into(),
            e.source.as_str().into(),
            e.action.as_str().into(),
            target_text.as_str().into(),
            e.hash.as_str().into(),
        ]);
    }
    db.execute(&sql, &values)?;
    Ok(())
}

/// The latest entry's seq and hash, if any.
fn head(db: &Db) -> Result<Option<(i64, String)>> {
    let row = db.query_opt(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    row.map(|r| Ok((r.get(0)?, r.get(1)?))).transpose()
}

/// Group commit of appends: requests queue their entry, and whichever
/// finds nobody writing becomes the writer of everything queued. The writer
/// takes the catalog first and the queue after, so entries queued while it
/// waited for the catalog join its commit. Nothing is cached: each commit
/// reads the chain's head under the catalog's lock, so appends written
/// directly ([`note`]) or by other services on the catalog interleave
/// correctly.
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Queue>,
    /// Signalled when a commit ends (its outcomes are in the queue).
    committed: Condvar,
    /// Commits made, for benchmarks and tests.
    commits: AtomicU64,
    /// How far the Audit page has verified the chain on this service
    /// (memory only: after a restart the first view verifies it whole).
    verified: Mutex<Option<Checkpoint>>,
}

/// The last entry the Audit page verified, and when: the next view
/// verifies only the entries after it ([`Service::audit_verify_page`]).
#[derive(Clone)]
struct Checkpoint {
    seq: i64,
    hash: [u8; 32],
    entries: u64,
    /// When the chain up to `seq` was verified (RFC 3339 UTC).
    at: String,
    /// When the whole chain last verified, by a full pass of the page.
    full_at: Option<String>,
}

/// What one view of the Audit page verified.
pub struct PageVerification {
    /// The chain through the last entry verified (by this view or before).
    pub result: api::AuditVerification,
    /// The first entry this view read (1: the whole chain).
    pub from: i64,
    /// When an earlier view verified the entries before `from`.
    pub earlier_at: Option<String>,
    /// When this view ran (RFC 3339 UTC).
    pub at: String,
    /// When the page last verified the whole chain without a problem, on
    /// this service since it started.
    pub full_at: Option<String>,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Event)>,
    writing: bool,
    /// Outcomes not yet collected by their request, by ticket.
    outcomes: HashMap<u64, std::result::Result<api::AuditEntry, String>>,
}

impl GroupCommit {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue is never left half-changed: a panic cannot poison it in
        // a way that matters.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `event`, returning once the commit that holds it is durable.
    pub fn append(
        &self,
        archive: &satchel_archive::Archive,
        event: Event,
    ) -> Result<api::AuditEntry> {
        let mut q = self.queue();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push((ticket, event));
        loop {
            if let Some(outcome) = q.outcomes.remove(&ticket) {
                return outcome.map_err(ServiceError::Internal).map_err(failed);
            }
            if q.writing {
                q = self
                    .committed
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            q.writing = true;
            drop(q);
            self.write_waiting(archive);
            q = self.queue();
        }
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps how far a view verified. A whole pass that found a problem
    /// forgets the checkpoint, so every view after it verifies the whole
    /// chain (and keeps saying so) until it verifies again; a view never
    /// moves the checkpoint back (two views at once).
    fn remember(&self, v: &api::AuditVerification, whole: bool, at: &str, full_at: Option<String>) {
        let mut kept = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if !v.ok && whole {
            *kept = None;
            return;
        }
        if kept.as_ref().is_some_and(|k| k.seq > v.head.seq) {
            return;
        }
        let Ok(hash) = parse_hash(&v.head.hash) else {
            return;
        };
        *kept = Some(Checkpoint {
            seq: v.head.seq,
            hash,
            entries: v.entries,
            at: at.to_string(),
            full_at,
        });
    }

    /// Writes what is queued in one transaction and records each outcome.
    fn write_waiting(&self, archive: &satchel_archive::Archive) {
        let mut writing = Writing {
            group: self,
            tickets: Vec::new(),
        };
        // The catalog first: what is queued while waiting for it joins.
        let cat = archive.catalog();
        let events: Vec<Event> = {
            let mut q = self.queue();
            let n = q.waiting.len().min(MAX_GROUP);
            q.waiting
                .drain(..n)
                .map(|(ticket, event)| {
                    writing.tickets.push(ticket);
                    event
                })
                .collect()
        };
        let outcome = match cat {
            Ok(cat) => append_all(cat.db(), &events),
            Err(e) => Err(e.into()),
        };
        if outcome.is_ok() {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        let mut q = self.queue();
        match outcome {
            Ok(entries) => {
                for (ticket, entry) in writing.tickets.drain(..).zip(entries) {
                    q.outcomes.insert(ticket, Ok(entry));
                }
            }
            Err(e) => {
                for ticket in writing.tickets.drain(..) {
                    q.outcomes.insert(ticket, Err(e.to_string()));
                }
            }
        }
    }

    /// Commits made so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Entries queued and not yet taken by a writer.
    pub fn waiting(&self) -> usize {
        self.queue().waiting.len()
    }
}

/// The writer's turn: when it ends, even by a panic, the next writer may
/// start, and entries taken but not reported fail rather than wait forever.
struct Writing<'a> {
    group: &'a GroupCommit,
    tickets: Vec<u64>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut q = self.group.queue();
        for ticket in self.tickets.drain(..) {
            q.outcomes
                .insert(ticket, Err("the audit writer stopped mid-commit".into()));
        }
        q.writing = false;
        drop(q);
        self.group.committed.notify_all();
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| ServiceError::Internal(format!("audit hash {text:?}: {e}")))?;
    Ok(out)
}

/// Records what `caller` did, on the catalog the caller already holds: an
/// entry of its own, written at once (administrative changes, which are
/// rare; a request that holds the catalog cannot wait for a group commit,
/// which needs it).
pub fn note(cat: &Catalog, caller: &Caller, action: &str, target: Value) -> Result<()> {
    append_all(cat.db(), &[Event::by(caller, action, target)])
        .map(|_| ())
        .map_err(failed)
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
    /// Records what `caller` did (see [`note`] when the catalog is held),
    /// group-committed with concurrent requests' entries.
    pub fn audit(&self, caller: &Caller, action: &str, target: Value) -> Result<()> {
        let event = Event::by(caller, action, target);
        self.audit_log.append(&self.archive, event).map(|_| ())
    }

    /// How many audit commits this service made (each holds one or more
    /// entries): for benchmarks and tests of the group commit.
    pub fn audit_commits(&self) -> u64 {
        self.audit_log.commits()
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
            actor: actor.to_string(),
            source,
            action: if ok {
                action::SIGNIN
            } else {
                action::SIGNIN_FAILED
            }
            .to_string(),
            target: json!({ "via": via }),
        };
        self.audit_log.append(&self.archive, event).map(|_| ())
    }

    /// The latest entry's seq and hash (seq 0 and the zero hash when empty).
    pub fn audit_head(&self, caller: &Caller) -> Result<api::AuditHead> {
        caller.require_admin()?;
        let (seq, hash) = head(self.archive.catalog()?.db())?.unwrap_or((0, hex::encode(GENESIS)));
        Ok(api::AuditHead { seq, hash })
    }

    /// Recomputes the chain from the first entry; stops at the first entry
    /// that does not match.
    pub fn audit_verify(&self, caller: &Caller) -> Result<api::AuditVerification> {
        caller.require_admin()?;
        self.walk(Chain::default())
    }

    /// The Audit page's verification: only the entries after the last one
    /// a view verified, so a view does not re-read the whole trail; the
    /// whole chain when `full` is asked for, on the first view, or when
    /// that last entry is no longer stored as it was verified. An entry
    /// changed after a view verified it is found by the next full pass
    /// (here, or `satchel audit verify`), not by the views in between.
    pub fn audit_verify_page(&self, caller: &Caller, full: bool) -> Result<PageVerification> {
        caller.require_admin()?;
        let at = crate::jobs::time(&chrono::Utc::now());
        let known = self.audit_log.checkpoint();
        let resumed = match known.clone().filter(|_| !full) {
            Some(c) if self.still_stored(&c)? => Some(c),
            _ => None,
        };
        let start = resumed.as_ref().map_or_else(Chain::default, Chain::resume);
        let from = start.seq + 1;
        let result = self.walk(start)?;
        let whole = from == 1;
        let full_at = match (whole, result.ok) {
            (true, true) => Some(at.clone()),
            _ => known.and_then(|c| c.full_at),
        };
        self.audit_log
            .remember(&result, whole, &at, full_at.clone());
        Ok(PageVerification {
            result,
            from,
            earlier_at: resumed.map(|c| c.at),
            at,
            full_at,
        })
    }

    /// Whether the checkpoint's entry is still stored with the hash it was
    /// verified with (if not, the trail was rewritten there: start over).
    fn still_stored(&self, c: &Checkpoint) -> Result<bool> {
        let rows = self
            .archive
            .catalog()?
            .db()
            .query("SELECT hash FROM audit_log WHERE seq = $1", params![c.seq])?;
        let Some(r) = rows.first() else {
            return Ok(false);
        };
        let hash: String = r.get(0)?;
        Ok(hash == hex::encode(c.hash))
    }

    /// Walks the chain on from `chain`, a page of rows at a time.
    fn walk(&self, mut chain: Chain) -> Result<api::AuditVerification> {
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
    /// default, at most 10,000) before seq `filter.before` (for paging).
    pub fn audit_list(
        &self,
        caller: &Caller,
        filter: &api::AuditFilter,
    ) -> Result<Vec<api::AuditEntry>> {
        caller.require_admin()?;
        let since = filter.since.as_deref().map(since_time).transpose()?;
        let limit = filter.limit.unwrap_or(100).clamp(1, 10_000);
        let mut found = Vec::new();
        let mut before = filter.before.unwrap_or(i64::MAX);
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
    /// Goes on from a checkpoint a view verified.
    fn resume(c: &Checkpoint) -> Chain {
        Chain {
            seq: c.seq,
            hash: c.hash,
            entries: c.entries,
            first_bad: None,
        }
    }

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

    /// Appends queued while the writer waits for the catalog (held here,
    /// as a long import would) are written by one commit, in one chain.
    #[test]
    fn concurrent_appends_share_one_commit() {
        const N: usize = 8;
        let dir = tempfile::tempdir().expect("tempdir");
        let service = Service::open(&dir.path().join("data"), Some("admin-password".into()))
            .expect("service");
        let admin = Caller::local(&service, "admin")
            .expect("query")
            .expect("admin");
        let before = service.audit_commits();
        std::thread::scope(|s| {
            let held = service.archive().catalog().expect("catalog");
            let appends: Vec<_> = (0..N)
                .map(|i| {
                    let (service, admin) = (&service, &admin);
                    s.spawn(move || service.audit(admin, action::SEARCH, json!({ "query": i })))
                })
                .collect();
            while service.audit_log.waiting() < N {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(held);
            for a in appends {
                a.join().expect("append thread").expect("append");
            }
        });
        assert_eq!(
            service.audit_commits() - before,
            1,
            "one commit for {N} entries"
        );
        let v = service.audit_verify(&admin).expect("verify");
        assert!(v.ok, "{:?}", v.problem);
        let queries: Vec<Value> = service
            .audit_list(&admin, &api::AuditFilter::default())
            .expect("list")
            .into_iter()
            .filter(|e| e.action == action::SEARCH)
            .map(|e| e.target["query"].clone())
            .collect();
        assert_eq!(queries.len(), N, "{queries:?}");
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
