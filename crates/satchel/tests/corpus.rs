//! The whole SpamAssassin corpus through the running service: counts, byte
//! identity, and searches whose answers the test computes itself.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

struct Corpus {
    /// id -> raw bytes, one entry per distinct message.
    messages: HashMap<String, Vec<u8>>,
    files: usize,
    maildir: PathBuf,
    mbox: PathBuf,
}

fn load() -> Corpus {
    let root = corpus();
    let maildir = root.join("maildir");
    let mut messages = HashMap::new();
    let mut files = 0;
    for entry in std::fs::read_dir(maildir.join("cur")).expect("corpus maildir") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("read");
        files += 1;
        messages.insert(sha256_hex(&raw), raw);
    }
    Corpus {
        messages,
        files,
        maildir,
        mbox: root.join("corpus.mbox"),
    }
}

/// Words as tantivy's default tokenizer sees them.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 40)
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn the_corpus_imports_reads_back_and_searches_exactly() {
    let c = load();
    assert!(c.files >= 6000, "corpus has {} files", c.files);
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "corpus@example.com"]);

    // Import: every distinct message once.
    let report = json(&server.admin_ok(&[
        "import",
        "corpus@example.com",
        "--json",
        c.maildir.to_str().expect("utf8"),
    ]));
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["imported"].as_u64(), Some(c.messages.len() as u64));
    assert_eq!(
        report["duplicate"].as_u64(),
        Some((c.files - c.messages.len()) as u64)
    );
    let shown = json(&server.admin_ok(&["mailbox", "show", "corpus@example.com", "--json"]));
    assert_eq!(shown["messages"].as_u64(), Some(c.messages.len() as u64));

    // The same corpus as an mbox adds only what an mbox cannot carry unchanged: a
    // message without a final newline gains one.
    let unterminated = c.messages.values().filter(|m| !m.ends_with(b"\n")).count() as u64;
    let report = json(&server.admin_ok(&[
        "import",
        "corpus@example.com",
        "--json",
        c.mbox.to_str().expect("utf8"),
    ]));
    assert_eq!(report["failed"], 0);
    assert_eq!(
        report["imported"].as_u64(),
        Some(unterminated),
        "{}",
        report["imported"]
    );

    // Every message comes back byte-identical (over HTTP, as `get` does), and a
    // sample through the command line itself.
    let http = reqwest::blocking::Client::new();
    for (id, raw) in &c.messages {
        let resp = http
            .get(format!(
                "{}/api/v1/mailboxes/corpus@example.com/messages/{id}",
                server.url
            ))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("GET message");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("message/rfc822")
        );
        assert!(
            resp.bytes().expect("body").as_ref() == raw.as_slice(),
            "message {id} differs"
        );
    }
    for (id, raw) in c.messages.iter().take(20) {
        let out = run(server.admin().args(["get", "corpus@example.com", id]));
        assert_eq!(&out.stdout, raw);
    }

    // Searches the test answers itself: subject words found in a handful of
    // messages, and a day's worth of dates.
    let parser = mail_parser::MessageParser::default();
    let mut by_word: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_day: BTreeSet<String> = BTreeSet::new();
    let (day_start, day_end) = (1_028_160_000_i64, 1_028_246_400_i64); // 2002-08-01 UTC
    for (id, raw) in &c.messages {
        let Some(msg) = parser.parse(raw.as_slice()) else {
            continue;
        };
        for w in words(msg.subject().unwrap_or_default()) {
            by_word.entry(w).or_default().insert(id.clone());
        }
        if let Some(t) = msg.date().map(|d| d.to_timestamp())
            && (day_start..day_end).contains(&t)
        {
            by_day.insert(id.clone());
        }
    }
    let picked: Vec<(&String, &BTreeSet<String>)> = by_word
        .iter()
        .filter(|(w, ids)| {
            (3..=25).contains(&ids.len())
                && w.len() >= 5
                && w.chars().all(|c| c.is_ascii_lowercase())
        })
        .step_by(97)
        .take(8)
        .collect();
    assert!(picked.len() >= 5, "enough test words");
    for (word, expected) in picked {
        let found = server
            .search_ids(&[&format!("subject:{word}")])
            .into_iter()
            .collect::<BTreeSet<_>>();
        assert_eq!(&found, expected, "subject:{word}");
    }
    assert!(by_day.len() > 10);
    assert_eq!(
        server
            .search_ids(&["after:2002-08-01 before:2002-08-02"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        by_day,
        "one day of mail"
    );

    // A word in no message finds nothing; a word from one message's body finds it.
    assert!(
        server
            .search_ids(&["zqxjvwkplmnb"])
            .into_iter()
            .collect::<BTreeSet<_>>()
            .is_empty()
    );
    let admin_hits = server
        .search_ids(&["razor"])
        .into_iter()
        .collect::<BTreeSet<_>>();
    assert!(
        admin_hits.iter().all(|id| {
            let raw = String::from_utf8_lossy(&c.messages[id]).to_lowercase();
            raw.contains("razor")
        }),
        "every hit for razor contains it"
    );
    assert!(admin_hits.len() > 10);
}
