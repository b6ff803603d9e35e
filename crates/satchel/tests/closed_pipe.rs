//! `satchel … | head`: a command whose reader goes away ends quietly, with
//! no panic and no message (issue 9, point 10).

mod common;
use common::*;

/// Runs `cmd` with its standard output a pipe whose reading end is already
/// closed (what `| head` leaves once it has its lines), so the very first
/// write fails; asserts the command ends quietly.
fn assert_quiet_on_closed_pipe(mut cmd: std::process::Command, what: &str) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run satchel");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{what}: says {stderr:?}");
    assert!(out.status.success(), "{what}: ended with {:?}", out.status);
}

#[test]
fn commands_end_quietly_when_their_reader_goes_away() {
    let server = Server::start();
    server.admin_ok(&["mailbox", "add", "pipe@example.com"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("m.eml");
    let raw = "From: a@example.org\r\nSubject: pipeword\r\n\r\npipeword body\r\n";
    std::fs::write(&eml, raw).expect("write");
    server.admin_ok(&["import", "pipe@example.com", eml.to_str().expect("utf8")]);
    let id = sha256_hex(raw.as_bytes());

    for args in [
        vec!["search", "pipeword"],
        vec!["search", "pipeword", "--json"],
        vec!["get", "pipe@example.com", &id],
        vec!["mailbox", "list"],
        vec!["mailbox", "list", "--json"],
    ] {
        let mut cmd = server.admin();
        cmd.args(&args);
        assert_quiet_on_closed_pipe(cmd, &args.join(" "));
    }
    let mut help = satchel();
    help.arg("--help");
    assert_quiet_on_closed_pipe(help, "--help");
}
