//! The query language over a real tantivy index of real summaries.

use satchel_message::MessageSummary;
use satchel_search::{Fields, QueryError, SearchQuery, Snippets, document, top_ids};
use tantivy::{Index, IndexReader};

fn message(subject: &str, cc: &str, date: &str, body: &str) -> MessageSummary {
    let raw = format!(
        "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\nCc: {cc}\r\n\
         Subject: {subject}\r\nDate: {date}\r\n\r\n{body}\r\n"
    );
    MessageSummary::extract(raw.as_bytes())
}

/// Three messages: "a" in box1 (July 2002), "b" in box1 and box2 (August),
/// "c" in box2 (September, no date range hit for `before:`).
fn index() -> (Index, IndexReader, Fields) {
    let (schema, f) = Fields::schema();
    let index = Index::create_in_ram(schema);
    let mut w: tantivy::IndexWriter = index.writer(15_000_000).expect("writer");
    let docs = [
        (
            "a",
            vec!["box1"],
            message(
                "razor report",
                "dave@example.com",
                "Mon, 15 Jul 2002 10:00:00 +0000",
                "the razor agent flagged it",
            ),
        ),
        (
            "b",
            vec!["box1", "box2"],
            message(
                "quokka minutes",
                "erin@example.com",
                "Thu, 01 Aug 2002 00:00:00 +0000",
                "razor sharp minutes of the quokka meeting",
            ),
        ),
        (
            "c",
            vec!["box2"],
            message(
                "wombat",
                "dave@example.com",
                "Mon, 02 Sep 2002 12:00:00 +0000",
                "nothing about blades here",
            ),
        ),
    ];
    for (id, boxes, s) in &docs {
        w.add_document(document(&f, id, boxes.iter().copied(), s))
            .expect("add");
    }
    w.commit().expect("commit");
    let reader = index.reader().expect("reader");
    (index, reader, f)
}

fn ids(q: &str) -> Vec<String> {
    ids_within(q, None)
}

fn ids_within(q: &str, within: Option<&[&str]>) -> Vec<String> {
    let (index, reader, f) = index();
    let query = SearchQuery::parse(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .build(&index, &f, within)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut ids = top_ids(&reader.searcher(), &f, &*query, 100).expect("search");
    ids.sort();
    ids
}

#[test]
fn a_negation_subtracts_from_what_its_group_would_find() {
    // Each form once failed: a group of only NOTs matched nothing.
    assert_eq!(ids("razor AND NOT quokka"), ["a"]);
    assert_eq!(ids("razor AND (NOT quokka)"), ["a"]);
    assert_eq!(ids("razor NOT quokka"), ["a"]);
    assert_eq!(ids("NOT razor"), ["c"]);
    assert_eq!(ids("NOT razor NOT wombat"), Vec::<String>::new());
    assert_eq!(ids("(NOT razor) OR quokka"), ["b", "c"]);
}

#[test]
fn every_form_finds_what_it_says() {
    assert_eq!(ids("razor"), ["a", "b"]);
    assert_eq!(ids("razor after:2002-08-01"), ["b"]);
    assert_eq!(ids("razor before:2002-08-01"), ["a"]);
    assert_eq!(ids("after:2002-07-16 before:2002-09-02"), ["b"]);
    assert_eq!(ids("cc:dave"), ["a", "c"]);
    assert_eq!(ids("subject:razor"), ["a"]);
    assert_eq!(ids("\"razor sharp\""), ["b"]);
    assert_eq!(ids("razor NOT quokka"), ["a"]);
    assert_eq!(ids("(wombat OR quokka) AND cc:dave"), ["c"]);
    assert_eq!(ids("mailbox:box2"), ["b", "c"]);
    assert_eq!(ids(""), ["a", "b", "c"]);
    assert_eq!(ids_within("razor", Some(&["box2"])), ["b"]);
}

#[test]
fn bad_queries_are_refused_with_reasons() {
    let deep = format!("{}razor{}", "(".repeat(40), ")".repeat(40));
    assert!(matches!(
        SearchQuery::parse(&deep),
        Err(QueryError::TooDeep)
    ));
    assert!(matches!(
        SearchQuery::parse("razor after:2002-8"),
        Err(QueryError::BadDate(_))
    ));
    assert!(matches!(
        SearchQuery::parse("mailbox:[a TO z]"),
        Err(QueryError::MailboxPattern)
    ));
    let (index, _, f) = index();
    let unknown = SearchQuery::parse("nosuchfield:x").expect("parses");
    assert!(matches!(
        unknown.build(&index, &f, None),
        Err(QueryError::Invalid(_))
    ));
    let named =
        SearchQuery::parse("razor OR mailbox:box9 OR mailbox:IN [box1 box2]").expect("parses");
    assert_eq!(named.mailboxes(), ["box9", "box1", "box2"]);
}

#[test]
fn snippets_come_from_the_body_text_given() {
    let (index, reader, f) = index();
    let query = SearchQuery::parse("quokka")
        .expect("parse")
        .build(&index, &f, None)
        .expect("build");
    let snippets = Snippets::new(&reader.searcher(), &f, &*query);
    let raw = b"Subject: x\r\n\r\nline one\r\nthe quokka meeting\r\n";
    let snippet = snippets.of_message(raw);
    assert!(snippet.contains("quokka meeting"), "{snippet}");
    assert!(!snippet.contains('\n'), "{snippet}");
}
