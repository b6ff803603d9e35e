//! Claims, leases and heartbeats in the catalog (jobs component v2): what
//! makes a scheduled firing or a job that runs alone run once across several
//! nodes on one catalog. Each test runs on SQLite and on a real PostgreSQL
//! (satchel-testkit), with two connections to one catalog as two nodes have.

use satchel_archive::Archive;
use satchel_archive::catalog::Catalog;
use satchel_server::jobs::{self, claims};
use satchel_testkit::postgres::Postgres;

/// One catalog with the jobs tables, and two connections to it ("nodes").
struct Nodes {
    _dir: tempfile::TempDir,
    _pg: Option<Postgres>,
    _archive: Archive,
    a: Catalog,
    b: Catalog,
}

impl Nodes {
    fn new(postgres: bool) -> Nodes {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = postgres.then(Postgres::start);
        let url = pg.as_ref().map(Postgres::url);
        let archive = Archive::open_with(dir.path(), url.as_deref()).expect("archive");
        jobs::migrate(&archive.catalog().expect("catalog")).expect("jobs tables");
        let connect = || match &url {
            Some(url) => Catalog::connect(url).expect("connect"),
            None => Catalog::open(&dir.path().join("catalog.sqlite")).expect("open"),
        };
        let (a, b) = (connect(), connect());
        Nodes {
            _dir: dir,
            _pg: pg,
            _archive: archive,
            a,
            b,
        }
    }
}

const FIRING: i64 = 1_800_000_000;

fn a_firing_is_claimed_by_one_node(postgres: bool) {
    let n = Nodes::new(postgres);
    let (a, b) = (n.a.db(), n.b.db());
    assert!(claims::claim(a, "offline-update", FIRING, "a", FIRING + 2).expect("claim"));
    // B's clock is 3 s late: it claims the same scheduled instant, later.
    assert!(!claims::claim(b, "offline-update", FIRING, "b", FIRING + 5).expect("claim"));
    assert!(!claims::claim(a, "offline-update", FIRING, "a", FIRING + 5).expect("claim"));
    assert!(claims::claim(b, "offline-update", FIRING + 60, "b", FIRING + 60).expect("claim"));
    assert!(claims::claim(b, "archive:x@example.com", FIRING, "b", FIRING).expect("claim"));

    // Old claims are pruned; what is newer stays claimed.
    assert_eq!(claims::prune_claims(a, FIRING + 1).expect("prune"), 2);
    assert!(!claims::claim(a, "offline-update", FIRING + 60, "a", FIRING + 61).expect("claim"));
}

fn a_lease_is_held_once_and_expires_without_heartbeat(postgres: bool) {
    let n = Nodes::new(postgres);
    let (a, b) = (n.a.db(), n.b.db());
    let (held_a, held_b) = (claims::Held::default(), claims::Held::default());
    let now = FIRING;
    let key = jobs::archive_lease("x@example.com");
    let lease = claims::Lease::take(a, &key, "a", &held_a, now).expect("take");
    let lease = lease.expect("free: taken");
    assert!(
        claims::Lease::take(a, &key, "a", &held_a, now)
            .expect("take")
            .is_none()
    );
    assert!(
        claims::Lease::take(b, &key, "b", &held_b, now)
            .expect("take")
            .is_none()
    );

    // A's heartbeats keep it past the first lease's end.
    let later = now + claims::LEASE_SECS - 1;
    claims::beat(a, "a", &held_a.lock().expect("held"), later).expect("beat");
    let after_first = now + claims::LEASE_SECS + 1;
    assert!(
        claims::Lease::take(b, &key, "b", &held_b, after_first)
            .expect("take")
            .is_none()
    );

    // Given back, it is free at once.
    lease.release(a).expect("release");
    let lease_b = claims::Lease::take(b, &key, "b", &held_b, after_first).expect("take");
    let lease_b = lease_b.expect("released: taken by b");

    // B dies holding it (no release, no heartbeat): free after the lease.
    std::mem::forget(lease_b);
    let dead = after_first + claims::LEASE_SECS - 1;
    assert!(
        claims::Lease::take(a, &key, "a", &held_a, dead)
            .expect("take")
            .is_none()
    );
    let expired = after_first + claims::LEASE_SECS + 1;
    let lease = claims::Lease::take(a, &key, "a", &held_a, expired).expect("take");
    assert!(lease.is_some(), "expired: taken by a");
}

