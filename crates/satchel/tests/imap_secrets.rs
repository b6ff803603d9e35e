//! IMAP passwords are sealed in the catalog (issue 9, point 12) under a key
//! kept outside the data folder: no file of the data folder, no answer of
//! the API and no log line holds the password, and an archive run still logs
//! in with it, also after a restart. Another key refuses it clearly.

mod common;
mod imap_support;

use common::Server;
use common::dovecot::Dovecot;
use imap_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const MB: &str = "hana@example.com";
/// Distinctive, so a byte search of the data folder finds any clear copy.
const SECRET: &str = "Plaintext-Canary-7f3a9e";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn seed(dc: &Dovecot) {
    let mut imap = dc.login("hana", SECRET);
    for raw in pick_messages(300, 3, 0) {
        imap.append("INBOX", &["\\Seen"], OLD_DATE, &raw);
    }
    imap.logout();
}

#[test]
fn imap_passwords_are_sealed_under_a_key_outside_the_data_folder() {
    let dc = Dovecot::start(&[("hana", SECRET)]);
    seed(&dc);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data);

    // The key was made on first start, beside the data folder, owner-only.
    let key_file = dir.path().join("data.key");
    let key = std::fs::read_to_string(&key_file).expect("key file beside the data folder");
    assert_eq!(key.trim().len(), 64, "64 hex digits: {key:?}");
    let mode = std::fs::metadata(&key_file)
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the key");

    add_imap_mailbox(&server, &dc, MB, "hana", SECRET);
    let listed = server.admin_ok(&["mailbox", "show", MB, "--json"]);
    assert!(!listed.contains(SECRET), "never returned: {listed}");
    let run = archive_ok(&server, &[MB, "--older-than", "1"]);
    assert_eq!(
        run["archived"], 3,
        "the run logged in with the sealed password: {run}"
    );

    server.kill();
    assert_eq!(
        files_containing(&data, SECRET.as_bytes()),
        Vec::<String>::new()
    );
    let log = std::fs::read_to_string(&server.log).expect("log");
    assert!(!log.contains(SECRET), "never logged");

    // After a restart the same key opens it again.
    let mut server = Server::start_in(&data);
    let run = archive_ok(&server, &[MB, "--older-than", "1"]);
    assert_eq!(run["outcome"], "ok", "{run}");
    server.kill();

    // With another key the password does not open: a clear error, no login.
    std::fs::write(&key_file, "11".repeat(32)).expect("replace the key");
    let server = Server::start_in(&data);
    let err = archive_err(&server, &[MB, "--older-than", "1"]);
    assert!(err.contains("does not open with this key"), "{err}");
}
