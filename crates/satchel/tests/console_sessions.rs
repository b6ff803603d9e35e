//! Console sessions live in the catalog: a signed-in browser stays signed in
//! across a restart of the service, on SQLite and on PostgreSQL; signing out
//! still ends the session.

mod common;
use common::*;
use satchel_testkit::postgres::Postgres;
use std::path::Path;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Signs in through the console's form; the session cookie it sets.
fn sign_in(server: &Server) -> String {
    let r = http()
        .post(format!("{}/console/login", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={ADMIN_PASSWORD}"))
        .send()
        .expect("sign in");
    assert_eq!(r.status().as_u16(), 303, "signed in");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    set.split(';').next().expect("name=value").to_string()
}

/// The status of a console page fetched with `cookie` (200: signed in, 303:
/// sent to the sign-in page).
fn status_with(server: &Server, cookie: &str) -> u16 {
    http()
        .get(format!("{}/console/mailboxes", server.url))
        .header("Cookie", cookie)
        .send()
        .expect("get")
        .status()
        .as_u16()
}

/// The CSRF token the page embeds in its forms.
fn csrf_of(server: &Server, cookie: &str) -> String {
    let page = http()
        .get(format!("{}/console/mailboxes", server.url))
        .header("Cookie", cookie)
        .send()
        .expect("get")
        .text()
        .expect("page");
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].chars().take_while(|c| *c != '"').collect()
}

fn survives_a_restart(data: &Path, env: &[(&str, &str)]) {
    let mut server = Server::start_in_with(data, env);
    let cookie = sign_in(&server);
    assert_eq!(status_with(&server, &cookie), 200);
    assert_eq!(status_with(&server, "satchel_session=forged"), 303);
    server.kill();

    let server = Server::start_in_with(data, env);
    assert_eq!(status_with(&server, &cookie), 200, "still signed in");
    let csrf = csrf_of(&server, &cookie);
    let out = http()
        .post(format!("{}/console/logout", server.url))
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .expect("sign out");
    assert_eq!(out.status().as_u16(), 303);
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
