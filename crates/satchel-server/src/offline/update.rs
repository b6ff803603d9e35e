//! One update of one mailbox's offline repository: plan (catalog metadata
//! only), write the new messages and tombstones (one segment, or several of
//! bounded size: [`satchel_offline::Appender`]), switch the manifest,
//! compact if due, then record the state.
//!
//! The recorded live set (`offline_members`) and `last_seq` make the common
//! case incremental: only the archive's membership log after `last_seq`
//! (what arrived, what left), the messages that left the since-window and (under a size cap) the
//! oldest live messages are read. A full reselection (metadata of the whole
//! mailbox, still writing only what the repository lacks) happens on the
//! first update, after a flush, when the effective settings changed, and when
//! the manifest is not the one the catalog recorded (an update killed between
//! its manifest switch and its catalog commit). It is streamed
//! ([`build_full`]): the catalog is read [`PAGE`] messages at a time and each
//! message goes to a segment file as it is read, so its memory does not grow
//! with the mailbox.

use super::Effective;
use super::state::{OfflineCandidate, OfflineCommit, OfflineState, OfflineTables};
use crate::error::ServiceError;
use satchel_archive::catalog::Catalog;
use satchel_archive::{Archive, MessageMeta};
use satchel_offline::{Appender, Manifest, MessageEntry, MessageId, Repository};
use std::collections::{HashSet, VecDeque};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Segments smaller than this are "small"; see [`COMPACT_AT`].
pub const SMALL_SEGMENT: u64 = 4 * 1024 * 1024;
/// Once this many small segments exist, they are merged into one.
pub const COMPACT_AT: usize = 8;

/// Catalog rows a full build reads per statement (and records per
/// transaction).
pub const PAGE: usize = 1_000;

/// What an update will change, decided from catalog metadata alone.
#[derive(Debug, Default)]
pub struct Plan {
    pub full: bool,
    /// Messages to write, oldest first (a streamed full build writes them
    /// as it reads them and keeps only their number, `added`).
    pub add: Vec<OfflineCandidate>,
    /// Ids to tombstone (live in the repository now).
    pub remove: Vec<String>,
    /// A streamed full build: messages written and tombstones, and the live
    /// set already recorded in `offline_members` page by page.
    pub streamed: Option<Streamed>,
    /// Those of `remove` that left the mailbox (deleted, expired): the
    /// archive keeps them no more, so their bytes leave the repository's
    /// files too ([`purge`]), not only its live set.
    pub erased: Vec<String>,
    /// The membership log of the mailbox up to this seq is taken into account.
    pub last_seq: i64,
    /// Raw bytes of the live set after the update.
    pub message_bytes: u64,
    /// Live messages after the update.
    pub messages: u64,
}

