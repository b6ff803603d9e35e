//! Phrases without a positions file. The index keeps each word's documents
//! and frequencies but not where in a text the word stands (positions were
//! 40% of an index). A phrase's candidates are the documents that hold all
//! its words in the field; a candidate is checked against its message's
//! text, read from the bytes the store or the copy already has and tokenized
//! as its document was. The count of matches comes from tantivy's own phrase
//! scorer run over those positions, and a match scores as tantivy's phrase
//! query scores it (BM25 over the phrase's words with the count as
//! frequency), so answers and ranking are those of a positional index.
//!
//! Which candidates are checked, and in what order, is
//! [`crate::rank`]'s: the count can be no higher than its words' frequencies
//! allow ([`Phrase::most_matches`]), which bounds a candidate's score before
//! it is read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use satchel_message::MessageSummary;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::index::SegmentId;
use tantivy::postings::Postings;
use tantivy::query::{Bm25Weight, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{MAX_TOKEN_LEN, TextAnalyzer};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

use crate::schema::Fields;

/// Where a phrase check reads a message: the raw bytes of the message whose
/// id bytes are given, `None` if they cannot be read (then its documents do
/// not match the phrase). Called from several threads at once.
pub type MessageBytes<'a> = dyn Fn(&[u8]) -> Option<Vec<u8>> + Sync + 'a;

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

impl Phrase {
    /// The most matches a document can hold, given how often each word
    /// occurs in its field (`freqs`, as in `terms`). Without slop a match
    /// needs every word at its own place: at most the rarest word's count.
    /// Tantivy's slop count uses up one position of its last word per match
    /// (of both words, with two): at most the commonest word's count.
    fn most_matches(&self, freqs: &[u32]) -> u32 {
        let least = freqs.iter().copied().min().unwrap_or(0);
        if self.slop == 0 || freqs.len() <= 2 {
            least
        } else {
            freqs.iter().copied().max().unwrap_or(0)
        }
    }
}

/// The candidates of a phrase in one segment: the live documents holding
/// all its words in its field, in order, each with the most matches it can
/// hold ([`Phrase::most_matches`]); and the order tantivy's phrase scorer
/// would take the words in here (fewest documents first, then as in the
/// phrase), which its slop count depends on.
#[derive(Clone, Debug, Default)]
struct Candidates {
    docs: Vec<(DocId, u32)>,
    order: Vec<usize>,
}

/// The candidates of `phrase` in `segment`.
fn candidates(segment: &SegmentReader, phrase: &Phrase) -> tantivy::Result<Candidates> {
    let inverted = segment.inverted_index(phrase.field)?;
    let mut postings = Vec::with_capacity(phrase.terms.len());
    for (_, term) in &phrase.terms {
        match inverted.read_postings(term, IndexRecordOption::WithFreqs)? {
            Some(p) => postings.push(p),
            None => return Ok(Candidates::default()),
        }
    }
    let mut order: Vec<usize> = (0..postings.len()).collect();
    order.sort_by_key(|&i| postings[i].cost());
    let alive = segment.alive_bitset();
    let mut docs = Vec::new();
    let Some(mut doc) = postings.first().map(|p| p.doc()) else {
        return Ok(Candidates { docs, order });
    };
    let mut freqs = vec![0; postings.len()];
    'next: while doc != TERMINATED {
        for p in postings.iter_mut() {
            let at = if p.doc() >= doc { p.doc() } else { p.seek(doc) };
            if at > doc {
                doc = at;
                continue 'next;
            }
        }
        if alive.is_none_or(|a| a.is_alive(doc)) {
            for (freq, p) in freqs.iter_mut().zip(&postings) {
                *freq = p.term_freq();
            }
            docs.push((doc, phrase.most_matches(&freqs)));
        }
        doc = postings[0].advance();
    }
    Ok(Candidates { docs, order })
}

/// One phrase of a search ([`crate::rank`]): its candidates, whether it
/// stands under an odd number of `NOT`s, and the matches checked so far.
/// Shared by the query that bounds scores and the one that ranks.
pub(crate) struct PhraseSlot {
    phrase: Phrase,
    negated: bool,
    candidates: HashMap<SegmentId, Candidates>,
    /// Checked candidates that match, and how often, by segment.
    matched: Mutex<HashMap<SegmentId, BTreeMap<DocId, u32>>>,
}

