//! No body is read before the caller is known to be allowed (issue 9, point 2):
//! refused uploads are answered without reading them, allowed ones stream to
//! disk, a request over the limit is a 413 naming the limit, and `satchel
//! import` reports an oversized message as that message's failure. Also: an
//! empty selection in `POST /offline/sync` is a 400 (point 10).
//!
//! Memory is the service's own count from /proc (VmHWM, its peak), compared
//! with the bytes offered; uploads are raw HTTP so the test controls the body.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;

const MIB: u64 = 1024 * 1024;
const BOUNDARY: &str = "satchel-test-boundary";
const EVE: &str = "eve";
const EVE_PASSWORD: &str = "eve-password";
const MB: &str = "carol@example.com";

/// An upload as a client would send it: `parts` messages of `part_bytes` each.
#[derive(Clone)]
struct Upload {
    path: String,
    auth: Option<(String, String)>,
    parts: usize,
    part_bytes: usize,
    /// Chunked transfer encoding (no declared length) instead of Content-Length.
    chunked: bool,
    content_type: &'static str,
}

const MULTIPART: &str = "multipart/form-data; boundary=satchel-test-boundary";

/// What came of an upload.
#[derive(Debug)]
struct Outcome {
    status: u16,
    body: String,
    /// Body bytes the service took before it answered and hung up.
    sent: u64,
    /// Whether the whole body went out.
    complete: bool,
}

/// A message of exactly `len` bytes (at least its header), unique by `i`.
fn message(i: usize, len: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bob <bob@example.org>\r\nTo: {MB}\r\nSubject: big upload {i}\r\n\
         Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <big{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let head = m.len();
    let line = format!("line of message {i}: the quick brown fox jumps over the lazy dog\r\n");
    while m.len() < len {
        m.extend_from_slice(line.as_bytes());
    }
    // Ends with a line break, whatever the length.
    m.truncate(len.max(head + 2) - 2);
    m.extend_from_slice(b"\r\n");
    m
}

fn part_head(i: usize) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"message\"; \
         filename=\"big-{i}.eml\"\r\nContent-Type: message/rfc822\r\n\r\n"
    )
}

const CLOSING: &str = "--satchel-test-boundary--\r\n";

impl Upload {
    fn body_len(&self) -> u64 {
        (0..self.parts)
            .map(|i| (part_head(i).len() + self.part_bytes + 2) as u64)
            .sum::<u64>()
            + CLOSING.len() as u64
    }

    fn head(&self) -> String {
        let mut h = format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {}\r\n",
            self.path, self.content_type
        );
        if self.chunked {
            h.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            h.push_str(&format!("Content-Length: {}\r\n", self.body_len()));
        }
        if let Some((user, password)) = &self.auth {
            let pair = format!("{user}:{password}");
            h.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(pair.as_bytes())
            ));
        }
        h.push_str("\r\n");
        h
    }

    /// Writes the body; returns the bytes written, stopping at the first error
    /// (the service hung up).
    fn write_body(&self, out: &mut TcpStream) -> (u64, bool) {
        let mut sent = 0u64;
        let mut write = |data: &[u8]| -> bool {
            let ok = if self.chunked {
                out.write_all(format!("{:x}\r\n", data.len()).as_bytes())
                    .and_then(|_| out.write_all(data))
                    .and_then(|_| out.write_all(b"\r\n"))
            } else {
                out.write_all(data)
            };
            if ok.is_ok() {
                sent += data.len() as u64;
            }
            ok.is_ok()
        };
        for i in 0..self.parts {
            let mut part = part_head(i).into_bytes();
            part.extend_from_slice(&message(i, self.part_bytes));
            part.extend_from_slice(b"\r\n");
            for piece in part.chunks(MIB as usize) {
                if !write(piece) {
                    return (sent, false);
                }
            }
        }
        if !write(CLOSING.as_bytes()) {
            return (sent, false);
        }
        if self.chunked && out.write_all(b"0\r\n\r\n").is_err() {
            return (sent, false);
        }
        (sent, true)
    }

    /// Sends the upload while reading the answer, as HTTP allows a server to
    /// answer before the body is complete.
    fn send(&self, port: u16) -> Outcome {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .write_all(self.head().as_bytes())
            .expect("request head");
        let mut writer = stream.try_clone().expect("clone");
        let me = self.clone();
        let body = std::thread::spawn(move || me.write_body(&mut writer));
        let (status, text) = read_response(&mut stream);
        let _ = stream.shutdown(Shutdown::Both);
        let (sent, complete) = body.join().expect("writer");
        Outcome {
            status,
            body: text,
            sent,
            complete,
        }
    }
}

