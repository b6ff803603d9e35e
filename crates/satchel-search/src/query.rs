//! The one query language: tantivy's grammar (words, `"phrases"`,
//! `field:word`, `AND`/`OR`/`NOT`, parentheses) over the fields of
//! [`Fields`], words in every text field by default and all of them required,
//! plus `after:YYYY-MM-DD` and `before:YYYY-MM-DD`.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query,
    QueryParser, QueryParserError, RangeQuery, TermSetQuery,
};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::Field;
use tantivy::{DateTime, Index, Score, Searcher, Term};

use crate::error::{QueryError, SearchError};
use std::sync::Arc;

use crate::phrase::{CountedPhrase, MessageBytes, Mode, Phrase, PhraseSlot};
use crate::rank::{self, Ranked};
use crate::schema::{Fields, FromDocId};

/// How deeply a query may nest groups and `NOT`s. The query grammar and every
/// walk of its tree recurse once per level: 5,000 nested parentheses overflowed
/// the stack and aborted the whole service. Real queries nest a few levels.
pub const MAX_QUERY_NESTING: usize = 32;

/// A parsed query: its words, its day range and the mailboxes it names.
#[derive(Clone)]
pub struct SearchQuery {
    /// `None`: every message (the query had no words).
    words: Option<UserInputAst>,
    /// Unix seconds, inclusive.
    after: Option<i64>,
    /// Unix seconds, exclusive.
    before: Option<i64>,
    mailboxes: Vec<String>,
}

impl SearchQuery {
    /// Parses what a person typed. Refuses a query nested too deeply, a date
    /// that is not a day, and a `mailbox:` range or pattern.
    pub fn parse(text: &str) -> Result<SearchQuery, QueryError> {
        let (words, after, before) = split_dates(text)?;
        let mut query = SearchQuery {
            words: None,
            after,
            before,
            mailboxes: Vec::new(),
        };
        if words.trim().is_empty() {
            return Ok(query);
        }
        require_shallow(&words)?;
        let ast = query_grammar::parse_query(&words).map_err(|_| QueryError::Syntax(words))?;
        mailbox_filters(&ast, &mut query.mailboxes)?;
        query.words = Some(negations_within_all(ast));
        Ok(query)
    }

    /// The mailboxes the query filters on (`mailbox:ADDRESS`): a caller
    /// refuses the query if any is not the searcher's to search.
    pub fn mailboxes(&self) -> &[String] {
        &self.mailboxes
    }

    /// The query over an index of [`Fields::schema`]: the words, the day
    /// range, and, if `within` is given, only documents of those mailboxes.
    ///
    /// A phrase here matches every document holding its words in its field
    /// (each counted as one match): with no message text at hand, nothing
    /// checks their order. Searches use [`SearchQuery::build_checked`].
    pub fn build(
        &self,
        index: &Index,
        f: &Fields,
        within: Option<&[&str]>,
    ) -> Result<Box<dyn Query>, QueryError> {
        let words = self.words(index, f, &mut |p, _| {
            Ok(Box::new(CountedPhrase::unchecked(p)) as Box<dyn Query>)
        });
        match words {
            Ok(words) => Ok(self.filtered(words, f, within)),
            Err(SearchError::Query(e)) => Err(e),
            Err(SearchError::Index(e)) => Err(QueryError::Invalid(
                tantivy::query::QueryParserError::UnsupportedQuery(e.to_string()),
            )),
        }
    }

    /// The best `limit` documents for the query, best first, as a
    /// positional index would rank them (score, then index order), with
    /// its phrases checked against the messages' texts: `read` gives the
    /// raw bytes of the message whose id bytes it is given (from the store
    /// or the copy). The other clauses (words, day range, mailboxes) choose
    /// the candidates first, and only as many are checked as it takes to
    /// know the best `limit` (see [`crate::rank`]).
    pub fn search<T: FromDocId>(
        &self,
        searcher: &Searcher,
        f: &Fields,
        within: Option<&[&str]>,
        limit: usize,
        read: &MessageBytes<'_>,
    ) -> Result<Ranked<T>, SearchError> {
        let mut slots = Vec::new();
        let bound = self.words(searcher.index(), f, &mut |p, negated| {
            let slot = Arc::new(PhraseSlot::new(searcher, p, negated)?);
            slots.push(slot.clone());
            Ok(Box::new(CountedPhrase::of_slot(slot, Mode::Bound)) as Box<dyn Query>)
        })?;
        // The same walk meets the same phrases in the same order.
        let mut same = slots.iter();
        let checked = self.words(searcher.index(), f, &mut |_, _| {
            let slot = same
                .next()
                .ok_or_else(|| tantivy::TantivyError::InternalError("a phrase met once".into()))?;
            Ok(Box::new(CountedPhrase::of_slot(slot.clone(), Mode::Checked)) as Box<dyn Query>)
        })?;
        let search = rank::Search {
            searcher,
            fields: f,
            bound: self.filtered(bound, f, within),
            checked: self.filtered(checked, f, within),
            slots: &slots,
            bounds_hold: !self.words.as_ref().is_some_and(negative_boost),
        };
        Ok(search.best(limit, read)?)
    }

