//! The catalog's behaviour, the same on both backends: every test here runs
//! once on SQLite (the data folder's catalog.sqlite) and once on a real
//! PostgreSQL started by satchel-testkit (never a mock).

use satchel_archive::RepositoryInfo;
use satchel_archive::catalog::{Catalog, Migration};
use satchel_archive::secret::SecretKey;
use satchel_archive::{Archive, ArchiveError, BatchItem, ItemStatus, MessageId, SearchRequest};
use satchel_archive::{UserInfo, params};
use satchel_testkit::postgres::Postgres;
use std::path::PathBuf;

/// One backend of one test: its data folder and, for PostgreSQL, its server.
struct Backend {
    dir: tempfile::TempDir,
    pg: Option<Postgres>,
}

#[derive(Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

impl Backend {
    fn new(kind: Kind) -> Backend {
        Backend {
            dir: tempfile::tempdir().expect("tempdir"),
            pg: matches!(kind, Kind::Postgres).then(Postgres::start),
        }
    }

    fn url(&self) -> Option<String> {
        self.pg.as_ref().map(Postgres::url)
    }

    fn archive(&self) -> Archive {
        Archive::open_with(self.dir.path(), self.url().as_deref()).expect("archive opens")
    }

    /// A second connection to the same catalog, as another process has.
    fn catalog(&self) -> Catalog {
        match self.url() {
            Some(url) => Catalog::connect(&url).expect("connect"),
            None => Catalog::open(&self.dir.path().join("catalog.sqlite")).expect("open"),
        }
    }
}

fn admin() -> UserInfo {
    UserInfo {
        name: "admin".into(),
        password_hash: String::new(),
        admin: true,
        groups: Vec::new(),
    }
}

fn mail(n: usize, word: &str) -> BatchItem {
    BatchItem {
        origin: format!("m{n}"),
        folder: "INBOX".into(),
        raw: format!(
            "From: Sender {n} <s{n}@example.com>\r\nTo: a@example.com\r\nSubject: note {n}\r\n\
             Date: Mon, 1 Jun 2026 10:00:{:02} +0000\r\nMessage-ID: <{n}@example.com>\r\n\r\n\
             the {word} body {n}\r\n",
            n % 60
        )
        .into_bytes(),
    }
}

fn users_and_tokens(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let mut cat = archive.catalog().expect("catalog");
    cat.add_user("zed", "hash-z", false).expect("add zed");
    cat.add_user("amy", "hash-a", true).expect("add amy");
    assert!(matches!(
        cat.add_user("amy", "other", false),
        Err(ArchiveError::Exists(_))
    ));
    let names: Vec<String> = cat
        .users()
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["amy", "zed"]);
    let amy = cat.user("amy").expect("user").expect("amy exists");
    assert!(amy.admin && amy.password_hash == "hash-a");
    assert!(cat.user("nobody").expect("user").is_none());

    cat.add_token(&"a".repeat(64), "zed", "laptop")
        .expect("token");
    cat.add_token(&"b".repeat(64), "zed", "phone")
        .expect("token");
    cat.add_token(&"c".repeat(64), "amy", "cli").expect("token");
    assert_eq!(cat.tokens(None).expect("tokens").len(), 3);
    assert_eq!(cat.tokens(Some("zed")).expect("tokens").len(), 2);
    assert_eq!(
        cat.token_user(&"c".repeat(64)).expect("lookup").as_deref(),
        Some("amy")
    );
    // Someone else's token is not theirs to revoke.
    assert!(
        cat.revoke_token(&"c".repeat(16), Some("zed"))
            .expect("revoke")
            .is_none()
    );
    let gone = cat.revoke_token(&"c".repeat(16), None).expect("revoke");
    assert_eq!(gone.map(|t| t.label).as_deref(), Some("cli"));
    assert_eq!(cat.set_password("zed", "hash-z2").expect("password"), 2);
    assert!(cat.tokens(Some("zed")).expect("tokens").is_empty());
    assert!(matches!(
        cat.set_password("nobody", "x"),
        Err(ArchiveError::NoUser(_))
    ));

    cat.add_mailbox("box@example.com", "default", None)
        .expect("mailbox");
    cat.grant("box@example.com", "zed").expect("grant");
    cat.add_token(&"d".repeat(64), "zed", "again")
        .expect("token");
    let removed = cat.remove_user("zed").expect("remove");
    assert_eq!((removed.tokens, removed.grants), (1, 1));
    assert!(cat.grants_of("box@example.com").expect("grants").is_empty());
}

