//! The search index: tantivy over subject, from, to, cc, body, attachment names
//! and date, with each message's mailboxes as a filter field.
//!
//! The index is derived data. The catalog marks a message `indexed` only after the
//! index commit that holds it, so anything lost in a crash is re-indexed at start.

use crate::error::{ArchiveError, IoContext, Result};
use crate::message::MessageSummary;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, QueryParserError, RangeQuery, TermSetQuery,
};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, INDEXED, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Bumped when the schema changes; an index of another version is rebuilt.
pub const INDEX_VERSION: u32 = 1;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    mailbox: Field,
    subject: Field,
    from: Field,
    to: Field,
    cc: Field,
    body: Field,
    attachment: Field,
    date: Field,
    size: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let date_opts = DateOptions::from(INDEXED)
        .set_stored()
        .set_fast()
        .set_precision(DateTimePrecision::Seconds);
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        mailbox: b.add_text_field("mailbox", STRING | STORED),
        subject: b.add_text_field("subject", TEXT | STORED),
        from: b.add_text_field("from", TEXT | STORED),
        to: b.add_text_field("to", TEXT),
        cc: b.add_text_field("cc", TEXT),
        body: b.add_text_field("body", TEXT | STORED),
        attachment: b.add_text_field("attachment", TEXT | STORED),
        date: b.add_date_field("date", date_opts),
        size: b.add_u64_field("size", STORED),
    };
    (b.build(), fields)
}

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
    pub id: String,
    pub mailboxes: usize,
}

/// One message's document, as [`SearchIndex::put_batch`] takes it.
pub struct DocInput<'a> {
    pub id: &'a str,
    pub mailboxes: &'a [String],
    pub summary: &'a MessageSummary,
    pub size: u64,
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
    pub id: String,
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
        let (schema, fields) = schema();
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

    fn document(&self, d: &DocInput<'_>) -> TantivyDocument {
        let f = self.fields;
        let s = d.summary;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, d.id);
        for mb in d.mailboxes {
            doc.add_text(f.mailbox, mb);
        }
        doc.add_text(f.subject, &s.subject);
        doc.add_text(f.from, &s.from);
        doc.add_text(f.to, &s.to);
        doc.add_text(f.cc, &s.cc);
        doc.add_text(f.body, &s.body);
        for a in &s.attachments {
            doc.add_text(f.attachment, &a.name);
        }
        if let Some(ts) = s.date {
            doc.add_date(f.date, DateTime::from_timestamp_secs(ts));
        }
        doc.add_u64(f.size, d.size);
        doc
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
                writer.delete_term(Term::from_field_text(self.fields.id, d.id));
                writer.add_document(self.document(d))?;
            }
            Ok(())
        })();
        match added {
            Ok(()) => {
                w.pending.extend(docs.iter().map(|d| Pending {
                    id: d.id.to_string(),
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

    /// Searches the mailboxes in `allowed` (the caller's searchable ones). A hit
    /// names only those of its mailboxes, and a `mailbox:` filter on any other
    /// mailbox is refused, so a search tells nothing about mailboxes the caller
    /// may not search, not even whether they exist.
    pub fn search(&self, req: &SearchRequest, allowed: &[String]) -> Result<Vec<SearchHit>> {
        let f = self.fields;
        let allowed: HashSet<&str> = allowed.iter().map(String::as_str).collect();
        let (text, after, before) = split_dates(&req.query)?;
        let user_query = self.user_query(&text, &allowed)?;
        let mailboxes: Vec<&str> = match &req.mailbox {
            Some(mb) => allowed.iter().copied().filter(|a| a == mb).collect(),
            None => allowed.iter().copied().collect(),
        };
        if mailboxes.is_empty() {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user_query.box_clone())];
        let terms = mailboxes
            .iter()
            .map(|m| Term::from_field_text(f.mailbox, m));
        clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        if after.is_some() || before.is_some() {
            let lower = after.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_date_for_search(
                    f.date,
                    DateTime::from_timestamp_secs(t),
                ))
            });
            let upper = before.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_date_for_search(
                    f.date,
                    DateTime::from_timestamp_secs(t),
                ))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let limit = req.limit.clamp(1, 10_000);
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let snippets = SnippetGenerator::create(&searcher, &*user_query, f.body).ok();
        let mut hits = Vec::with_capacity(top.len());
        for (_score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let snippet = snippets
                .as_ref()
                .map(|g| {
                    g.snippet_from_doc(&doc)
                        .fragment()
                        .replace(['\n', '\r'], " ")
                })
                .unwrap_or_default();
            hits.push(SearchHit {
                id: text(f.id),
                mailboxes: doc
                    .get_all(f.mailbox)
                    .filter_map(|v| v.as_str())
                    .filter(|m| allowed.contains(m))
                    .map(str::to_string)
                    .collect(),
                date: doc
                    .get_first(f.date)
                    .and_then(|v| v.as_datetime())
                    .map(|d| d.into_timestamp_secs()),
                from: text(f.from),
                subject: text(f.subject),
                snippet,
                size: doc.get_first(f.size).and_then(|v| v.as_u64()).unwrap_or(0),
            });
        }
        Ok(hits)
    }
}