/// What a streamed full build wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streamed {
    pub added: u64,
    pub removed: u64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Messages written by the update.
    pub fn added(&self) -> u64 {
        self.streamed.map_or(self.add.len() as u64, |s| s.added)
    }

    /// Tombstones written by the update.
    pub fn removed(&self) -> u64 {
        self.streamed
            .map_or(self.remove.len() as u64, |s| s.removed)
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
/// over max_bytes (a message larger than max_bytes by itself is never
/// offline). The database finds where the cap cuts ([`Catalog::newest_within`]),
/// so a message is judged alone, as the pages go by.
struct Selection {
    /// The membership log up to this seq is taken into account.
    upto: i64,
    min_time: i64,
    max_size: u64,
    /// Under a cap: the oldest (time, seq) taken; `None` under a cap: nothing.
    oldest: Option<(i64, i64)>,
    capped: bool,
}

impl Selection {
    fn of(cat: &Catalog, mailbox: &str, eff: &Effective, now: i64) -> Result<Selection> {
        let upto = cat.last_seq(mailbox)?;
        let min_time = eff.cutoff(now).unwrap_or(i64::MIN);
        let max_size = eff.max_bytes.unwrap_or(u64::MAX);
        let oldest = match eff.max_bytes {
            Some(cap) => cat.newest_within(mailbox, upto, min_time, max_size, cap)?,
            None => None,
        };
        Ok(Selection {
            upto,
            min_time,
            max_size,
            oldest,
            capped: eff.max_bytes.is_some(),
        })
    }

    fn takes(&self, c: &OfflineCandidate) -> bool {
        c.time >= self.min_time
            && c.size <= self.max_size
            && (!self.capped || self.oldest.is_some_and(|o| key(c) >= o))
    }
}

/// A full reselection, streamed: pages of [`PAGE`] messages of the mailbox
/// in log order; the selected ones the repository lacks are read from the
/// store and written at once, each page's selection is recorded as the live
/// set, and what the repository holds but the selection does not is
/// tombstoned at the end (disjoint from what was added). Memory: a page, one
/// segment's index, and the ids live in the repository before (none on a
/// first build). A build that fails half-way leaves the recorded state
/// marked not applied, so the next update reselects again.
pub fn build_full(
    archive: &Archive,
    repo: &mut Repository,
    mailbox: &str,
    eff: &Effective,
    now: i64,
) -> Result<(Plan, Manifest)> {
    let mut left: HashSet<MessageId> = repo.live_ids().map_err(offline_error)?;
    let selection = {
        let cat = archive.catalog()?;
        let selection = Selection::of(&cat, mailbox, eff, now)?;
        cat.offline_members_reset(mailbox)?;
        selection
    };
    let mut plan = Plan {
        full: true,
        last_seq: selection.upto,
        ..Plan::default()
    };
    let mut streamed = Streamed::default();
    let mut out = repo.appender();
    let mut after = 0;
    loop {
        let (read, chosen) = {
            let cat = archive.catalog()?;
            let page = cat.member_entries_page(mailbox, after, selection.upto, PAGE)?;
            let read = page.last().map(|c| (c.seq, page.len()));
            let chosen: Vec<OfflineCandidate> =
                page.into_iter().filter(|c| selection.takes(c)).collect();
            cat.offline_members_put(mailbox, &chosen)?;
            (read, chosen)
        };
        let Some((last, n)) = read else { break };
        after = last;
        let mut new = Vec::with_capacity(chosen.len());
        for c in &chosen {
            plan.messages += 1;
            plan.message_bytes += c.size;
            let id = parse_id(&c.id)?;
            if !left.remove(&id) {
                new.push(id);
            }
        }
        write_messages(archive, &mut out, &new)?;
        streamed.added += new.len() as u64;
        if n < PAGE {
            break;
        }
    }
    let mut gone: Vec<MessageId> = left.into_iter().collect();
    gone.sort();
    // Those that left the mailbox (deleted, expired): their bytes leave the
    // repository's files too ([`purge`]), not only its live set.
    for id in &gone {
        if !archive.catalog()?.in_mailbox(mailbox, id)? {
            plan.erased.push(id.to_hex());
        }
    }
    for id in gone {
        out.tombstone(id).map_err(offline_error)?;
        streamed.removed += 1;
    }
    // Counting the live messages of the result is an independent check of
    // the catalog's live set (see `record`).
    let manifest = out.commit(None).map_err(offline_error)?;
    plan.streamed = Some(streamed);
    Ok((plan, manifest))
}

/// Messages read per round: their listing fields in one catalog statement,
/// their bytes in one [`Archive::read_each_once`] (an S3 repository's frames
/// fetched concurrently). One message at a time cost three catalog round
/// trips and one object-store request each: about 58 messages/s on
/// PostgreSQL + S3, hours for a million-message mailbox.
const READ_BATCH: usize = 256;

/// Reads messages `ids` (listing fields from the catalog, bytes from the
/// store) into the segment being written, in order.
fn write_messages(archive: &Archive, out: &mut Appender<'_>, ids: &[MessageId]) -> Result<()> {
    for batch in ids.chunks(READ_BATCH) {
        let metas = archive.catalog()?.message_metas(batch.iter())?;
        let read = archive.read_each_once(batch)?;
        for (id, raw) in batch.iter().zip(read) {
            let meta = metas
                .get(id)
                .ok_or_else(|| ServiceError::Internal(format!("message {id} vanished")))?;
            out.add(entry(meta, raw?)?).map_err(offline_error)?;
        }
    }
    Ok(())
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
            if !cat.in_mailbox(mailbox, &parse_id(id)?)? {
                plan.erased.push(id.clone());
            }
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

/// Writes the plan (tombstones, then messages, in segments of bounded
/// size) and switches the manifest. An empty plan changes nothing (no new
/// generation).
pub fn execute(archive: &Archive, repo: &mut Repository, plan: &Plan) -> Result<Manifest> {
    if plan.is_empty() {
        return Ok(repo.manifest().clone());
    }
    let mut out = repo.appender();
    for id in &plan.remove {
        out.tombstone(parse_id(id)?).map_err(offline_error)?;
    }
    let add = plan
        .add
        .iter()
        .map(|c| parse_id(&c.id))
        .collect::<Result<Vec<_>>>()?;
    write_messages(archive, &mut out, &add)?;
    // A full reselection lets the repository count its live messages (an
    // independent check of the catalog's live set); an incremental update
    // passes the count so that it never opens the older segments.
    let live = (!plan.full).then_some(plan.messages);
    out.commit(live).map_err(offline_error)
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

/// Rewrites the segments that hold messages the plan erased (see
/// [`Plan::erased`]); true if the manifest changed.
pub fn purge(repo: &mut Repository, plan: &Plan) -> Result<bool> {
    if plan.erased.is_empty() {
        return Ok(false);
    }
    let ids: HashSet<MessageId> = plan
        .erased
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<_>>()?;
    let before = repo.manifest().generation;
    let after = repo.purge(&ids).map_err(offline_error)?;
    Ok(after.generation != before)
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
    // A streamed build recorded its live set as it went.
    let recorded = plan.streamed.is_some();
    let commit = OfflineCommit {
        replace_all: plan.full && !recorded,
        added: if recorded {
            Vec::new()
        } else {
            plan.add.clone()
        },
        removed: if recorded {
            Vec::new()
        } else {
            plan.remove.clone()
        },
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
