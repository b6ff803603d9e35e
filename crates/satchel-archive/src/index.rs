//! The service's search index: one document per message in the shared schema
//! of satchel-search (the laptop's index uses the same, so a query finds the
//! same messages online and offline), with each message's mailboxes as a
//! filter. It stores only the message id: a hit is named from the catalog and
//! its snippet cut from the stored bytes.
//!
//! The index is derived data. The catalog marks a message `indexed` only after the
//! index commit that holds it, so anything lost in a crash is re-indexed at start.

use crate::archive::Archive;
use crate::error::{ArchiveError, IoContext, Result};
use crate::message::{MessageId, MessageSummary};
use satchel_search::{Fields, FromDocId, SearchError, SearchQuery, Snippets, top_ids};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

/// Bumped with the shared schema (satchel-search); an index of another
/// version is rebuilt from the store.
pub const INDEX_VERSION: u32 = satchel_search::SCHEMA_VERSION;

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Writer>,
    fields: Fields,
}

/// The tantivy writer and what it holds that no commit has made durable yet,
/// under one lock: a commit (or a rollback) and the ids it concerns can never
/// drift apart.
struct Writer {
    /// `None` after a failure that even a rollback could not repair; the next
    /// use opens a fresh writer.
    inner: Option<IndexWriter>,
    /// Each document added since the last commit: the message id and how many
    /// mailboxes its document lists.
    pending: Vec<Pending>,
}

/// A document in the writer but in no commit yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub id: MessageId,
    pub mailboxes: usize,
}

/// One message's document, as [`SearchIndex::put_batch`] takes it.
pub struct DocInput<'a> {
    pub id: &'a MessageId,
    pub mailboxes: &'a [String],
    pub summary: &'a MessageSummary,
}

/// The writer's memory budget (tantivy splits it between its indexing threads).
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

/// What a caller asks: a query in tantivy's syntax (`subject:invoice from:bob`),
/// plus `after:YYYY-MM-DD` / `before:YYYY-MM-DD` for date ranges.
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
    /// Opens the index in `dir`, creating it if absent. Returns whether it was
    /// created (then the caller re-indexes everything).
    pub fn open(dir: &Path) -> Result<(Self, bool)> {
        let (schema, fields) = Fields::schema();
        let version_file = dir.join("satchel-index-version");
        let current = std::fs::read_to_string(&version_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let created = current != Some(INDEX_VERSION);
        if created {
            empty_dir(dir)?;
        }
        let index = if created {
            let index = Index::create_in_dir(dir, schema)?;
            std::fs::write(&version_file, INDEX_VERSION.to_string()).map_err(|source| {
                ArchiveError::Io {
                    path: version_file.clone(),
                    source,
                }
            })?;
            index
        } else {
            Index::open_in_dir(dir)?
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
                    pending: Vec::new(),
                }),
                fields,
            },
            created,
        ))
    }

    /// Adds or replaces the documents of a batch of messages. They become
    /// durable and visible with the next [`SearchIndex::commit`] that succeeds,
    /// which returns them. On an error nothing uncommitted survives (see
    /// [`Writer::reset`]): the caller re-indexes from the catalog.
    pub fn put_batch(&self, docs: &[DocInput<'_>]) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        let added = (|| {
            let writer = w.writer(&self.index)?;
            for d in docs {
                writer.delete_term(Term::from_field_bytes(self.fields.id, d.id.as_bytes()));
                writer.add_document(satchel_search::document(
                    &self.fields,
                    d.id,
                    d.mailboxes.iter().map(String::as_str),
                    d.summary,
                ))?;
            }
            Ok(())
        })();
        match added {
            Ok(()) => {
                w.pending.extend(docs.iter().map(|d| Pending {
                    id: *d.id,
                    mailboxes: d.mailboxes.len(),
                }));
                Ok(())
            }
            Err(e) => {
                w.reset();
                Err(e)
            }
        }
    }

    /// Makes every document put so far durable and visible to searches, and
    /// returns them; nothing is returned that this commit did not hold. A
    /// failed commit (a full disk) discards every uncommitted document, so the
    /// catalog still lists them as unindexed and the caller indexes them again.
    pub fn commit(&self) -> Result<Vec<Pending>> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        if w.pending.is_empty() {
            return Ok(Vec::new());
        }
        let committed = w
            .writer(&self.index)
            .and_then(|writer| Ok(writer.commit()?));
        if let Err(e) = committed {
            w.reset();
            return Err(e);
        }
        let done = std::mem::take(&mut w.pending);
        drop(w);
        self.reader.reload()?;
        Ok(done)
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
        let query = SearchQuery::parse(&req.query)?;
        if let Some(m) = query.mailboxes().iter().find(|m| !allowed.contains(m)) {
            return Err(ArchiveError::NotSearchable(m.clone()));
        }
        let mailboxes: Vec<&str> = allowed
            .iter()
            .map(String::as_str)
            .filter(|a| req.mailbox.as_deref().is_none_or(|mb| mb == *a))
            .collect();
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let built = query
            .build_checked(&searcher, f, Some(&mailboxes), &mut |id| {
                stored_bytes(archive, id)
            })
            .map_err(|e| match e {
                SearchError::Query(e) => ArchiveError::Query(e),
                SearchError::Index(e) => e.into(),
            })?;
        let ids = if mailboxes.is_empty() {
            Vec::new()
        } else {
            top_ids(&searcher, f, &*built, req.limit.clamp(1, 10_000))?
        };
        Ok(Found {
            ids,
            snippets: Snippets::new(&searcher, f, &*built),
        })
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

/// What a search found: message ids, best first, and the snippet maker of
/// its query. The index names a hit and nothing more: the rest comes from
/// the catalog and the store ([`Found::hits`]).
pub struct Found {
    pub ids: Vec<MessageId>,
    snippets: Snippets,
}

impl Found {
    /// The hits, named from the catalog (only the mailboxes in `allowed`)
    /// with snippets cut from the stored bytes. A message the catalog no
    /// longer holds is left out; one whose bytes cannot be read keeps its
    /// hit without a snippet.
    pub fn hits(self, archive: &Archive, allowed: &[String]) -> Result<Vec<SearchHit>> {
        let mut named = Vec::with_capacity(self.ids.len());
        {
            // Two statements for all hits (one round trip each on PostgreSQL).
            let catalog = archive.catalog()?;
            let metas = catalog.message_metas(self.ids.iter())?;
            let boxes = catalog.mailboxes_of_each(self.ids.iter())?;
            for id in &self.ids {
                let Some(meta) = metas.get(id).cloned() else {
                    continue;
                };
                let mut mailboxes = boxes.get(id).cloned().unwrap_or_default();
                mailboxes.retain(|m| allowed.contains(m));
                named.push((meta, mailboxes));
            }
        }
        Ok(named
            .into_iter()
            .map(|(meta, mailboxes)| {
                let snippet = match archive.read(&meta.id) {
                    Ok(raw) => self.snippets.of_message(&raw),
                    Err(e) => {
                        tracing::warn!(error = %e, "no snippet for a search hit");
                        String::new()
                    }
                };
                SearchHit {
                    id: meta.id,
                    mailboxes,
                    date: meta.date,
                    from: meta.from,
                    subject: meta.subject,
                    snippet,
                    size: meta.size,
                }
            })
            .collect())
    }
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
    /// sent to the missing thread; those messages would be marked indexed and
    /// never found. A rollback starts fresh threads from the last commit.
    fn reset(&mut self) {
        self.pending.clear();
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
