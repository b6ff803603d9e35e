//! The service's search index: one document per message in the shared schema
//! of satchel-search (the laptop's index uses the same, so a query finds the
//! same messages online and offline), with each message's mailboxes as a
//! filter. It stores only the message id: a hit is named from the catalog and
//! its snippet cut from the stored bytes.
//!
//! The index is derived data, and each node of a service keeps its own: it
//! follows the catalog's membership log (every addition and removal, one
//! ever-growing seq). Its *position* (every log entry up to it is reflected
//! in the documents) is the payload of its tantivy commit, so the documents
//! and the position become durable together; a crash loses at most what
//! came after the last commit, and the node applies the log again from the
//! position it finds. A new index (a new node, a new schema, an index of a
//! version that kept no position) starts from seq 0.

use crate::archive::Archive;
use crate::error::{ArchiveError, IoContext, Result};
use crate::message::{MessageId, MessageSummary};
use satchel_search::{Fields, FromDocId, Ranked, SearchError, SearchQuery};

/// A hit as the index ranked it.
type Hit = satchel_search::Hit<MessageId>;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

/// Bumped with the shared schema (satchel-search); an index of another
/// version is rebuilt from the membership log.
pub const INDEX_VERSION: u32 = satchel_search::SCHEMA_VERSION;

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Writer>,
    fields: Fields,
}

/// The tantivy writer, the log position its documents reach and what no
/// commit has made durable yet, under one lock: a commit (or a rollback) and
/// the position it records can never drift apart.
struct Writer {
    /// `None` after a failure that even a rollback could not repair; the next
    /// use opens a fresh writer.
    inner: Option<IndexWriter>,
    /// The log position the last commit holds (its payload).
    committed: i64,
    /// The log position the writer's documents reach; the next commit
    /// records it.
    position: i64,
    /// Documents put or deleted since the last commit.
    changes: usize,
    /// Bumped by every rollback, so a caller that read the position before
    /// learns that the documents it put since were lost ([`LogMark`]).
    generation: u64,
    /// What the documents this process put list (a hash of their sorted
    /// mailboxes), for the messages the log follower has not checked yet:
    /// the importing node indexes its batch at once, and the follower, when
    /// the log brings the same messages, finds them already right and
    /// reads nothing. Forgotten once checked, or all at once past
    /// [`LISTED_CAP`] (then the follower only re-reads them).
    listed: HashMap<MessageId, u64>,
}

/// Messages [`Writer::listed`] remembers at most.
const LISTED_CAP: usize = 100_000;

/// The position in the membership log the writer's documents reached when
/// it was read, and the writer's generation then (see
/// [`SearchIndex::advance`]).
#[derive(Clone, Copy, Debug)]
pub struct LogMark {
    pub position: i64,
    generation: u64,
}

/// How [`SearchIndex::open`] found the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The log position of its last commit (0 for a new index).
    pub position: i64,
    /// Why it was made anew, if it was.
    pub built_anew: Option<&'static str>,
}

/// The tantivy commit payload: the log position the commit's documents
/// reflect.
#[derive(Serialize, Deserialize)]
struct Payload {
    membership_log_seq: i64,
}

/// One message's document, as [`SearchIndex::put_batch`] takes it.
pub struct DocInput<'a> {
    pub id: &'a MessageId,
    /// Sorted, as the catalog lists them.
    pub mailboxes: &'a [String],
    pub summary: &'a MessageSummary,
}

/// The writer's memory budget (tantivy splits it between its indexing threads).
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

