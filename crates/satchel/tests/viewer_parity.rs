//! The laptop's viewer shows a message as the console does (issue 10): both
//! render through satchel-message's one view and sanitizer, so the laptop
//! keeps the inline `data:` images the console keeps and strips exactly what
//! the console strips. Compared on the pages each really serves: the console
//! over HTTP with a signed-in session, the laptop agent from its local copy.

mod common;
use common::*;
use std::time::{Duration, Instant};

const MB: &str = "parity@example.com";
const END: &str = "END-OF-BODY";

const HOSTILE: &str = "<h1 id=\"greeting\">Quarterly figures</h1>\
<script>document.title = 'PWNED-BY-SCRIPT';</script>\
<img id=\"trap\" src=\"x\" onerror=\"document.title = 'PWNED-BY-ONERROR'\">\
<img id=\"beacon\" src=\"http://127.0.0.1:9/beacon.png\">\
<img alt=\"inline\" src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\
<iframe src=\"http://127.0.0.1:9/frame\"></iframe>\
<a href=\"javascript:document.title='PWNED-BY-LINK'\" id=\"jslink\">click</a>\
<p onmouseover=\"document.title='PWNED-BY-HOVER'\">hover</p><p>END-OF-BODY</p>";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The message body as a page shows it: from `start` to the end marker.
fn body_of<'a>(page: &'a str, start: &str) -> &'a str {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {page}"))
        + start.len();
    let to = page[from..]
        .find(END)
        .unwrap_or_else(|| panic!("no end marker in {page}"));
    &page[from..from + to]
}

/// The console's page of the message and the Content-Disposition of its
/// first attachment's download.
fn console_page(server: &Server, id: &str) -> (String, String) {
    let c = client();
    let signin = c
        .post(format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={ADMIN_PASSWORD}"))
        .send()
        .expect("sign in");
    assert_eq!(signin.status(), 303);
    let cookie = signin.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let page = c
        .get(format!("{}/console/messages/{MB}/{id}", server.url))
        .header("cookie", &cookie)
        .send()
        .expect("console message");
    assert_eq!(page.status(), 200);
    let download = c
        .get(format!(
            "{}/console/messages/{MB}/{id}/attachments/0",
            server.url
        ))
        .header("cookie", &cookie)
        .send()
        .expect("console attachment");
    assert_eq!(download.status(), 200);
    (page.text().expect("text"), disposition(&download))
}

fn disposition(r: &reqwest::blocking::Response) -> String {
    r.headers()["content-disposition"]
        .to_str()
        .expect("ascii header")
        .to_string()
}

/// The agent's page of the message, served from the local copy (the service
/// is gone: the plane case).
fn agent_page(home: &std::path::Path, id: &str) -> (String, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _agent = Kill(
        laptop_in(home)
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client().get(format!("{base}/m/{MB}/{id}")).send()
            && r.status() == 200
        {
            assert_eq!(r.headers()["x-satchel-source"], "local-copy");
            let download = client()
                .get(format!("{base}/m/{MB}/{id}/attachments/0"))
                .send()
                .expect("agent attachment");
            assert_eq!(download.status(), 200);
            return (r.text().expect("text"), disposition(&download));
        }
        assert!(Instant::now() < deadline, "the agent never served the page");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_laptop_viewer_keeps_and_strips_what_the_console_does() {
    let mut server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let raw = format!(
        "From: Mallory <m@example.org>\r\nTo: carol@example.com\r\nSubject: parity\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n{HOSTILE}\r\n--XYZ\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20Q3.pdf\r\n\r\n\
%PDF-1.4\r\n--XYZ--\r\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("parity.eml");
    std::fs::write(&eml, &raw).expect("write");
    server.admin_ok(&["import", MB, eml.to_str().expect("utf8")]);
    let id = sha256_hex(raw.as_bytes());
    server.add_user("carol", "carol-password-1");
    server.admin_ok(&["mailbox", "grant", MB, "carol"]);
    server.admin_ok(&["offline", "enable", MB]);
    server.admin_ok(&["offline", "sync-now"]);
    let home = dir.path().join("carol");
    laptop_synced(&server, "carol", "carol-password-1", &home);

    let (console, console_download) = console_page(&server, &id);
    server.kill();
    let (laptop, laptop_download) = agent_page(&home, &id);
    let console_body = body_of(&console, "id=\"mailbody\">");
    let laptop_body = body_of(&laptop, "<div class=\"body\">");

    for kept in [
        "Quarterly figures",
        "src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\"",
        "hover",
    ] {
        assert!(
            console_body.contains(kept),
            "console lost {kept}: {console_body}"
        );
        assert!(
            laptop_body.contains(kept),
            "laptop lost {kept}: {laptop_body}"
        );
    }
    for stripped in [
        "<script",
        "PWNED",
        "onerror",
        "onmouseover",
        "javascript:",
        "beacon.png",
        "<iframe",
    ] {
        assert!(
            !console_body.contains(stripped),
            "console kept {stripped}: {console_body}"
        );
        assert!(
            !laptop_body.contains(stripped),
            "laptop kept {stripped}: {laptop_body}"
        );
    }
    assert_eq!(laptop_body, console_body, "the two viewers differ");
    // The same download name, the exact one in filename* (the agent once
    // sent only an ASCII-mangled filename).
    assert_eq!(laptop_download, console_download);
    assert!(
        console_download.contains("filename*=UTF-8''R%C3%A9sum%C3%A9%20Q3.pdf"),
        "{console_download}"
    );
}
