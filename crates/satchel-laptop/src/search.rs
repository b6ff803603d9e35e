//! The local search index: tantivy over the local copies, so the laptop can
//! search while offline. Built and updated by each sync from the local copy
//! (only messages added or removed since the last sync are touched); kept in
//! `<home>/index`.
//!
//! Its documents, query language and snippets are satchel-search's, the same
//! as the service's index, so a query finds the same messages offline as
//! online. One document per message and mailbox; it stores only the message
//! id: a hit is named from the copy's listing and its snippet cut from the
//! copy's bytes.

mod state;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use satchel_api::{SearchHit, SearchResults};
use satchel_message::MessageSummary;
use satchel_offline::{MessageId, ReplicaIndex, Segment, SegmentRef};
use satchel_search::{Fields, FromDocId, Hit, Ranked, SearchError, SearchQuery, id_of};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, DocSetCollector};
use tantivy::query::{BooleanQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Term};

use crate::config::Home;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::replica::Replica;
use state::{IndexState, Indexed};

const VERSION_FILE: &str = "satchel-laptop-index-version";

/// What an update changed, and the work it took.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexUpdate {
    /// Documents added.
    pub added: u64,
    /// Documents removed.
    pub removed: u64,
    /// Segments of the copy whose index was opened to find the changes.
    #[serde(default)]
    pub segments_read: u64,
    /// Compressed blocks decompressed to index their messages.
    #[serde(default)]
    pub blocks_read: u64,
    /// Mailboxes whose index was reconciled with the whole copy (every
    /// indexed id read back): a first index, or one whose state was unknown.
    #[serde(default)]
    pub full_scans: u64,
    pub seconds: f64,
}

impl IndexUpdate {
    pub fn add(&mut self, other: &IndexUpdate) {
        self.added += other.added;
        self.removed += other.removed;
        self.segments_read += other.segments_read;
        self.blocks_read += other.blocks_read;
        self.full_scans += other.full_scans;
        self.seconds += other.seconds;
    }
}

/// The home's search index.
pub struct LocalIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Made empty by this open (first use, or an index of another version).
    created: bool,
}