/// Reads one HTTP response: its status and body (by Content-Length).
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return (status, body);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                return (0, String::from_utf8_lossy(&buf).into_owned());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends `n` copies of an upload at once; returns their outcomes.
fn at_once(port: u16, upload: &Upload, n: usize) -> Vec<Outcome> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let u = upload.clone();
            std::thread::spawn(move || u.send(port))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("upload thread"))
        .collect()
}

fn import_path(address: &str) -> String {
    format!("/api/v1/mailboxes/{address}/messages")
}

fn admin() -> Option<(String, String)> {
    Some(("admin".into(), ADMIN_PASSWORD.into()))
}

/// An administrator's import of `parts` messages of 4 MiB, streamed without
/// a declared length.
fn streamed_import(parts: usize) -> Upload {
    Upload {
        path: import_path(MB),
        auth: admin(),
        parts,
        part_bytes: 4 * MIB as usize,
        chunked: true,
        content_type: MULTIPART,
    }
}

/// A service limited to `bytes` per request (`SATCHEL_MAX_REQUEST_BYTES`, the
/// environment form of `satchel serve --max-request-bytes`), with the mailbox.
fn limited_to(bytes: u64) -> Server {
    let server = Server::start_with(&[("SATCHEL_MAX_REQUEST_BYTES", &bytes.to_string())]);
    server.admin_ok(&["mailbox", "add", MB]);
    server
}

#[test]
fn refused_uploads_are_answered_without_reading_them() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.add_user(EVE, EVE_PASSWORD);
    // Eve's password verified once (the service remembers it), so that the
    // memory measured below is not argon2's (19 MiB a verification).
    ok(server.as_user(EVE, EVE_PASSWORD).args(["mailbox", "list"]));
    let before = server.peak_rss();

    // 200 MB uploads, 8 at once, from callers who may not import: nobody,
    // a user who is no administrator, an administrator into a mailbox that
    // does not exist, and one declaring more than the limit (256 MiB by
    // default).
    let big = |path: &str, auth: Option<(String, String)>| Upload {
        path: path.to_string(),
        auth,
        parts: 20,
        part_bytes: 10 * MIB as usize,
        chunked: false,
        content_type: MULTIPART,
    };
    let cases = [
        (big(&import_path(MB), None), 401, "credentials required"),
        (
            big(&import_path(MB), Some((EVE.into(), EVE_PASSWORD.into()))),
            403,
            "not an administrator",
        ),
        (
            big(&import_path("nobody@example.com"), admin()),
            404,
            "no such mailbox",
        ),
        (
            Upload {
                parts: 30,
                ..big(&import_path(MB), admin())
            },
            413,
            "at most 268435456 bytes",
        ),
    ];
    let mut offered = 0;
    for (upload, status, says) in &cases {
        let outcomes = at_once(server.port, upload, 8);
        println!("{status}: peak memory now {} MiB", server.peak_rss() / MIB);
        for o in outcomes {
            assert_eq!(o.status, *status, "{says}: {o:?}");
            assert!(o.body.contains(says), "{o:?}");
            assert!(
                !o.complete && o.sent < upload.body_len() / 4,
                "the service took the body of a refused upload: {says}: sent {} of {}",
                o.sent,
                upload.body_len()
            );
            offered += upload.body_len();
        }
    }
    let grown = server.peak_rss().saturating_sub(before);
    println!(
        "offered {} MiB in refused uploads; peak memory grew {} MiB (VmHWM {} MiB)",
        offered / MIB,
        grown / MIB,
        server.peak_rss() / MIB
    );
    assert!(
        grown < 64 * MIB,
        "peak memory grew {} MiB for {} MiB of refused uploads",
        grown / MIB,
        offered / MIB
    );
    // The service still works, and nothing was archived or left on disk.
    let shown = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    assert_eq!(shown["messages"], 0, "{shown}");
    assert!(server.files_in("uploads").is_empty());
}