/// What a caller asks: a query in tantivy's syntax (`subject:invoice from:bob`),
/// plus `after:YYYY-MM-DD` / `before:YYYY-MM-DD` for date ranges.
/// The most hits one search returns.
pub const MAX_HITS: usize = 10_000;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    pub mailbox: Option<String>,
    pub limit: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchHit {
    pub id: MessageId,
    pub mailboxes: Vec<String>,
    pub date: Option<i64>,
    pub from: String,
    pub subject: String,
    pub snippet: String,
    pub size: u64,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if absent. It is made anew (and
    /// then followed from seq 0) when its schema version differs, when its
    /// last commit holds no log position (made before the index followed
    /// the log), or when that position is beyond `log_head`, the highest seq
    /// the catalog's log has handed out (the index followed another
    /// catalog).
    pub fn open(dir: &Path, log_head: i64) -> Result<(Self, Opened)> {
        let (schema, fields) = Fields::schema();
        let version_file = dir.join("satchel-index-version");
        let current = std::fs::read_to_string(&version_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let mut opened = Opened {
            position: 0,
            built_anew: None,
        };
        let found = match current {
            None => {
                opened.built_anew = Some("no index");
                None
            }
            Some(v) if v != INDEX_VERSION => {
                opened.built_anew = Some("another schema version");
                None
            }
            Some(_) => {
                let index = Index::open_in_dir(dir)?;
                match committed_position(&index)? {
                    None => opened.built_anew = Some("no log position in its last commit"),
                    Some(p) if p > log_head => {
                        opened.built_anew = Some("its position is beyond the catalog's log")
                    }
                    Some(p) => opened.position = p,
                }
                opened.built_anew.is_none().then_some(index)
            }
        };
        let index = match found {
            Some(index) => index,
            None => create(dir, schema, &version_file)?,
        };
        let writer = index.writer(WRITER_BUDGET)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            SearchIndex {
                index,
                reader,
                writer: Mutex::new(Writer {
                    inner: Some(writer),
                    committed: opened.position,
                    position: opened.position,
                    changes: 0,
                    generation: 0,
                    listed: HashMap::new(),
                }),
                fields,
            },
            opened,
        ))
    }

    /// Adds or replaces the documents of a batch of messages. They become
    /// durable and visible with the next [`SearchIndex::commit`] that
    /// succeeds. On an error nothing uncommitted survives (see
    /// [`Writer::reset`]): the log follower puts it again from the last
    /// commit's position.
    pub fn put_batch(&self, docs: &[DocInput<'_>]) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        let added = (|| {
            let writer = w.writer(&self.index)?;
            for d in docs {
                writer.delete_term(self.id_term(d.id));
                writer.add_document(satchel_search::document(
                    &self.fields,
                    d.id,
                    d.mailboxes.iter().map(String::as_str),
                    d.summary,
                ))?;
            }
            Ok(())
        })();
        if let Err(e) = added {
            w.reset();
            return Err(e);
        }
        w.changes += docs.len();
        if w.listed.len() + docs.len() > LISTED_CAP {
            w.listed.clear();
        }
        for d in docs {
            w.listed.insert(*d.id, mailboxes_hash(d.mailboxes));
        }
        Ok(())
    }

    /// Deletes the documents of messages no mailbox holds any more.
    pub fn delete(&self, ids: &[MessageId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        let writer = w.writer(&self.index)?;
        for id in ids {
            writer.delete_term(self.id_term(id));
        }
        w.changes += ids.len();
        for id in ids {
            w.listed.remove(id);
        }
        Ok(())
    }

    /// Whether this process put `id`'s document listing exactly
    /// `mailboxes` (sorted) and has not checked it since; a match is
    /// forgotten (checked).
    pub fn lists(&self, id: &MessageId, mailboxes: &[String]) -> Result<bool> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        let same = w.listed.get(id) == Some(&mailboxes_hash(mailboxes));
        if same {
            w.listed.remove(id);
        }
        Ok(same)
    }

    /// Where the writer's documents stand in the log, now.
    pub fn mark(&self) -> Result<LogMark> {
        let w = self.writer.lock().map_err(|_| poisoned())?;
        Ok(LogMark {
            position: w.position,
            generation: w.generation,
        })
    }

    /// The log position the last commit made durable.
    pub fn committed_position(&self) -> Result<i64> {
        Ok(self.writer.lock().map_err(|_| poisoned())?.committed)
    }

    /// Records that the log up to `seq` is applied, by documents put since
    /// `mark` was taken. False (nothing recorded) if a rollback lost them
    /// in between: the caller reads the log again from the new mark.
    pub fn advance(&self, mark: LogMark, seq: i64) -> Result<bool> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        if w.generation != mark.generation {
            return Ok(false);
        }
        w.position = w.position.max(seq);
        Ok(true)
    }

    /// Makes every document put or deleted so far durable and visible to
    /// searches, together with the log position reached (the commit's
    /// payload); returns how many changes it held. Nothing to commit costs
    /// nothing. A failed commit (a full disk) rolls the writer back to the
    /// last commit, whose position the log is then followed from again.
    pub fn commit(&self) -> Result<usize> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        if w.changes == 0 && w.position == w.committed {
            return Ok(0);
        }
        let payload = serde_json::to_string(&Payload {
            membership_log_seq: w.position,
        })
        .map_err(|e| ArchiveError::Invalid {
            what: "index commit payload",
            why: e.to_string(),
        })?;
        let committed = w.writer(&self.index).and_then(|writer| {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            Ok(())
        });
        if let Err(e) = committed {
            w.reset();
            return Err(e);
        }
        let changes = std::mem::take(&mut w.changes);
        w.committed = w.position;
        drop(w);
        self.reader.reload()?;
        Ok(changes)
    }

    fn id_term(&self, id: &MessageId) -> Term {
        Term::from_field_bytes(self.fields.id, id.as_bytes())
    }

    /// Searches the mailboxes in `allowed` (the caller's searchable ones). A
    /// `mailbox:` filter on any other mailbox is refused, so a search tells
    /// nothing about mailboxes the caller may not search, not even whether
    /// they exist. Phrases are checked against the messages `archive` holds.
    pub fn search(
        &self,
        archive: &Archive,
        req: &SearchRequest,
        allowed: &[String],
    ) -> Result<Found> {
        self.search_capped(archive, req, allowed, MAX_HITS)
    }

    /// [`SearchIndex::search`] with at most `cap` hits (and never more than
    /// the index holds): an export takes every match.
    pub fn search_capped(
        &self,
        archive: &Archive,
        req: &SearchRequest,
        allowed: &[String],
        cap: usize,
    ) -> Result<Found> {
        let query = SearchQuery::parse(&req.query)?;
        if let Some(m) = query.mailboxes().iter().find(|m| !allowed.contains(m)) {
            return Err(ArchiveError::NotSearchable(m.clone()));
        }
        let mailboxes: Vec<&str> = allowed
            .iter()
            .map(String::as_str)
            .filter(|a| req.mailbox.as_deref().is_none_or(|mb| mb == *a))
            .collect();
        let searcher = self.reader.searcher();
        let held = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        let limit = req.limit.min(held).clamp(1, cap);
        let ranked = query
            .search(&searcher, &self.fields, Some(&mailboxes), limit, &|id| {
                stored_bytes(archive, id)
            })
            .map_err(|e| match e {
                SearchError::Query(e) => ArchiveError::Query(e),
                SearchError::Index(e) => e.into(),
            })?;
        let ids = if mailboxes.is_empty() {
            Vec::new()
        } else {
            ranked.hits.iter().map(|h| h.id).collect()
        };
        Ok(Found { ids, ranked })
    }
}