impl LocalIndex {
    /// Opens (or creates) the index in `dir`. An index of another version
    /// than [`satchel_search::SCHEMA_VERSION`] is removed and created empty.
    pub fn open(dir: &Path) -> Result<LocalIndex> {
        let (schema, fields) = Fields::schema();
        let current = satchel_search::SCHEMA_VERSION.to_string();
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        if version.as_deref().map(str::trim) != Some(current.as_str()) {
            fsutil::remove_dir_if_exists(dir)?;
        }
        let created = !dir.join("meta.json").exists();
        let index = if created {
            fsutil::private_dir(dir)?;
            let index = Index::create_in_dir(dir, schema)?;
            std::fs::write(dir.join(VERSION_FILE), &current)
                .map_err(|e| Error::io(dir.join(VERSION_FILE), e))?;
            // An empty index holds nothing, whatever a leftover state says.
            IndexState::remove(dir)?;
            index
        } else {
            Index::open_in_dir(dir)?
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LocalIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            created,
        })
    }

    /// Opens the home's index. One this open created (first use, or a new
    /// schema version) is filled from every local copy at once, as the
    /// service rebuilds its index from the store: an offline search right
    /// after an upgrade finds what the copies hold.
    pub fn open_home(home: &Home) -> Result<LocalIndex> {
        let index = LocalIndex::open(&home.index_dir())?;
        if !index.created {
            return Ok(index);
        }
        for mailbox in home.local_mailboxes()? {
            let replica = Replica::new(home.replica_dir(&mailbox), &mailbox);
            if let Err(e) = index.update_mailbox(&replica) {
                tracing::warn!(%mailbox, "not indexing the local copy: {e}");
            }
        }
        Ok(index)
    }

    /// The ids indexed for `mailbox`.
    fn indexed_ids(&self, mailbox: &str) -> Result<HashSet<MessageId>> {
        let searcher = self.reader.searcher();
        let docs = searcher.search(&self.of_mailbox(mailbox), &DocSetCollector)?;
        let mut out = HashSet::with_capacity(docs.len());
        for addr in docs {
            if let Some(id) = id_of(&searcher, &self.fields, addr)? {
                out.insert(id);
            }
        }
        Ok(out)
    }

    fn of_mailbox(&self, mailbox: &str) -> TermQuery {
        TermQuery::new(
            Term::from_field_text(self.fields.mailbox, mailbox),
            IndexRecordOption::Basic,
        )
    }

    /// The document of message `id` in `mailbox` (there is one per mailbox).
    fn of_message(&self, mailbox: &str, id: &MessageId) -> Box<dyn Query> {
        let id = TermQuery::new(
            Term::from_field_bytes(self.fields.id, id.as_bytes()),
            IndexRecordOption::Basic,
        );
        Box::new(BooleanQuery::intersection(vec![
            Box::new(self.of_mailbox(mailbox)),
            Box::new(id),
        ]))
    }

    /// True if a document of message `id` in `mailbox` is searchable.
    fn is_indexed(&self, searcher: &Searcher, mailbox: &str, id: &MessageId) -> Result<bool> {
        Ok(searcher.search(&*self.of_message(mailbox, id), &Count)? > 0)
    }

    /// Makes the index of `replica`'s mailbox match its local copy: adds
    /// the messages not indexed yet, removes those no longer live. Known
    /// state: only the segments the copy gained or lost since are read;
    /// an unchanged manifest costs nothing. Unknown state (a first index,
    /// another epoch, a lost segment file): every indexed id is compared
    /// with the copy.
    pub fn update_mailbox(&self, replica: &Replica) -> Result<IndexUpdate> {
        let started = std::time::Instant::now();
        let mailbox = replica.mailbox();
        let state = IndexState::load(&self.dir);
        let prior = state.get(mailbox).cloned();
        if let (Some(p), Ok(Some(m))) = (&prior, replica.manifest())
            && p.is_at(&m)
        {
            return Ok(IndexUpdate::default());
        }
        let copy = replica.open()?;
        let prior = prior.filter(|p| p.epoch == copy.manifest().epoch);
        let mut update = match prior {
            Some(p) => self.apply_changes(mailbox, replica.dir(), &copy, &p)?,
            None => None,
        };
        if update.is_none() {
            update = Some(self.reconcile(mailbox, replica.dir(), &copy)?);
        }
        state.save(&self.dir, mailbox, Some(Indexed::of(copy.manifest())))?;
        let mut update = update.unwrap_or_default();
        update.seconds = started.elapsed().as_secs_f64();
        Ok(update)
    }

    /// The index brought from `prior` to `copy`'s manifest by reading only
    /// the segments added since (their new live messages are indexed, their
    /// tombstones removed) and those dropped since (their messages no longer
    /// live removed; those a compaction moved stay indexed as they are).
    /// `None` if a dropped segment's file is gone: the caller reconciles.
    fn apply_changes(
        &self,
        mailbox: &str,
        dir: &Path,
        copy: &ReplicaIndex,
        prior: &Indexed,
    ) -> Result<Option<IndexUpdate>> {
        let current = copy.manifest();
        let had: HashSet<&str> = prior.segments.iter().map(String::as_str).collect();
        let now: HashSet<&str> = current.segments.iter().map(|s| s.name.as_str()).collect();
        let added: Vec<&SegmentRef> = current
            .segments
            .iter()
            .filter(|s| !had.contains(s.name.as_str()))
            .collect();
        let mut update = IndexUpdate::default();
        // Ids that may have left: tombstones of the added segments, messages
        // of the dropped ones.
        let mut gone: HashSet<MessageId> = HashSet::new();
        for name in prior.segments.iter().filter(|n| !now.contains(n.as_str())) {
            let Ok(segment) = Segment::open(&satchel_offline::segment_path(dir, name)) else {
                tracing::info!(%mailbox, "segment {name} no longer here; reconciling fully");
                return Ok(None);
            };
            update.segments_read += 1;
            gone.extend(segment.entries().iter().map(|e| e.id));
        }
        let mut opened = Vec::with_capacity(added.len());
        for s in added {
            let segment = Segment::open(&satchel_offline::segment_path(dir, &s.name))?;
            update.segments_read += 1;
            gone.extend(segment.tombstones().iter().copied());
            opened.push((s, segment));
        }
        gone.retain(|id| !copy.contains(id));
        let mut writer = Writer::new(&self.index);
        let searcher = self.reader.searcher();
        for id in &gone {
            if self.is_indexed(&searcher, mailbox, id)? {
                writer.get()?.delete_query(self.of_message(mailbox, id))?;
                update.removed += 1;
            }
        }
        let mut seen: HashSet<MessageId> = HashSet::new();
        for (s, segment) in &opened {
            let mut wanted = |e: &satchel_offline::Entry| {
                copy.contains(&e.id)
                    && !seen.contains(&e.id)
                    && !self.is_indexed(&searcher, mailbox, &e.id).unwrap_or(false)
            };
            let mut new_ids = Vec::new();
            let read = self.index_segment(mailbox, s, segment, &mut writer, &mut wanted, |id| {
                new_ids.push(id)
            })?;
            update.blocks_read += read.blocks;
            update.added += read.added;
            seen.extend(new_ids);
        }
        writer.commit(&self.reader)?;
        Ok(Some(update))
    }

    /// The index of `mailbox` made to match `copy` by comparing every
    /// indexed id with the copy's live ids; only the blocks holding
    /// messages not indexed yet are read.
    fn reconcile(&self, mailbox: &str, dir: &Path, copy: &ReplicaIndex) -> Result<IndexUpdate> {
        let indexed = self.indexed_ids(mailbox)?;
        let mut update = IndexUpdate {
            full_scans: 1,
            ..IndexUpdate::default()
        };
        let mut writer = Writer::new(&self.index);
        for id in indexed.iter().filter(|id| !copy.contains(id)) {
            writer.get()?.delete_query(self.of_message(mailbox, id))?;
            update.removed += 1;
        }
        let mut wanted: HashSet<MessageId> = copy
            .ids()
            .filter(|id| !indexed.contains(*id))
            .copied()
            .collect();
        drop(indexed);
        for s in &copy.manifest().segments {
            if wanted.is_empty() {
                break;
            }
            let path = satchel_offline::segment_path(dir, &s.name);
            let segment = match Segment::open(&path) {
                Ok(seg) => seg,
                Err(e) => {
                    tracing::warn!(%mailbox, "not indexing segment {}: {e}", s.name);
                    continue;
                }
            };
            update.segments_read += 1;
            // The live copy of an id may be in a later segment, but the
            // bytes are the same (the id is their hash): index it once.
            let mut done = Vec::new();
            let read = self.index_segment(
                mailbox,
                s,
                &segment,
                &mut writer,
                &mut |e| wanted.contains(&e.id),
                |id| done.push(id),
            )?;
            for id in done {
                wanted.remove(&id);
            }
            update.blocks_read += read.blocks;
            update.added += read.added;
        }
        writer.commit(&self.reader)?;
        Ok(update)
    }

    /// Adds a document for each message of `segment` that `wanted` accepts
    /// (only their blocks are decompressed), calling `indexed` with each
    /// id added. A damaged segment is indexed up to the damage and logged:
    /// it is never served, and the next sync repairs it.
    fn index_segment(
        &self,
        mailbox: &str,
        s: &SegmentRef,
        segment: &Segment,
        writer: &mut Writer<'_>,
        wanted: &mut dyn FnMut(&satchel_offline::Entry) -> bool,
        mut indexed: impl FnMut(MessageId),
    ) -> Result<SegmentRead> {
        let mut read = SegmentRead::default();
        let mut failed: Option<Error> = None;
        let walked = segment.for_each_message_where(wanted, |entry, raw| {
            if failed.is_some() {
                return Ok(());
            }
            // The same summary and document the service indexes.
            let summary = MessageSummary::extract(&raw);
            let doc = satchel_search::document(&self.fields, &entry.id, [mailbox], &summary);
            match writer.get().and_then(|w| Ok(w.add_document(doc)?)) {
                Ok(_) => {
                    read.added += 1;
                    indexed(entry.id);
                }
                Err(e) => failed = Some(e),
            }
            Ok(())
        });
        match walked {
            Ok(blocks) => read.blocks = blocks,
            Err(e) => tracing::warn!(%mailbox, "indexing stopped in segment {}: {e}", s.name),
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    /// Forgets every message of `mailbox` (its local copy was removed).
    pub fn remove_mailbox(&self, mailbox: &str) -> Result<()> {
        let searcher = self.reader.searcher();
        if searcher.search(&self.of_mailbox(mailbox), &Count)? > 0 {
            let mut writer: IndexWriter = self.index.writer(16 * 1024 * 1024)?;
            writer.delete_term(Term::from_field_text(self.fields.mailbox, mailbox));
            writer.commit()?;
            writer.wait_merging_threads()?;
            self.reader.reload()?;
        }
        IndexState::load(&self.dir).save(&self.dir, mailbox, None)
    }

    /// Searches the local copies in satchel-search's query language (as the
    /// service does); only `mailbox` if given. `copies` are the open local
    /// copies: they name the hits and give the bytes of their snippets.
    pub fn search(
        &self,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
        copies: &[(String, ReplicaIndex)],
    ) -> Result<SearchResults> {
        let within: Option<Vec<&str>> = mailbox.map(|mb| vec![mb]);
        let searcher = self.reader.searcher();
        let limit = limit.clamp(1, 10_000);
        // A message in several mailboxes has a document in each: enough
        // documents for `limit` distinct messages.
        let ranked: Ranked<MessageId> = SearchQuery::parse(query)?
            .search(
                &searcher,
                &self.fields,
                within.as_deref(),
                limit * copies.len().max(1),
                &|id| copied_bytes(copies, id),
            )
            .map_err(|e| match e {
                SearchError::Query(e) => Error::Query(e),
                SearchError::Index(e) => e.into(),
            })?;
        let mut seen = HashSet::new();
        let hits = ranked
            .hits
            .iter()
            .filter(|h| seen.insert(h.id))
            .filter_map(|h| hit(h, copies, &ranked))
            .take(limit)
            .collect();
        Ok(SearchResults {
            query: query.to_string(),
            hits,
        })
    }
}

/// What indexing one segment did.
#[derive(Default)]
struct SegmentRead {
    added: u64,
    blocks: u64,
}

/// The index writer of one update, opened on the first change (an update
/// with nothing to do takes no writer lock and commits nothing).
struct Writer<'i> {
    index: &'i Index,
    writer: Option<IndexWriter>,
}

