//! Taking a message out of a mailbox, and giving back the space of messages
//! no mailbox holds (docs/compliance.md, Deletion and reclaim).
//!
//! A garbage pass: (1) messages no mailbox holds lose their catalog row
//! (under the membership log's lock, so an import reusing one either holds
//! it first or stores it anew); (2) a pack no row names any more is dropped
//! (its row, then its file); (3) a pack whose live fraction is below the
//! threshold is rewritten: the survivors' frames go into a new pack, made
//! durable first; one catalog transaction moves them and drops the old
//! pack's row; then the old file goes; (4) pack files no catalog row names
//! and older than a grace period (a crash between steps, an import cut
//! short) are deleted. A crash between any two steps leaves every message
//! readable: the catalog names only durable packs, and a file goes only
//! after the catalog stopped naming it.

use super::Archive;
use crate::catalog::gc::PackUsage;
use crate::error::{ArchiveError, Result};
use crate::message::MessageId;
use crate::repository::PackStore;
use crate::store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The PostgreSQL session lock of a garbage pass ("satchel" + 4): one pass
/// at a time across every node on one catalog.
const GC_LOCK: i64 = 0x7361_7463_6865_6c04;

/// The magic at the start of every pack: a pack holding nothing else is
/// empty.
const PACK_HEADER: u64 = store::PACK_MAGIC.len() as u64;

/// Test-only: `SATCHEL_GC_FAILPOINT=STEP` aborts the process when a pass
/// reaches STEP (`pack-written`, `catalog-moved`, `row-dropped`), to prove
/// that a crash there loses nothing (tests/gc.rs).
const FAILPOINT_VAR: &str = "SATCHEL_GC_FAILPOINT";

/// What a garbage pass does.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Rewrite a pack whose held bytes are below this fraction of its size.
    pub threshold: f64,
    /// Only these messages (an erasure): those no mailbox holds lose their
    /// row, and their packs are rewritten whatever their live fraction, so
    /// the bytes leave the disk now. Orphans are not looked for.
    pub erase: Option<Vec<MessageId>>,
    /// Pack files no catalog row names are deleted once older than this (a
    /// younger one may be an import between its write and its commit).
    pub orphan_grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            threshold: 0.5,
            erase: None,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// What a garbage pass did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GcReport {
    pub dry_run: bool,
    /// Messages no mailbox held that lost their catalog row.
    pub messages_dropped: u64,
    /// Packs deleted because nothing in them was held.
    pub packs_deleted: u64,
    /// Packs rewritten with only their held messages.
    pub packs_rewritten: u64,
    /// Pack files no catalog row named, deleted.
    pub orphans_deleted: u64,
    /// Bytes the repositories hold no more (pack sizes before minus after).
    pub bytes_reclaimed: u64,
    /// Packs left as they are because they could not be read or moved
    /// (each is in the service's log); a later pass tries again.
    pub packs_skipped: u64,
}

impl Archive {
    /// Takes message `id` out of `mailbox` (its bytes stay until a garbage
    /// pass finds no mailbox holding it) and brings this node's search
    /// index level before returning: the message is no hit in that mailbox
    /// from the next search on. Returns the mailboxes that still hold it.
    pub fn remove_member(&self, mailbox: &str, id: &MessageId) -> Result<Vec<String>> {
        if !self.catalog()?.remove_membership(mailbox, id)? {
            return Err(ArchiveError::NotInMailbox {
                mailbox: mailbox.into(),
                id: *id,
            });
        }
        self.refresh_removed(vec![*id]);
        self.catalog()?.mailboxes_of(id)
    }

    /// Takes messages out of `mailbox` in one transaction, and brings this
    /// node's search index level for them with one commit (a page of an
    /// expiry); how many were there.
    pub fn remove_members(&self, mailbox: &str, ids: &[MessageId]) -> Result<u64> {
        let removed = self.catalog()?.remove_memberships(mailbox, ids)?;
        self.refresh_removed(ids.to_vec());
        Ok(removed)
    }

    /// Searches on every node name hits from the catalog (see `search`), so
    /// an index that lags hides nothing removed; here the documents go at
    /// once as well. A failure is logged: the log follower retries.
    fn refresh_removed(&self, ids: Vec<MessageId>) {
        let refreshed = self.committing().and_then(|_one_at_a_time| {
            self.refresh_documents(ids)?;
            self.index.commit().map(|_| ())
        });
        if let Err(e) = refreshed {
            tracing::error!(error = %e, "updating the index after a removal; the log follower retries");
        }
    }

    /// One garbage pass over every repository (or, with
    /// [`GcOptions::erase`], over the packs of those messages).
    pub fn collect_garbage(&self, opts: &GcOptions) -> Result<GcReport> {
        let _one_pass = self.collecting.lock().map_err(|_| ArchiveError::Invalid {
            what: "garbage pass",
            why: "a previous pass panicked".into(),
        })?;
        let locked = self.session_locks()?.db().try_session_lock(GC_LOCK)?;
        if !locked {
            return Err(ArchiveError::Exists(
                "a garbage pass running on another node".into(),
            ));
        }
        let pass = self.pass(opts);
        if let Err(e) = self
            .session_locks()
            .and_then(|c| c.db().session_unlock(GC_LOCK))
        {
            tracing::warn!(error = %e, "releasing the garbage pass's lock");
        }
        pass
    }