fn mailboxes_grants_and_repositories(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let cat = archive.catalog().expect("catalog");
    let cold = RepositoryInfo {
        name: "cold".into(),
        kind: "s3".into(),
        path: PathBuf::from("s3://bucket/prefix"),
        endpoint: Some("http://127.0.0.1:8333".into()),
        cold: true,
    };
    cat.add_repository(&cold).expect("repo");
    assert!(matches!(
        cat.add_repository(&cold),
        Err(ArchiveError::Exists(_))
    ));
    let repos = cat.repositories().expect("repos");
    let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cold", "default"]);
    assert!(repos[0].cold && !repos[1].cold);
    assert_eq!(repos[0].endpoint.as_deref(), Some("http://127.0.0.1:8333"));
    assert!(matches!(
        cat.repository("nope"),
        Err(ArchiveError::NoRepository(_))
    ));

    cat.add_user("zed", "h", false).expect("user");
    cat.add_mailbox("b@example.com", "default", None)
        .expect("mailbox");
    cat.add_mailbox("a@example.com", "cold", None)
        .expect("mailbox");
    assert!(matches!(
        cat.add_mailbox("a@example.com", "cold", None),
        Err(ArchiveError::Exists(_))
    ));
    cat.grant("b@example.com", "zed").expect("grant");
    cat.grant("b@example.com", "zed")
        .expect("a second grant is no error");
    let zed = cat.user("zed").expect("user").expect("zed");
    assert_eq!(
        cat.searchable_by(&zed).expect("searchable"),
        ["b@example.com"]
    );
    assert_eq!(
        cat.searchable_by(&admin()).expect("searchable"),
        ["a@example.com", "b@example.com"]
    );
    assert!(cat.may_search(&zed, "b@example.com").expect("may"));
    assert!(!cat.may_search(&zed, "a@example.com").expect("may"));
    cat.revoke("b@example.com", "zed").expect("revoke");
    assert!(!cat.may_search(&zed, "b@example.com").expect("may"));

    // A grant to a directory group reaches the members the sign-in found.
    let sales = "cn=sales,ou=groups,dc=example,dc=com";
    cat.grant_group("a@example.com", sales)
        .expect("group grant");
    cat.grant("a@example.com", "zed").expect("grant");
    assert_eq!(
        cat.grants_of("a@example.com").expect("grants"),
        ["zed".to_string(), format!("group:{sales}")]
    );
    cat.revoke("a@example.com", "zed").expect("revoke");
    assert_eq!(cat.granted_groups().expect("groups"), [sales]);
    assert!(!cat.may_search(&zed, "a@example.com").expect("may"));
    let member = UserInfo {
        groups: vec![sales.to_string()],
        ..zed.clone()
    };
    assert!(cat.may_search(&member, "a@example.com").expect("may"));
    assert_eq!(
        cat.searchable_by(&member).expect("searchable"),
        ["a@example.com"]
    );
    cat.revoke_group("a@example.com", sales)
        .expect("revoke group");
    assert!(!cat.may_search(&member, "a@example.com").expect("may"));
    assert!(cat.granted_groups().expect("groups").is_empty());

    cat.set_mailbox_repository("b@example.com", "cold")
        .expect("set repo");
    assert_eq!(
        cat.default_repository("b@example.com").expect("repo").name,
        "cold"
    );
    let boxes = cat.mailboxes().expect("mailboxes");
    assert_eq!(boxes.len(), 2);
    assert_eq!((boxes[0].messages, boxes[0].bytes), (0, 0));
}

