//! Snippets cut from the message itself: the index stores no text, so the
//! caller passes the bytes its store or copy already holds.

use satchel_message::MessageSummary;
use tantivy::Searcher;
use tantivy::query::Query;
use tantivy::snippet::SnippetGenerator;

use crate::schema::Fields;

/// The snippets of one search: the body words of its query, highlighted in
/// each hit's body text.
pub struct Snippets(Option<SnippetGenerator>);

impl Snippets {
    /// For `query` as built by [`crate::SearchQuery::build`] (its filters
    /// hold no body words, so they change nothing here).
    pub fn new(searcher: &Searcher, f: &Fields, query: &dyn Query) -> Snippets {
        Snippets(SnippetGenerator::create(searcher, query, f.body).ok())
    }

    /// The snippet of a message, from its raw bytes (parsed within the
    /// message budget, as for its document).
    pub fn of_message(&self, raw: &[u8]) -> String {
        self.of_body(&MessageSummary::extract(raw).body)
    }

    /// The snippet of a body text, on one line.
    pub fn of_body(&self, body: &str) -> String {
        self.0
            .as_ref()
            .map(|g| g.snippet(body.trim()).fragment().replace(['\n', '\r'], " "))
            .unwrap_or_default()
    }
}