    fn pass(&self, opts: &GcOptions) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        let only = opts.erase.as_deref();
        let packs: Option<Vec<String>> = if opts.dry_run {
            report.messages_dropped = self.catalog()?.unheld_messages(only)?.messages;
            match only {
                Some(ids) => Some(self.packs_of(ids)?),
                None => None,
            }
        } else {
            let dropped = self.catalog()?.drop_unheld_messages(only)?;
            report.messages_dropped = dropped.messages;
            only.map(|_| dropped.packs.into_iter().collect())
        };
        let forced = only.is_some();
        let usage = self.catalog()?.pack_usage(packs.as_deref())?;
        for pack in usage {
            if forced && pack.messages > 0 && pack.live_bytes + PACK_HEADER >= pack.size {
                continue;
            }
            self.reclaim_pack(&pack, opts, forced, &mut report)?;
        }
        if !forced {
            self.delete_orphans(opts, &mut report)?;
        }
        tracing::info!(?report, "garbage pass");
        Ok(report)
    }

    /// The packs that hold these messages now.
    fn packs_of(&self, ids: &[MessageId]) -> Result<Vec<String>> {
        let places = self.catalog()?.locations(ids.iter())?;
        let packs: BTreeSet<String> = places.into_values().map(|l| l.pack).collect();
        Ok(packs.into_iter().collect())
    }

    /// Deletes a pack nothing is held in, or rewrites one whose live
    /// fraction is below the threshold (any with dead bytes if `forced`).
    fn reclaim_pack(
        &self,
        pack: &PackUsage,
        opts: &GcOptions,
        forced: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        let live = (pack.live_bytes + PACK_HEADER) as f64 / pack.size.max(1) as f64;
        if pack.messages > 0 && !forced && live >= opts.threshold {
            return Ok(());
        }
        let store = self.store_named(&pack.repo)?;
        if pack.messages == 0 {
            if !opts.dry_run && !self.delete_pack(&*store, &pack.name)? {
                report.packs_skipped += 1;
                return Ok(());
            }
            report.packs_deleted += 1;
            report.bytes_reclaimed += pack.size;
            return Ok(());
        }
        if opts.dry_run {
            report.packs_rewritten += 1;
            report.bytes_reclaimed += pack.size - (pack.live_bytes + PACK_HEADER).min(pack.size);
            return Ok(());
        }
        match self.rewrite_pack(&*store, pack)? {
            Some(new_size) => {
                report.packs_rewritten += 1;
                report.bytes_reclaimed += pack.size.saturating_sub(new_size);
            }
            None => report.packs_skipped += 1,
        }
        Ok(())
    }

    /// Drops the row of a pack no message is in, then its file; false if a
    /// message is in it after all (then nothing changed). Imports on this
    /// node wait meanwhile: one writing a pack of the same bytes (the same
    /// messages imported again) must not lose its file.
    fn delete_pack(&self, store: &dyn PackStore, name: &str) -> Result<bool> {
        let _writing = self.writing()?;
        if !self.catalog()?.drop_pack(name)? {
            return Ok(false);
        }
        failpoint("row-dropped");
        store.delete_pack(name)?;
        Ok(true)
    }

    /// Copies a pack's held messages into a new pack, moves them there in
    /// one transaction, and deletes the old pack; the new pack's size, or
    /// `None` if it was left as it was (a message in it cannot be read: its
    /// damage must stay visible, not be copied or dropped).
    fn rewrite_pack(&self, store: &dyn PackStore, pack: &PackUsage) -> Result<Option<u64>> {
        let survivors = self.catalog()?.pack_survivors(&pack.name)?;
        let mut frames = Vec::with_capacity(survivors.len());
        for s in &survivors {
            let frame = store.read_span(&pack.name, s.location.span)?;
            let intact = store::decompress(&frame, s.location.size)
                .is_ok_and(|raw| MessageId::of(&raw) == s.id);
            if !intact {
                tracing::error!(pack = %pack.name, id = %s.id, "pack not rewritten: a message in it is damaged");
                return Ok(None);
            }
            frames.push(frame);
        }
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let (new, bytes) = store::build_pack(&refs);
        store.put_pack(&new.name, bytes)?;
        failpoint("pack-written");
        let ids: Vec<MessageId> = survivors.iter().map(|s| s.id).collect();
        let moved = self
            .catalog()?
            .move_pack(&pack.name, &pack.repo, &new, &ids)?;
        if !moved {
            tracing::warn!(pack = %pack.name, "pack changed during its rewrite; left for the next pass");
            if !self.catalog()?.has_pack(&new.name)? {
                store.delete_pack(&new.name)?;
            }
            return Ok(None);
        }
        failpoint("catalog-moved");
        store.delete_pack(&pack.name)?;
        Ok(Some(new.size))
    }

    /// Deletes, in every repository, the pack files no catalog row names
    /// that are older than the grace period.
    fn delete_orphans(&self, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
        let repos = self.catalog()?.repositories()?;
        let now = SystemTime::now();
        for repo in repos {
            let store = self.pack_store(&repo)?;
            let listed = store.list_packs()?;
            let named = self.catalog()?.pack_names(&repo.name)?;
            for p in listed {
                let age = now.duration_since(p.modified).unwrap_or_default();
                if named.contains(&p.name) || age < opts.orphan_grace {
                    continue;
                }
                if !opts.dry_run {
                    store.delete_pack(&p.name)?;
                }
                report.orphans_deleted += 1;
                report.bytes_reclaimed += p.size;
            }
        }
        Ok(())
    }

    fn store_named(&self, repo: &str) -> Result<Arc<dyn PackStore>> {
        let info = self.catalog()?.repository(repo)?;
        self.pack_store(&info)
    }
}

/// Aborts the process when the test failpoint names `step`.
fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_VAR).is_ok_and(|v| v == step) {
        tracing::error!(
            step,
            "garbage pass failpoint reached: aborting (tests only)"
        );
        std::process::abort();
    }
}
