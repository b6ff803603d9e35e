//! What can be wrong with a query. Every case is the user's to fix, so each
//! message says how.

use crate::query::MAX_QUERY_NESTING;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Deeper than [`MAX_QUERY_NESTING`]: parsing it would recurse too deeply.
    #[error("the query nests parentheses and NOTs more than {MAX_QUERY_NESTING} levels deep")]
    TooDeep,
    /// `after:` or `before:` with something other than a day.
    #[error("dates are written YYYY-MM-DD, not {0:?}")]
    BadDate(String),
    /// Unbalanced quotes or parentheses, a stray operator.
    #[error("cannot parse the query {0:?}: check its quotes and parentheses")]
    Syntax(String),
    /// A range, pattern or wildcard over mailboxes: access is checked name by
    /// name, so a filter must name its mailboxes.
    #[error("mailbox: takes mailbox addresses, not a range, pattern or wildcard")]
    MailboxPattern,
    /// A phrase ending in `*` (a phrase prefix): answered from word
    /// positions, which the index does not keep.
    #[error("a phrase cannot end in * ({0:?}): search its words or the whole phrase")]
    PhrasePrefix(String),
    /// A field that does not exist, a term its field cannot hold.
    #[error(transparent)]
    Invalid(#[from] tantivy::query::QueryParserError),
}

/// Why a search could not be made: the query (the user's to fix) or the
/// index (the service's or the laptop's).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("reading the search index: {0}")]
    Index(#[from] tantivy::TantivyError),
}
