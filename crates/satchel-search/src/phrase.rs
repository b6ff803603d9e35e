//! Phrases without a positions file. The index keeps each word's documents
//! and frequencies but not where in a text the word stands (positions were
//! 40% of an index). A phrase is answered in two steps: the documents that
//! hold all its words in the field are the candidates, and each candidate is
//! checked against its message's text, read from the bytes the store or the
//! copy already has and tokenized as its document was. The count of matches
//! comes from tantivy's own phrase scorer run over those positions, and a
//! match scores as tantivy's phrase query scores it (BM25 over the phrase's
//! words with the count as frequency), so answers and ranking are those of a
//! positional index.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use satchel_message::MessageSummary;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::index::SegmentId;
use tantivy::query::{Bm25Weight, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{MAX_TOKEN_LEN, TextAnalyzer};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

use crate::schema::{Fields, id_in_segment};

/// Where a phrase check reads a message: the raw bytes of the message whose
/// id bytes are given, `None` if they cannot be read (then its documents do
/// not match the phrase).
pub type MessageBytes<'a> = dyn FnMut(&[u8]) -> Option<Vec<u8>> + 'a;

mod slop;

/// A phrase as the query parser reads it: its field, its words with their
/// offsets in the phrase, and its slop (`"a b"~2`: how far its words may
/// move).
#[derive(Clone, Debug)]
pub(crate) struct Phrase {
    pub field: Field,
    pub terms: Vec<(usize, Term)>,
    pub slop: u32,
}

/// How many summaries one search keeps: a phrase of common words has
/// candidates by the ten thousand, and a summary holds a whole body text.
const KEPT_SUMMARIES: usize = 1024;

/// The summaries read for one search, by id bytes: a message is read and
/// parsed once however many phrases and fields check it (the first
/// [`KEPT_SUMMARIES`] of them; later ones are read again if needed).
pub(crate) struct Texts<'s, 'a> {
    read: &'s mut MessageBytes<'a>,
    seen: HashMap<Vec<u8>, Option<Arc<MessageSummary>>>,
}

impl<'s, 'a> Texts<'s, 'a> {
    pub fn new(read: &'s mut MessageBytes<'a>) -> Self {
        Texts {
            read,
            seen: HashMap::new(),
        }
    }

    fn summary(&mut self, id: &[u8]) -> Option<Arc<MessageSummary>> {
        if let Some(seen) = self.seen.get(id) {
            return seen.clone();
        }
        let summary = (self.read)(id).map(|raw| Arc::new(MessageSummary::extract(&raw)));
        if self.seen.len() < KEPT_SUMMARIES {
            self.seen.insert(id.to_vec(), summary.clone());
        }
        summary
    }
}

/// The documents of each segment that match a phrase, with their match
/// counts, in document order.
type Counts = HashMap<SegmentId, Vec<(DocId, u32)>>;

/// Finds the documents of `searcher` that match `phrase` and how often.
pub(crate) fn check(
    searcher: &Searcher,
    f: &Fields,
    phrase: Phrase,
    texts: &mut Texts<'_, '_>,
) -> tantivy::Result<CountedPhrase> {
    let mut analyzer = searcher.index().tokenizer_for_field(phrase.field)?;
    let mut counts = Counts::new();
    for segment in searcher.segment_readers() {
        let mut found = Vec::new();
        let (docs, order) = candidates(segment, &phrase)?;
        for doc in docs {
            let Some(id) = id_in_segment::<Vec<u8>>(segment, f, doc)? else {
                continue;
            };
            let Some(summary) = texts.summary(&id) else {
                continue;
            };
            let values = f.texts(phrase.field, &summary);
            let count = count_in(&mut analyzer, &values, &phrase, &order);
            if count > 0 {
                found.push((doc, count));
            }
        }
        counts.insert(segment.segment_id(), found);
    }
    Ok(CountedPhrase {
        phrase,
        counts: Some(Arc::new(counts)),
    })
}

/// The live documents of `segment` that hold every word of `phrase` in its
/// field, in order; and the order tantivy's phrase scorer would take the
/// words in here (fewest documents first, then as in the phrase).
fn candidates(
    segment: &SegmentReader,
    phrase: &Phrase,
) -> tantivy::Result<(Vec<DocId>, Vec<usize>)> {
    let inverted = segment.inverted_index(phrase.field)?;
    let mut postings = Vec::with_capacity(phrase.terms.len());
    for (_, term) in &phrase.terms {
        match inverted.read_postings(term, IndexRecordOption::Basic)? {
            Some(p) => postings.push(p),
            None => return Ok((Vec::new(), Vec::new())),
        }
    }
    let mut order: Vec<usize> = (0..postings.len()).collect();
    order.sort_by_key(|&i| postings[i].cost());
    let alive = segment.alive_bitset();
    let mut out = Vec::new();
    let Some((first, rest)) = postings.split_first_mut() else {
        return Ok((out, order));
    };
    let mut doc = first.doc();
    'next: while doc != TERMINATED {
        for p in rest.iter_mut() {
            let at = if p.doc() >= doc { p.doc() } else { p.seek(doc) };
            if at > doc {
                doc = first.seek(at);
                continue 'next;
            }
        }
        if alive.is_none_or(|a| a.is_alive(doc)) {
            out.push(doc);
        }
        doc = first.advance();
    }
    Ok((out, order))
}