impl<'i> Writer<'i> {
    fn new(index: &'i Index) -> Writer<'i> {
        Writer {
            index,
            writer: None,
        }
    }

    fn get(&mut self) -> Result<&mut IndexWriter> {
        let w = match self.writer.take() {
            Some(w) => w,
            // One indexing thread: one segment per update, not one per
            // thread (each segment repeats the words it shares with the
            // others).
            None => self.index.writer_with_num_threads(1, 64 * 1024 * 1024)?,
        };
        Ok(self.writer.insert(w))
    }

    /// Commits what was changed, if anything, and shows it to `reader`.
    fn commit(self, reader: &IndexReader) -> Result<()> {
        if let Some(mut w) = self.writer {
            w.commit()?;
            w.wait_merging_threads()?;
            reader.reload()?;
        }
        Ok(())
    }
}

/// Searches the home's local copies, without asking the service.
pub fn search_home(
    home: &Home,
    query: &str,
    mailbox: Option<&str>,
    limit: usize,
) -> Result<SearchResults> {
    let index = LocalIndex::open_home(home)?;
    index.search(query, mailbox, limit, &local_copies(home)?)
}

/// Every local copy that opens, with its mailbox; one that does not (damaged,
/// half-installed) is left out of the search with a warning.
fn local_copies(home: &Home) -> Result<Vec<(String, ReplicaIndex)>> {
    let mut copies = Vec::new();
    for mailbox in home.local_mailboxes()? {
        match Replica::new(home.replica_dir(&mailbox), &mailbox).open() {
            Ok(copy) => copies.push((mailbox, copy)),
            Err(e) => tracing::warn!(%mailbox, "not searching the local copy: {e}"),
        }
    }
    Ok(copies)
}

/// The bytes of the message whose id bytes are `id`, from the first copy
/// that holds it, for a phrase check; `None` (it does not match) if none can
/// give them.
fn copied_bytes(copies: &[(String, ReplicaIndex)], id: &[u8]) -> Option<Vec<u8>> {
    let id = MessageId::from_id_bytes(id)?;
    let (mailbox, copy) = copies.iter().find(|(_, c)| c.contains(&id))?;
    crate::read_checked(copy, mailbox, &id)
        .inspect_err(|e| tracing::warn!(%mailbox, "phrase not checked: {e}"))
        .ok()
}

/// The hit of `found`: named from the listing of the first copy that
/// holds it, in every copy that holds it, its snippet cut from the text its
/// phrase check parsed or else from that copy's bytes. None if no copy
/// holds it any more.
fn hit(
    found: &Hit<MessageId>,
    copies: &[(String, ReplicaIndex)],
    ranked: &Ranked<MessageId>,
) -> Option<SearchHit> {
    let mid = found.id;
    let holders: Vec<&(String, ReplicaIndex)> =
        copies.iter().filter(|(_, c)| c.contains(&mid)).collect();
    let (mailbox, copy) = holders.first()?;
    let entry = copy.get(&mid)?;
    let snippet = ranked.snippet(found, || {
        crate::read_checked(copy, mailbox, &mid)
            .inspect_err(|e| tracing::warn!(%mailbox, "no snippet for a search hit: {e}"))
            .ok()
    });
    Some(SearchHit {
        id: mid,
        mailboxes: holders.iter().map(|(mb, _)| mb.clone()).collect(),
        date: Some(entry.date).filter(|&d| d != 0),
        from: entry.from.clone(),
        subject: entry.subject.clone(),
        snippet,
        size: entry.size,
    })
}
