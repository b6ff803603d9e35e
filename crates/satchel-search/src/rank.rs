//! A search whose phrases are checked as late and as little as it can be:
//! the best `limit` documents, as a positional index ranks them, reading as
//! few messages as it takes to know them.
//!
//! 1. **Bounds.** The query runs with each phrase in [`Mode::Bound`]: every
//!    candidate matches as often as its words' frequencies allow (a phrase
//!    under an odd number of `NOT`s matches nothing). Every other clause
//!    (words, the day range, the mailboxes) is tantivy's own, so it prunes
//!    before any message is read. This finds every document the checked
//!    query finds, each with a score at least its true one: scores only
//!    grow with a phrase's count and with more clauses matching.
//! 2. **Checks, best bound first.** In batches, in the order of their
//!    bounds, the documents' messages are read (on every core) and each
//!    phrase they are a candidate of is counted; then the query with the
//!    phrases in [`Mode::Checked`] gives their true scores.
//! 3. **Early stop.** Once `limit` checked hits rank before the next bound
//!    (by score, then on a tie by index order, as tantivy's `TopDocs` ranks),
//!    no document left can rank among them: each scores at most its bound,
//!    and those with the same bound come later in index order.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use satchel_message::MessageSummary;
use tantivy::collector::TopDocs;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DocAddress, DocSet, Score, Searcher, TERMINATED};

use crate::phrase::{MessageBytes, PhraseSlot};
use crate::schema::{Fields, FromDocId, id_in_segment, id_of};
use crate::snippet::Snippets;

/// How many documents the first batch checks at least, however small the
/// limit: too few, and the cores wait on each other more than they work.
const FIRST_BATCH: usize = 64;

/// Batches double up to this many documents: enough to keep both cores busy
/// on a phrase whose candidates rarely match, few enough not to check many
/// more than the early stop needed.
const MAX_BATCH: usize = 2048;

/// One search: its query with phrases bounding scores and with phrases
/// checked, over the same phrase slots.
pub(crate) struct Search<'a> {
    pub searcher: &'a Searcher,
    pub fields: &'a Fields,
    pub bound: Box<dyn Query>,
    pub checked: Box<dyn Query>,
    pub slots: &'a [Arc<PhraseSlot>],
    /// False if a bound may be lower than a true score (a negative boost):
    /// then every document found is checked.
    pub bounds_hold: bool,
}

/// A document and its score (or its score's bound).
#[derive(Clone, Copy, Debug)]
struct Scored {
    score: Score,
    at: DocAddress,
}

impl Scored {
    /// Best first: higher score, then lower address (tantivy's order).
    fn rank(&self, other: &Scored) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.at.cmp(&other.at))
    }
}

/// What a search found, best first, and how to cut each hit's snippet.
pub struct Ranked<T> {
    pub hits: Vec<Hit<T>>,
    snippets: Snippets,
}

/// One document found.
pub struct Hit<T> {
    /// The name the document's id bytes read as.
    pub id: T,
    pub score: Score,
    /// The message as a phrase check parsed it, kept for its snippet.
    parsed: Option<Arc<MessageSummary>>,
}

impl<T> Ranked<T> {
    /// The snippet of `hit`: from the text its phrase check already parsed,
    /// or else from the bytes `raw` gives (empty if it gives none).
    pub fn snippet(&self, hit: &Hit<T>, raw: impl FnOnce() -> Option<Vec<u8>>) -> String {
        match &hit.parsed {
            Some(summary) => self.snippets.of_body(&summary.body),
            None => raw().map_or_else(String::new, |raw| self.snippets.of_message(&raw)),
        }
    }
}

