//! The one query language: tantivy's grammar (words, `"phrases"`,
//! `field:word`, `AND`/`OR`/`NOT`, parentheses) over the fields of
//! [`Fields`], words in every text field by default and all of them required,
//! plus `after:YYYY-MM-DD` and `before:YYYY-MM-DD`.

use std::ops::Bound;

use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermSetQuery};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::{DateTime, Index, Term};

use crate::error::QueryError;
use crate::schema::Fields;

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
    pub fn build(
        &self,
        index: &Index,
        f: &Fields,
        within: Option<&[&str]>,
    ) -> Result<Box<dyn Query>, QueryError> {
        let words: Box<dyn Query> = match &self.words {
            None => Box::new(AllQuery),
            Some(ast) => {
                let mut parser = QueryParser::for_index(index, f.default_fields());
                parser.set_conjunction_by_default();
                parser.build_query_from_user_input_ast(ast.clone())?
            }
        };
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
        Ok(Box::new(BooleanQuery::new(clauses)))
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