impl SearchIndex {
    /// Parses the text of a query (dates already taken out), refusing first any
    /// `mailbox:` filter outside `allowed`: its hits, or their absence, would
    /// tell what another mailbox holds.
    fn user_query(&self, text: &str, allowed: &HashSet<&str>) -> Result<Box<dyn Query>> {
        if text.trim().is_empty() {
            return Ok(Box::new(AllQuery));
        }
        require_shallow(text)?;
        let ast = query_grammar::parse_query(text).map_err(|_| {
            ArchiveError::Query(QueryParserError::SyntaxError(text.to_string()).to_string())
        })?;
        let mut named = Vec::new();
        self.mailbox_filters(&ast, &mut named)?;
        if let Some(m) = named.into_iter().find(|m| !allowed.contains(m.as_str())) {
            return Err(ArchiveError::NotSearchable(m));
        }
        let f = self.fields;
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.subject, f.from, f.to, f.cc, f.body, f.attachment],
        );
        parser.set_conjunction_by_default();
        parser
            .build_query_from_user_input_ast(ast)
            .map_err(|e| ArchiveError::Query(e.to_string()))
    }

    /// Collects the mailbox names a query filters on. Ranges, patterns and
    /// wildcards over mailboxes are refused: they cannot be checked name by name.
    fn mailbox_filters(&self, ast: &UserInputAst, named: &mut Vec<String>) -> Result<()> {
        let leaf = match ast {
            UserInputAst::Clause(clauses) => {
                return clauses
                    .iter()
                    .try_for_each(|(_, a)| self.mailbox_filters(a, named));
            }
            UserInputAst::Boost(inner, _) => return self.mailbox_filters(inner, named),
            UserInputAst::Leaf(leaf) => &**leaf,
        };
        let field = match leaf {
            UserInputLeaf::Literal(l) => l.field_name.as_deref(),
            UserInputLeaf::Range { field, .. }
            | UserInputLeaf::Set { field, .. }
            | UserInputLeaf::Regex { field, .. } => field.as_deref(),
            UserInputLeaf::Exists { field } => Some(field.as_str()),
            UserInputLeaf::All => None,
        };
        let schema = self.index.schema();
        let on_mailbox = field
            .and_then(|name| schema.find_field(name))
            .is_some_and(|(field, _)| field == self.fields.mailbox);
        if !on_mailbox {
            return Ok(());
        }
        match leaf {
            UserInputLeaf::Literal(l) if !l.prefix => named.push(l.phrase.clone()),
            UserInputLeaf::Set { elements, .. } => named.extend(elements.iter().cloned()),
            _ => {
                return Err(ArchiveError::Query(
                    "mailbox: takes mailbox addresses, not a range, pattern or wildcard".into(),
                ));
            }
        }
        Ok(())
    }
}

/// How deeply a query may nest groups and `NOT`s. The query grammar and every
/// walk of its tree recurse once per level: 5,000 nested parentheses overflowed
/// the stack and aborted the whole service. Real queries nest a few levels.
const MAX_QUERY_NESTING: usize = 32;

/// Refuses a query that nests deeper than [`MAX_QUERY_NESTING`], counting
/// conservatively: every `(`, even quoted or escaped, and every `NOT`.
fn require_shallow(text: &str) -> Result<()> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    let nots = text.split_whitespace().filter(|w| *w == "NOT").count();
    if deepest + nots > MAX_QUERY_NESTING {
        return Err(ArchiveError::Query(format!(
            "the query nests parentheses and NOTs more than {MAX_QUERY_NESTING} levels deep"
        )));
    }
    Ok(())
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

/// Pulls `after:` and `before:` terms out of a query; tantivy's own range syntax
/// needs full RFC 3339 timestamps, which nobody types.
fn split_dates(query: &str) -> Result<(String, Option<i64>, Option<i64>)> {
    let mut rest = Vec::new();
    let (mut after, mut before) = (None, None);
    for word in query.split_whitespace() {
        if let Some(d) = word.strip_prefix("after:") {
            after = Some(day_start(d)?);
        } else if let Some(d) = word.strip_prefix("before:") {
            before = Some(day_start(d)?);
        } else {
            rest.push(word);
        }
    }
    Ok((rest.join(" "), after, before))
}

fn day_start(day: &str) -> Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| ArchiveError::Query(format!("dates are written YYYY-MM-DD, not {day:?}")))?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp())
        .unwrap_or_default())
}
