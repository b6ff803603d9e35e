//! [`Archive`]: the store, catalog and index of one data folder, kept consistent.

use crate::catalog::pool::{CatalogGuard, CatalogPool};
use crate::catalog::{self, Catalog, Location, NewMessage, UserInfo};
use crate::error::{ArchiveError, IoContext, Result};
use crate::index::{DocInput, LogMark, SearchHit, SearchIndex, SearchRequest};
use crate::message::{MessageId, MessageSummary, not_mail_reason};
use crate::repository::{self, FrameCache, PackStore};
use crate::store::{self, Span};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod gc;
pub use gc::{GcOptions, GcReport};

/// One message offered to the archive, with where it came from for the report.
#[derive(Clone, Debug)]
pub struct BatchItem {
    pub origin: String,
    pub folder: String,
    pub raw: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Newly in this mailbox (its bytes may have been stored already for another).
    Imported,
    /// Already archived in this mailbox: nothing changed.
    Duplicate,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemOutcome {
    pub origin: String,
    pub id: Option<MessageId>,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub struct Archive {
    root: PathBuf,
    /// The catalog's connections: one on SQLite, a few on PostgreSQL.
    catalog: CatalogPool,
    /// One open handle per repository used so far (an S3 repository's
    /// client and runtime are made once). Repositories never change place.
    repositories: Mutex<HashMap<String, Arc<dyn PackStore>>>,
    /// The node's cache of verified frames read from S3 repositories.
    frames: Arc<FrameCache>,
    index: SearchIndex,
    /// Serializes batches so "is it known yet" and "store it" cannot interleave.
    writing: Mutex<()>,
    /// One follower of the membership log at a time (the background task,
    /// a search's catch-up), each holding it for one page.
    committing: Mutex<()>,
    /// One garbage pass at a time on this node (a PostgreSQL catalog's
    /// session lock keeps other nodes out).
    collecting: Mutex<()>,
}

/// A message being added, after the cheap checks and before the pack.
struct Prepared {
    slot: usize,
    id: MessageId,
    summary: MessageSummary,
    frame: Option<Vec<u8>>,
    size: u64,
}

pub const DEFAULT_REPOSITORY: &str = "default";

/// Log entries the index follower reads per statement (and applies under
/// one hold of the follower's lock, which a search may wait for).
const LOG_PAGE: usize = 500;

/// Entries a long catch-up (a new node, a rebuilt index) applies between
/// commits, so its progress is durable and searchable as it goes.
const COMMIT_EVERY: usize = 10_000;

/// A search first applies the log itself only when no more than this many
/// entries wait; a longer backlog is the background follower's, and the
/// search answers from what is committed.
const SEARCH_BACKLOG: usize = 100;

impl Archive {
    /// Opens (or creates) the archive in `root`: `catalog.sqlite`, `index/`, and
    /// the local-disk repository `default` in `repositories/default`.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, None)
    }

    /// Like [`Archive::open`], with the catalog in PostgreSQL when
    /// `catalog_url` names one (`postgres://USER@HOST:PORT/DB`); the index and
    /// the disk repositories stay in `root` either way.
    pub fn open_with(root: &Path, catalog_url: Option<&str>) -> Result<Self> {
        Self::open_pooled(root, catalog_url, catalog::pool::DEFAULT_CONNECTIONS)
    }

    /// Like [`Archive::open_with`], keeping up to `connections` connections
    /// to a PostgreSQL catalog (SQLite keeps one whatever the number).
    pub fn open_pooled(root: &Path, catalog_url: Option<&str>, connections: usize) -> Result<Self> {
        Self::open_sized(
            root,
            catalog_url,
            connections,
            repository::cache::DEFAULT_BYTES,
        )
    }

    /// Like [`Archive::open_pooled`], keeping at most `s3_cache_bytes` of
    /// message frames read from S3 repositories in memory (0: none).
    pub fn open_sized(
        root: &Path,
        catalog_url: Option<&str>,
        connections: usize,
        s3_cache_bytes: u64,
    ) -> Result<Self> {
        std::fs::create_dir_all(root).at(root)?;
        let catalog = match catalog_url {
            None => Catalog::open(&root.join("catalog.sqlite"))?,
            Some(url) => Catalog::connect(check_catalog_url(url)?)?,
        };
        if catalog.repository(DEFAULT_REPOSITORY).is_err() {
            let path = Path::new("repositories").join(DEFAULT_REPOSITORY);
            let absolute = root.join(&path);
            std::fs::create_dir_all(&absolute).at(&absolute)?;
            catalog.add_repository(&crate::RepositoryInfo {
                name: DEFAULT_REPOSITORY.into(),
                kind: "disk".into(),
                path,
                endpoint: None,
                cold: false,
            })?;
        }
        let head = catalog.log_head()?;
        let (index, opened) = SearchIndex::open(&root.join("index"), head)?;
        match opened.built_anew {
            Some(why) => tracing::info!(
                why,
                head,
                "search index built anew from the membership log, from seq 0"
            ),
            None => tracing::info!(
                position = opened.position,
                head,
                "search index resumes from its position in the membership log"
            ),
        }
        let archive = Archive {
            root: root.to_path_buf(),
            catalog: CatalogPool::new(catalog, connections),
            repositories: Mutex::new(HashMap::new()),
            frames: Arc::new(FrameCache::new(s3_cache_bytes)),
            index,
            writing: Mutex::new(()),
            committing: Mutex::new(()),
            collecting: Mutex::new(()),
        };
        repository::disk::remove_temporaries(&archive.local_repository_dirs()?);
        // A full disk (or an S3 outage) must not keep the service from
        // starting: what cannot be indexed now is retried by every later
        // commit.
        if let Err(e) = archive.commit_index() {
            tracing::error!(error = %e, "following the membership log at start; will retry");
        }
        Ok(archive)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folders of every local-disk repository.
    fn local_repository_dirs(&self) -> Result<Vec<PathBuf>> {
        let repos = self.catalog()?.repositories()?;
        Ok(repos
            .iter()
            .filter(|r| r.kind == "disk")
            .map(|r| self.resolve(&r.path))
            .collect())
    }

    /// The inverse of [`Archive::resolve`]: a repository folder inside the data
    /// folder as the catalog records it, relative to the data folder (symbolic
    /// links followed), so each node on one catalog finds it in its own data
    /// folder. A folder elsewhere stays absolute: every node must then see it
    /// at that same path (a shared mount). The folder must exist.
    pub fn recorded(&self, folder: &Path) -> PathBuf {
        let (Ok(root), Ok(abs)) = (self.root.canonicalize(), folder.canonicalize()) else {
            return folder.to_path_buf();
        };
        match abs.strip_prefix(&root) {
            Ok(inside) if !inside.as_os_str().is_empty() => inside.to_path_buf(),
            _ => folder.to_path_buf(),
        }
    }

    /// Repository folders inside the data folder are recorded relative to it, so
    /// a data folder can be moved (or restored elsewhere) as a whole, and each
    /// node on one catalog resolves them in its own data folder.
    pub fn resolve(&self, repo_path: &Path) -> PathBuf {
        if repo_path.is_relative() {
            self.root.join(repo_path)
        } else {
            repo_path.to_path_buf()
        }
    }

    /// The open handle of a repository, opened on first use.
    fn pack_store(&self, info: &crate::RepositoryInfo) -> Result<Arc<dyn PackStore>> {
        let mut open = self
            .repositories
            .lock()
            .map_err(|_| ArchiveError::Invalid {
                what: "repositories",
                why: "a previous user panicked".into(),
            })?;
        if let Some(store) = open.get(&info.name) {
            return Ok(Arc::clone(store));
        }
        let store = repository::open(info, &self.root, &self.frames)?;
        open.insert(info.name.clone(), Arc::clone(&store));
        Ok(store)
    }

    /// A connection to the catalog, for the metadata operations that need
    /// nothing else. On PostgreSQL other requests use other connections
    /// meanwhile: what must not interleave takes a transaction (and an
    /// advisory lock where other nodes could interleave too), never the
    /// connection.
    pub fn catalog(&self) -> Result<CatalogGuard<'_>> {
        self.catalog.get()
    }

    /// The connection session-level advisory locks are taken, checked and
    /// released on (see [`CatalogPool::session_locks`]).
    pub fn session_locks(&self) -> Result<CatalogGuard<'_>> {
        self.catalog.session_locks()
    }