fn import_search_read_and_reopen(kind: Kind) {
    let b = Backend::new(kind);
    let box_ = "m@example.com";
    let ids: Vec<MessageId>;
    {
        let archive = b.archive();
        archive
            .catalog()
            .expect("catalog")
            .add_mailbox(box_, "default", None)
            .expect("mailbox");
        let items: Vec<BatchItem> = (0..20).map(|n| mail(n, "quokka")).collect();
        let out = archive.add_messages(box_, items.clone()).expect("import");
        assert!(out.iter().all(|o| o.status == ItemStatus::Imported));
        ids = out.iter().map(|o| o.id.expect("id")).collect();
        let again = archive.add_messages(box_, items).expect("import again");
        assert!(again.iter().all(|o| o.status == ItemStatus::Duplicate));
        archive.commit_index().expect("commit");
        let req = SearchRequest {
            query: "quokka".into(),
            mailbox: None,
            limit: 100,
        };
        assert_eq!(archive.search(&admin(), &req).expect("search").len(), 20);
    }
    // Reopened (a restart): everything is still there, and a fresh index is
    // rebuilt from the catalog and the packs.
    std::fs::remove_dir_all(b.dir.path().join("index")).expect("drop the index");
    let archive = b.archive();
    let info = archive
        .catalog()
        .expect("catalog")
        .mailbox(box_)
        .expect("mailbox");
    assert_eq!(info.messages, 20);
    assert!(info.bytes > 0);
    for id in &ids {
        let raw = archive.get(box_, id).expect("read");
        assert_eq!(MessageId::of(&raw), *id);
    }
    let req = SearchRequest {
        query: "quokka".into(),
        mailbox: Some(box_.into()),
        limit: 100,
    };
    assert_eq!(archive.search(&admin(), &req).expect("search").len(), 20);
    let members = archive
        .catalog()
        .expect("catalog")
        .members_since(box_, 0)
        .expect("members");
    assert_eq!(members.len(), 20);
    assert!(members.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(members[0].folder, "INBOX");
}

fn the_membership_log_records_additions_and_removals(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let box_ = "log@example.com";
    archive
        .catalog()
        .expect("catalog")
        .add_mailbox(box_, "default", None)
        .expect("mailbox");
    let out = archive
        .add_messages(box_, (0..3).map(|n| mail(n, "log")).collect())
        .expect("import");
    let ids: Vec<MessageId> = out.iter().map(|o| o.id.expect("id")).collect();
    let mut cat = archive.catalog().expect("catalog");
    let before = cat.last_seq(box_).expect("last seq");
    assert!(cat.remove_membership(box_, &ids[1]).expect("remove"));
    assert!(!cat.remove_membership(box_, &ids[1]).expect("remove twice"));
    let after = cat.last_seq(box_).expect("last seq");
    assert!(after > before);
    let removed = cat.removals_between(box_, before, after).expect("removals");
    assert_eq!(removed, [(after, ids[1].to_hex())]);
    let live = cat.member_entries_since(box_, 0).expect("entries");
    assert_eq!(live.len(), 2);
    assert!(!cat.in_mailbox(box_, &ids[1]).expect("in mailbox"));
    assert_eq!(cat.mailboxes_of(&ids[0]).expect("mailboxes"), [box_]);
    let meta = cat.message_meta(&ids[0]).expect("meta").expect("stored");
    assert_eq!(meta.subject, "note 0");
    assert_eq!(cat.last_seq("never@example.com").expect("last seq"), 0);
}

fn component_migrations_run_once_and_refuse_newer(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let cat = archive.catalog().expect("catalog");
    let steps = [
        Migration {
            sqlite: "CREATE TABLE probe(n INTEGER NOT NULL);",
            postgres: "CREATE TABLE probe(n BIGINT NOT NULL);",
        },
        Migration {
            sqlite: "INSERT INTO probe(n) VALUES (7);",
            postgres: "INSERT INTO probe(n) VALUES (7);",
        },
    ];
    cat.migrate_component("probe", &steps).expect("migrate");
    cat.migrate_component("probe", &steps)
        .expect("migrate again: nothing to do");
    let rows = cat.db().query("SELECT n FROM probe", &[]).expect("query");
    assert_eq!(rows.len(), 1, "each step ran once");
    assert_eq!(rows[0].get::<i64>(0).expect("n"), 7);
    let newer = cat.migrate_component("probe", &steps[..1]);
    assert!(
        matches!(newer, Err(ArchiveError::Invalid { what: "probe", .. })),
        "{newer:?}"
    );
}

fn a_dropped_transaction_leaves_nothing(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let cat = archive.catalog().expect("catalog");
    {
        let tx = cat.transaction().expect("begin");
        tx.execute(
            "INSERT INTO users(name, password_hash, admin, created) VALUES ($1, $2, $3, $4)",
            params!["ghost", "h", false, 0],
        )
        .expect("insert");
        assert!(cat.transaction().is_err(), "no transaction inside another");
    }
    assert!(cat.user("ghost").expect("user").is_none());
    let tx = cat.transaction().expect("begin");
    tx.execute(
        "INSERT INTO users(name, password_hash, admin, created) VALUES ($1, $2, $3, $4)",
        params!["kept", "h", true, 0],
    )
    .expect("insert");
    tx.commit().expect("commit");
    assert!(cat.user("kept").expect("user").is_some());
}

fn imap_passwords_are_sealed(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let mut cat = archive.catalog().expect("catalog");
    let key = SecretKey::from_hex(&"11".repeat(32)).expect("key");
    cat.use_secret_key(key).expect("key");
    cat.add_mailbox(
        "imap@example.com",
        "default",
        Some(("imap://127.0.0.1:1143", "bob", "s3cret pass")),
    )
    .expect("mailbox");
    assert_eq!(
        cat.imap_password("imap@example.com")
            .expect("password")
            .as_deref(),
        Some("s3cret pass")
    );
    let stored = cat
        .db()
        .query_one(
            "SELECT imap_secret, imap_password FROM mailboxes WHERE address = $1",
            params!["imap@example.com"],
        )
        .expect("row");
    let sealed: Vec<u8> = stored.get(0).expect("sealed");
    assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
    assert_eq!(stored.get::<Option<String>>(1).expect("clear"), None);
}

/// Two connections (two services) import into one mailbox at once: every
/// message lands once, and seqs are distinct and follow commit order.
fn two_writers_keep_membership_consistent(kind: Kind) {
    let b = Backend::new(kind);
    let box_ = "both@example.com";
    let first = b.archive();
    first
        .catalog()
        .expect("catalog")
        .add_mailbox(box_, "default", None)
        .expect("mailbox");
    let second_dir = tempfile::tempdir().expect("tempdir");
    // PostgreSQL: a second service with its own data folder on the same
    // catalog. SQLite: the one archive from two threads (a data folder has
    // one service).
    let second_own = b
        .url()
        .map(|url| Archive::open_with(second_dir.path(), Some(&url)).expect("open"));
    let second = second_own.as_ref().unwrap_or(&first);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            for batch in 0..5 {
                let items = (0..10).map(|n| mail(batch * 10 + n, "alpha")).collect();
                first.add_messages(box_, items).expect("import a");
            }
        });
        let bth = s.spawn(|| {
            for batch in 5..10 {
                let items = (0..10).map(|n| mail(batch * 10 + n, "beta")).collect();
                second.add_messages(box_, items).expect("import b");
            }
        });
        a.join().expect("writer a");
        bth.join().expect("writer b");
    });
    let cat = b.catalog();
    let members = cat.members_since(box_, 0).expect("members");
    assert_eq!(members.len(), 100);
    assert!(members.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(cat.last_seq(box_).expect("last"), members[99].seq);
}

