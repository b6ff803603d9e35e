//! Small things operators notice (issue 13, point 7): a second `satchel serve`
//! on a data folder in use is refused, naming the folder and the process
//! holding it; logs written to a file carry no terminal colour codes.

mod common;
use common::*;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `satchel serve` on `data` and a free port, run until it exits by itself
/// (killed after 60 s: a second service that keeps running is the failure).
fn serve_until_exit(data: &Path) -> Output {
    let mut child = satchel()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data")
        .arg(data)
        .env("SATCHEL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn satchel serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

#[test]
fn a_second_service_on_a_data_folder_in_use_is_refused_naming_the_folder_and_the_holder() {
    let first = Server::start();
    let pid = first.pid();

    let second = serve_until_exit(&first.data);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second service ran: {err}");
    assert!(
        err.contains(&format!("{} is in use", first.data.display())),
        "names the folder: {err}"
    );
    assert!(
        err.contains(&format!("pid {pid}")),
        "names the holder: {err}"
    );
    assert!(!err.contains("LockBusy"), "{err}");

    // The first service is unharmed.
    let mb = first.admin_ok(&["mailbox", "list"]);
    assert!(!mb.contains("error"), "{mb}");
}

#[test]
fn the_lock_dies_with_its_process_so_a_killed_service_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut first = Server::start_in(&data);
    let old_pid = first.pid();
    first.kill();
    // The pid of the killed service is still in the lock file; the lock is not.
    let lock = data.join("serve.lock");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock file").trim(),
        old_pid.to_string()
    );
    let second = Server::start_in(&data);
    let pid = second.pid();
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock file").trim(),
        pid.to_string(),
        "the lock file names the service holding it"
    );
}

#[test]
fn a_service_logging_to_a_file_writes_no_colour_codes() {
    let server = Server::start_with(&[("SATCHEL_LOG", "info")]);
    // A failed sign-in is logged as a warning with fields.
    let out = run(server
        .as_user("admin", "wrong password")
        .args(["mailbox", "list"]));
    assert!(!out.status.success());
    let log = std::fs::read_to_string(&server.log).expect("log");
    assert!(
        log.contains("satchel service listening"),
        "the log has tracing lines: {log}"
    );
    assert!(!log.contains('\u{1b}'), "colour codes in the log: {log:?}");
}
