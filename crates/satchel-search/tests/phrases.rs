//! Phrases without a positions file (issue 10, point 7): the index keeps no
//! word positions, so a phrase's candidates are checked against the message
//! text. These tests would fail if the check were wrong or skipped, and
//! compare answers and scores with a positional index of the same messages.

use std::collections::HashMap;
use std::sync::Mutex;

use satchel_message::MessageSummary;
use satchel_search::{Fields, QueryError, Ranked, SearchError, SearchQuery, document};
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
    let named: Vec<(String, String)> = messages()
        .into_iter()
        .map(|(n, raw)| (n.to_string(), raw))
        .collect();
    index_of(&named, schema, usize::MAX)
}

/// An index of `messages` (name, raw) with `schema`, committed after every
/// `per_segment` of them (each commit makes a segment).
fn index_of(
    messages: &[(String, String)],
    schema: Schema,
    per_segment: usize,
) -> (Index, Searcher, Fields) {
    let (_, f) = Fields::schema();
    let index = Index::create_in_ram(schema);
    // One indexing thread: documents stand in the order they are added.
    let mut w: tantivy::IndexWriter = index
        .writer_with_num_threads(1, 15_000_000)
        .expect("writer");
    w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    for (i, (name, raw)) in messages.iter().enumerate() {
        let s = MessageSummary::extract(raw.as_bytes());
        w.add_document(document(&f, name.as_str(), ["box"], &s))
            .expect("add");
        if (i + 1) % per_segment == 0 {
            w.commit().expect("commit");
        }
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
    searched(&searcher, &f, q, 100, &|id| store.get(id).cloned())
}

/// (id, score) of the best `limit` hits of `q`, the phrases checked against
/// the messages `read` gives.
fn searched(
    searcher: &Searcher,
    f: &Fields,
    q: &str,
    limit: usize,
    read: &(dyn Fn(&[u8]) -> Option<Vec<u8>> + Sync),
) -> Vec<(String, f32)> {
    let ranked: Ranked<String> = SearchQuery::parse(q)
        .expect("parse")
        .search(searcher, f, None, limit, read)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    ranked.hits.into_iter().map(|h| (h.id, h.score)).collect()
}

/// (id, score) of the hits of `q` on a positional index, as tantivy's parser
/// answers it (the index before issue 10 point 7).
fn positional(q: &str) -> Vec<(String, f32)> {
    let (index, searcher, f) = index_with(Fields::parsing_schema());
    positional_top(&index, &searcher, &f, q, 100)
}

/// (id, score) of the best `limit` hits of `q` on `index`, a positional
/// index, as tantivy's parser answers it.
fn positional_top(
    index: &Index,
    searcher: &Searcher,
    f: &Fields,
    q: &str,
    limit: usize,
) -> Vec<(String, f32)> {
    let mut parser = QueryParser::for_index(
        index,
        vec![f.subject, f.from, f.to, f.cc, f.body, f.attachment],
    );
    parser.set_conjunction_by_default();
    let words = parser.parse_query(q).expect("parse");
    let query = BooleanQuery::new(vec![(Occur::Must, words)]);
    scored(searcher, f, &query, limit)
}

fn scored(searcher: &Searcher, f: &Fields, query: &dyn Query, limit: usize) -> Vec<(String, f32)> {
    let top = searcher
        .search(query, &TopDocs::with_limit(limit).order_by_score())
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

/// Where the document of message `name` stands in `searcher`'s index.
fn address_of(searcher: &Searcher, f: &Fields, name: &str) -> tantivy::DocAddress {
    let q = tantivy::query::TermQuery::new(
        tantivy::Term::from_field_bytes(f.id, name.as_bytes()),
        tantivy::schema::IndexRecordOption::Basic,
    );
    let found = searcher
        .search(&q, &tantivy::collector::DocSetCollector)
        .expect("search");
    found.into_iter().next().expect("indexed")
}

/// The best `limit` of `hits` (all the hits of a query, with their scores)
/// as `searcher`'s index ranks them: by score, then on a tie by where they
/// stand in it (segments are ordered differently in another index).
fn in_index_order(
    searcher: &Searcher,
    f: &Fields,
    hits: &[(String, f32)],
    limit: usize,
) -> Vec<(String, f32)> {
    let mut placed: Vec<_> = hits
        .iter()
        .map(|(n, s)| (address_of(searcher, f, n), n.clone(), *s))
        .collect();
    placed.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    placed
        .into_iter()
        .take(limit)
        .map(|(_, n, s)| (n, s))
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
    assert!(searched(&searcher, &f, "\"razor sharp\"", 100, &|_| None).is_empty());
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
        .search::<String>(&searcher, &f, None, 100, &|_| None);
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
        let ours = searched(&plain, &f, q, 100, &|id| {
            store.get(id).map(|raw| raw.to_vec())
        });
        let theirs = BooleanQuery::new(vec![(Occur::Must, parser.parse_query(q).expect("q"))]);
        let theirs = scored(&positional, &f, &theirs, 100);
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

/// A message named by the test, on `day` (2002-07-DD), with `body`.
fn dated(name: &str, day: u32, body: &str) -> (String, String) {
    (
        name.to_string(),
        format!(
            "From: Bob <bob@example.org>\r\nTo: carol@example.com\r\nSubject: note {name}\r\n\
             Date: {day:02} Jul 2002 10:00:00 +0000\r\n\r\n{body}\r\n"
        ),
    )
}

/// A store that counts what is read: the id bytes of every read, in order.
struct CountingStore {
    messages: HashMap<Vec<u8>, Vec<u8>>,
    read: Mutex<Vec<String>>,
}

impl CountingStore {
    fn new(messages: &[(String, String)]) -> Self {
        CountingStore {
            messages: messages
                .iter()
                .map(|(n, raw)| (n.as_bytes().to_vec(), raw.as_bytes().to_vec()))
                .collect(),
            read: Mutex::new(Vec::new()),
        }
    }

    fn get(&self, id: &[u8]) -> Option<Vec<u8>> {
        self.read
            .lock()
            .expect("lock")
            .push(String::from_utf8_lossy(id).into_owned());
        self.messages.get(id).cloned()
    }

    fn read(&self) -> Vec<String> {
        let mut read = self.read.lock().expect("lock").clone();
        read.sort();
        read
    }
}

#[test]
fn a_day_range_prunes_the_candidates_before_any_message_is_read() {
    // Every message holds the phrase; only days 10..20 are in the range.
    let messages: Vec<(String, String)> = (1..=28)
        .map(|day| dated(&format!("m{day:02}"), day, "a razor sharp edge"))
        .collect();
    let (_, searcher, f) = index_of(&messages, Fields::schema().0, 7);
    let store = CountingStore::new(&messages);
    let q = "\"razor sharp\" after:2002-07-10 before:2002-07-20";
    let hits = searched(&searcher, &f, q, 100, &|id| store.get(id));
    let expected: Vec<String> = (10..20).map(|d| format!("m{d:02}")).collect();
    let mut found: Vec<String> = hits.into_iter().map(|(n, _)| n).collect();
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(store.read(), expected, "read a message outside the range");
}

#[test]
fn a_mailbox_and_a_word_prune_the_candidates_too() {
    let messages: Vec<(String, String)> = (1..=20)
        .map(|day| {
            let body = if day % 4 == 0 {
                "quokka said razor sharp"
            } else {
                "razor sharp"
            };
            dated(&format!("m{day:02}"), day, body)
        })
        .collect();
    let (_, searcher, f) = index_of(&messages, Fields::schema().0, 6);
    let store = CountingStore::new(&messages);
    let hits = searched(&searcher, &f, "quokka \"razor sharp\"", 100, &|id| {
        store.get(id)
    });
    let expected = ["m04", "m08", "m12", "m16", "m20"];
    let mut found: Vec<String> = hits.into_iter().map(|(n, _)| n).collect();
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(store.read(), expected, "read a message without quokka");
}

/// Messages for the limit tests: phrases of many strengths (body lengths and
/// counts), two with the words present but apart (short bodies: their
/// bounds are the highest), identical ones (equal scores) across segments,
/// and "wordy" ones with the words apart and "word" repeated.
fn ranked_messages() -> Vec<(String, String)> {
    let mut out = vec![
        dated("apart1", 1, "sharp razor"),
        dated("apart2", 2, "razor the sharp"),
        dated("thrice", 3, "razor sharp razor sharp razor sharp filler"),
    ];
    for i in 0..12 {
        let filler = "word ".repeat(i * 3);
        out.push(dated(
            &format!("len{i:02}"),
            4,
            &format!("razor sharp {filler}"),
        ));
    }
    for i in 0..9 {
        out.push(dated(&format!("tie{i}"), 5, "the razor sharp blade of it"));
    }
    for i in 0..6 {
        let filler = "word ".repeat(i + 1);
        out.push(dated(
            &format!("wordy{i}"),
            6,
            &format!("razor {filler}sharp"),
        ));
    }
    out
}

#[test]
fn the_best_hits_within_a_limit_are_those_of_a_positional_index() {
    let messages = ranked_messages();
    let (_, plain, f) = index_of(&messages, Fields::schema().0, 5);
    let (pos_index, positional, _) = index_of(&messages, Fields::parsing_schema(), 5);
    let store = CountingStore::new(&messages);
    for q in [
        "\"razor sharp\"",
        "body:\"razor sharp\"",
        "\"razor sharp\" OR blade",
        "\"razor sharp\"~1",
    ] {
        let all = positional_top(&pos_index, &positional, &f, q, 100);
        for limit in [1, 2, 3, 5, 8, 13, 17, 21, 30] {
            let ours = searched(&plain, &f, q, limit, &|id| store.get(id));
            let theirs = in_index_order(&plain, &f, &all, limit);
            assert_eq!(ours, theirs, "{q}, limit {limit}");
        }
    }
    // A phrase under NOT: tantivy's own positional scorer trips a debug
    // assertion of its own here (an exclusion over several segments), so
    // each limit is compared with the whole answer, itself compared with a
    // positional index above (`minutes NOT "razor sharp"`).
    let q = "word NOT \"razor sharp\"";
    let whole = searched(&plain, &f, q, 100, &|id| store.get(id));
    let names: Vec<&str> = whole.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("wordy")), "{names:?}");
    for limit in 1..whole.len() {
        let ours = searched(&plain, &f, q, limit, &|id| store.get(id));
        assert_eq!(ours, whole[..limit].to_vec(), "{q}, limit {limit}");
    }
}

#[test]
fn words_present_but_apart_never_fill_a_limit() {
    // "apart1" and "apart2" have the shortest bodies, so the highest bounds:
    // they are checked first and must be dropped.
    let messages = ranked_messages();
    let (_, plain, f) = index_of(&messages, Fields::schema().0, 5);
    let store = CountingStore::new(&messages);
    for limit in 1..=3 {
        let hits = searched(&plain, &f, "\"razor sharp\"", limit, &|id| store.get(id));
        assert_eq!(hits.len(), limit);
        assert!(
            hits.iter().all(|(n, _)| !n.starts_with("apart")),
            "limit {limit}: {hits:?}"
        );
    }
}

#[test]
fn checks_stop_once_the_limit_is_known_and_ties_rank_by_index_order() {
    let messages = ranked_messages();
    let (_, plain, f) = index_of(&messages, Fields::schema().0, 5);
    let (pos_index, positional, _) = index_of(&messages, Fields::parsing_schema(), 5);
    // The nine "tie" messages score the same; a limit that cuts through
    // them takes the first in index order, across segments.
    let all = positional_top(&pos_index, &positional, &f, "\"razor sharp\"", 100);
    let all = in_index_order(&plain, &f, &all, 100);
    let first_tie = all
        .iter()
        .position(|(n, _)| n.starts_with("tie"))
        .expect("a tie");
    let limit = first_tie + 4;
    let store = CountingStore::new(&messages);
    let ours = searched(&plain, &f, "\"razor sharp\"", limit, &|id| store.get(id));
    assert_eq!(ours, all[..limit].to_vec());
    assert!(ours[first_tie..].iter().all(|(n, _)| n.starts_with("tie")));
    // Each message is read once, however many batches the check takes.
    let read = store.read();
    let mut once = read.clone();
    once.dedup();
    assert_eq!(read, once, "a message read twice");
}

#[test]
fn checks_stop_once_the_limit_is_known() {
    // 300 short messages with the phrase, all tied, then 300 long ones with
    // its words apart: the short ones' scores beat every long one's bound,
    // and ties rank by index order, so a small limit reads neither the long
    // ones nor every short one (there are more than one batch of each).
    let mut messages: Vec<(String, String)> = (0..300)
        .map(|i| dated(&format!("short{i:03}"), 1, "razor sharp"))
        .collect();
    let long = format!("sharp {} razor", "word ".repeat(200));
    messages.extend((0..300).map(|i| dated(&format!("long{i:03}"), 2, &long)));
    let (_, plain, f) = index_of(&messages, Fields::schema().0, 150);
    let store = CountingStore::new(&messages);
    let hits = searched(&plain, &f, "\"razor sharp\"", 10, &|id| store.get(id));
    let mut shorts: Vec<_> = (0..300)
        .map(|i| format!("short{i:03}"))
        .map(|n| (address_of(&plain, &f, &n), n))
        .collect();
    shorts.sort();
    let expected: Vec<String> = shorts.into_iter().take(10).map(|(_, n)| n).collect();
    assert_eq!(
        hits.into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
        expected
    );
    let read = store.read();
    assert!(
        read.iter().all(|n| n.starts_with("short")) && read.len() < 300,
        "read {} messages, {} of them long",
        read.len(),
        read.iter().filter(|n| n.starts_with("long")).count()
    );
}

#[test]
fn a_tie_goes_to_the_document_first_in_the_index_even_if_checked_last() {
    // "early": the phrase once in four words, first in the index. "late":
    // the same score, but its words twice each, so a higher bound: all of
    // them are checked first, in whole batches, before any "early" one.
    // The best is still the first "early" (a tie ranks by index order).
    let mut messages: Vec<(String, String)> = (0..10)
        .map(|i| dated(&format!("early{i:03}"), 1, "razor sharp other words"))
        .collect();
    messages.extend((0..448).map(|i| dated(&format!("late{i:03}"), 1, "razor sharp sharp razor")));
    let (_, plain, f) = index_of(&messages, Fields::schema().0, usize::MAX);
    let store = CountingStore::new(&messages);
    let hits = searched(&plain, &f, "\"razor sharp\"", 2, &|id| store.get(id));
    let names: Vec<&str> = hits.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["early000", "early001"]);
    assert_eq!(hits[0].1, hits[1].1);
}
