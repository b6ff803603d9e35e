//! The console's Audit page (issue 11 point 6) in headless Chromium against a
//! real `satchel serve`: a console search and message reads appear with what
//! they read, the chain is said to verify with the head `satchel audit head`
//! prints, filters and paging, and a row changed in the catalog is named as
//! the entry that fails. Screenshots go to target/screenshots/.

mod common;

use common::browser::Browser;
use common::console::post_form;
use common::{ADMIN_PASSWORD, Server, import_files, json};

const MB: &str = "carol@example.com";

fn sign_in(b: &mut Browser, server: &Server) {
    b.goto(&format!("{}/console/login", server.url));
    b.fill("#user", "admin");
    b.fill("#password", ADMIN_PASSWORD);
    b.click("#signin");
}

/// One message with an attachment, imported into MB; its id.
fn one_message(server: &Server, dir: &std::path::Path) -> String {
    let raw = "From: a@example.com\r\nTo: carol@example.com\r\nSubject: lighthouse keeper\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nThe lighthouse keeper wrote.\r\n\
--B\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\n\r\n\
the keeper's log\r\n--B--\r\n";
    let path = dir.join("m.eml");
    std::fs::write(&path, raw).expect("write eml");
    server.admin_ok(&["mailbox", "add", MB]);
    import_files(server, MB, &[path]);
    common::sha256_hex(raw.as_bytes())
}