/// An import batch costs PostgreSQL a fixed number of statements (each a
/// round trip), whatever its size; and a mixed batch (messages stored for
/// another mailbox, a new one, one twice) ends the same on both backends.
fn an_import_batch_costs_the_same_statements_whatever_its_size(kind: Kind) {
    let b = Backend::new(kind);
    let archive = b.archive();
    let (one, two) = ("one@example.com", "two@example.com");
    for box_ in [one, two] {
        archive
            .catalog()
            .expect("catalog")
            .add_mailbox(box_, "default", None)
            .expect("mailbox");
    }
    let sent = || archive.catalog().expect("catalog").db().statements_sent();
    let cost = |box_: &str, items: Vec<BatchItem>| {
        let before = sent();
        let out = archive.add_messages(box_, items).expect("import");
        (sent() - before, out)
    };
    let (small, first) = cost(one, (0..3).map(|n| mail(n, "small")).collect());
    let (large, _) = cost(one, (100..160).map(|n| mail(n, "large")).collect());
    let mixed = vec![
        mail(0, "small"),
        mail(1, "small"),
        mail(200, "mixed"),
        mail(200, "mixed"),
    ];
    let (mixed_cost, out) = cost(two, mixed.clone());
    let statuses: Vec<ItemStatus> = out.iter().map(|o| o.status).collect();
    use ItemStatus::{Duplicate, Imported};
    assert_eq!(statuses, [Imported, Imported, Imported, Duplicate]);
    let (_, again) = cost(two, mixed);
    assert!(again.iter().all(|o| o.status == Duplicate));
    if matches!(kind, Kind::Postgres) {
        assert_eq!(small, large, "statements for 3 and for 60 messages");
        assert_eq!(small, mixed_cost, "statements for a mixed batch");
    }

    let shared = first[0].id.expect("id");
    archive.commit_index().expect("commit");
    let cat = archive.catalog().expect("catalog");
    assert_eq!(cat.mailboxes_of(&shared).expect("mailboxes"), [one, two]);
    let members = cat.members_since(two, 0).expect("members");
    assert_eq!(members.len(), 3);
    assert!(members.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(cat.last_seq(two).expect("last"), members[2].seq);
    let head = cat.log_head().expect("log head");
    drop(cat);
    assert_eq!(
        archive.index_position().expect("position"),
        head,
        "the committed index reflects the whole membership log"
    );
    let search = |mailbox: &str, query: &str| {
        let req = SearchRequest {
            query: query.into(),
            mailbox: Some(mailbox.into()),
            limit: 100,
        };
        archive.search(&admin(), &req).expect("search").len()
    };
    assert_eq!(search(one, "small"), 3);
    assert_eq!(search(two, "small"), 2);
    assert_eq!(search(two, "mixed"), 1);
    assert_eq!(search(one, "large"), 60);
    // A search costs the same statements whatever its number of hits: it
    // names them from the catalog in two and finds the places of their
    // bytes (for the snippets) in one (`Archive::read_each`).
    let before = sent();
    assert_eq!(search(one, "small"), 3);
    let few = sent() - before;
    let before = sent();
    assert_eq!(search(one, "large"), 60);
    let many = sent() - before;
    if matches!(kind, Kind::Postgres) {
        assert_eq!(many, few, "statements for 3 hits and for 60");
    }
}

/// A node whose index is gone (a new node, a new schema) builds it from the
/// membership log: on PostgreSQL a page of the log costs a fixed number of
/// statements (the log, the messages' mailboxes, their places), not one
/// per message; on both backends everything is found again and the index's
/// position is the log's head.
fn an_index_is_rebuilt_from_the_log_a_page_at_a_time(kind: Kind) {
    let b = Backend::new(kind);
    let box_ = "m@example.com";
    let rebuild = |from: usize, to: usize| {
        {
            let archive = b.archive();
            if from == 0 {
                let cat = archive.catalog().expect("catalog");
                cat.add_mailbox(box_, "default", None).expect("mailbox");
            }
            let items: Vec<BatchItem> = (from..to).map(|n| mail(n, "paged")).collect();
            for chunk in items.chunks(400) {
                archive.add_messages(box_, chunk.to_vec()).expect("import");
            }
        }
        std::fs::remove_dir_all(b.dir.path().join("index")).expect("index removed");
        let archive = b.archive();
        let cost = archive.catalog().expect("catalog").db().statements_sent();
        let req = SearchRequest {
            query: "paged".into(),
            mailbox: None,
            limit: 10_000,
        };
        assert_eq!(archive.search(&admin(), &req).expect("search").len(), to);
        let head = archive
            .catalog()
            .expect("catalog")
            .log_head()
            .expect("head");
        assert_eq!(archive.index_position().expect("position"), head);
        cost
    };
    let small = rebuild(0, 20);
    let large = rebuild(20, 1_220);
    if matches!(kind, Kind::Postgres) {
        // 1,200 more messages are 3 more pages of 500.
        assert!(
            large - small <= 20,
            "opening with a rebuild: {small} statements for 20 messages, {large} for 1,220"
        );
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Kind::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(super::Kind::Postgres) })*
        }
    };
}

