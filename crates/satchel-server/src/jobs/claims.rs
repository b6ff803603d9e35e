//! What makes jobs run once across several services ("nodes") on one
//! catalog: claims, leases and heartbeats, all in the catalog, so a node
//! needs nothing but the catalog to agree with the others.
//!
//! - A **claim** (`job_claims`) is taken per schedule and firing before a
//!   scheduled job starts: the firing is the cron's scheduled instant (the
//!   same on every node however far their clocks differ by a few seconds),
//!   and the primary key lets exactly one node insert it. The others skip.
//!   A node that claims and dies loses that firing: the next firing runs the
//!   job again (IMAP runs and offline updates pick up where the last one
//!   stopped), and its job row is marked `abandoned` once its heartbeat stops.
//! - A **lease** (`job_leases`) is held while a job that must not run twice
//!   at once is running (an IMAP run of one mailbox, the scheduled update of
//!   every offline mailbox), whichever node
//!   a person or a schedule started it on. A lease names its node and
//!   expires [`LEASE_SECS`] after the node's last heartbeat, so a node that
//!   dies holding one frees it without anyone's help.
//! - A **heartbeat** every [`HEARTBEAT`] renews the node's leases and its
//!   running jobs' `heartbeat` column; a running job whose heartbeat is older
//!   than the lease belongs to a dead node and is marked `abandoned`.
//!
//! Times here are each node's clock, in Unix seconds; nodes' clocks must
//! agree to well within [`LEASE_SECS`] (NTP does).

use satchel_archive::ArchiveError;
use satchel_archive::catalog::Db;
use satchel_archive::params;
use std::cell::Cell;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// How long a lease or a running job outlives its node's last heartbeat.
pub const LEASE_SECS: i64 = 60;

/// How often a node renews its leases and its running jobs' heartbeats: a
/// sixth of the lease, so five missed beats in a row are still no expiry.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long claims are kept (then pruned): a week of firings, for anyone
/// looking into which node ran what.
pub const CLAIMS_KEPT_SECS: i64 = 7 * 86_400;

/// The file in the data folder that names this node in the catalog.
pub const NODE_FILE: &str = "node-id";

