//! SIGKILL of the service in the middle of archive runs (issue 3, point 3):
//! every message ends either in the mailbox or archived byte-for-byte with
//! exactly one stub — never lost, never two stubs.

mod common;
mod imap_support;

use common::dovecot::Dovecot;
use common::{Server, json};
use imap_support::*;
use std::time::Duration;

const MB: &str = "hana@example.com";
const N: usize = 2000;

#[test]
fn sigkill_during_runs_loses_nothing_and_duplicates_nothing() {
    let dc = Dovecot::start(&[("hana", IMAP_PW)]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data);
    add_imap_mailbox(&server, &dc, MB, "hana", IMAP_PW);
    let msgs = many_messages(N);
    let mut imap = dc.login("hana", IMAP_PW);
    for (i, raw) in msgs.iter().enumerate() {
        imap.append("INBOX", FLAG_SETS[i % FLAG_SETS.len()], OLD_DATE, raw);
    }

    // Kill the service at several points of successive runs; after each kill,
    // count: mailbox + archive account for every message.
    let mut mid_run_kills = 0;
    let mut both_seen = 0;
    for delay_ms in [400u64, 900, 1500, 700, 2500, 1200] {
        let child = server
            .admin()
            .args(["archive", MB, "--older-than", "30", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn archive");
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill();
        let _ = child.wait_with_output();
        server = Server::start_in(&data);
        imap.select("INBOX");
        let folder = imap.messages();
        let (originals, stubbed) = check_accounted(&server, MB, &folder, &msgs);
        // Originals that already have their stub: killed between APPEND and EXPUNGE.
        let (stubs, others) = split_stubs(&folder);
        let both = others
            .iter()
            .filter(|m| stubs.contains_key(&common::sha256_hex(&m.raw)))
            .count();
        both_seen += both;
        eprintln!(
            "killed after {delay_ms} ms: {originals} originals, {stubbed} stubbed, {both} with both"
        );
        if originals > 0 && stubbed > 0 {
            mid_run_kills += 1;
        }
        if originals == 0 {
            break;
        }
    }
    assert!(
        mid_run_kills >= 2,
        "at least two kills landed mid-run ({mid_run_kills})"
    );
    eprintln!("originals seen together with their stub after kills: {both_seen}");

    // A last run to completion.
    let s = archive_ok(&server, &[MB, "--older-than", "30"]);
    assert_eq!(s["outcome"], "ok", "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    imap.select("INBOX");
    let folder = imap.messages();
    let (originals, stubbed) = check_accounted(&server, MB, &folder, &msgs);
    assert_eq!((originals, stubbed), (0, N));
    assert_eq!(folder.len(), N, "exactly one stub per message");
    let mb = json(&server.admin_ok(&["mailbox", "show", MB, "--json"]));
    assert_eq!(mb["messages"], N);
    // The cut-short runs are recorded as interrupted.
    let runs = json(&server.admin_ok(&["archive", "runs", MB, "--json", "--limit", "50"]));
    let runs = runs.as_array().expect("array");
    assert!(
        runs.iter().any(|r| r["outcome"] == "interrupted"),
        "{runs:?}"
    );
    assert_eq!(runs[0]["outcome"], "ok");
}
