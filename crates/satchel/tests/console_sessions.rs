//! Console sessions live in the catalog: a signed-in browser stays signed in
//! across a restart of the service, on SQLite and on PostgreSQL; signing out
//! still ends the session.

mod common;
use common::console::{sign_in, sign_out, status_with};
use common::*;
use satchel_testkit::postgres::Postgres;
use std::path::Path;

fn survives_a_restart(data: &Path, env: &[(&str, &str)]) {
    let mut server = Server::start_in_with(data, env);
    let cookie = sign_in(&server);
    assert_eq!(status_with(&server, &cookie), 200);
    assert_eq!(status_with(&server, "satchel_session=forged"), 303);
    server.kill();

    let server = Server::start_in_with(data, env);
    assert_eq!(status_with(&server, &cookie), 200, "still signed in");
    sign_out(&server, &cookie);
    assert_eq!(status_with(&server, &cookie), 303, "signed out for good");
}

#[test]
fn a_console_session_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    survives_a_restart(&dir.path().join("data"), &[]);
}

#[test]
fn a_console_session_survives_a_restart_on_postgres() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    survives_a_restart(&dir.path().join("data"), &[("SATCHEL_CATALOG", &pg.url())]);
}