    /// Adds a batch of messages to a mailbox. When this returns, every message
    /// reported `imported` is durable (pack and catalog fsynced); it is searchable
    /// from the next search on (see [`Archive::commit_index`]).
    ///
    /// Bytes that do not begin like mail ([`not_mail_reason`]) are refused,
    /// each with its reason: this is the entry for files a person imports.
    pub fn add_messages(&self, mailbox: &str, items: Vec<BatchItem>) -> Result<Vec<ItemOutcome>> {
        self.add_batch(mailbox, items, false)
    }

    /// Like [`Archive::add_messages`] for messages a mail server holds: those
    /// are mail whatever their bytes (no header at all, an mbox `From ` line
    /// first), so every one is archived byte-for-byte and indexed as far as it
    /// parses; refusing one would leave it in the mailbox for ever.
    pub fn add_server_messages(
        &self,
        mailbox: &str,
        items: Vec<BatchItem>,
    ) -> Result<Vec<ItemOutcome>> {
        self.add_batch(mailbox, items, true)
    }

    fn add_batch(
        &self,
        mailbox: &str,
        items: Vec<BatchItem>,
        from_server: bool,
    ) -> Result<Vec<ItemOutcome>> {
        let _writing = self.writing()?;
        // A garbage pass may drop a stored message this batch found and
        // meant to reuse; the batch then sees it gone under the membership
        // log's lock, and stores it anew on the second attempt.
        match self.add_locked(mailbox, &items, from_server)? {
            Some(outcomes) => Ok(outcomes),
            None => self
                .add_locked(mailbox, &items, from_server)?
                .ok_or_else(|| ArchiveError::Invalid {
                    what: "import batch",
                    why: "stored messages it reuses were collected twice; try again".into(),
                }),
        }
    }

