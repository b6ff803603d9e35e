//! The laptop client against a small stand-in of the service's offline
//! endpoints, built on `satchel_offline::Repository` (the real service is
//! exercised end to end in crates/satchel/tests/laptop.rs). Here the cases
//! that need control over the wire: byte counts, partial files, damage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use satchel_laptop::{Change, Config, Error, Home, MessageLink, NoProgress, sync_all};
use satchel_offline::{
    MessageEntry, MessageId, OfflineRepositoryList, OfflineRepositoryListing, ReplicaIndex,
    Repository,
};

const TOKEN: &str = "sat_test_token";

#[derive(Default)]
struct Counters {
    manifest_requests: AtomicU64,
    segment_bytes: AtomicU64,
    ranges: Mutex<Vec<String>>,
}

struct Fake {
    repos: Mutex<HashMap<String, PathBuf>>,
    counters: Counters,
}

fn authorized(h: &HeaderMap) -> bool {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {TOKEN}").as_str())
}

async fn whoami(h: HeaderMap) -> Response {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({"name": "alice", "admin": false})).into_response()
}

async fn list(State(f): State<Arc<Fake>>, h: HeaderMap) -> Response {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let repos = f.repos.lock().unwrap().clone();
    let mut out = OfflineRepositoryList::default();
    for (mb, dir) in repos {
        let m = satchel_offline::Manifest::load(&dir).unwrap();
        out.repositories
            .push(OfflineRepositoryListing::from_manifest(
                &m,
                format!("/api/v1/offline/repositories/{mb}/manifest"),
            ));
    }
    axum::Json(out).into_response()
}

fn dir_of(f: &Fake, mb: &str) -> Option<PathBuf> {
    f.repos.lock().unwrap().get(mb).cloned()
}

async fn manifest(
    State(f): State<Arc<Fake>>,
    UrlPath(mb): UrlPath<String>,
    h: HeaderMap,
) -> Response {
    f.counters.manifest_requests.fetch_add(1, Ordering::SeqCst);
    let Some(dir) = dir_of(&f, &mb) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let m = satchel_offline::Manifest::load(&dir).unwrap();
    let etag = m.etag();
    if h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    ([(header::ETAG, etag)], m.to_json()).into_response()
}

async fn segment(
    State(f): State<Arc<Fake>>,
    UrlPath((mb, name)): UrlPath<(String, String)>,
    h: HeaderMap,
) -> Response {
    let Some(dir) = dir_of(&f, &mb) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(bytes) = std::fs::read(dir.join("segments").join(&name)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(r) = h.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        f.counters.ranges.lock().unwrap().push(r.to_string());
        let from: usize = r
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        let body = bytes[from..].to_vec();
        f.counters
            .segment_bytes
            .fetch_add(body.len() as u64, Ordering::SeqCst);
        let cr = format!("bytes {}-{}/{}", from, bytes.len() - 1, bytes.len());
        return (
            StatusCode::PARTIAL_CONTENT,
            [(header::CONTENT_RANGE, cr)],
            body,
        )
            .into_response();
    }
    f.counters
        .segment_bytes
        .fetch_add(bytes.len() as u64, Ordering::SeqCst);
    Response::new(Body::from(bytes))
}

async fn message(
    State(f): State<Arc<Fake>>,
    UrlPath((mb, id)): UrlPath<(String, String)>,
) -> Response {
    let Some(dir) = dir_of(&f, &mb) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let r = ReplicaIndex::open(&dir).unwrap();
    match r.read(&MessageId::from_hex(&id).unwrap()) {
        Ok(raw) => raw.into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "no such message"})),
        )
            .into_response(),
    }
}

struct Service {
    fake: Arc<Fake>,
    url: String,
    rt: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    dir: tempfile::TempDir,
}