on_both!(
    users_and_tokens,
    mailboxes_grants_and_repositories,
    import_search_read_and_reopen,
    the_membership_log_records_additions_and_removals,
    component_migrations_run_once_and_refuse_newer,
    a_dropped_transaction_leaves_nothing,
    imap_passwords_are_sealed,
    two_writers_keep_membership_consistent,
    an_import_batch_costs_the_same_statements_whatever_its_size,
    an_index_is_rebuilt_from_the_log_a_page_at_a_time,
);

/// Two archives (two nodes' data folders, each with its own index) on one
/// PostgreSQL catalog: each finds what the other imported once its log
/// follower ran, and the follower of the importing node reads nothing of
/// its own batch (its documents already list the right mailboxes), so it
/// costs fewer statements than following another node's batch.
#[test]
fn postgres_two_archives_follow_one_log_and_the_importer_reads_nothing_again() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |node: &str| {
        Archive::open_with(&dir.path().join(node), Some(&pg.url())).expect("archive opens")
    };
    let (a, b) = (open("a"), open("b"));
    let box_ = "m@example.com";
    {
        let cat = a.catalog().expect("catalog");
        let shared = RepositoryInfo {
            name: "shared".into(),
            kind: "disk".into(),
            path: dir.path().join("shared"),
            endpoint: None,
            cold: false,
        };
        std::fs::create_dir_all(&shared.path).expect("shared folder");
        cat.add_repository(&shared).expect("repo");
        cat.add_mailbox(box_, "shared", None).expect("mailbox");
    }
    let found = |archive: &Archive| {
        let req = SearchRequest {
            query: "follow".into(),
            mailbox: None,
            limit: 100,
        };
        archive.search(&admin(), &req).expect("search").len()
    };
    let sent = |archive: &Archive| archive.catalog().expect("catalog").db().statements_sent();
    let follow = |archive: &Archive| {
        let before = sent(archive);
        archive.commit_index().expect("follow the log");
        sent(archive) - before
    };
    let items: Vec<BatchItem> = (0..60).map(|n| mail(n, "follow")).collect();
    a.add_messages(box_, items).expect("import");
    let own = follow(&a);
    let other = follow(&b);
    assert_eq!((found(&a), found(&b)), (60, 60));
    assert!(
        own < other,
        "following its own batch ({own} statements) reads less than another's ({other})"
    );
    let removed: MessageId = MessageId::of(&mail(0, "follow").raw);
    assert!(
        b.catalog()
            .expect("catalog")
            .remove_membership(box_, &removed)
            .expect("remove")
    );
    follow(&a);
    follow(&b);
    assert_eq!((found(&a), found(&b)), (59, 59), "a removal leaves both");
}

