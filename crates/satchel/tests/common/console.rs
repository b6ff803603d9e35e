//! The console through plain HTTP, as a browser without JavaScript uses it:
//! sign in through the form, keep the session cookie, read the CSRF token.

use super::{ADMIN_PASSWORD, Server};

/// A client that shows redirects instead of following them.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Signs in as admin through the console's form; the session cookie it sets.
pub fn sign_in(server: &Server) -> String {
    sign_in_as(server, "admin", ADMIN_PASSWORD)
}

/// Signs in as `user` through the console's form; the session cookie it sets.
pub fn sign_in_as(server: &Server, user: &str, password: &str) -> String {
    let r = http()
        .post(format!("{}/console/login", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password={password}"))
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
pub fn status_with(server: &Server, cookie: &str) -> u16 {
    http()
        .get(format!("{}/console/mailboxes", server.url))
        .header("Cookie", cookie)
        .send()
        .expect("get")
        .status()
        .as_u16()
}

/// The CSRF token the page embeds in its forms.
pub fn csrf_of(server: &Server, cookie: &str) -> String {
    csrf_on(server, cookie, "/console/mailboxes")
}

/// The CSRF token of the console page at `path` (any signed-in page has
/// one, in its sign-out form).
pub fn csrf_on(server: &Server, cookie: &str, path: &str) -> String {
    let page = http()
        .get(format!("{}{path}", server.url))
        .header("Cookie", cookie)
        .send()
        .expect("get")
        .text()
        .expect("page");
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].chars().take_while(|c| *c != '"').collect()
}

/// Signs out through the console's form (with the page's CSRF token).
pub fn sign_out(server: &Server, cookie: &str) {
    let csrf = csrf_of(server, cookie);
    let out = http()
        .post(format!("{}/console/logout", server.url))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .expect("sign out");
    assert_eq!(out.status().as_u16(), 303, "signed out");
}

/// A console form posted straight to the service (no browser, so none of
/// the page's own checks): the status.
pub fn post_form(server: &Server, cookie: &str, path: &str, body: &str) -> u16 {
    http()
        .post(format!("{}{path}", server.url))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .expect("post")
        .status()
        .as_u16()
}
