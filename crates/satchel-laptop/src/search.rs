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

use std::collections::HashSet;
use std::path::Path;

use satchel_api::{SearchHit, SearchResults};
use satchel_message::MessageSummary;
use satchel_offline::{MessageId, ReplicaIndex, Segment};
use satchel_search::{Fields, FromDocId, Hit, Ranked, SearchError, SearchQuery, id_of};
use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexReader, ReloadPolicy, Term};

use crate::config::Home;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::replica::Replica;

const VERSION_FILE: &str = "satchel-laptop-index-version";

/// What an update changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexUpdate {
    pub added: u64,
    pub removed: u64,
    pub seconds: f64,
}

impl IndexUpdate {
    pub fn add(&mut self, other: &IndexUpdate) {
        self.added += other.added;
        self.removed += other.removed;
        self.seconds += other.seconds;
    }
}

/// The home's search index.
pub struct LocalIndex {
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
            index
        } else {
            Index::open_in_dir(dir)?
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LocalIndex {
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
            let indexed = replica
                .open()
                .and_then(|copy| index.update_mailbox(&mailbox, replica.dir(), &copy));
            if let Err(e) = indexed {
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

    /// Makes the index of `mailbox` match its local copy: adds the messages
    /// not indexed yet, removes those no longer live.
    pub fn update_mailbox(
        &self,
        mailbox: &str,
        dir: &Path,
        replica: &ReplicaIndex,
    ) -> Result<IndexUpdate> {
        let started = std::time::Instant::now();
        let indexed = self.indexed_ids(mailbox)?;
        let live: HashSet<&MessageId> = replica.ids().collect();
        let to_remove: Vec<&MessageId> = indexed.iter().filter(|id| !live.contains(id)).collect();
        let mut wanted: HashSet<MessageId> = live
            .into_iter()
            .filter(|id| !indexed.contains(*id))
            .copied()
            .collect();
        let mut update = IndexUpdate::default();
        if to_remove.is_empty() && wanted.is_empty() {
            return Ok(update);
        }
        // One indexing thread: one segment per update, not one per thread
        // (each segment repeats the words it shares with the others).
        let mut writer: tantivy::IndexWriter =
            self.index.writer_with_num_threads(1, 64 * 1024 * 1024)?;
        for id in &to_remove {
            writer.delete_query(self.of_message(mailbox, id))?;
            update.removed += 1;
        }
        // Read the new messages segment by segment, one decompression per
        // block (reading them one by one by id would decompress each block
        // again for every message in it).
        let mut failed: Option<tantivy::TantivyError> = None;
        for s in &replica.manifest().segments {
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
            let walked = segment.for_each_message(|entry, raw| {
                // The live copy of this id may be in a later segment, but
                // the bytes are the same (the id is their hash).
                if failed.is_some() || !wanted.remove(&entry.id) {
                    return Ok(());
                }
                // The same summary and document the service indexes.
                let summary = MessageSummary::extract(&raw);
                let doc = satchel_search::document(&self.fields, &entry.id, [mailbox], &summary);
                match writer.add_document(doc) {
                    Ok(_) => update.added += 1,
                    Err(e) => failed = Some(e),
                }
                Ok(())
            });
            if let Err(e) = walked {
                // Damaged: not indexed (and never served); the next sync repairs it.
                tracing::warn!(%mailbox, "indexing stopped in segment {}: {e}", s.name);
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        update.seconds = started.elapsed().as_secs_f64();
        Ok(update)
    }

    /// Forgets every message of `mailbox` (its local copy was removed).
    pub fn remove_mailbox(&self, mailbox: &str) -> Result<()> {
        if self.indexed_ids(mailbox)?.is_empty() {
            return Ok(());
        }
        let mut writer: tantivy::IndexWriter = self.index.writer(16 * 1024 * 1024)?;
        writer.delete_term(Term::from_field_text(self.fields.mailbox, mailbox));
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
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