/// This node's name in the catalog: read from `<data>/node-id`, made (random)
/// at the first start. Kept in the data folder, so a restarted node knows its
/// own jobs (and marks them interrupted at once) and two nodes, each with its
/// own data folder, never share a name.
pub fn node_id(data: &Path) -> Result<String> {
    let path = data.join(NODE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(ArchiveError::Io { path, source }),
    }
    let id = hex::encode(rand::random::<[u8; 8]>());
    std::fs::write(&path, format!("{id}\n")).map_err(|source| ArchiveError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(id)
}

/// Claims `firing` (Unix seconds of the cron's scheduled instant) of
/// `schedule` for `node`; true if this call inserted the claim, so this node
/// runs the job, false if another node (or an earlier call) already had it.
pub fn claim(db: &Db, schedule: &str, firing: i64, node: &str, now: i64) -> Result<bool> {
    Ok(db
        .query_opt(
            "INSERT INTO job_claims(schedule, firing, node, claimed) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING RETURNING node",
            params![schedule, firing, node, now],
        )?
        .is_some())
}

/// Deletes the claims of firings before `before`; how many.
pub fn prune_claims(db: &Db, before: i64) -> Result<u64> {
    db.execute("DELETE FROM job_claims WHERE firing < $1", params![before])
}

/// Takes lease `key` for `node` if nobody holds it or its holder let it
/// expire; true if taken.
pub fn acquire(db: &Db, key: &str, node: &str, now: i64) -> Result<bool> {
    Ok(db
        .query_opt(
            "INSERT INTO job_leases(key, node, expires) VALUES ($1, $2, $3)
             ON CONFLICT(key) DO UPDATE SET node = excluded.node, expires = excluded.expires
             WHERE job_leases.expires < $4
             RETURNING node",
            params![key, node, now + LEASE_SECS, now],
        )?
        .is_some())
}

/// Gives lease `key` back (only if `node` holds it).
pub fn release(db: &Db, key: &str, node: &str) -> Result<()> {
    db.execute(
        "DELETE FROM job_leases WHERE key = $1 AND node = $2",
        params![key, node],
    )?;
    Ok(())
}

/// One heartbeat of `node`: renews the leases in `held`, gives back the
/// node's lease rows it no longer holds (a holder that ended without
/// releasing), and marks its running jobs alive.
pub fn beat(db: &Db, node: &str, held: &HashSet<String>, now: i64) -> Result<()> {
    let rows = db.query("SELECT key FROM job_leases WHERE node = $1", params![node])?;
    for row in rows {
        let key: String = row.get(0)?;
        if held.contains(&key) {
            db.execute(
                "UPDATE job_leases SET expires = $3 WHERE key = $1 AND node = $2",
                params![key, node, now + LEASE_SECS],
            )?;
        } else {
            release(db, &key, node)?;
        }
    }
    db.execute(
        "UPDATE jobs SET heartbeat = $2 WHERE node = $1 AND outcome = 'running'",
        params![node, now],
    )?;
    Ok(())
}

/// Running jobs of other nodes whose heartbeat is older than the lease: their
/// node died. Marked `abandoned` (finished at their last heartbeat); how many.
pub fn mark_abandoned(db: &Db, node: &str, now: i64) -> Result<usize> {
    Ok(db.execute(
        "UPDATE jobs SET outcome = 'abandoned', finished = heartbeat
         WHERE outcome = 'running' AND node <> $1 AND heartbeat < $2",
        params![node, now - LEASE_SECS],
    )? as usize)
}

/// At a node's start: its jobs still 'running' were cut short by its stop
/// (and so were rows from before nodes had names), and its leases are void.
pub fn mark_interrupted(db: &Db, node: &str, now: i64) -> Result<usize> {
    db.execute("DELETE FROM job_leases WHERE node = $1", params![node])?;
    Ok(db.execute(
        "UPDATE jobs SET outcome = 'interrupted', finished = $2
         WHERE outcome = 'running' AND (node = $1 OR node IS NULL)",
        params![node, now],
    )? as usize)
}

/// The leases this node holds, renewed by its heartbeat.
pub type Held = Arc<Mutex<HashSet<String>>>;

/// A lease this node holds: while it lives, the heartbeat renews it. Give it
/// back with [`Lease::release`]; dropped without that (a panic), the next
/// heartbeat gives the row back.
#[derive(Debug)]
pub struct Lease {
    key: String,
    node: String,
    held: Held,
}

impl Lease {
    /// Takes `key` in the catalog for `node` and records it in `held`
    /// (under `held`'s lock, so a heartbeat never sees the row without the
    /// record); None if another holder's lease is still running.
    pub fn take(db: &Db, key: &str, node: &str, held: &Held, now: i64) -> Result<Option<Lease>> {
        let mut set = held.lock().unwrap_or_else(|p| p.into_inner());
        if set.contains(key) || !acquire(db, key, node, now)? {
            return Ok(None);
        }
        set.insert(key.to_string());
        Ok(Some(Lease {
            key: key.to_string(),
            node: node.to_string(),
            held: held.clone(),
        }))
    }

    /// Gives the lease back at once, so the next job needs no wait.
    pub fn release(self, db: &Db) -> Result<()> {
        // Unlocked before `self` drops (its Drop takes the lock again).
        let _set = self.held.lock().unwrap_or_else(|p| p.into_inner());
        release(db, &self.key, &self.node)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut set = self.held.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.key);
    }
}

thread_local! {
    /// The firing (Unix seconds) a scheduled job on this thread was started
    /// for, recorded in the job rows it starts.
    static FIRING: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Runs `f` with `firing` recorded in every job row it starts on this thread.
pub fn with_firing<R>(firing: Option<i64>, f: impl FnOnce() -> R) -> R {
    let before = FIRING.with(|c| c.replace(firing));
    let r = f();
    FIRING.with(|c| c.set(before));
    r
}

/// The firing of the scheduled job running on this thread, if any.
pub(crate) fn current_firing() -> Option<i64> {
    FIRING.with(Cell::get)
}