    fn writing(&self) -> Result<MutexGuard<'_, ()>> {
        self.writing.lock().map_err(|_| ArchiveError::Invalid {
            what: "archive writer",
            why: "a previous writer panicked".into(),
        })
    }

    /// One attempt at a batch, the archive's writer held; `None` if a stored
    /// message it meant to reuse was collected meanwhile (nothing written
    /// to the catalog).
    fn add_locked(
        &self,
        mailbox: &str,
        items: &[BatchItem],
        from_server: bool,
    ) -> Result<Option<Vec<ItemOutcome>>> {
        // The mailbox's repository by key: not `mailbox()`, whose counts cost O(mailbox).
        let repo = self.catalog()?.default_repository(mailbox)?;

        let ids: Vec<Option<MessageId>> = items
            .par_iter()
            .map(|it| {
                (from_server || not_mail_reason(&it.raw).is_none()).then(|| MessageId::of(&it.raw))
            })
            .collect();
        let (stored, members) = {
            let cat = self.catalog()?;
            let stored = cat.known_ids(ids.iter().flatten())?;
            (stored, cat.members_among(mailbox, ids.iter().flatten())?)
        };

        let mut outcomes: Vec<ItemOutcome> = Vec::with_capacity(items.len());
        let mut wanted: Vec<(usize, MessageId)> = Vec::new();
        let mut seen: HashSet<MessageId> = HashSet::new();
        for (slot, (item, id)) in items.iter().zip(&ids).enumerate() {
            let outcome = match id {
                None => ItemOutcome {
                    origin: item.origin.clone(),
                    id: None,
                    status: ItemStatus::Failed,
                    reason: not_mail_reason(&item.raw),
                },
                Some(id) if members.contains(id) || !seen.insert(*id) => ItemOutcome {
                    origin: item.origin.clone(),
                    id: Some(*id),
                    status: ItemStatus::Duplicate,
                    reason: None,
                },
                Some(id) => {
                    wanted.push((slot, *id));
                    ItemOutcome {
                        origin: item.origin.clone(),
                        id: Some(*id),
                        status: ItemStatus::Imported,
                        reason: None,
                    }
                }
            };
            outcomes.push(outcome);
        }

        let started = std::time::Instant::now();
        let prepared: Vec<Prepared> = wanted
            .par_iter()
            .map(|&(slot, id)| {
                let raw = &items[slot].raw;
                let frame = if stored.contains(&id) {
                    None
                } else {
                    Some(store::compress(raw).at("zstd")?)
                };
                Ok(Prepared {
                    slot,
                    summary: MessageSummary::extract(raw),
                    id,
                    frame,
                    size: raw.len() as u64,
                })
            })
            .collect::<Result<_>>()?;
        if prepared.is_empty() {
            return Ok(Some(outcomes));
        }

        let frames: Vec<&[u8]> = prepared.iter().filter_map(|p| p.frame.as_deref()).collect();
        let prepared_at = started.elapsed();
        // The pack is durable before the transaction below names it; a
        // failed write fails the batch with nothing in the catalog.
        let pack = if frames.is_empty() {
            None
        } else {
            let (pack, bytes) = store::build_pack(&frames);
            self.pack_store(&repo)?.put_pack(&pack.name, bytes)?;
            Some(pack)
        };
        {
            let cat = self.catalog()?;
            let tx = cat.transaction()?;
            tx.lock_membership_log()?;
            let reused = prepared.iter().filter(|p| p.frame.is_none()).map(|p| &p.id);
            if cat.known_ids(reused.clone())?.len() != reused.count() {
                return Ok(None);
            }
            if let Some(pack) = &pack {
                catalog::insert_pack(&tx, &pack.name, &repo.name, pack.size)?;
                let new = prepared.iter().filter(|p| p.frame.is_some());
                let messages: Vec<NewMessage<'_>> = new
                    .zip(&pack.spans)
                    .map(|(p, span)| NewMessage {
                        id: &p.id,
                        size: p.size,
                        span: *span,
                        date: p.summary.date,
                        from: &p.summary.from,
                        subject: &p.summary.subject,
                    })
                    .collect();
                catalog::insert_messages(&tx, &pack.name, &messages)?;
            }
            let members: Vec<(MessageId, &str)> = prepared
                .iter()
                .map(|p| (p.id, items[p.slot].folder.as_str()))
                .collect();
            catalog::insert_memberships(&tx, mailbox, &members)?;
            tx.commit()?;
        }
        let stored_at = started.elapsed();
        // The batch is durable and in the catalog: an index failure now only
        // delays its searchability (the log follower indexes it).
        if let Err(e) = self.index_prepared(&prepared) {
            tracing::error!(error = %e, "indexing an archived batch; will retry");
        }
        tracing::debug!(
            messages = prepared.len(),
            prepare_ms = prepared_at.as_millis() as u64,
            store_ms = (stored_at - prepared_at).as_millis() as u64,
            index_ms = (started.elapsed() - stored_at).as_millis() as u64,
            "batch archived"
        );
        Ok(Some(outcomes))
    }

    /// Puts a batch's documents into the index writer, so the importing node
    /// finds them from its next commit on. A failure here loses nothing: the
    /// log follower indexes them from the catalog.
    fn index_prepared(&self, prepared: &[Prepared]) -> Result<()> {
        let boxes = self
            .catalog()?
            .mailboxes_of_each(prepared.iter().map(|p| &p.id))?;
        let docs: Vec<DocInput<'_>> = prepared
            .iter()
            .map(|p| DocInput {
                id: &p.id,
                mailboxes: boxes.get(&p.id).map_or(&[], Vec::as_slice),
                summary: &p.summary,
            })
            .collect();
        self.index.put_batch(&docs)
    }

    fn committing(&self) -> Result<MutexGuard<'_, ()>> {
        self.committing.lock().map_err(|_| ArchiveError::Invalid {
            what: "index commit",
            why: "a previous commit panicked".into(),
        })
    }

    /// Brings the index level with the catalog's membership log and commits
    /// it: every entry after the index's position is applied, a page at a
    /// time, committing every [`COMMIT_EVERY`] entries and at the end.
    /// Returns how many entries it applied. The service calls this every
    /// second; on a new node it builds the whole index.
    ///
    /// After a failure (a full disk, an S3 outage) the index is back at its
    /// last commit, and retrying this call is all a caller does.
    pub fn commit_index(&self) -> Result<usize> {
        let mut applied = 0;
        let mut since_commit = 0;
        loop {
            let _one_at_a_time = self.committing()?;
            let n = self.follow_page(LOG_PAGE, true)?;
            applied += n;
            since_commit += n;
            let caught_up = n < LOG_PAGE;
            if caught_up || since_commit >= COMMIT_EVERY {
                self.index.commit()?;
                since_commit = 0;
            }
            if caught_up {
                return Ok(applied);
            }
        }
    }

    /// Before a search: what this node imported is committed (searchable at
    /// once), and a short backlog of the log (another node's import) is
    /// applied first.
    fn catch_up_for_search(&self) -> Result<()> {
        let _one_at_a_time = self.committing()?;
        self.follow_page(SEARCH_BACKLOG, false)?;
        self.index.commit()?;
        Ok(())
    }

    /// Applies the next log entries after the index's position, up to
    /// `limit`, when no more than `limit` wait or `partly` allows stopping
    /// there; returns how many it applied.
    fn follow_page(&self, limit: usize, partly: bool) -> Result<usize> {
        let mark = self.index.mark()?;
        let mut entries = self.catalog()?.log_after(mark.position, limit + 1)?;
        if entries.len() > limit {
            if !partly {
                return Ok(0);
            }
            entries.truncate(limit);
        }
        self.apply_log(mark, &entries)?;
        Ok(entries.len())
    }

    /// Applies log entries (seq, message) to the index: each message's
    /// document is made to list the mailboxes the catalog has for it now
    /// (whatever the entry said: a later change has a later entry), or is
    /// deleted once no mailbox holds it. A document this node already put
    /// with those mailboxes is left alone, unread.
    fn apply_log(&self, mark: LogMark, entries: &[(i64, MessageId)]) -> Result<()> {
        let Some(&(last, _)) = entries.last() else {
            return Ok(());
        };
        self.refresh_documents(entries.iter().map(|e| e.1).collect())?;
        self.index.advance(mark, last)?;
        Ok(())
    }

    /// Makes the documents of `ids` list the mailboxes the catalog has for
    /// them now, or deletes those no mailbox holds (uncommitted). Applying
    /// it early, before the log follower reaches the entries, changes
    /// nothing the follower will do: it reads the same catalog.
    fn refresh_documents(&self, mut ids: Vec<MessageId>) -> Result<()> {
        ids.sort_unstable();
        ids.dedup();
        let current = self.catalog()?.mailboxes_of_each(ids.iter())?;
        let mut gone = Vec::new();
        let mut stale = Vec::new();
        for id in ids {
            match current.get(&id) {
                None => gone.push(id),
                Some(boxes) if !self.index.lists(&id, boxes)? => stale.push(id),
                Some(_) => {}
            }
        }
        let summaries = self.summaries(&stale)?;
        let docs: Vec<DocInput<'_>> = summaries
            .iter()
            .map(|(id, summary)| DocInput {
                id,
                mailboxes: current.get(id).map_or(&[], Vec::as_slice),
                summary,
            })
            .collect();
        self.index.delete(&gone)?;
        self.index.put_batch(&docs)
    }

    /// The summaries of stored messages, read and parsed in parallel; their
    /// places come from the catalog in one statement for all. A damaged
    /// message is left out and reported (it must not keep every other
    /// message out of the index); a repository that does not answer fails
    /// the whole call, to be retried.
    fn summaries(&self, ids: &[MessageId]) -> Result<Vec<(MessageId, MessageSummary)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (places, stores) = {
            let catalog = self.catalog()?;
            let places = catalog.locations(ids.iter())?;
            let mut stores: HashMap<String, Arc<dyn PackStore>> = HashMap::new();
            for loc in places.values() {
                if !stores.contains_key(&loc.repo) {
                    let info = catalog.repository(&loc.repo)?;
                    stores.insert(loc.repo.clone(), self.pack_store(&info)?);
                }
            }
            (places, stores)
        };
        let read: Vec<Option<(MessageId, MessageSummary)>> = ids
            .par_iter()
            .map(|id| {
                let located = places
                    .get(id)
                    .and_then(|loc| Some((loc, stores.get(&loc.repo)?)));
                let Some((loc, store)) = located else {
                    tracing::error!(%id, "cannot index a message the catalog has no place for");
                    return Ok(None);
                };
                match read_located(id, loc, &**store) {
                    Ok(raw) => Ok(Some((*id, MessageSummary::extract(&raw)))),
                    Err(e @ ArchiveError::S3 { .. }) => Err(e),
                    Err(e) => {
                        tracing::error!(error = %e, %id, "cannot index a stored message");
                        Ok(None)
                    }
                }
            })
            .collect::<Result<_>>()?;
        Ok(read.into_iter().flatten().collect())
    }

    /// The membership-log position the index's last commit holds (every
    /// entry up to it is searchable on this node).
    pub fn index_position(&self) -> Result<i64> {
        self.index.committed_position()
    }

    /// The original bytes of a stored message, verified against its id: a damaged
    /// blob is an error, never wrong bytes.
    /// One catalog lookup (its place); the repository's handle is the open
    /// one after first use.
    pub fn read(&self, id: &MessageId) -> Result<Vec<u8>> {
        let loc = self
            .catalog()?
            .location(id)?
            .ok_or_else(|| not_archived(id))?;
        read_located(id, &loc, &*self.store_of(&loc.repo)?)
    }

    /// The bytes of several stored messages, one result per id in order,
    /// each as [`Archive::read`] gives it (verified; damage is an error):
    /// their places from the catalog in one statement, then each
    /// repository's frames read together (an S3 repository's concurrently),
    /// checked in parallel. What one search answer's snippets need.
    pub fn read_each(&self, ids: &[MessageId]) -> Result<Vec<Result<Vec<u8>>>> {
        self.read_batch(ids, Keep::Frames)
    }

    /// Like [`Archive::read_each`], for a pass that reads each message once
    /// (an offline full build): frames the cache already keeps are used,
    /// frames read are not kept, so a million-message scan neither evicts
    /// the frames searches reuse nor grows the node by the cache's size.
    pub fn read_each_once(&self, ids: &[MessageId]) -> Result<Vec<Result<Vec<u8>>>> {
        self.read_batch(ids, Keep::Nothing)
    }

    fn read_batch(&self, ids: &[MessageId], keep: Keep) -> Result<Vec<Result<Vec<u8>>>> {
        let places = self.catalog()?.locations(ids.iter())?;
        let mut by_repo: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut read: Vec<Option<Result<Vec<u8>>>> = Vec::with_capacity(ids.len());
        for (slot, id) in ids.iter().enumerate() {
            match places.get(id) {
                Some(loc) => {
                    by_repo.entry(&loc.repo).or_default().push(slot);
                    read.push(None);
                }
                None => read.push(Some(Err(not_archived(id)))),
            }
        }
        for (repo, slots) in by_repo {
            let store = self.store_of(repo)?;
            let located: Vec<(&MessageId, &Location)> = slots
                .iter()
                .filter_map(|&s| Some((&ids[s], places.get(&ids[s])?)))
                .collect();
            let frames = read_frames(&*store, located.iter().map(|(_, loc)| *loc));
            let checked: Vec<Result<Vec<u8>>> = located
                .into_par_iter()
                .zip(frames)
                .map(|((id, loc), frame)| checked_frame(id, loc, frame, &*store, keep))
                .collect();
            for (slot, bytes) in slots.into_iter().zip(checked) {
                read[slot] = Some(bytes);
            }
        }
        Ok(read
            .into_iter()
            .zip(ids)
            .map(|(bytes, id)| bytes.unwrap_or_else(|| Err(not_archived(id))))
            .collect())
    }

    /// The open handle of repository `name`, opened from its catalog row on
    /// first use only: repositories never change place.
    fn store_of(&self, name: &str) -> Result<Arc<dyn PackStore>> {
        let open = self
            .repositories
            .lock()
            .map_err(|_| ArchiveError::Invalid {
                what: "repositories",
                why: "a previous user panicked".into(),
            })?
            .get(name)
            .cloned();
        match open {
            Some(store) => Ok(store),
            None => {
                let info = self.catalog()?.repository(name)?;
                self.pack_store(&info)
            }
        }
    }

    /// A message of a mailbox: refuses ids that are archived only elsewhere, so a
    /// grant on one mailbox never opens another's mail.
    pub fn get(&self, mailbox: &str, id: &MessageId) -> Result<Vec<u8>> {
        if !self.catalog()?.in_mailbox(mailbox, id)? {
            return Err(ArchiveError::NotInMailbox {
                mailbox: mailbox.into(),
                id: *id,
            });
        }
        self.read(id)
    }

    /// Searches the mailboxes `user` may search.
    pub fn search(&self, user: &UserInfo, req: &SearchRequest) -> Result<Vec<SearchHit>> {
        // A commit that fails (a full disk) must not take search down: what is
        // committed stays searchable, and the rest follows once a commit works.
        if let Err(e) = self.catch_up_for_search() {
            tracing::error!(error = %e, "committing the search index before a search");
        }
        let allowed = self.catalog()?.searchable_by(user)?;
        let mut hits = self
            .index
            .search(self, req, &allowed)?
            .hits(self, &allowed)?;
        // Hits are named from the catalog: a message that left the mailbox
        // searched (on another node, before this node's index followed) is
        // no hit there, whatever the index still says.
        hits.retain(|h| match &req.mailbox {
            Some(mb) => h.mailboxes.contains(mb),
            None => !h.mailboxes.is_empty(),
        });
        Ok(hits)
    }

    /// Every message of `mailbox` matching `query` that `user` may search,
    /// in no particular order (an export: no hit limit, no snippets).
    pub fn matching_ids(
        &self,
        user: &UserInfo,
        query: &str,
        mailbox: &str,
    ) -> Result<Vec<MessageId>> {
        if let Err(e) = self.commit_index() {
            tracing::error!(error = %e, "committing the search index before an export");
        }
        let allowed = self.catalog()?.searchable_by(user)?;
        let req = SearchRequest {
            query: query.to_string(),
            mailbox: Some(mailbox.to_string()),
            limit: usize::MAX,
        };
        Ok(self
            .index
            .search_capped(self, &req, &allowed, usize::MAX)?
            .ids)
    }
}