impl Search<'_> {
    /// The best `limit` documents (at least one is asked for).
    pub fn best<T: FromDocId>(
        self,
        limit: usize,
        read: &MessageBytes<'_>,
    ) -> tantivy::Result<Ranked<T>> {
        let limit = limit.max(1);
        let snippets = Snippets::new(self.searcher, self.fields, &*self.checked);
        let (best, mut parsed) = if self.slots.is_empty() {
            (self.without_phrases(limit)?, HashMap::new())
        } else {
            self.checking(limit, read)?
        };
        let mut hits = Vec::with_capacity(best.len());
        for s in best {
            if let Some(id) = id_of(self.searcher, self.fields, s.at)? {
                let parsed = parsed.remove(&s.at);
                hits.push(Hit {
                    id,
                    score: s.score,
                    parsed,
                });
            }
        }
        Ok(Ranked { hits, snippets })
    }

    /// A query without phrases, as tantivy ranks it.
    fn without_phrases(&self, limit: usize) -> tantivy::Result<Vec<Scored>> {
        let top = self
            .searcher
            .search(&*self.checked, &TopDocs::with_limit(limit).order_by_score())?;
        Ok(top
            .into_iter()
            .map(|(score, at)| Scored { score, at })
            .collect())
    }

    /// The best `limit` documents, checking phrases in bound order until no
    /// unchecked document can rank among them; and the messages parsed for
    /// them.
    #[allow(clippy::type_complexity)]
    fn checking(
        &self,
        limit: usize,
        read: &MessageBytes<'_>,
    ) -> tantivy::Result<(Vec<Scored>, HashMap<DocAddress, Arc<MessageSummary>>)> {
        let scoring = EnableScoring::enabled_from_searcher(self.searcher);
        let bounds = self.bounds(scoring)?;
        let checked = self.checked.weight(scoring)?;
        let mut best: Vec<Scored> = Vec::new();
        let mut parsed = HashMap::new();
        let (mut next, mut batch) = (0, limit.clamp(FIRST_BATCH, MAX_BATCH));
        while let Some(first) = bounds.get(next) {
            let known = best.len() >= limit && best[limit - 1].rank(first) == Ordering::Less;
            if known && self.bounds_hold {
                break;
            }
            let end = (next + batch).min(bounds.len());
            let mut texts = self.check(&bounds[next..end], read)?;
            for s in self.scores(&*checked, &bounds[next..end])? {
                if let Some(text) = texts.remove(&s.at) {
                    parsed.insert(s.at, text);
                }
                best.push(s);
            }
            best.sort_by(Scored::rank);
            for dropped in best.drain(limit.min(best.len())..) {
                parsed.remove(&dropped.at);
            }
            next = end;
            batch = (batch * 2).min(MAX_BATCH);
        }
        Ok((best, parsed))
    }

    /// Every document the query with bounding phrases finds, best bound
    /// first.
    fn bounds(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Vec<Scored>> {
        let weight = self.bound.weight(scoring)?;
        let mut all = Vec::new();
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            let alive = segment.alive_bitset();
            weight.for_each(segment, &mut |doc, score| {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    all.push(Scored {
                        score,
                        at: DocAddress::new(ord as u32, doc),
                    });
                }
            })?;
        }
        all.sort_by(Scored::rank);
        Ok(all)
    }

    /// Checks the phrases of each document in `batch` against its message,
    /// on every core, and records the matches in the slots. Returns the
    /// messages parsed, by document.
    fn check(
        &self,
        batch: &[Scored],
        read: &MessageBytes<'_>,
    ) -> tantivy::Result<HashMap<DocAddress, Arc<MessageSummary>>> {
        let texts: Vec<Option<(DocAddress, Arc<MessageSummary>)>> = batch
            .par_iter()
            .map(|s| self.check_one(s.at, read))
            .collect::<tantivy::Result<_>>()?;
        Ok(texts.into_iter().flatten().collect())
    }

    /// Checks the phrases document `at` is a candidate of; its message as
    /// parsed, if it was read.
    fn check_one(
        &self,
        at: DocAddress,
        read: &MessageBytes<'_>,
    ) -> tantivy::Result<Option<(DocAddress, Arc<MessageSummary>)>> {
        let segment = self.searcher.segment_reader(at.segment_ord);
        let id = segment.segment_id();
        let slots: Vec<&PhraseSlot> = self
            .slots
            .iter()
            .map(|s| &**s)
            .filter(|s| s.holds(id, at.doc_id))
            .collect();
        if slots.is_empty() {
            return Ok(None);
        }
        let Some(name) = id_in_segment::<Vec<u8>>(segment, self.fields, at.doc_id)? else {
            return Ok(None);
        };
        let Some(raw) = read(&name) else {
            return Ok(None);
        };
        let summary = Arc::new(MessageSummary::extract(&raw));
        for slot in slots {
            let mut analyzer = self.searcher.index().tokenizer_for_field(slot.field())?;
            let count = slot.count(&mut analyzer, self.fields, id, &summary);
            slot.record(id, at.doc_id, count);
        }
        Ok(Some((at, summary)))
    }

    /// The true scores of the documents of `batch` that the checked query
    /// matches (their phrases checked).
    fn scores(&self, checked: &dyn Weight, batch: &[Scored]) -> tantivy::Result<Vec<Scored>> {
        let mut docs: Vec<DocAddress> = batch.iter().map(|s| s.at).collect();
        docs.sort();
        let mut out = Vec::new();
        for group in docs.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
            let segment = self.searcher.segment_reader(group[0].segment_ord);
            let mut scorer = checked.scorer(segment, 1.0)?;
            for &at in group {
                let mut doc = scorer.doc();
                if doc < at.doc_id {
                    doc = scorer.seek(at.doc_id);
                }
                if doc == TERMINATED {
                    break;
                }
                if doc == at.doc_id {
                    out.push(Scored {
                        score: scorer.score(),
                        at,
                    });
                }
            }
        }
        Ok(out)
    }
}