#[test]
fn postgres_a_bad_url_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Archive::open_with(dir.path(), Some("mysql://x@h/db"))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("postgres://"), "{err}");
    let err = Archive::open_with(dir.path(), Some("postgres://nobody@127.0.0.1:1/none"))
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("catalog (PostgreSQL nobody@127.0.0.1:1/none)") && text.contains("connect"),
        "{text}"
    );
}

/// A stopped server is an error naming the catalog; once it is back, the
/// next call connects again by itself.
#[test]
fn postgres_a_lost_connection_is_an_error_then_reconnects() {
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Archive::open_with(dir.path(), Some(&pg.url())).expect("open");
    archive
        .catalog()
        .expect("catalog")
        .add_user("u", "h", false)
        .expect("user");
    pg.stop();
    let err = archive
        .catalog()
        .expect("catalog")
        .users()
        .expect_err("server is down");
    assert!(err.to_string().contains("catalog (PostgreSQL"), "{err}");
    pg.restart();
    let users = archive
        .catalog()
        .expect("catalog")
        .users()
        .expect("reconnected");
    assert_eq!(users.len(), 1);
}

/// A session lock (one node's right to a long piece of work) is held by one
/// connection at a time, is seen as held by its holder, and is free again
/// once released or once its connection is gone.
#[test]
fn postgres_a_session_lock_has_one_holder() {
    let mut pg = Postgres::start();
    let (a, b) = (
        Catalog::connect(&pg.url()).expect("a"),
        Catalog::connect(&pg.url()).expect("b"),
    );
    let key = 0x1234_5678_9abc_def0_i64;
    assert!(a.db().try_session_lock(key).expect("a locks"));
    assert!(!b.db().try_session_lock(key).expect("b tries"));
    assert!(a.db().session_lock_held(key).expect("held"));
    assert!(!b.db().session_lock_held(key).expect("not b's"));
    assert!(b.db().try_session_lock(-key).expect("another key"));
    a.db().session_unlock(key).expect("a unlocks");
    assert!(!a.db().session_lock_held(key).expect("released"));
    assert!(b.db().try_session_lock(key).expect("b locks"));
    // The holder's connection replaced: the lock is gone, and it says so.
    pg.stop();
    pg.restart();
    assert!(!b.db().session_lock_held(key).expect("reconnected"));
    assert!(a.db().try_session_lock(key).expect("a locks again"));
}
