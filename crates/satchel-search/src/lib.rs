//! The one search language and document schema of Satchel.
//!
//! The service's index (satchel-archive) and the laptop's local index
//! (satchel-laptop) both build their documents with [`document`], parse
//! queries with [`SearchQuery`] and cut snippets with [`Snippets`], so the same
//! query finds the same messages online and offline.
//!
//! An index keeps nothing the archive already holds: no stored text, the
//! message id (32 bytes) that names a hit, and per word the documents holding
//! it and how often, not where. Subject, sender, date and size come from the
//! catalog (service) or the copy's listing (laptop); snippets are cut from,
//! and phrases checked against, the message bytes the store or the copy
//! already has ([`SearchQuery::search`]).

mod error;
mod phrase;
mod query;
mod rank;
mod schema;
mod snippet;

pub use error::{QueryError, SearchError};
pub use phrase::MessageBytes;
pub use query::{MAX_QUERY_NESTING, SearchQuery};
pub use rank::{Hit, Ranked};
pub use schema::{DocId, Fields, FromDocId, SCHEMA_VERSION, document, id_of, top_ids};
pub use snippet::Snippets;
