//! The message model seen from outside (issue 10, point 1): one message id in
//! every form a person meets it.

mod common;
use common::*;

const MB: &str = "model@example.com";

const RAW: &str = "From: Bob <bob@example.org>\r\nTo: model@example.com\r\nSubject: id forms\r\n\
Date: Mon, 02 Sep 2002 12:00:00 +0000\r\nMessage-ID: <id-forms@example.org>\r\n\r\nthe quoll numbers\r\n";

fn with_one_message() -> (Server, tempfile::TempDir, String) {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    server.admin_ok(&["mailbox", "add", MB]);
    let file = dir.path().join("m.eml");
    std::fs::write(&file, RAW).expect("write");
    server.admin_ok(&["import", MB, file.to_str().expect("utf8")]);
    let id = sha256_hex(RAW.as_bytes());
    (server, dir, id)
}

fn api_get(server: &Server, id: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/mailboxes/{MB}/messages/{id}",
            server.url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .expect("GET message");
    let status = resp.status().as_u16();
    (status, resp.bytes().expect("body").to_vec())
}

#[test]
fn a_message_id_is_read_in_either_case_and_nothing_else_is_an_id() {
    let (server, _dir, id) = with_one_message();

    // The id as search shows it, and the same digits in upper case.
    for given in [id.clone(), id.to_uppercase()] {
        let out = run(server.admin().args(["get", MB, &given]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, RAW.as_bytes(), "satchel get {given}");
        assert_eq!(api_get(&server, &given), (200, RAW.as_bytes().to_vec()));
    }

    // Anything else in an id position is a 400 that says why.
    for bad in ["abc", "..%2Fcatalog.sqlite", &format!("{id}0"), &id[..63]] {
        let (status, body) = api_get(&server, bad);
        assert_eq!(status, 400, "{bad}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("invalid message id"), "{bad}: {body}");
    }

    // The command line refuses it before asking the service, naming it.
    let out = run(server.admin().args(["get", MB, "abc"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid message id \"abc\""), "{err}");
}
