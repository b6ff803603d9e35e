//! The one search language and document schema of Satchel.
//!
//! The service's index (satchel-archive) and the laptop's local index
//! (satchel-laptop) both build their documents with [`document`], parse
//! queries with [`SearchQuery`] and cut snippets with [`Snippets`], so the same
//! query finds the same messages online and offline.
//!
//! An index keeps nothing the archive already holds: no stored text, only the
//! message id that names a hit. Subject, sender, date and size come from the
//! catalog (service) or the copy's listing (laptop), and snippets are cut from
//! the message bytes the store or the copy already has.

mod error;
mod query;
mod schema;
mod snippet;

pub use error::QueryError;
pub use query::{MAX_QUERY_NESTING, SearchQuery};
pub use schema::{Fields, SCHEMA_VERSION, document, top_ids};
pub use snippet::Snippets;