/// The stored bytes of the message whose id bytes are `id`, for a phrase
/// check; `None` (the message does not match) if they cannot be read.
fn stored_bytes(archive: &Archive, id: &[u8]) -> Option<Vec<u8>> {
    let id = MessageId::from_id_bytes(id)?;
    archive
        .read(&id)
        .inspect_err(|e| tracing::warn!(error = %e, %id, "phrase not checked: message unreadable"))
        .ok()
}

/// What a search found: message ids, best first, and their snippets. The
/// index names a hit and nothing more: the rest comes from the catalog and
/// the store ([`Found::hits`]).
pub struct Found {
    /// Best first; empty if the caller may search no mailbox.
    pub ids: Vec<MessageId>,
    ranked: Ranked<MessageId>,
}

impl Found {
    /// The hits, named from the catalog (only the mailboxes in `allowed`)
    /// with snippets cut from the text a phrase check parsed or else from
    /// the stored bytes. A message the catalog no longer holds is left out;
    /// one whose bytes cannot be read keeps its hit without a snippet.
    pub fn hits(self, archive: &Archive, allowed: &[String]) -> Result<Vec<SearchHit>> {
        let found = &self.ranked.hits[..self.ids.len()];
        let ids = &self.ids;
        let mut named = Vec::with_capacity(ids.len());
        {
            // Two statements for all hits (one round trip each on PostgreSQL).
            let catalog = archive.catalog()?;
            let metas = catalog.message_metas(ids.iter())?;
            let boxes = catalog.mailboxes_of_each(ids.iter())?;
            for hit in found {
                let Some(meta) = metas.get(&hit.id).cloned() else {
                    continue;
                };
                let mut mailboxes = boxes.get(&hit.id).cloned().unwrap_or_default();
                mailboxes.retain(|m| allowed.contains(m));
                named.push((hit, meta, mailboxes));
            }
        }
        let snippets = self.snippets(archive, &named);
        Ok(named
            .into_iter()
            .zip(snippets)
            .map(|((_, meta, mailboxes), snippet)| SearchHit {
                id: meta.id,
                mailboxes,
                date: meta.date,
                from: meta.from,
                subject: meta.subject,
                snippet,
                size: meta.size,
            })
            .collect())
    }
}

