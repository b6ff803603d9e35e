//! Phrases without a positions file (issue 10, point 7): the index keeps no
//! word positions, so a phrase's candidates are checked against the message
//! text. These tests would fail if the check were wrong or skipped, and
//! compare answers and scores with a positional index of the same messages.

use std::collections::HashMap;

use satchel_message::MessageSummary;
use satchel_search::{Fields, QueryError, SearchError, SearchQuery, document};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser};
use tantivy::schema::Schema;
use tantivy::{Index, Searcher};

/// Messages by name: "adjacent" holds "razor sharp" in its body, "apart" both
/// words but not side by side, "wrapped" the phrase across a line break,
/// "subject" the phrase in its subject only, "twice" it twice in a longer body.
fn messages() -> Vec<(&'static str, String)> {
    let m = |subject: &str, body: &str| {
        format!(
            "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\n\
             Subject: {subject}\r\nDate: Mon, 15 Jul 2002 10:00:00 +0000\r\n\r\n{body}\r\n"
        )
    };
    vec![
        ("adjacent", m("minutes", "the razor sharp minutes")),
        ("apart", m("minutes", "sharp words about the razor")),
        ("wrapped", m("notes", "a razor\r\nsharp edge")),
        ("subject", m("razor sharp", "nothing here")),
        (
            "twice",
            m(
                "more",
                "razor sharp and once more razor sharp: said twice in a longer body",
            ),
        ),
        ("none", m("unrelated", "quokka")),
    ]
}

/// An index of [`messages`] with `schema`.
fn index_with(schema: Schema) -> (Index, Searcher, Fields) {
    let (_, f) = Fields::schema();
    let index = Index::create_in_ram(schema);
    let mut w: tantivy::IndexWriter = index.writer(15_000_000).expect("writer");
    for (name, raw) in messages() {
        let s = MessageSummary::extract(raw.as_bytes());
        w.add_document(document(&f, name, ["box"], &s))
            .expect("add");
    }
    w.commit().expect("commit");
    let searcher = index.reader().expect("reader").searcher();
    (index, searcher, f)
}

/// The raw bytes of each message by id bytes.
fn store() -> HashMap<Vec<u8>, Vec<u8>> {
    messages()
        .into_iter()
        .map(|(name, raw)| (name.as_bytes().to_vec(), raw.into_bytes()))
        .collect()
}

/// (id, score) of the hits of `q` on the index without positions, the
/// phrases checked against [`store`].
fn checked(q: &str) -> Vec<(String, f32)> {
    let (_, searcher, f) = index_with(Fields::schema().0);
    let store = store();
    let query = SearchQuery::parse(q)
        .expect("parse")
        .build_checked(&searcher, &f, None, &mut |id| store.get(id).cloned())
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    scored(&searcher, &f, &*query)
}

/// (id, score) of the hits of `q` on a positional index, as tantivy's parser
/// answers it (the index before issue 10 point 7).
fn positional(q: &str) -> Vec<(String, f32)> {
    let (index, searcher, f) = index_with(Fields::parsing_schema());
    let mut parser = QueryParser::for_index(
        &index,
        vec![f.subject, f.from, f.to, f.cc, f.body, f.attachment],
    );
    parser.set_conjunction_by_default();
    let words = parser.parse_query(q).expect("parse");
    let query = BooleanQuery::new(vec![(Occur::Must, words)]);
    scored(&searcher, &f, &query)
}

fn scored(searcher: &Searcher, f: &Fields, query: &dyn Query) -> Vec<(String, f32)> {
    let top = searcher
        .search(query, &TopDocs::with_limit(100).order_by_score())
        .expect("search");
    top.into_iter()
        .map(|(score, addr)| {
            let id: String = satchel_search::id_of(searcher, f, addr)
                .expect("id column")
                .expect("an id");
            (id, score)
        })
        .collect()
}

fn names(hits: &[(String, f32)]) -> Vec<&str> {
    let mut names: Vec<&str> = hits.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    names
}

#[test]
fn a_phrase_needs_its_words_side_by_side() {
    // "apart" holds both words, not adjacent: found by the words, not the phrase.
    assert_eq!(
        names(&checked("razor sharp")),
        ["adjacent", "apart", "subject", "twice", "wrapped"]
    );
    assert_eq!(
        names(&checked("\"razor sharp\"")),
        ["adjacent", "subject", "twice", "wrapped"]
    );
    assert_eq!(names(&checked("\"sharp razor\"")), Vec::<&str>::new());
}

#[test]
fn a_phrase_runs_across_a_line_break() {
    assert!(names(&checked("body:\"razor sharp\"")).contains(&"wrapped"));
    assert_eq!(names(&checked("\"razor sharp edge\"")), ["wrapped"]);
}

#[test]
fn a_field_prefix_checks_the_phrase_in_that_field() {
    assert_eq!(names(&checked("subject:\"razor sharp\"")), ["subject"]);
    assert_eq!(
        names(&checked("body:\"razor sharp\"")),
        ["adjacent", "twice", "wrapped"]
    );
    // An address is a phrase of its tokens.
    assert_eq!(names(&checked("from:bob@example.org")).len(), 6);
    assert_eq!(names(&checked("from:\"example bob\"")), Vec::<&str>::new());
}

