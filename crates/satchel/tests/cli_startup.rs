//! The command line's start-up (issue 10, point 6): a command against a
//! plain `http://` service does not read the system's TLS root certificates
//! (reading and parsing them was most of a one-request command's start-up).
//! Shown with the roots pointed at an empty file: a client that loaded them
//! could not even be built.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// `cmd` with the system's roots replaced by an empty file in `dir`.
fn without_roots(mut cmd: Command, dir: &Path) -> Command {
    let empty = dir.join("no-roots.pem");
    std::fs::write(&empty, "").expect("write empty roots");
    cmd.env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", dir.join("no-such-dir"));
    cmd
}

#[test]
fn plain_http_commands_never_load_tls_roots() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "roots@example.com"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = "From: a@example.org\r\nSubject: rootless\r\n\r\nrootless body\r\n";
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, raw).expect("write");
    server.admin_ok(&["import", "roots@example.com", eml.to_str().expect("utf8")]);
    let id = sha256_hex(raw.as_bytes());

    let mut search = without_roots(server.admin(), dir.path());
    let found = ok(search.args(["search", "rootless"]));
    assert!(found.contains(&id), "search found {found:?}");
    let mut get = without_roots(server.admin(), dir.path());
    assert_eq!(ok(get.args(["get", "roots@example.com", &id])), raw);

    // The laptop client builds its own HTTP client the same way.
    server.add_user("rita", "rita-password-1");
    let home = dir.path().join("home");
    let mut setup = without_roots(satchel(), dir.path());
    setup.env("SATCHEL_HOME", &home).args([
        "laptop",
        "setup",
        "--server",
        &server.url,
        "--user",
        "rita",
        "--password-stdin",
    ]);
    run_with_stdin(&mut setup, "rita-password-1");
}