/// The bytes of message `id` at `loc` in `store`, verified against the id: a
/// damaged blob is an error, never wrong bytes.
fn read_located(id: &MessageId, loc: &Location, store: &dyn PackStore) -> Result<Vec<u8>> {
    let frame = match store.frames().and_then(|c| c.get(&loc.pack, loc.span)) {
        Some(kept) => Ok(Frame::Kept(kept)),
        None => store.read_span(&loc.pack, loc.span).map(Frame::Read),
    };
    checked_frame(id, loc, frame, store, Keep::Frames)
}

/// Whether frames read from a store go into its frame cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Frames,
    Nothing,
}

/// A frame as [`read_frames`] found it.
enum Frame {
    /// From the store's frame cache (verified when it was kept).
    Kept(Vec<u8>),
    /// Read from the store itself.
    Read(Vec<u8>),
}

/// The frames at `places` in `store`, in order: those its frame cache keeps
/// from there, the rest read together ([`PackStore::read_spans`]).
fn read_frames<'a>(
    store: &dyn PackStore,
    places: impl Iterator<Item = &'a Location>,
) -> Vec<Result<Frame>> {
    let cache = store.frames();
    let mut found: Vec<Option<Result<Frame>>> = Vec::new();
    let mut missing: Vec<(usize, (String, Span))> = Vec::new();
    for (slot, loc) in places.enumerate() {
        match cache.and_then(|c| c.get(&loc.pack, loc.span)) {
            Some(kept) => found.push(Some(Ok(Frame::Kept(kept)))),
            None => {
                found.push(None);
                missing.push((slot, (loc.pack.clone(), loc.span)));
            }
        }
    }
    let spans: Vec<(String, Span)> = missing.iter().map(|(_, s)| s.clone()).collect();
    for ((slot, _), frame) in missing.iter().zip(store.read_spans(&spans)) {
        found[*slot] = Some(frame.map(Frame::Read));
    }
    found.into_iter().flatten().collect()
}