#[test]
fn a_message_that_cannot_be_read_does_not_match_a_phrase() {
    let (_, searcher, f) = index_with(Fields::schema().0);
    let query = SearchQuery::parse("\"razor sharp\"")
        .expect("parse")
        .build_checked(&searcher, &f, None, &mut |_| None)
        .expect("build");
    assert!(scored(&searcher, &f, &*query).is_empty());
}

#[test]
fn answers_and_scores_are_those_of_a_positional_index() {
    for q in [
        "\"razor sharp\"",
        "\"razor sharp\" OR quokka",
        "razor \"sharp minutes\"",
        "subject:\"razor sharp\" OR body:\"razor sharp\"",
        "\"razor sharp\"^2 OR minutes",
        "minutes NOT \"razor sharp\"",
        "from:bob@example.org razor",
        "razor sharp",
        "\"razor minutes\"~1",
        "\"sharp razor\"~5",
        "\"razor sharp minutes\"~4 OR \"minutes razor\"~3",
        "\"said twice longer\"~6",
    ] {
        let (checked, positional) = (checked(q), positional(q));
        assert_eq!(checked.len(), positional.len(), "{q}");
        for ((a, sa), (b, sb)) in checked.iter().zip(&positional) {
            assert_eq!(a, b, "{q}");
            assert!(
                (sa - sb).abs() <= 1e-5 * sb.abs().max(1.0),
                "{q}: {sa} vs {sb}"
            );
        }
    }
}

#[test]
fn a_phrase_prefix_is_refused_with_a_reason() {
    let (_, searcher, f) = index_with(Fields::schema().0);
    let built = SearchQuery::parse("\"razor sha\"*")
        .expect("parse")
        .build_checked(&searcher, &f, None, &mut |_| None);
    assert!(
        matches!(built, Err(SearchError::Query(QueryError::PhrasePrefix(_)))),
        "answered or refused for another reason"
    );
}

#[test]
fn a_phrase_with_slop_lets_its_words_move() {
    // "apart": "sharp words about the razor"; "twice": "razor sharp and once
    // more razor sharp".
    // Swapping two words costs 2; "apart" needs "razor" 3 places back.
    assert_eq!(names(&checked("\"sharp razor\"~1")), Vec::<&str>::new());
    assert_eq!(
        names(&checked("\"sharp razor\"~2")),
        ["adjacent", "subject", "twice", "wrapped"]
    );
    assert_eq!(
        names(&checked("\"sharp razor\"~3")),
        ["adjacent", "apart", "subject", "twice", "wrapped"]
    );
    assert_eq!(
        names(&checked("\"razor minutes\"~1")),
        ["adjacent"],
        "one word between"
    );
}

/// The corpus Maildir's messages (scripts/fetch-corpus.sh), named by file.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::env::var_os("SATCHEL_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/satchel/corpus")
        });
    assert!(
        dir.join(".complete").exists(),
        "the test corpus is missing from {}: run scripts/fetch-corpus.sh",
        dir.display()
    );
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("maildir/cur"))
        .expect("corpus maildir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("message"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn on_the_corpus_phrases_rank_as_in_a_positional_index() {
    let messages = corpus();
    let build = |schema: Schema| {
        let (_, f) = Fields::schema();
        let index = Index::create_in_ram(schema);
        let mut w: tantivy::IndexWriter = index.writer(50_000_000).expect("writer");
        for (name, raw) in &messages {
            let s = MessageSummary::extract(raw);
            w.add_document(document(&f, name.as_str(), ["box"], &s))
                .expect("add");
        }
        w.commit().expect("commit");
        let searcher = index.reader().expect("reader").searcher();
        (index, searcher, f)
    };
    let (_, plain, f) = build(Fields::schema().0);
    let (pos_index, positional, _) = build(Fields::parsing_schema());
    let store: HashMap<&[u8], &[u8]> = messages
        .iter()
        .map(|(n, raw)| (n.as_bytes(), raw.as_slice()))
        .collect();
    let mut parser = QueryParser::for_index(
        &pos_index,
        vec![f.subject, f.from, f.to, f.cc, f.body, f.attachment],
    );
    parser.set_conjunction_by_default();
    for q in [
        "\"spam assassin\"",
        "\"razor users\" OR \"free money\"",
        "subject:\"re razor\"",
        "\"click here\"~2 remove",
        "from:wstearns@pobox.com",
        "\"the list\"",
    ] {
        let ours = SearchQuery::parse(q)
            .expect("parse")
            .build_checked(&plain, &f, None, &mut |id| {
                store.get(id).map(|raw| raw.to_vec())
            })
            .expect("build");
        let ours = scored(&plain, &f, &*ours);
        let theirs = BooleanQuery::new(vec![(Occur::Must, parser.parse_query(q).expect("q"))]);
        let theirs = scored(&positional, &f, &theirs);
        assert!(!ours.is_empty(), "{q} finds nothing");
        assert_eq!(ours.len(), theirs.len(), "{q}");
        for ((a, sa), (b, sb)) in ours.iter().zip(&theirs) {
            assert!(
                (sa - sb).abs() <= 1e-5 * sb.abs().max(1.0),
                "{q}: {sa} vs {sb}"
            );
            // Equal scores may come in either order.
            assert!(a == b || (sa - sb).abs() <= 1e-6, "{q}: {a} vs {b}");
        }
    }
}