fn a_lease_dropped_without_release_is_given_back_by_the_heartbeat(postgres: bool) {
    let n = Nodes::new(postgres);
    let (a, b) = (n.a.db(), n.b.db());
    let (held_a, held_b) = (claims::Held::default(), claims::Held::default());
    let key = jobs::OFFLINE_ALL_LEASE;
    drop(claims::Lease::take(a, key, "a", &held_a, FIRING).expect("take"));
    assert!(
        claims::Lease::take(b, key, "b", &held_b, FIRING)
            .expect("take")
            .is_none()
    );
    claims::beat(a, "a", &held_a.lock().expect("held"), FIRING + 1).expect("beat");
    let lease = claims::Lease::take(b, key, "b", &held_b, FIRING + 1).expect("take");
    assert!(lease.is_some(), "given back by a's heartbeat");
}

fn outcome(cat: &Catalog, id: i64) -> String {
    let all = jobs::list(cat.db(), None, None, 100).expect("jobs");
    let job = all.into_iter().find(|j| j.id == id).expect("the job");
    job.outcome
}

fn a_dead_nodes_running_job_is_abandoned_and_a_restart_interrupts_only_its_own(postgres: bool) {
    let n = Nodes::new(postgres);
    let (a, b) = (n.a.db(), n.b.db());
    let on_a = jobs::start(a, "a", jobs::OFFLINE_UPDATE, Some("x@example.com")).expect("start");
    let on_b = jobs::start(b, "b", jobs::ARCHIVE, Some("y@example.com")).expect("start");
    let now = chrono::Utc::now().timestamp();

    // B restarts: only B's job was cut short by it.
    assert_eq!(claims::mark_interrupted(b, "b", now).expect("mark"), 1);
    assert_eq!(outcome(&n.a, on_b), "interrupted");
    assert_eq!(outcome(&n.a, on_a), "running");

    // A's job beats: alive. Then A stops beating: B marks it abandoned once
    // the lease has passed, never before.
    assert_eq!(claims::mark_abandoned(b, "b", now + 1).expect("mark"), 0);
    let late = now + claims::LEASE_SECS + 5;
    claims::beat(a, "a", &Default::default(), late).expect("beat");
    assert_eq!(claims::mark_abandoned(b, "b", late + 1).expect("mark"), 0);
    assert_eq!(outcome(&n.b, on_a), "running");
    let dead = late + claims::LEASE_SECS + 1;
    assert_eq!(
        claims::mark_abandoned(a, "a", dead).expect("mark"),
        0,
        "never its own"
    );
    assert_eq!(claims::mark_abandoned(b, "b", dead).expect("mark"), 1);
    assert_eq!(outcome(&n.b, on_a), "abandoned");
}

fn a_job_started_for_a_firing_records_it_and_its_node(postgres: bool) {
    let n = Nodes::new(postgres);
    let id = claims::with_firing(Some(FIRING), || {
        jobs::start(n.a.db(), "a", jobs::OFFLINE_UPDATE, None).expect("start")
    });
    let plain = jobs::start(n.a.db(), "a", jobs::OFFLINE_UPDATE, None).expect("start");
    let all = jobs::list(n.b.db(), None, None, 10).expect("jobs");
    let view = |id| all.iter().find(|j| j.id == id).expect("job").clone().view();
    let (scheduled, asked) = (view(id), view(plain));
    assert_eq!(scheduled.firing.as_deref(), Some("2027-01-15T08:00:00Z"));
    assert_eq!(scheduled.node.as_deref(), Some("a"));
    assert_eq!(asked.firing, None);
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(false) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(true) })*
        }
    };
}

on_both!(
    a_firing_is_claimed_by_one_node,
    a_lease_is_held_once_and_expires_without_heartbeat,
    a_lease_dropped_without_release_is_given_back_by_the_heartbeat,
    a_dead_nodes_running_job_is_abandoned_and_a_restart_interrupts_only_its_own,
    a_job_started_for_a_firing_records_it_and_its_node,
);
