//! One update of one mailbox's offline repository: plan (catalog metadata
//! only), write one segment (only the new messages and tombstones), switch
//! the manifest, compact if due, then record the state.
//!
//! The recorded live set (`offline_members`) and `last_seq` make the common
//! case incremental: only the archive's membership log after `last_seq`
//! (what arrived, what left), the messages that left the since-window and (under a size cap) the
//! oldest live messages are read. A full reselection (metadata of the whole
//! mailbox, still writing only what the repository lacks) happens on the
//! first update, after a flush, when the effective settings changed, and when
//! the manifest is not the one the catalog recorded (an update killed between
//! its manifest switch and its catalog commit).

use super::Effective;
use super::state::{OfflineCandidate, OfflineCommit, OfflineState, OfflineTables};
use crate::error::ServiceError;
use satchel_archive::catalog::Catalog;
use satchel_archive::{Archive, MessageMeta};
use satchel_offline::{Manifest, MessageEntry, MessageId, Repository};
use std::cmp::Reverse;
use std::collections::{HashSet, VecDeque};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Segments smaller than this are "small"; see [`COMPACT_AT`].
pub const SMALL_SEGMENT: u64 = 4 * 1024 * 1024;
/// Once this many small segments exist, they are merged into one.
pub const COMPACT_AT: usize = 8;

/// What an update will change, decided from catalog metadata alone.
#[derive(Debug, Default)]
pub struct Plan {
    pub full: bool,
    /// Messages to write, oldest first.
    pub add: Vec<OfflineCandidate>,
    /// Full reselection only: the whole live set after the update.
    pub desired: Vec<OfflineCandidate>,
    /// Ids to tombstone (live in the repository now).
    pub remove: Vec<String>,
    /// The membership log of the mailbox up to this seq is taken into account.
    pub last_seq: i64,
    /// Raw bytes of the live set after the update.
    pub message_bytes: u64,
    /// Live messages after the update.
    pub messages: u64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

fn key(c: &OfflineCandidate) -> (i64, i64) {
    (c.time, c.seq)
}

fn admissible(c: &OfflineCandidate, eff: &Effective, now: i64) -> bool {
    eff.cutoff(now).is_none_or(|cut| c.time >= cut) && eff.max_bytes.is_none_or(|m| c.size <= m)
}

/// The offline selection of a whole mailbox: the messages inside the
/// since-window, newest first, up to the first that would take the raw total
/// over max_bytes (a message larger than max_bytes by itself is never offline).
pub fn select(mut all: Vec<OfflineCandidate>, eff: &Effective, now: i64) -> Vec<OfflineCandidate> {
    all.retain(|c| admissible(c, eff, now));
    all.sort_by_key(|c| Reverse(key(c)));
    if let Some(cap) = eff.max_bytes {
        let mut total = 0u64;
        let n = all
            .iter()
            .take_while(|c| {
                total += c.size;
                total <= cap
            })
            .count();
        all.truncate(n);
    }
    all.reverse();
    all
}

/// Full reselection against the repository's current live ids.
pub fn plan_full(
    cat: &Catalog,
    mailbox: &str,
    eff: &Effective,
    now: i64,
    live: &HashSet<String>,
) -> Result<Plan> {
    let last_seq = cat.last_seq(mailbox)?;
    let all = cat.member_entries_since(mailbox, 0)?;
    let desired = select(all, eff, now);
    let wanted: HashSet<&str> = desired.iter().map(|c| c.id.as_str()).collect();
    let mut remove: Vec<String> = live
        .iter()
        .filter(|id| !wanted.contains(id.as_str()))
        .cloned()
        .collect();
    remove.sort();
    Ok(Plan {
        full: true,
        message_bytes: desired.iter().map(|c| c.size).sum(),
        messages: desired.len() as u64,
        add: desired
            .iter()
            .filter(|c| !live.contains(&c.id))
            .cloned()
            .collect(),
        desired,
        remove,
        last_seq,
    })
}

/// The common case: what arrived after `last_seq`, what left the mailbox,
/// what left the since-window, and what no longer fits under the cap.
pub fn plan_incremental(
    cat: &Catalog,
    mailbox: &str,
    eff: &Effective,
    now: i64,
    state: &OfflineState,
) -> Result<Plan> {
    let upto = cat.last_seq(mailbox)?.max(state.last_seq);
    let left = cat.removals_between(mailbox, state.last_seq, upto)?;
    let new = cat.member_entries_since(mailbox, state.last_seq)?;
    let mut plan = Plan {
        last_seq: upto,
        message_bytes: state.message_bytes,
        messages: state.messages,
        ..Plan::default()
    };
    let mut gone: HashSet<String> = HashSet::new();
    for (_, id) in &left {
        if let Some(c) = cat.offline_member(mailbox, id)? {
            plan.drop_live(&mut gone, c);
        }
    }
    if let Some(cut) = eff.cutoff(now) {
        for c in cat.offline_older_than(mailbox, cut)? {
            plan.drop_live(&mut gone, c);
        }
    }
    for c in new {
        let live = !gone.contains(&c.id) && cat.offline_member(mailbox, &c.id)?.is_some();
        if !live && admissible(&c, eff, now) {
            plan.message_bytes += c.size;
            plan.messages += 1;
            plan.add.push(c);
        }
    }
    plan.add.sort_by_key(key);
    if let Some(cap) = eff.max_bytes {
        plan.evict(cat, mailbox, cap, &mut gone)?;
    }
    Ok(plan)
}

impl Plan {
    fn drop_live(&mut self, gone: &mut HashSet<String>, c: OfflineCandidate) {
        if gone.insert(c.id.clone()) {
            self.message_bytes = self.message_bytes.saturating_sub(c.size);
            self.messages = self.messages.saturating_sub(1);
            self.remove.push(c.id);
        }
    }