/// The audit rows on the page: (seq, action, what).
fn rows(b: &mut Browser) -> Vec<(i64, String, String)> {
    let js = "JSON.stringify([...document.querySelectorAll('#audit tbody tr')].map(r => \
              [Number(r.dataset.seq), r.cells[4].innerText, r.cells[5].innerText]))";
    let v = json(&b.eval_str(js));
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_i64().expect("seq"),
                r[1].as_str().expect("action").to_string(),
                r[2].as_str().expect("what").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_audit_page_lists_filters_pages_and_names_a_changed_entry() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let id = one_message(&server, dir.path());
    let mut b = Browser::launch();
    sign_in(&mut b, &server);

    // A console search and a message view, raw download and attachment.
    b.goto(&format!("{}/console/search", server.url));
    b.fill("#q", "lighthouse");
    b.click("#go");
    b.goto(&format!("{}/console/messages/{MB}/{id}", server.url));
    let http = common::console::http();
    let cookie = format!(
        "satchel_session={}",
        b.cookie("satchel_session").expect("cookie")
    );
    let links = [
        b.eval_str("document.querySelector('#raw').getAttribute('href')"),
        b.eval_str("document.querySelector('#attachments a').getAttribute('href')"),
    ];
    for path in links {
        let r = http
            .get(format!("{}{path}", server.url))
            .header("Cookie", &cookie)
            .send()
            .expect("download");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }

    // The CLI's own sign-in is in the head it prints; the page adds nothing.
    let head = server.admin_ok(&["audit", "head"]);
    let (seq, hash) = head.trim().split_once(' ').expect("seq and hash");
    b.goto(&format!("{}/console/audit", server.url));
    b.screenshot("audit-01-verifies");
    let state = b.text("#chain-state");
    assert!(state.contains("The chain verifies"), "{state}");
    assert_eq!(b.text("#head-seq"), seq, "{}", b.body_text());
    assert_eq!(b.text("#head-hash"), hash);
    let all = rows(&mut b);
    let search = all
        .iter()
        .find(|(_, action, what)| action == "search" && what.contains("lighthouse"))
        .unwrap_or_else(|| panic!("no console search in {all:#?}"));
    // An administrator's search covers every mailbox.
    assert!(search.2.contains("\"mailboxes\":[\"*\"]"), "{search:?}");
    for part in ["view", "raw", "attachment"] {
        assert!(
            all.iter().any(|(_, action, what)| action == "message.read"
                && what.contains(&id)
                && what.contains(&format!("\"part\":\"{part}\""))
                && what.contains("\"via\":\"console\"")),
            "no console {part} read in {all:#?}"
        );
    }
    assert!(
        all.iter()
            .any(|(_, action, what)| action == "signin" && what.contains("console")),
        "{all:#?}"
    );
    // Newest first.
    assert!(all.windows(2).all(|w| w[0].0 > w[1].0), "{all:?}");

    // Filters: a user with no entries, then the mailbox.
    b.fill("#filter-user", "nobody");
    b.click("#filter-apply");
    assert!(b.exists("#no-entries"), "{}", b.body_text());
    b.goto(&format!("{}/console/audit?mailbox={MB}", server.url));
    let about = rows(&mut b);
    assert!(!about.is_empty());
    assert!(
        about
            .iter()
            .all(|(_, _, what)| what.contains(MB) || what.contains("[\"*\"]")),
        "{about:#?}"
    );
    b.goto(&format!("{}/console/audit?since=yesterday", server.url));
    assert!(
        b.text("#filter-error").contains("--since"),
        "{}",
        b.body_text()
    );

    // Paging: more than a page of entries (each API search: a sign-in and a search).
    for i in 0..30 {
        let r = http
            .get(format!("{}/api/v1/search?q=page{i}", server.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("search");
        assert_eq!(r.status().as_u16(), 200);
    }
    b.goto(&format!("{}/console/audit", server.url));
    let first = rows(&mut b);
    assert_eq!(first.len(), 50, "{first:?}");
    b.click("#older");
    let older = rows(&mut b);
    let oldest_first_page = first.last().expect("a row").0;
    assert!(!older.is_empty());
    assert_eq!(older[0].0, oldest_first_page - 1, "{older:?}");
    assert!(b.exists("#newest"));

    // A view reads only the entries after the last one a view verified.
    server.admin_ok(&["search", "fresh"]);
    b.goto(&format!("{}/console/audit", server.url));
    let through: i64 = b.text("#verified-through").parse().expect("a seq");
    let from: i64 = b
        .eval_str("document.querySelector('#verified-scope').dataset.from")
        .parse()
        .expect("a seq");
    assert!(from > 1 && from <= through, "{}", b.text("#verified-scope"));

    // Someone edits what the console search looked for in the catalog,
    // after a view verified it: the next view reads only newer entries and
    // says so; the CLI and the page's whole-chain check name the entry.
    let db = rusqlite::Connection::open(server.data.join("catalog.sqlite")).expect("catalog");
    db.execute(
        "UPDATE audit_log SET target = replace(target, 'lighthouse', 'weather') WHERE seq = ?1",
        [search.0],
    )
    .expect("edit the row");
    b.goto(&format!("{}/console/audit", server.url));
    assert!(b.text("#chain-state").contains("verifies through"));
    assert!(
        b.text("#verified-scope").contains("not re-read"),
        "{}",
        b.text("#verified-scope")
    );
    let cli = common::run(server.admin().args(["audit", "verify"]));
    let said = String::from_utf8_lossy(&cli.stdout) + String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success(), "{said}");
    assert!(said.contains(&format!("entry {}", search.0)), "{said}");
    b.click("#verify-all");
    b.screenshot("audit-02-changed");
    let named = |b: &mut Browser| {
        let state = b.text("#chain-state");
        assert!(state.contains("does NOT verify"), "{state}");
        assert!(
            state.contains(&format!("entry {} does not match", search.0)),
            "{state}"
        );
        assert_eq!(b.text("#head-seq"), (search.0 - 1).to_string());
    };
    named(&mut b);
    // Once a whole-chain check failed, every view checks the whole chain.
    b.goto(&format!("{}/console/audit", server.url));
    named(&mut b);
    assert!(b.text("#verified-scope").contains("the whole chain"));
}

#[test]
fn a_view_checks_the_entries_after_the_last_view_and_catches_a_changed_one() {
    let server = Server::start();
    let cookie = common::console::sign_in(&server);
    let page = || {
        common::console::http()
            .get(format!("{}/console/audit", server.url))
            .header("Cookie", &cookie)
            .send()
            .expect("audit page")
            .text()
            .expect("page")
    };
    let first = page();
    assert!(first.contains("This view read the whole chain"), "{first}");
    // A search after that view, its entry then edited in the catalog.
    server.admin_ok(&["search", "newer"]);
    let db = rusqlite::Connection::open(server.data.join("catalog.sqlite")).expect("catalog");
    let newest: i64 = db
        .query_row(
            "SELECT seq FROM audit_log WHERE action = 'search' AND target LIKE '%newer%'",
            [],
            |r| r.get(0),
        )
        .expect("the search's entry");
    db.execute(
        "UPDATE audit_log SET target = replace(target, 'newer', 'older') WHERE seq = ?1",
        [newest],
    )
    .expect("edit the row");
    let second = page();
    assert!(second.contains("does NOT verify"), "{second}");
    assert!(
        second.contains(&format!("entry {newest} does not match")),
        "{second}"
    );
    assert!(
        second.contains("This view read the entries from entry"),
        "{second}"
    );
}

#[test]
fn only_administrators_see_the_audit_page() {
    let server = Server::start();
    server.add_user("bob", "bob-password-1");
    let cookie = common::console::sign_in_as(&server, "bob", "bob-password-1");
    let page = common::console::http()
        .get(format!("{}/console/audit", server.url))
        .header("Cookie", cookie)
        .send()
        .expect("audit page");
    assert_eq!(page.status().as_u16(), 403);
}

fn hold_names(server: &Server) -> Vec<String> {
    let list = json(&server.admin_ok(&["hold", "list", "--json"]));
    list.as_array()
        .expect("holds")
        .iter()
        .map(|h| h["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn holds_are_placed_and_released_through_the_page_and_properties_show_retention() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    one_message(&server, dir.path());
    let mut b = Browser::launch();
    sign_in(&mut b, &server);

    // Properties: the effective retention and where it comes from.
    let props = format!("{}/console/mailboxes/{MB}", server.url);
    b.goto(&props);
    assert_eq!(b.text("#retention"), "kept forever (the default)");
    server.admin_ok(&["retention", "set", MB, "--days", "30"]);
    b.goto(&props);
    assert_eq!(b.text("#retention"), "30 days (this mailbox's setting)");

    // Place a hold through the page, after its confirmation.
    b.goto(&format!("{}/console/holds", server.url));
    assert!(b.exists("#no-holds"), "{}", b.body_text());
    b.fill("#hold-name", "matter-1");
    b.fill("#hold-mailboxes", MB);
    b.fill("#hold-query", "lighthouse");
    b.check("#hold-confirm");
    b.click("#place-button");
    b.screenshot("holds-01-placed");
    assert!(
        b.text("#notice").contains("matter-1 placed"),
        "{}",
        b.body_text()
    );
    assert_eq!(b.text("tr[data-hold=\"matter-1\"] .held"), "1");
    let shown = json(&server.admin_ok(&["hold", "show", "matter-1", "--json"]));
    assert_eq!(shown["query"], "lighthouse", "{shown}");
    assert_eq!(shown["mailboxes"], serde_json::json!([MB]), "{shown}");

    // Without the CSRF token, or without the confirmation, nothing changes.
    let cookie = format!(
        "satchel_session={}",
        b.cookie("satchel_session").expect("cookie")
    );
    let csrf = common::console::csrf_of(&server, &cookie);
    let place = format!("name=matter-2&mailboxes={MB}&confirm=yes");
    assert_eq!(post_form(&server, &cookie, "/console/holds", &place), 403);
    let unconfirmed = format!("csrf={csrf}&name=matter-2&mailboxes={MB}");
    assert_eq!(
        post_form(&server, &cookie, "/console/holds", &unconfirmed),
        400
    );
    let release = "/console/holds/matter-1/release";
    assert_eq!(post_form(&server, &cookie, release, "confirm=yes"), 403);
    assert_eq!(hold_names(&server), ["matter-1"]);

    // Release through its confirmation page.
    b.click("tr[data-hold=\"matter-1\"] .release");
    assert!(b.url().ends_with(release), "{}", b.url());
    b.check("#release-confirm");
    b.click("#release-button");
    assert!(
        b.text("#notice").contains("matter-1 released"),
        "{}",
        b.body_text()
    );
    assert!(b.exists("#no-holds"));
    assert!(hold_names(&server).is_empty());

    // Both are in the audit trail, by the administrator.
    let trail = json(&server.admin_ok(&["audit", "list", "--json", "--user", "admin"]));
    let actions: Vec<&str> = trail
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"hold.add"), "{actions:?}");
    assert!(actions.contains(&"hold.release"), "{actions:?}");
}
