//! The console reads no form body before it knows the caller may send it
//! (issue 9, point 2): a signed-in user who is no administrator is refused from
//! the request head, and every console form is capped at 64 KiB.

mod common;

use common::{ADMIN_PASSWORD, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// Signs in through the console form; the session cookie.
fn cookie(server: &Server, user: &str, password: &str) -> String {
    let form = format!("user={user}&password={password}").into_bytes();
    let len = form.len() as u64;
    let (status, head, _) = post(server, "/console/login", None, len, move |s| {
        s.write_all(&form).is_ok()
    });
    assert_eq!(status, 303, "{head}");
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    line["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .expect("name=value")
        .to_string()
}

/// POSTs a form of `len` bytes, written by `body` on another thread while the
/// answer is read (a server may answer before the body is complete): the
/// status, the response head, and whether the whole body went out.
fn post(
    server: &Server,
    path: &str,
    cookie: Option<&str>,
    len: u64,
    body: impl FnOnce(&mut TcpStream) -> bool + Send + 'static,
) -> (u16, String, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n"
    );
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("head");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || body(&mut writer));
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let complete = sender.join().unwrap_or(false);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text, complete)
}

/// Writes `total` bytes of form data in 1 MiB pieces; the bytes written before
/// the service hung up.
fn flood(total: u64) -> impl FnOnce(&mut TcpStream) -> bool + Send + 'static {
    move |s: &mut TcpStream| {
        let piece = vec![b'a'; 1 << 20];
        let mut sent = 0u64;
        while sent < total {
            if s.write_all(&piece).is_err() {
                return false;
            }
            sent += piece.len() as u64;
        }
        true
    }
}

#[test]
fn console_forms_are_refused_before_their_body() {
    let server = Server::start();
    server.add_user("eve", "eve-password-1");
    let eve = cookie(&server, "eve", "eve-password-1");
    let admin = cookie(&server, "admin", ADMIN_PASSWORD);
    let big: u64 = 200 << 20;
    for path in [
        "/console/mailboxes",
        "/console/status/sync",
        "/console/status/schedule",
        "/console/mailboxes/a@example.com/grants",
    ] {
        // A user who is no administrator: 403 from the head, the 200 MiB body
        // never read (the service answers and hangs up long before).
        let (status, head, complete) = post(&server, path, Some(&eve), big, flood(big));
        assert_eq!(status, 403, "{path}: {head}");
        assert!(!complete, "{path}: the body was read");
        // An administrator's form is at most 64 KiB: 413 before reading it.
        let (status, head, _) = post(&server, path, Some(&admin), big, flood(big));
        assert_eq!(status, 413, "{path}: {head}");
    }
    // The sign-in form itself is bounded too.
    let (status, head, _) = post(&server, "/console/login", None, big, flood(big));
    assert_eq!(status, 413, "{head}");
    // And the console still works for both.
    let ok = reqwest::blocking::Client::new()
        .get(format!("{}/console/status", server.url))
        .header("Cookie", &admin)
        .send()
        .expect("status page");
    assert_eq!(ok.status(), 200);
}