#[test]
fn allowed_uploads_stream_to_disk() {
    let server = limited_to(512 * MIB);
    let before = server.peak_rss();

    // 300 MiB in 75 messages of 4 MiB, allowed, streamed without a declared
    // length: archived, and never whole in memory (the service held each
    // part whole, and copied it, before: over 600 MiB).
    let allowed = streamed_import(75);
    let o = allowed.send(server.port);
    assert_eq!(o.status, 200, "{o:?}");
    assert!(o.complete);
    let report = json(&o.body);
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 75, "{report}");
    assert!(
        results.iter().all(|r| r["status"] == "imported"),
        "{report}"
    );
    let grown = server.peak_rss().saturating_sub(before);
    println!(
        "archived a {} MiB upload; peak memory grew {} MiB",
        allowed.body_len() / MIB,
        grown / MIB
    );
    assert!(
        grown < allowed.body_len() / 2,
        "peak memory grew {} MiB for a {} MiB upload: it was held in memory",
        grown / MIB,
        allowed.body_len() / MIB
    );
    let found = json(&server.admin_ok(&["search", "subject:upload", "--json", "--limit", "100"]));
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(75));
    assert!(server.files_in("uploads").is_empty());
}

#[test]
fn a_request_past_the_limit_is_a_413_naming_it() {
    // A 32 MiB limit.
    let server = limited_to(32 * MIB);
    let before = server.peak_rss();
    // 200 MiB streamed without a declared length, 4 at once: 413 saying the
    // limit once the limit is reached, and nothing of these requests archived.
    let over = streamed_import(50);
    for o in at_once(server.port, &over, 4) {
        assert_eq!(o.status, 413, "{o:?}");
        assert!(
            o.body.contains("at most 33554432 bytes (32.0 MiB)")
                && o.body.contains("--max-request-bytes"),
            "{o:?}"
        );
        assert!(!o.complete && o.sent < over.body_len() / 2, "{o:?}");
    }
    // Declared: refused before the body.
    let declared = Upload {
        chunked: false,
        ..over.clone()
    };
    let o = declared.send(server.port);
    assert_eq!(o.status, 413, "{o:?}");
    assert!(!o.complete && o.sent < declared.body_len() / 4, "{o:?}");
    let grown = server.peak_rss().saturating_sub(before);
    println!(
        "refused 1000 MiB past the limit; peak memory grew {} MiB",
        grown / MIB
    );
    assert!(grown < 64 * MIB, "peak memory grew {} MiB", grown / MIB);
    let shown = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    assert_eq!(shown["messages"], 0, "{shown}");
    assert!(server.files_in("uploads").is_empty());
    // Within the limit, the same service imports.
    let within = streamed_import(4);
    let o = within.send(server.port);
    assert_eq!(o.status, 200, "{o:?}");
}

#[test]
fn other_requests_are_small_and_refused_before_their_body() {
    let server = Server::start();
    server.add_user(EVE, EVE_PASSWORD);
    let json_post = |path: &str, auth: Option<(String, String)>, bytes: usize| Upload {
        path: path.to_string(),
        auth,
        parts: 1,
        part_bytes: bytes,
        chunked: false,
        content_type: "application/json",
    };
    // A user who is no administrator is refused before a large JSON body is
    // read, on every administrators' endpoint that takes one.
    for path in [
        "/api/v1/users",
        "/api/v1/repositories",
        "/api/v1/mailboxes",
        "/api/v1/offline/sync",
        "/api/v1/mailboxes/a@example.com/archive-runs",
    ] {
        let upload = json_post(
            path,
            Some((EVE.into(), EVE_PASSWORD.into())),
            100 * MIB as usize,
        );
        let o = upload.send(server.port);
        assert_eq!(o.status, 403, "{path}: {o:?}");
        assert!(
            !o.complete && o.sent < upload.body_len() / 4,
            "{path}: {o:?}"
        );
    }
    // An administrator's JSON body is at most 1 MiB: 413 with the limit,
    // before the body is read.
    let o = json_post("/api/v1/mailboxes", admin(), 100 * MIB as usize).send(server.port);
    assert_eq!(o.status, 413, "{o:?}");
    assert!(o.body.contains("at most 1048576 bytes"), "{o:?}");
    assert!(!o.complete, "{o:?}");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf8").to_string()
}

