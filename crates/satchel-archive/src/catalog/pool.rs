//! The catalog's connections on one node: a few to PostgreSQL, so one slow
//! statement (a long request, a big import's transaction) no longer holds
//! every other request of the node behind it; SQLite keeps its one
//! connection, as before (one writer at a time, and a pool would only add
//! "database is locked" waits).
//!
//! Written by hand rather than with r2d2: a [`Catalog`] already reconnects
//! itself after a lost connection (and refuses to inside a transaction), so
//! a pool crate's health checks, reaper and background connector would
//! duplicate that; what is left is an idle list and a condition variable.
//! Connections are opened on demand, up to the configured number, so a node
//! that is never busy holds one.
//!
//! PostgreSQL's session-level advisory locks belong to the connection that
//! took them: [`CatalogPool::session_locks`] hands out one connection kept
//! for them alone, so a lock is taken, checked and released on the same
//! session whatever connection the requests in between used.

use super::{Catalog, CatalogOpener};
use crate::error::{ArchiveError, Result};
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};

/// How many connections a node keeps to a PostgreSQL catalog by default.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// A node's connections to its catalog.
pub struct CatalogPool {
    slots: Mutex<Slots>,
    /// Signalled whenever a connection is handed back.
    returned: Condvar,
    /// The most connections for requests (1 on SQLite).
    size: usize,
    /// Opens more (None on SQLite).
    opener: Option<CatalogOpener>,
    /// PostgreSQL: the connection session locks live on, opened on first
    /// use (None on SQLite, whose locks are always granted).
    locks: Option<Mutex<Option<Catalog>>>,
}

struct Slots {
    idle: Vec<Catalog>,
    /// Connections open for requests, idle or handed out.
    open: usize,
}

impl CatalogPool {
    /// A pool of up to `connections` connections (at least one) to the
    /// catalog `first` is connected to; on SQLite always just `first`.
    pub fn new(first: Catalog, connections: usize) -> CatalogPool {
        let opener = first.opener();
        CatalogPool {
            size: if opener.is_some() {
                connections.max(1)
            } else {
                1
            },
            locks: opener.is_some().then(|| Mutex::new(None)),
            opener,
            slots: Mutex::new(Slots {
                idle: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        }
    }

    /// The most connections this pool opens for requests.
    pub fn size(&self) -> usize {
        self.size
    }

    /// An idle connection, a new one while fewer than the pool's size are
    /// open, else the next one handed back.
    pub fn get(&self) -> Result<CatalogGuard<'_>> {
        let mut slots = self.slots()?;
        loop {
            if let Some(catalog) = slots.idle.pop() {
                return Ok(self.pooled(catalog));
            }
            if slots.open < self.size {
                slots.open += 1;
                drop(slots);
                match self.open_another() {
                    Ok(catalog) => return Ok(self.pooled(catalog)),
                    Err(e) => {
                        slots = self.slots()?;
                        slots.open -= 1;
                        // At least one connection is open (the first is
                        // never dropped): wait for it rather than fail
                        // because the server allows no more.
                        tracing::warn!(error = %e, open = slots.open, "cannot open another catalog connection; waiting for one in use");
                    }
                }
            } else {
                slots = self.returned.wait(slots).map_err(|_| poisoned())?;
            }
        }
    }

    /// The connection for session-level advisory locks
    /// ([`super::Db::try_session_lock`], [`super::Db::session_lock_held`],
    /// [`super::Db::session_unlock`]): always the same one on PostgreSQL
    /// (replaced only when lost, which loses its locks, as
    /// `session_lock_held` then tells). Hold it only for those statements.
    pub fn session_locks(&self) -> Result<CatalogGuard<'_>> {
        let Some(locks) = &self.locks else {
            return self.get();
        };
        let mut slot = locks.lock().map_err(|_| poisoned())?;
        if slot.is_none() {
            *slot = Some(self.open_another()?);
        }
        Ok(CatalogGuard(Held::Locks(slot)))
    }

    fn open_another(&self) -> Result<Catalog> {
        match &self.opener {
            Some(opener) => opener.open(),
            None => Err(ArchiveError::Invalid {
                what: "catalog",
                why: "a SQLite catalog keeps one connection".into(),
            }),
        }
    }

    fn slots(&self) -> Result<MutexGuard<'_, Slots>> {
        self.slots.lock().map_err(|_| poisoned())
    }

    fn pooled(&self, catalog: Catalog) -> CatalogGuard<'_> {
        CatalogGuard(Held::Pooled {
            pool: self,
            catalog: Some(catalog),
        })
    }

    fn give_back(&self, catalog: Catalog) {
        // A poisoned list (a panic while it was held, which no code here
        // does) just loses the connection.
        if let Ok(mut slots) = self.slots.lock() {
            slots.idle.push(catalog);
            self.returned.notify_one();
        }
    }
}

fn poisoned() -> ArchiveError {
    ArchiveError::Invalid {
        what: "catalog",
        why: "a previous user panicked".into(),
    }
}

/// One connection, handed back when dropped.
pub struct CatalogGuard<'a>(Held<'a>);

enum Held<'a> {
    Pooled {
        pool: &'a CatalogPool,
        /// Some until dropped.
        catalog: Option<Catalog>,
    },
    Locks(MutexGuard<'a, Option<Catalog>>),
}

impl Deref for CatalogGuard<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        match &self.0 {
            Held::Pooled { catalog, .. } => catalog.as_ref(),
            Held::Locks(slot) => slot.as_ref(),
        }
        .expect("a guard holds its connection until dropped")
    }
}

impl DerefMut for CatalogGuard<'_> {
    fn deref_mut(&mut self) -> &mut Catalog {
        match &mut self.0 {
            Held::Pooled { catalog, .. } => catalog.as_mut(),
            Held::Locks(slot) => slot.as_mut(),
        }
        .expect("a guard holds its connection until dropped")
    }
}

impl Drop for CatalogGuard<'_> {
    fn drop(&mut self) {
        if let Held::Pooled { pool, catalog } = &mut self.0
            && let Some(catalog) = catalog.take()
        {
            pool.give_back(catalog);
        }
    }
}
