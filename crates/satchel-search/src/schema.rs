//! The one document schema: what a message's search document holds.

use satchel_message::{MessageId, MessageSummary};
use tantivy::collector::TopDocs;
use tantivy::query::Query;
use tantivy::schema::{
    BytesOptions, DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, STRING, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::{DateTime, DocAddress, Searcher, TantivyDocument};

/// Bumped when the schema or the way a document is built changes: an index
/// of another version is rebuilt from the store (service) or the copy (laptop).
/// 2: one schema for both indexes; no stored text, no stored mailboxes.
/// 3: the id as 32 bytes (indexed, and a column to name hits), nothing
///    stored; no word positions (phrases are checked against the message).
pub const SCHEMA_VERSION: u32 = 3;

/// The fields of [`Fields::schema`].
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// The message id as bytes: indexed to replace or delete a document, and
    /// a fast column to name a hit. Nothing else of a message is kept.
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

/// What names a document: its bytes in the index. A message is named by its
/// [`MessageId`] (32 bytes); text names serve tests and tools.
pub trait DocId {
    /// The bytes the index keeps for this name.
    fn id_bytes(&self) -> &[u8];
}

/// A name read back from the index.
pub trait FromDocId: Sized {
    /// The name of the document whose id bytes are `bytes`; `None` if they
    /// cannot be one (a damaged entry).
    fn from_id_bytes(bytes: &[u8]) -> Option<Self>;
}

impl DocId for MessageId {
    fn id_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl FromDocId for MessageId {
    fn from_id_bytes(bytes: &[u8]) -> Option<Self> {
        Some(MessageId(bytes.try_into().ok()?))
    }
}

impl DocId for str {
    fn id_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl FromDocId for String {
    fn from_id_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl FromDocId for Vec<u8> {
    fn from_id_bytes(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl<T: DocId + ?Sized> DocId for &T {
    fn id_bytes(&self) -> &[u8] {
        (**self).id_bytes()
    }
}

impl Fields {
    /// The schema every Satchel index is created with, and its fields.
    pub fn schema() -> (Schema, Fields) {
        Fields::build(IndexRecordOption::WithFreqs)
    }

    /// The same schema with positions on the text fields: what the query
    /// parser is given, so that it reads a phrase as a phrase (which
    /// crate::phrase then answers without positions). Tests build a
    /// positional index with it to compare answers and ranking.
    pub fn parsing_schema() -> Schema {
        Fields::build(IndexRecordOption::WithFreqsAndPositions).0
    }

    fn build(words: IndexRecordOption) -> (Schema, Fields) {
        let mut b = Schema::builder();
        let date = DateOptions::from(FAST).set_precision(DateTimePrecision::Seconds);
        let id = BytesOptions::default().set_indexed().set_fast();
        // Words with their frequencies (ranking) and no positions: a phrase
        // is checked against the message text instead (crate::phrase).
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(words),
        );
        let fields = Fields {
            id: b.add_bytes_field("id", id),
            mailbox: b.add_text_field("mailbox", STRING),
            subject: b.add_text_field("subject", text.clone()),
            from: b.add_text_field("from", text.clone()),
            to: b.add_text_field("to", text.clone()),
            cc: b.add_text_field("cc", text.clone()),
            body: b.add_text_field("body", text.clone()),
            attachment: b.add_text_field("attachment", text),
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

    /// The texts of `field` in the document of `s`, in the order
    /// [`document`] adds them (one per value: phrases never span two).
    pub fn texts<'s>(&self, field: Field, s: &'s MessageSummary) -> Vec<&'s str> {
        if field == self.subject {
            vec![&s.subject]
        } else if field == self.from {
            vec![&s.from]
        } else if field == self.to {
            vec![&s.to]
        } else if field == self.cc {
            vec![&s.cc]
        } else if field == self.body {
            vec![&s.body]
        } else if field == self.attachment {
            s.attachments.iter().map(|a| a.name.as_str()).collect()
        } else {
            Vec::new()
        }
    }
}

/// The document of message `id` in `mailboxes`, from its summary.
pub fn document<'a, I: DocId + ?Sized>(
    f: &Fields,
    id: &I,
    mailboxes: impl IntoIterator<Item = &'a str>,
    s: &MessageSummary,
) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_bytes(f.id, id.id_bytes());
    for mb in mailboxes {
        doc.add_text(f.mailbox, mb);
    }
    for field in f.default_fields() {
        for text in f.texts(field, s) {
            doc.add_text(field, text);
        }
    }
    if let Some(ts) = s.date {
        doc.add_date(f.date, DateTime::from_timestamp_secs(ts));
    }
    doc
}

/// The ids of the best `limit` documents for `query`, best first. An index
/// that holds a message once per mailbox (the laptop's) may name an id twice.
/// A document whose id is not a `T` (damaged) is left out.
pub fn top_ids<T: FromDocId>(
    searcher: &Searcher,
    f: &Fields,
    query: &dyn Query,
    limit: usize,
) -> tantivy::Result<Vec<T>> {
    let top = searcher.search(query, &TopDocs::with_limit(limit).order_by_score())?;
    let mut ids = Vec::with_capacity(top.len());
    for (_score, addr) in top {
        if let Some(id) = id_of(searcher, f, addr)? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The id of the document at `addr`, read from the id column.
pub fn id_of<T: FromDocId>(
    searcher: &Searcher,
    f: &Fields,
    addr: DocAddress,
) -> tantivy::Result<Option<T>> {
    let segment = searcher.segment_reader(addr.segment_ord);
    id_in_segment(segment, f, addr.doc_id)
}

/// The id of document `doc` of `segment`.
pub(crate) fn id_in_segment<T: FromDocId>(
    segment: &tantivy::SegmentReader,
    f: &Fields,
    doc: tantivy::DocId,
) -> tantivy::Result<Option<T>> {
    let name = segment.schema().get_field_name(f.id);
    let Some(column) = segment.fast_fields().bytes(name)? else {
        return Ok(None);
    };
    let Some(ord) = column.term_ords(doc).next() else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    column.ord_to_bytes(ord, &mut bytes)?;
    Ok(T::from_id_bytes(&bytes))
}