#[test]
fn import_reports_an_oversized_message_and_goes_on() {
    let server = limited_to(MIB);
    let dir = tempfile::tempdir().expect("tempdir");
    let small = |i: usize| message(i, 2_000);
    let huge = message(100, 3 * MIB as usize);
    let mut mbox = Vec::new();
    for m in [small(1), message(101, 2 * MIB as usize), small(2)] {
        mbox.extend_from_slice(b"From bob@example.org Mon Sep  2 12:00:00 2002\n");
        mbox.extend_from_slice(&m);
        mbox.extend_from_slice(b"\r\n");
    }
    let files = [
        write(dir.path(), "a.eml", &small(3)),
        write(dir.path(), "huge.eml", &huge),
        write(dir.path(), "b.eml", &small(4)),
        write(dir.path(), "box.mbox", &mbox),
        write(dir.path(), "c.eml", &small(5)),
    ];
    let out = run(server.admin().arg("import").arg(MB).args(&files));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("imported 5, already archived 0, failed 2"),
        "{stdout}\n{stderr}"
    );
    for origin in ["huge.eml", "box.mbox#2"] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("failed:") && l.contains(origin))
            .unwrap_or_else(|| panic!("no failure for {origin}: {stderr}"));
        assert!(
            line.contains("larger than the service accepts")
                && line.contains("at most 1048576 bytes"),
            "{line}"
        );
    }
    let found = json(&server.admin_ok(&["search", "subject:upload", "--json"]));
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(5), "{found}");
}

#[test]
fn an_empty_sync_selection_is_a_400_not_every_mailbox() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    server.admin_ok(&["mailbox", "add", "dave@example.com"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "enable", "dave@example.com"]);
    let http = reqwest::blocking::Client::new();
    let sync = |body: &str| {
        let r = http
            .post(format!("{}/api/v1/offline/sync", server.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .expect("post");
        let status = r.status().as_u16();
        (status, r.text().unwrap_or_default())
    };
    let jobs = || {
        let r = http
            .get(format!("{}/api/v1/jobs", server.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("jobs");
        json(&r.text().expect("body"))
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    for body in [
        "[]",
        r#"{"mailboxes": []}"#,
        r#"{"mailbox": []}"#,
        r#"{"mailbox": ""}"#,
        "null",
    ] {
        let (status, text) = sync(body);
        assert_eq!(status, 400, "{body}: {text}");
        assert!(
            text.contains(r#"{\"mailbox\": \"ADDRESS\"}"#),
            "{body}: {text}"
        );
    }
    assert_eq!(jobs(), 0, "a refused sync ran updates");
    // One mailbox, and then every enabled one, as documented.
    let (status, text) = sync(&format!("{{\"mailbox\": \"{MB}\"}}"));
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["results"].as_array().map(Vec::len), Some(1));
    let (status, text) = sync("{}");
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["results"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_limit_is_a_serve_flag_and_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, env) in [
        (vec!["--max-request-bytes", "1000"], None),
        (vec![], Some("1000")),
        (vec!["--max-request-bytes", "lots"], None),
    ] {
        let mut cmd = satchel();
        cmd.args(["serve", "--listen", "127.0.0.1:1", "--data"])
            .arg(dir.path().join("data"))
            .args(&args);
        if let Some(v) = env {
            cmd.env("SATCHEL_MAX_REQUEST_BYTES", v);
        }
        let out = run(&mut cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?}");
        assert!(err.contains("--max-request-bytes"), "{err}");
    }
    let help = ok(satchel().args(["serve", "--help"]));
    assert!(
        help.contains("--max-request-bytes") && help.contains("SATCHEL_MAX_REQUEST_BYTES"),
        "{help}"
    );
}