    /// Drops the oldest messages (live ones or new ones) until the raw total
    /// fits under `cap`: the result is the same newest-first prefix a full
    /// reselection would choose. Reads the live set oldest first, in pages,
    /// only as far as it evicts.
    fn evict(
        &mut self,
        cat: &Catalog,
        mailbox: &str,
        cap: u64,
        gone: &mut HashSet<String>,
    ) -> Result<()> {
        const PAGE: usize = 256;
        let mut page: VecDeque<OfflineCandidate> = VecDeque::new();
        let (mut fetched, mut exhausted, mut next_new) = (0usize, false, 0usize);
        while self.message_bytes > cap {
            while page.is_empty() && !exhausted {
                let rows = cat.offline_oldest(mailbox, fetched, PAGE)?;
                fetched += rows.len();
                exhausted = rows.len() < PAGE;
                page.extend(rows.into_iter().filter(|c| !gone.contains(&c.id)));
            }
            let old = page.front().map(key);
            let new = self.add.get(next_new).map(key);
            match (old, new) {
                (Some(o), Some(n)) if n < o => next_new += 1,
                (None, Some(_)) => next_new += 1,
                (Some(_), _) => {
                    let c = page.pop_front().expect("front exists");
                    self.drop_live(gone, c);
                    continue;
                }
                (None, None) => break,
            }
            let c = &self.add[next_new - 1];
            self.message_bytes -= c.size;
            self.messages -= 1;
        }
        self.add.drain(..next_new);
        Ok(())
    }
}

/// Writes the plan as one segment and switches the manifest. An empty plan
/// changes nothing (no new generation).
pub fn execute(archive: &Archive, repo: &mut Repository, plan: &Plan) -> Result<Manifest> {
    if plan.is_empty() {
        return Ok(repo.manifest().clone());
    }
    let mut writer = repo.new_segment();
    for id in &plan.remove {
        writer.tombstone(parse_id(id)?);
    }
    for c in &plan.add {
        let id = parse_id(&c.id)?;
        let meta = archive
            .catalog()?
            .message_meta(&id)?
            .ok_or_else(|| ServiceError::Internal(format!("message {id} vanished")))?;
        let raw = archive.read(&id)?;
        writer.add(entry(&meta, raw)?).map_err(offline_error)?;
    }
    // A full reselection lets the repository count its live messages (an
    // independent check of the catalog's live set); an incremental update
    // passes the count so that it never opens the older segments.
    if plan.full {
        repo.append_segment(writer)
    } else {
        repo.append_segment_counted(writer, plan.messages)
    }
    .map_err(offline_error)
}

fn entry(meta: &MessageMeta, raw: Vec<u8>) -> Result<MessageEntry> {
    Ok(MessageEntry {
        id: meta.id,
        date: meta.date.unwrap_or(0),
        from: meta.from.clone(),
        subject: meta.subject.clone(),
        raw,
    })
}

fn parse_id(id: &str) -> Result<MessageId> {
    MessageId::from_hex(id).map_err(|e| offline_error(e.into()))
}

/// Whether a compaction is due, and which segments it merges (those under
/// the returned size): when small segments pile up ([`COMPACT_AT`] segments
/// under [`SMALL_SEGMENT`]), everything when dead messages outnumber live
/// ones or the files exceed the size cap.
pub fn compaction_threshold(m: &Manifest, eff: &Effective) -> Option<u64> {
    let small = m.segments.iter().filter(|s| s.size < SMALL_SEGMENT).count();
    let stored: u64 = m.segments.iter().map(|s| s.messages).sum();
    let over_cap = eff.max_bytes.is_some_and(|cap| m.totals.bytes > cap);
    let dead_heavy = stored > 2 * m.totals.messages.max(1) && stored >= 64;
    if (over_cap || dead_heavy) && m.segments.len() >= 2 {
        Some(u64::MAX)
    } else if small >= COMPACT_AT {
        Some(SMALL_SEGMENT)
    } else {
        None
    }
}

/// Merges the segments under `threshold` (see [`compaction_threshold`]);
/// true if the manifest changed.
pub fn compact(repo: &mut Repository, threshold: u64) -> Result<bool> {
    let before = repo.manifest().generation;
    let after = repo.compact(threshold).map_err(offline_error)?;
    Ok(after.generation != before)
}

/// Records the completed update.
pub fn record(
    cat: &Catalog,
    mailbox: &str,
    plan: &Plan,
    manifest: &Manifest,
    applied: Option<&str>,
    duration_ms: i64,
) -> Result<()> {
    let mut applied = applied.map(str::to_string);
    if manifest.totals.messages != plan.messages {
        // The recorded live set disagrees with the repository: reselect next time.
        tracing::warn!(
            mailbox,
            manifest = manifest.totals.messages,
            planned = plan.messages,
            "offline live set mismatch; the next update re-selects the mailbox"
        );
        applied = None;
    }
    let commit = OfflineCommit {
        replace_all: plan.full,
        added: if plan.full {
            plan.desired.clone()
        } else {
            plan.add.clone()
        },
        removed: plan.remove.clone(),
        state: OfflineState {
            epoch: Some(manifest.epoch.clone()),
            generation: manifest.generation,
            last_seq: plan.last_seq,
            applied,
            last_update: Some(chrono::Utc::now().timestamp()),
            last_duration_ms: Some(duration_ms),
            messages: manifest.totals.messages,
            bytes: manifest.totals.bytes,
            message_bytes: plan.message_bytes,
        },
    };
    Ok(cat.commit_offline_update(mailbox, &commit)?)
}

/// Maps offline-repository errors: a concurrent writer is a conflict.
pub fn offline_error(e: satchel_offline::Error) -> ServiceError {
    match e {
        satchel_offline::Error::Busy(path) => ServiceError::Conflict(format!(
            "an update of the offline repository {} is already running; try again when it ends",
            path.display()
        )),
        other => {
            tracing::error!(error = %other, "offline repository failure");
            ServiceError::Internal(format!("offline repository: {other}"))
        }
    }
}
