//! The local search index: tantivy over the local copies, so the laptop can
//! search while offline. Built and updated by each sync from the local copy
//! (only messages added or removed since the last sync are touched); kept in
//! `<home>/index`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use satchel_api::{SearchHit, SearchResults};
use satchel_message::MessageSummary;
use satchel_offline::{MessageId, ReplicaIndex, Segment};
use serde::{Deserialize, Serialize};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::fsutil;

/// Bumped when the schema changes: an index of another version is rebuilt.
const INDEX_VERSION: &str = "1";
const VERSION_FILE: &str = "satchel-laptop-index-version";

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    id: Field,
    mailbox: Field,
    subject: Field,
    from: Field,
    to: Field,
    body: Field,
    attachment: Field,
    date: Field,
    size: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        id: b.add_text_field("id", STRING | STORED),
        mailbox: b.add_text_field("mailbox", STRING | STORED),
        subject: b.add_text_field("subject", TEXT | STORED),
        from: b.add_text_field("from", TEXT | STORED),
        to: b.add_text_field("to", TEXT),
        body: b.add_text_field("body", TEXT | STORED),
        attachment: b.add_text_field("attachment", TEXT),
        date: b.add_i64_field("date", INDEXED | STORED),
        size: b.add_u64_field("size", STORED),
    };
    (b.build(), fields)
}

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
}

impl LocalIndex {
    /// Opens (or creates) the index in `dir`.
    pub fn open(dir: &Path) -> Result<LocalIndex> {
        let (schema, fields) = schema();
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        if version.as_deref().map(str::trim) != Some(INDEX_VERSION) {
            fsutil::remove_dir_if_exists(dir)?;
        }
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir)?
        } else {
            fsutil::private_dir(dir)?;
            let index = Index::create_in_dir(dir, schema)?;
            std::fs::write(dir.join(VERSION_FILE), INDEX_VERSION)
                .map_err(|e| Error::io(dir.join(VERSION_FILE), e))?;
            index
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LocalIndex {
            index,
            reader,
            fields,
        })
    }

    fn key(mailbox: &str, id: &str) -> String {
        format!("{mailbox}\n{id}")
    }

    /// The ids indexed for `mailbox`.
    fn indexed_ids(&self, mailbox: &str) -> Result<HashSet<String>> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.mailbox, mailbox),
            IndexRecordOption::Basic,
        );
        let docs = searcher.search(&q, &DocSetCollector)?;
        let mut out = HashSet::with_capacity(docs.len());
        for addr in docs {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_str()) {
                out.insert(id.to_string());
            }
        }
        Ok(out)
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
        let f = self.fields;
        let indexed = self.indexed_ids(mailbox)?;
        let live: HashMap<String, &MessageId> = replica.ids().map(|id| (id.to_hex(), id)).collect();
        let to_remove: Vec<&String> = indexed
            .iter()
            .filter(|id| !live.contains_key(*id))
            .collect();
        let to_add: Vec<&MessageId> = live
            .iter()
            .filter(|(hex, _)| !indexed.contains(*hex))
            .map(|(_, id)| *id)
            .collect();
        let mut update = IndexUpdate::default();
        if to_remove.is_empty() && to_add.is_empty() {
            return Ok(update);
        }
        let mut writer: tantivy::IndexWriter = self.index.writer(64 * 1024 * 1024)?;
        for id in &to_remove {
            writer.delete_term(Term::from_field_text(f.key, &LocalIndex::key(mailbox, id)));
            update.removed += 1;
        }
        // Read the new messages segment by segment, one decompression per
        // block (reading them one by one by id would decompress each block
        // again for every message in it).
        let mut wanted: HashSet<MessageId> = to_add.into_iter().copied().collect();
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
                if failed.is_some() || !wanted.contains(&entry.id) {
                    return Ok(());
                }
                // The live copy of this id may be in a later segment, but
                // the bytes are the same (the id is their hash).
                wanted.remove(&entry.id);
                let doc = self.document(mailbox, entry, &raw);
                let key = LocalIndex::key(mailbox, &entry.id.to_hex());
                writer.delete_term(Term::from_field_text(f.key, &key));
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

    /// The document of one message (parsed for subject, addresses, body text
    /// and attachment names; the segment's listing headers if unparsable).
    fn document(
        &self,
        mailbox: &str,
        entry: &satchel_offline::Entry,
        raw: &[u8],
    ) -> TantivyDocument {
        let f = self.fields;
        let hex = entry.id.to_hex();
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, LocalIndex::key(mailbox, &hex));
        doc.add_text(f.id, &hex);
        doc.add_text(f.mailbox, mailbox);
        doc.add_u64(f.size, raw.len() as u64);
        doc.add_i64(f.date, entry.date);
        // The same summary the archive indexes: parsed within the message
        // budget, a parser panic contained to this message.
        let m = MessageSummary::extract(raw);
        let unparsed = m.subject.is_empty() && m.from.is_empty();
        doc.add_text(
            f.subject,
            if unparsed { &entry.subject } else { &m.subject },
        );
        doc.add_text(f.from, if unparsed { &entry.from } else { &m.from });
        doc.add_text(f.to, format!("{} {}", m.to, m.cc));
        doc.add_text(f.body, &m.body);
        for a in &m.attachments {
            doc.add_text(f.attachment, &a.name);
        }
        doc
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

    /// Searches the local copies: words, `field:word` (subject, from, to,
    /// body, attachment), "a phrase"; only `mailbox` if given.
    pub fn search(
        &self,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<SearchResults> {
        let f = self.fields;
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.subject, f.from, f.to, f.body, f.attachment],
        );
        parser.set_conjunction_by_default();
        let user: Box<dyn Query> = if query.trim().is_empty() {
            Box::new(AllQuery)
        } else {
            parser.parse_query(query)?
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user.box_clone())];
        if let Some(mb) = mailbox {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.mailbox, mb),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let q = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let limit = limit.clamp(1, 10_000);
        // A message in two mailboxes has two documents: fetch extra, merge by id.
        let top = searcher.search(&q, &TopDocs::with_limit(limit * 2).order_by_score())?;
        let snippets = SnippetGenerator::create(&searcher, &*user, f.body).ok();
        let mut hits: Vec<SearchHit> = Vec::new();
        let mut pos: HashMap<String, usize> = HashMap::new();
        for (_score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let id = text(f.id);
            let mb = text(f.mailbox);
            if let Some(&i) = pos.get(&id) {
                if !hits[i].mailboxes.contains(&mb) {
                    hits[i].mailboxes.push(mb);
                }
                continue;
            }
            if hits.len() >= limit {
                continue;
            }
            let snippet = snippets
                .as_ref()
                .map(|g| {
                    g.snippet_from_doc(&doc)
                        .fragment()
                        .replace(['\n', '\r'], " ")
                })
                .unwrap_or_default();
            pos.insert(id.clone(), hits.len());
            hits.push(SearchHit {
                id,
                mailboxes: vec![mb],
                date: doc
                    .get_first(f.date)
                    .and_then(|v| v.as_i64())
                    .filter(|&d| d != 0),
                from: text(f.from),
                subject: text(f.subject),
                snippet,
                size: doc.get_first(f.size).and_then(|v| v.as_u64()).unwrap_or(0),
            });
        }
        Ok(SearchResults {
            query: query.to_string(),
            hits,
        })
    }
}