impl Found {
    /// The snippets of `named`'s hits, in order. A hit a phrase check
    /// parsed is cut from that text; the others' messages are read together
    /// ([`Archive::read_each`]: one catalog statement, concurrent reads),
    /// not one after the other. A message that cannot be read leaves its
    /// hit without a snippet.
    fn snippets<M, B>(&self, archive: &Archive, named: &[(&Hit, M, B)]) -> Vec<String> {
        // First pass: [`Ranked::snippet`] asks for bytes only when no parsed
        // text serves; those hits are read below and cut in the second.
        let mut cut: Vec<Option<String>> = named
            .iter()
            .map(|(hit, _, _)| {
                let mut asked = false;
                let snippet = self.ranked.snippet(hit, || {
                    asked = true;
                    None
                });
                (!asked).then_some(snippet)
            })
            .collect();
        let wanted: Vec<MessageId> = named
            .iter()
            .zip(&cut)
            .filter(|(_, s)| s.is_none())
            .map(|((hit, _, _), _)| hit.id)
            .collect();
        let mut read = snippet_bytes(archive, &wanted).into_iter();
        for ((hit, _, _), snippet) in named.iter().zip(&mut cut) {
            if snippet.is_none() {
                let raw = read.next().flatten();
                *snippet = Some(self.ranked.snippet(hit, || raw));
            }
        }
        cut.into_iter().map(Option::unwrap_or_default).collect()
    }
}

/// The stored bytes of `ids` for their snippets, in order; `None` for one
/// that cannot be read (each failure logged).
fn snippet_bytes(archive: &Archive, ids: &[MessageId]) -> Vec<Option<Vec<u8>>> {
    if ids.is_empty() {
        return Vec::new();
    }
    match archive.read_each(ids) {
        Ok(read) => read
            .into_iter()
            .map(|r| {
                r.inspect_err(|e| tracing::warn!(error = %e, "no snippet for a search hit"))
                    .ok()
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "no snippets for a search answer");
            vec![None; ids.len()]
        }
    }
}

/// A new, empty index in `dir` with its version file.
fn create(dir: &Path, schema: Schema, version_file: &Path) -> Result<Index> {
    empty_dir(dir)?;
    let index = Index::create_in_dir(dir, schema)?;
    std::fs::write(version_file, INDEX_VERSION.to_string()).at(version_file)?;
    Ok(index)
}

/// The log position the index's last commit holds; `None` if it holds none
/// (no commit yet, or one made before the index followed the log).
fn committed_position(index: &Index) -> Result<Option<i64>> {
    let payload = index.load_metas()?.payload;
    Ok(payload
        .and_then(|p| serde_json::from_str::<Payload>(&p).ok())
        .map(|p| p.membership_log_seq))
}

/// What [`Writer::listed`] keeps of a document's mailboxes.
fn mailboxes_hash(mailboxes: &[String]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    mailboxes.hash(&mut h);
    h.finish()
}

/// Creates `dir` or removes everything in it. The folder itself stays: it may
/// be a mount point of its own (an index on another disk).
fn empty_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).at(&path)?;
        } else {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

impl Writer {
    /// The writer, opening a fresh one if a failure left none.
    fn writer(&mut self, index: &Index) -> Result<&mut IndexWriter> {
        if self.inner.is_none() {
            self.inner = Some(index.writer(WRITER_BUDGET)?);
        }
        self.inner.as_mut().ok_or_else(poisoned)
    }

    /// Brings the writer back to the last commit after a failure. Why not keep
    /// it: when an indexing thread fails (a full disk), tantivy drops that
    /// thread, and a later commit succeeds while silently losing every document
    /// sent to the missing thread; the position would then name messages that
    /// are never found. A rollback starts fresh threads from the last commit,
    /// whose log position the follower starts from again.
    fn reset(&mut self) {
        self.changes = 0;
        self.position = self.committed;
        self.generation += 1;
        self.listed.clear();
        if let Some(mut writer) = self.inner.take() {
            match writer.rollback() {
                Ok(_) => self.inner = Some(writer),
                Err(e) => tracing::warn!(error = %e, "search index rollback failed; reopening"),
            }
        }
    }
}

fn poisoned() -> ArchiveError {
    ArchiveError::Invalid {
        what: "index writer",
        why: "a previous writer panicked".into(),
    }
}