/// The message `id` at `loc` from its frame, verified; a frame just read
/// from `store` that proves intact is kept in the store's frame cache.
fn checked_frame(
    id: &MessageId,
    loc: &Location,
    frame: Result<Frame>,
    store: &dyn PackStore,
    keep: Keep,
) -> Result<Vec<u8>> {
    let (frame, fresh) = match frame {
        Ok(Frame::Kept(f)) => (f, false),
        Ok(Frame::Read(f)) => (f, true),
        Err(e) => return verified(id, loc, Err(e)),
    };
    let raw = verified(id, loc, Ok(&frame))?;
    if let (true, Keep::Frames, Some(cache)) = (fresh, keep, store.frames()) {
        cache.keep(&loc.pack, loc.span, &frame);
    }
    Ok(raw)
}

/// The message `id` at `loc` from its `frame` as read: decompressed and
/// checked against the id.
fn verified(id: &MessageId, loc: &Location, frame: Result<&[u8]>) -> Result<Vec<u8>> {
    let damaged = |e: ArchiveError| ArchiveError::Damaged {
        id: *id,
        why: e.to_string(),
    };
    // An S3 repository that does not answer is not damage: its error
    // says so, naming the repository.
    let frame = match frame {
        Err(e @ ArchiveError::S3 { .. }) => return Err(e),
        other => other.map_err(damaged)?,
    };
    let raw = store::decompress(frame, loc.size).map_err(damaged)?;
    if MessageId::of(&raw) != *id {
        return Err(ArchiveError::Damaged {
            id: *id,
            why: "its bytes no longer hash to its id".into(),
        });
    }
    Ok(raw)
}

fn not_archived(id: &MessageId) -> ArchiveError {
    ArchiveError::Invalid {
        what: "message id",
        why: format!("{id} is not archived"),
    }
}

/// The catalog URLs this build opens: PostgreSQL's (the SQLite catalog is
/// the data folder's own, named by no URL).
fn check_catalog_url(url: &str) -> Result<&str> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url);
    }
    Err(ArchiveError::Invalid {
        what: "catalog URL",
        // Not echoed: a URL may carry a password.
        why: "it is not a PostgreSQL URL: use postgres://USER@HOST:PORT/DATABASE \
              (without one the catalog is SQLite in the data folder)"
            .into(),
    })
}