/// How often `phrase` occurs in the values of one document's field, as
/// tantivy's phrase scorer counts: without slop, the positions where every
/// word stands at its offset from the first; with slop, by its algorithm
/// (see [`slop`]) over the words in `order`.
fn count_in(analyzer: &mut TextAnalyzer, values: &[&str], phrase: &Phrase, order: &[usize]) -> u32 {
    let positions = positions(analyzer, values, &phrase.terms);
    let last = phrase.terms.iter().map(|&(o, _)| o).max().unwrap_or(0) as u32;
    let shifted: Vec<Vec<u32>> = phrase
        .terms
        .iter()
        .zip(positions)
        .map(|(&(offset, _), at)| {
            let shift = last - offset as u32;
            at.into_iter().map(|p| p + shift).collect()
        })
        .collect();
    if phrase.slop > 0 {
        let ordered: Vec<Vec<u32>> = order.iter().map(|&i| shifted[i].clone()).collect();
        return slop::count(&ordered, phrase.slop);
    }
    let mut sets = shifted.into_iter().map(BTreeSet::from_iter);
    let Some(mut common) = sets.next() else {
        return 0;
    };
    for next in sets {
        common.retain(|p| next.contains(p));
    }
    common.len() as u32
}

/// Where each of `terms` stands in `values`, numbered as tantivy's indexer
/// numbers a multi-valued text field: each value's tokens from where the
/// last value ended plus one, so a phrase never spans two values.
fn positions(
    analyzer: &mut TextAnalyzer,
    values: &[&str],
    terms: &[(usize, Term)],
) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); terms.len()];
    let mut next_start = 0u32;
    for value in values {
        let base = next_start;
        let mut end = base;
        let mut stream = analyzer.token_stream(value);
        stream.process(&mut |token| {
            if token.text.len() > MAX_TOKEN_LEN {
                return;
            }
            let start = base + token.position as u32;
            end = end.max(start + token.position_length as u32);
            for ((_, term), at) in terms.iter().zip(out.iter_mut()) {
                if term.value().as_str() == Some(token.text.as_str()) {
                    at.push(start);
                }
            }
        });
        next_start = end + 1;
    }
    out
}

/// A phrase whose matches are known (see [`check`]): a query over exactly
/// those documents, scored as tantivy's `PhraseQuery` scores them.
#[derive(Clone)]
pub(crate) struct CountedPhrase {
    phrase: Phrase,
    /// `None`: not checked; every candidate counts as one match.
    counts: Option<Arc<Counts>>,
}

impl CountedPhrase {
    /// The phrase taken as all its words (see [`crate::SearchQuery::build`]).
    pub fn unchecked(phrase: Phrase) -> Self {
        CountedPhrase {
            phrase,
            counts: None,
        }
    }
}

impl std::fmt::Debug for CountedPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountedPhrase")
            .field("phrase", &self.phrase)
            .finish()
    }
}

impl Query for CountedPhrase {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let terms: Vec<Term> = self.phrase.terms.iter().map(|(_, t)| t.clone()).collect();
        let bm25 = match scoring {
            EnableScoring::Enabled {
                statistics_provider,
                ..
            } => Some(Bm25Weight::for_terms(statistics_provider, &terms)?),
            EnableScoring::Disabled { .. } => None,
        };
        Ok(Box::new(CountedWeight {
            phrase: self.phrase.clone(),
            bm25,
            counts: self.counts.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (_, term) in &self.phrase.terms {
            visitor(term, true);
        }
    }
}

struct CountedWeight {
    phrase: Phrase,
    bm25: Option<Bm25Weight>,
    counts: Option<Arc<Counts>>,
}

impl CountedWeight {
    /// As tantivy's phrase weight: the field's norms when scoring.
    fn fieldnorms(&self, reader: &SegmentReader) -> tantivy::Result<FieldNormReader> {
        if self.bm25.is_some()
            && let Some(norms) = reader.fieldnorms_readers().get_field(self.phrase.field)?
        {
            return Ok(norms);
        }
        Ok(FieldNormReader::constant(reader.max_doc(), 1))
    }

    fn counted(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<CountedScorer> {
        let docs = match &self.counts {
            Some(counts) => counts
                .get(&reader.segment_id())
                .cloned()
                .unwrap_or_default(),
            None => candidates(reader, &self.phrase)?
                .0
                .into_iter()
                .map(|doc| (doc, 1))
                .collect(),
        };
        Ok(CountedScorer {
            docs,
            at: 0,
            bm25: self.bm25.as_ref().map(|w| w.boost_by(boost)),
            norms: self.fieldnorms(reader)?,
        })
    }
}

impl Weight for CountedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(self.counted(reader, boost)?))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.counted(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #({doc}) does not match"
            )));
        }
        Ok(Explanation::new(
            "Phrase (checked against the message)",
            scorer.score(),
        ))
    }
}

struct CountedScorer {
    /// The matching documents and their counts, in order.
    docs: Vec<(DocId, u32)>,
    at: usize,
    bm25: Option<Bm25Weight>,
    norms: FieldNormReader,
}

impl DocSet for CountedScorer {
    fn advance(&mut self) -> DocId {
        if self.at < self.docs.len() {
            self.at += 1;
        }
        self.doc()
    }
    fn doc(&self) -> DocId {
        self.docs.get(self.at).map_or(TERMINATED, |&(doc, _)| doc)
    }
    fn size_hint(&self) -> u32 {
        self.docs.len().saturating_sub(self.at) as u32
    }
}

impl Scorer for CountedScorer {
    fn score(&mut self) -> Score {
        let Some(&(doc, count)) = self.docs.get(self.at) else {
            return 0.0;
        };
        match &self.bm25 {
            Some(w) => w.score(self.norms.fieldnorm_id(doc), count),
            None => 1.0,
        }
    }
}
