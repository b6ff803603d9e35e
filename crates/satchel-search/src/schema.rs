//! The one document schema: what a message's search document holds.

use satchel_message::MessageSummary;
use tantivy::collector::TopDocs;
use tantivy::query::Query;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::{DateTime, Searcher, TantivyDocument};

/// Bumped when the schema or the way a document is built changes: an index
/// of another version is rebuilt from the store (service) or the copy (laptop).
/// 2: one schema for both indexes; no stored text, no stored mailboxes.
pub const SCHEMA_VERSION: u32 = 2;

/// The fields of [`Fields::schema`].
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// The message id: indexed to replace or delete a document, stored to
    /// name a hit. The only stored value.
    pub id: Field,
    /// The mailboxes the document stands for; a filter, not stored (which
    /// mailboxes hold a message is the catalog's or the copy's to say).
    pub mailbox: Field,
    pub subject: Field,
    pub from: Field,
    pub to: Field,
    pub cc: Field,
    pub body: Field,
    pub attachment: Field,
    /// The `Date:` header, for `after:` and `before:` (a fast field: ranges
    /// are read from its column).
    pub date: Field,
}

impl Fields {
    /// The schema every Satchel index is created with, and its fields.
    pub fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let date = DateOptions::from(FAST).set_precision(DateTimePrecision::Seconds);
        let fields = Fields {
            id: b.add_text_field("id", STRING | STORED),
            mailbox: b.add_text_field("mailbox", STRING),
            subject: b.add_text_field("subject", TEXT),
            from: b.add_text_field("from", TEXT),
            to: b.add_text_field("to", TEXT),
            cc: b.add_text_field("cc", TEXT),
            body: b.add_text_field("body", TEXT),
            attachment: b.add_text_field("attachment", TEXT),
            date: b.add_date_field("date", date),
        };
        (b.build(), fields)
    }

    /// The fields a word without `field:` is looked up in.
    pub(crate) fn default_fields(&self) -> Vec<Field> {
        vec![
            self.subject,
            self.from,
            self.to,
            self.cc,
            self.body,
            self.attachment,
        ]
    }
}

/// The document of message `id` in `mailboxes`, from its summary.
pub fn document<'a>(
    f: &Fields,
    id: &str,
    mailboxes: impl IntoIterator<Item = &'a str>,
    s: &MessageSummary,
) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, id);
    for mb in mailboxes {
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
    doc
}

/// The ids of the best `limit` documents for `query`, best first. An index
/// that holds a message once per mailbox (the laptop's) may name an id twice.
pub fn top_ids(
    searcher: &Searcher,
    f: &Fields,
    query: &dyn Query,
    limit: usize,
) -> tantivy::Result<Vec<String>> {
    let top = searcher.search(query, &TopDocs::with_limit(limit).order_by_score())?;
    let mut ids = Vec::with_capacity(top.len());
    for (_score, addr) in top {
        let doc: TantivyDocument = searcher.doc(addr)?;
        if let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}