impl Service {
    fn start() -> Service {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let fake = Arc::new(Fake {
            repos: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        let app = Router::new()
            .route("/api/v1/whoami", get(whoami))
            .route("/api/v1/offline/repositories", get(list))
            .route("/api/v1/offline/repositories/{mb}/manifest", get(manifest))
            .route(
                "/api/v1/offline/repositories/{mb}/segments/{name}",
                get(segment),
            )
            .route("/api/v1/mailboxes/{mb}/messages/{id}", get(message))
            .with_state(fake.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Service {
            fake,
            url,
            rt,
            shutdown: Some(tx),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn repo(&self, mb: &str) -> Repository {
        let dir = self.dir.path().join(mb);
        self.fake
            .repos
            .lock()
            .unwrap()
            .insert(mb.to_string(), dir.clone());
        Repository::create_or_open(&dir, mb).unwrap()
    }

    fn withdraw(&self, mb: &str) {
        self.fake.repos.lock().unwrap().remove(mb);
    }

    fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.rt.shutdown_timeout(std::time::Duration::from_secs(2));
    }

    fn home(&self, dir: &Path) -> Home {
        let home = Home::at(dir.join("home"));
        home.save_config(&Config {
            server: self.url.clone(),
            user: "alice".into(),
            token: TOKEN.into(),
            created: String::new(),
            ca_pem: None,
        })
        .unwrap();
        home
    }

    fn seg_bytes(&self) -> u64 {
        self.fake.counters.segment_bytes.load(Ordering::SeqCst)
    }
    fn manifests(&self) -> u64 {
        self.fake.counters.manifest_requests.load(Ordering::SeqCst)
    }
}

fn msg(n: u64) -> MessageEntry {
    let mut raw = format!(
        "From: User {n} <u{n}@example.com>\r\nTo: alice@example.com\r\nSubject: note {n}\r\n\r\n"
    );
    for i in 0..(50 + n % 40) {
        raw.push_str(&format!(
            "line {i} of message {n}, about wombat{n} and more text {}\r\n",
            i * n
        ));
    }
    MessageEntry::new(
        raw.into_bytes(),
        1_000_000_000 + n as i64,
        format!("u{n}@example.com"),
        format!("note {n}"),
    )
}

fn append(repo: &mut Repository, range: std::ops::Range<u64>) -> satchel_offline::Manifest {
    let mut w = repo.new_segment();
    for n in range {
        w.add(msg(n)).unwrap();
    }
    repo.append_segment(w).unwrap()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

fn home_search(home: &Home, q: &str) -> Vec<String> {
    satchel_laptop::search::search_home(home, q, None, 10)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id.to_hex())
        .collect()
}

fn link(mb: &str, n: u64) -> MessageLink {
    format!("satchel://{mb}/{}", msg(n).id).parse().unwrap()
}

#[test]
fn sync_copies_then_only_changes_then_rebuilds_on_flush() {
    let svc = Service::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = svc.home(tmp.path());
    let mut repo = svc.repo("alice@example.com");
    let m1 = append(&mut repo, 0..300);

    let r = block(sync_all(&home, &NoProgress)).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let a = &r.mailboxes[0];
    assert_eq!(a.change, Change::Created);
    assert_eq!(a.messages, 300);
    assert_eq!(a.segment_bytes, m1.totals.bytes);
    assert_eq!(svc.seg_bytes(), m1.totals.bytes);

    // No change: one conditional manifest request, nothing else.
    let before = (svc.manifests(), svc.seg_bytes());
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    assert_eq!(r.mailboxes[0].change, Change::Unchanged);
    assert_eq!(r.mailboxes[0].bytes_downloaded, 0);
    assert_eq!((svc.manifests(), svc.seg_bytes()), (before.0 + 1, before.1));

    // 20 new messages: only the new segment.
    let m2 = append(&mut repo, 300..320);
    let new_seg = m2.segments.last().unwrap().size;
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    let a = &r.mailboxes[0];
    assert_eq!(a.change, Change::Updated);
    assert_eq!(a.segment_bytes, new_seg);
    assert_eq!(a.segments_downloaded, 1);
    assert_eq!(a.messages, 320);
    assert_eq!(a.generation, m2.generation);
    assert_eq!(home_search(&home, "wombat310"), vec![msg(310).id.to_hex()]);

    // Flush: new epoch, local copy dropped and rebuilt.
    repo.flush().unwrap();
    let m3 = append(&mut repo, 1000..1010);
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    let a = &r.mailboxes[0];
    assert_eq!(a.change, Change::Rebuilt);
    assert_eq!(a.messages, 10);
    assert_eq!(a.epoch, m3.epoch);
    let files: Vec<_> = std::fs::read_dir(home.replica_dir("alice@example.com").join("segments"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "old segments deleted");
    assert!(
        home_search(&home, "wombat310").is_empty(),
        "index follows the flush"
    );
    assert_eq!(
        home_search(&home, "wombat1005"),
        vec![msg(1005).id.to_hex()]
    );

    // Offline: the service is gone.
    drop(repo);
    svc.stop();
    let opened = block(satchel_laptop::open_message(
        &home,
        &link("alice@example.com", 1003),
    ))
    .unwrap();
    assert_eq!(opened.source, satchel_laptop::Source::LocalCopy);
    assert!(opened.service_error.is_some_and(|e| e.is_offline()));
    assert_eq!(opened.value, msg(1003).raw);
    let err = block(satchel_laptop::open_message(
        &home,
        &link("alice@example.com", 310),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::NotInLocalCopy { .. }), "{err}");
    assert!(
        err.to_string().contains("offline") && err.to_string().contains("not in the local copy"),
        "{err}"
    );
    let err = block(sync_all(&home, &NoProgress)).unwrap_err();
    assert!(err.is_offline(), "{err}");
    let found = block(satchel_laptop::search(&home, "wombat1007", None, 10)).unwrap();
    assert_eq!(found.source, satchel_laptop::Source::LocalCopy);
    assert_eq!(found.value.hits.len(), 1);
}

#[test]
fn mailboxes_no_longer_offered_are_removed() {
    let svc = Service::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = svc.home(tmp.path());
    let mut a = svc.repo("a@example.com");
    let mut b = svc.repo("b@example.com");
    append(&mut a, 0..5);
    append(&mut b, 5..10);
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    assert_eq!(r.mailboxes.len(), 2);
    assert_eq!(
        home.local_mailboxes().unwrap(),
        vec!["a@example.com", "b@example.com"]
    );
    svc.withdraw("b@example.com");
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    assert_eq!(r.removed, vec!["b@example.com"]);
    assert_eq!(home.local_mailboxes().unwrap(), vec!["a@example.com"]);
    assert!(home_search(&home, "wombat7").is_empty());
    assert_eq!(home_search(&home, "wombat3").len(), 1);
}

#[test]
fn partial_download_resumes_with_range() {
    let svc = Service::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = svc.home(tmp.path());
    let mut repo = svc.repo("alice@example.com");
    let m = append(&mut repo, 0..200);
    let seg = &m.segments[0];
    // A previous sync was cut after 1000 bytes.
    let full = std::fs::read(repo.dir().join("segments").join(&seg.name)).unwrap();
    let partial = home.replica_dir("alice@example.com").join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join(&seg.name), &full[..1000]).unwrap();

    let r = block(sync_all(&home, &NoProgress)).unwrap();
    let a = &r.mailboxes[0];
    assert_eq!(a.segments_resumed, 1);
    assert_eq!(a.segment_bytes, seg.size - 1000);
    assert_eq!(svc.seg_bytes(), seg.size - 1000);
    assert_eq!(
        *svc.fake.counters.ranges.lock().unwrap(),
        vec!["bytes=1000-".to_string()]
    );
    assert_eq!(a.messages, 200);

    // A corrupt partial file: the resumed result fails its hash, so it is
    // fetched again whole and never installed damaged.
    let m2 = append(&mut repo, 200..260);
    let seg2 = m2.segments.last().unwrap().clone();
    std::fs::write(partial.join(&seg2.name), vec![0u8; 500]).unwrap();
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.mailboxes[0].segment_bytes, seg2.size - 500 + seg2.size);
    assert!(satchel_laptop::verify_all(&home).unwrap().ok);
}

#[test]
fn damaged_copies_are_detected_refetched_and_never_served() {
    let svc = Service::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = svc.home(tmp.path());
    let mut repo = svc.repo("alice@example.com");
    let mut segs = Vec::new();
    for i in 0..4 {
        let m = append(&mut repo, i * 50..i * 50 + 50);
        segs.push(m.segments.last().unwrap().clone());
    }
    block(sync_all(&home, &NoProgress)).unwrap();
    let dir = home.replica_dir("alice@example.com").join("segments");
    // Flip a byte in segment 0's first block, truncate segment 1, delete segment 2.
    let p0 = dir.join(&segs[0].name);
    let mut b = std::fs::read(&p0).unwrap();
    b[20] ^= 0xff;
    std::fs::write(&p0, b).unwrap();
    let p1 = dir.join(&segs[1].name);
    let b = std::fs::read(&p1).unwrap();
    std::fs::write(&p1, &b[..b.len() / 2]).unwrap();

    // Never served damaged: a message in the flipped block is refused.
    let replica =
        satchel_laptop::Replica::new(home.replica_dir("alice@example.com"), "alice@example.com");
    {
        let reader = satchel_offline::ReplicaIndex::with_manifest(replica.dir(), {
            let mut m = replica.manifest().unwrap().unwrap();
            m.segments.truncate(1);
            m.set_totals(0);
            m
        })
        .unwrap();
        let mut refused = 0;
        for n in 0..50 {
            match reader.read(&msg(n).id) {
                Ok(raw) => assert_eq!(raw, msg(n).raw),
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0);
    }
    std::fs::remove_file(dir.join(&segs[2].name)).unwrap();

    let v = satchel_laptop::verify_all(&home).unwrap();
    assert!(!v.ok);
    assert_eq!(
        v.mailboxes[0].damaged,
        vec![segs[0].name.clone(), segs[1].name.clone()]
    );
    assert_eq!(v.mailboxes[0].missing, vec![segs[2].name.clone()]);

    let before = svc.seg_bytes();
    let r = block(sync_all(&home, &NoProgress)).unwrap();
    let a = &r.mailboxes[0];
    assert_eq!(a.change, Change::Unchanged);
    assert_eq!(a.segments_repaired, 3);
    assert_eq!(
        svc.seg_bytes() - before,
        segs[0].size + segs[1].size + segs[2].size,
        "only the damaged and missing segments"
    );
    assert!(satchel_laptop::verify_all(&home).unwrap().ok);
    let reader = replica.open().unwrap();
    for n in 0..200 {
        assert_eq!(reader.read(&msg(n).id).unwrap(), msg(n).raw);
    }
}