impl PhraseSlot {
    /// The slot of `phrase` over `searcher`'s segments.
    pub fn new(searcher: &Searcher, phrase: Phrase, negated: bool) -> tantivy::Result<Self> {
        let mut all = HashMap::new();
        for segment in searcher.segment_readers() {
            all.insert(segment.segment_id(), candidates(segment, &phrase)?);
        }
        Ok(PhraseSlot {
            phrase,
            negated,
            candidates: all,
            matched: Mutex::new(HashMap::new()),
        })
    }

    /// The field the phrase is in.
    pub fn field(&self) -> Field {
        self.phrase.field
    }

    /// Whether document `doc` of `segment` is a candidate.
    pub fn holds(&self, segment: SegmentId, doc: DocId) -> bool {
        self.candidates
            .get(&segment)
            .is_some_and(|c| c.docs.binary_search_by_key(&doc, |&(d, _)| d).is_ok())
    }

    /// How often the phrase occurs in `summary`, the message of a candidate
    /// of `segment`.
    pub fn count(
        &self,
        analyzer: &mut TextAnalyzer,
        f: &Fields,
        segment: SegmentId,
        summary: &MessageSummary,
    ) -> u32 {
        let order = self
            .candidates
            .get(&segment)
            .map_or(&[][..], |c| c.order.as_slice());
        count_in(
            analyzer,
            &f.texts(self.phrase.field, summary),
            &self.phrase,
            order,
        )
    }

    /// Records that document `doc` of `segment` was checked and matches
    /// `count` times.
    pub fn record(&self, segment: SegmentId, doc: DocId, count: u32) {
        if count == 0 {
            return;
        }
        let mut matched = self.matched.lock().unwrap_or_else(|p| p.into_inner());
        matched.entry(segment).or_default().insert(doc, count);
    }

    /// The documents of `segment` a query of this phrase matches in
    /// `mode`, with their counts, in order.
    fn docs(&self, segment: SegmentId, mode: Mode) -> Vec<(DocId, u32)> {
        match mode {
            Mode::Bound if self.negated => Vec::new(),
            Mode::Bound => self
                .candidates
                .get(&segment)
                .map(|c| c.docs.clone())
                .unwrap_or_default(),
            Mode::Checked => {
                let matched = self.matched.lock().unwrap_or_else(|p| p.into_inner());
                matched
                    .get(&segment)
                    .map(|docs| docs.iter().map(|(&d, &n)| (d, n)).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// How a phrase of a search answers (see [`crate::rank`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Before any check: as if every candidate matched as often as it can,
    /// or, under an odd number of `NOT`s, as if none did. The whole query
    /// then finds every document the checked one finds, each scored at
    /// least as high.
    Bound,
    /// The candidates recorded as checked and matching.
    Checked,
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

/// A phrase as a tantivy query: over the documents its source says match,
/// scored as tantivy's `PhraseQuery` scores them.
#[derive(Clone)]
pub(crate) struct CountedPhrase {
    phrase: Phrase,
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// Not checked: every candidate counts as one match.
    Unchecked,
    /// A phrase of a ranked search.
    Slot(Arc<PhraseSlot>, Mode),
}

impl CountedPhrase {
    /// The phrase taken as all its words (see [`crate::SearchQuery::build`]).
    pub fn unchecked(phrase: Phrase) -> Self {
        CountedPhrase {
            phrase,
            source: Source::Unchecked,
        }
    }

    /// The phrase of `slot` in `mode`.
    pub fn of_slot(slot: Arc<PhraseSlot>, mode: Mode) -> Self {
        CountedPhrase {
            phrase: slot.phrase.clone(),
            source: Source::Slot(slot, mode),
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
            source: self.source.clone(),
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
    source: Source,
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

    /// The scorer of `reader`, over what the source says matches now (a
    /// ranked search records more matches between its scorers).
    fn counted(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<CountedScorer> {
        let docs = match &self.source {
            Source::Slot(slot, mode) => slot.docs(reader.segment_id(), *mode),
            Source::Unchecked => candidates(reader, &self.phrase)?
                .docs
                .into_iter()
                .map(|(doc, _)| (doc, 1))
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