    /// The words of the query; each phrase made by `phrases`.
    fn words(
        &self,
        index: &Index,
        f: &Fields,
        phrases: &mut PhraseMaker<'_>,
    ) -> Result<Box<dyn Query>, SearchError> {
        let Some(ast) = &self.words else {
            return Ok(Box::new(AllQuery));
        };
        let mut parser = QueryParser::new(
            Fields::parsing_schema(),
            f.default_fields(),
            index.tokenizers().clone(),
        );
        parser.set_conjunction_by_default();
        let mut b = Builder {
            parser,
            index,
            phrases,
            negated: false,
        };
        let converted = b.convert(ast.clone())?;
        if converted.all_negative && !converted.empty_clause {
            return Err(QueryError::Invalid(QueryParserError::AllButQueryForbidden).into());
        }
        Ok(converted.query.unwrap_or_else(|| Box::new(EmptyQuery)))
    }

    /// `words` within the mailboxes and the day range.
    fn filtered(
        &self,
        words: Box<dyn Query>,
        f: &Fields,
        within: Option<&[&str]>,
    ) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, words)];
        if let Some(mailboxes) = within {
            let terms = mailboxes
                .iter()
                .map(|m| Term::from_field_text(f.mailbox, m));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        if self.after.is_some() || self.before.is_some() {
            let day =
                |t: i64| Term::from_field_date_for_search(f.date, DateTime::from_timestamp_secs(t));
            let lower = self
                .after
                .map_or(Bound::Unbounded, |t| Bound::Included(day(t)));
            let upper = self
                .before
                .map_or(Bound::Unbounded, |t| Bound::Excluded(day(t)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        Box::new(BooleanQuery::new(clauses))
    }
}

/// Makes the query of one phrase; told whether it stands under an odd
/// number of `NOT`s.
type PhraseMaker<'a> = dyn FnMut(Phrase, bool) -> Result<Box<dyn Query>, SearchError> + 'a;

/// A part of the query tree as tantivy's parser would make it.
struct Converted {
    /// `None`: nothing to search (a word of no tokens); left out of its group.
    query: Option<Box<dyn Query>>,
    /// The parser refuses a query that only excludes.
    all_negative: bool,
    /// The whole was an empty group (the parser accepts that, finding nothing).
    empty_clause: bool,
}

/// Turns the query tree into tantivy queries the way tantivy's
/// `QueryParser::build_query_from_user_input_ast` does (groups, the default
/// AND, boosts, dropping parts that hold no word, refusing a query that
/// only excludes), with each leaf made by that parser itself, except that a
/// phrase becomes the query `phrases` makes: the parser would read its
/// words' positions, which the index does not keep.
struct Builder<'p, 'i> {
    parser: QueryParser,
    index: &'i Index,
    phrases: &'p mut PhraseMaker<'p>,
    /// Whether the part being converted stands under an odd number of `NOT`s.
    negated: bool,
}

impl Builder<'_, '_> {
    fn convert(&mut self, ast: UserInputAst) -> Result<Converted, SearchError> {
        match ast {
            UserInputAst::Clause(children) => {
                let empty_clause = children.is_empty();
                let mut clauses = Vec::with_capacity(children.len());
                let mut all_negative = true;
                for (occur, child) in children {
                    let occur = occur.unwrap_or(Occur::Must);
                    let flip = occur == Occur::MustNot;
                    self.negated ^= flip;
                    let child = self.convert(child);
                    self.negated ^= flip;
                    let child = child?;
                    all_negative &= occur == Occur::MustNot || child.all_negative;
                    if let Some(q) = child.query {
                        clauses.push((occur, q));
                    }
                }
                let query = (!clauses.is_empty())
                    .then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>);
                Ok(Converted {
                    query,
                    all_negative,
                    empty_clause,
                })
            }
            UserInputAst::Boost(inner, boost) => {
                let boost = boost.into_inner() as Score;
                let mut inner = self.convert(*inner)?;
                if (boost - 1.0).abs() >= Score::EPSILON {
                    let q = inner.query.take().unwrap_or_else(|| Box::new(EmptyQuery));
                    inner.query = Some(Box::new(BoostQuery::new(q, boost)));
                    inner.empty_clause = false;
                }
                Ok(inner)
            }
            UserInputAst::Leaf(leaf) => self.leaf(*leaf),
        }
    }

    fn leaf(&mut self, leaf: UserInputLeaf) -> Result<Converted, SearchError> {
        let literal = match &leaf {
            UserInputLeaf::Literal(l) => Some((l.phrase.clone(), l.slop)),
            _ => None,
        };
        let q = self
            .parser
            .build_query_from_user_input_ast(UserInputAst::Leaf(Box::new(leaf)))
            .map_err(QueryError::from)?;
        if q.is::<EmptyQuery>() {
            // A word that yields no token in any field: the parser's empty
            // group, which it drops from the enclosing one.
            return Ok(Converted {
                query: None,
                all_negative: true,
                empty_clause: true,
            });
        }
        let query = match literal {
            Some((text, slop)) => self.phrases_of(q, &text, slop)?,
            None => q,
        };
        Ok(Converted {
            query: Some(query),
            all_negative: false,
            empty_clause: false,
        })
    }

    /// `q` (the parser's query of the literal `text`) with each phrase
    /// query replaced.
    fn phrases_of(
        &mut self,
        q: Box<dyn Query>,
        text: &str,
        slop: u32,
    ) -> Result<Box<dyn Query>, SearchError> {
        if let Some(b) = q.downcast_ref::<BooleanQuery>() {
            let mut clauses = Vec::with_capacity(b.clauses().len());
            for (occur, c) in b.clauses() {
                clauses.push((*occur, self.phrases_of(c.box_clone(), text, slop)?));
            }
            return Ok(Box::new(BooleanQuery::new(clauses)));
        }
        if q.is::<PhrasePrefixQuery>() {
            return Err(QueryError::PhrasePrefix(text.to_string()).into());
        }
        let Some(p) = q.downcast_ref::<PhraseQuery>() else {
            return Ok(q);
        };
        let terms = phrase_terms(self.index, p.field(), text)?;
        if terms.iter().map(|(_, t)| t).ne(p.phrase_terms().iter()) {
            return Err(QueryError::Syntax(text.to_string()).into());
        }
        (self.phrases)(
            Phrase {
                field: p.field(),
                terms,
                slop,
            },
            self.negated,
        )
    }
}

/// The words of `text` in `field` with their offsets, as the query parser
/// makes a phrase of them (which it does not tell).
fn phrase_terms(
    index: &Index,
    field: Field,
    text: &str,
) -> Result<Vec<(usize, Term)>, SearchError> {
    let mut analyzer = index.tokenizer_for_field(field)?;
    let mut terms = Vec::new();
    analyzer.token_stream(text).process(&mut |token| {
        terms.push((token.position, Term::from_field_text(field, &token.text)));
    });
    terms.sort_by_key(|&(offset, _)| offset);
    Ok(terms)
}

/// Whether the query boosts a part by less than nothing (`a^-1`): a match
/// then lowers a score, and a phrase's most matches no longer bound it.
fn negative_boost(ast: &UserInputAst) -> bool {
    match ast {
        UserInputAst::Clause(clauses) => clauses.iter().any(|(_, a)| negative_boost(a)),
        UserInputAst::Boost(inner, boost) => boost.into_inner() < 0.0 || negative_boost(inner),
        UserInputAst::Leaf(_) => false,
    }
}

/// Gives every group made only of `NOT`s something to subtract from: all
/// messages. Tantivy matches nothing for a boolean query without a positive
/// clause, so `razor AND NOT spam` (a required group holding only `NOT spam`)
/// found nothing while `razor NOT spam` worked.
fn negations_within_all(ast: UserInputAst) -> UserInputAst {
    match ast {
        UserInputAst::Clause(clauses) => {
            let only_negations = !clauses.is_empty()
                && clauses
                    .iter()
                    .all(|(occur, _)| *occur == Some(Occur::MustNot));
            let mut clauses: Vec<_> = clauses
                .into_iter()
                .map(|(occur, a)| (occur, negations_within_all(a)))
                .collect();
            if only_negations {
                clauses.push((
                    Some(Occur::Must),
                    UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
                ));
            }
            UserInputAst::Clause(clauses)
        }
        UserInputAst::Boost(inner, boost) => {
            UserInputAst::Boost(Box::new(negations_within_all(*inner)), boost)
        }
        leaf => leaf,
    }
}

/// Collects the mailbox names a query filters on. Ranges, patterns and
/// wildcards over mailboxes are refused: they cannot be checked name by name.
fn mailbox_filters(ast: &UserInputAst, named: &mut Vec<String>) -> Result<(), QueryError> {
    let leaf = match ast {
        UserInputAst::Clause(clauses) => {
            return clauses
                .iter()
                .try_for_each(|(_, a)| mailbox_filters(a, named));
        }
        UserInputAst::Boost(inner, _) => return mailbox_filters(inner, named),
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
    if field != Some("mailbox") {
        return Ok(());
    }
    match leaf {
        UserInputLeaf::Literal(l) if !l.prefix => named.push(l.phrase.clone()),
        UserInputLeaf::Set { elements, .. } => named.extend(elements.iter().cloned()),
        _ => return Err(QueryError::MailboxPattern),
    }
    Ok(())
}

/// Refuses a query that nests deeper than [`MAX_QUERY_NESTING`], counting
/// conservatively: every `(`, even quoted or escaped, and every `NOT`.
fn require_shallow(text: &str) -> Result<(), QueryError> {
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
        return Err(QueryError::TooDeep);
    }
    Ok(())
}

/// Pulls `after:` and `before:` terms out of a query; tantivy's own range
/// syntax needs full RFC 3339 timestamps, which nobody types.
fn split_dates(query: &str) -> Result<(String, Option<i64>, Option<i64>), QueryError> {
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

/// Midnight UTC at the start of `day` (YYYY-MM-DD), in Unix seconds.
fn day_start(day: &str) -> Result<i64, QueryError> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .ok_or_else(|| QueryError::BadDate(day.to_string()))
}
