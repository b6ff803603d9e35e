//! HTML building blocks: escaping, the page frame, small formatters.

use super::Session;

pub use satchel_message::escape_html as escape;

/// A whole HTML document.
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Satchel</title><link rel=\"stylesheet\" href=\"/console/console.css\"></head>\
<body>{}</body></html>\n",
        escape(title),
        body
    )
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Search,
    Mailboxes,
    Status,
}

/// A message above the page's content.
pub enum Flash {
    Notice(String),
    Error(String),
}

impl Flash {
    pub fn html(&self) -> String {
        match self {
            Flash::Notice(n) => format!("<div class=\"notice\" id=\"notice\">{}</div>", escape(n)),
            Flash::Error(e) => format!("<div class=\"error\" id=\"error\">{}</div>", escape(e)),
        }
    }
}

/// A signed-in page: navigation, who is signed in, sign-out, the flash.
pub fn frame(s: &Session, nav: Nav, title: &str, flash: Option<&Flash>, body: &str) -> String {
    let link = |n: Nav, href: &str, label: &str| {
        format!(
            "<a href=\"{href}\"{}>{label}</a>",
            if n == nav { " class=\"here\"" } else { "" }
        )
    };
    let mut navs = link(Nav::Search, "/console/search", "Search");
    if s.admin() {
        navs.push_str(&link(
            Nav::Mailboxes,
            "/console/mailboxes",
            "Mailbox Manager",
        ));
        navs.push_str(&link(Nav::Status, "/console/status", "Status"));
    }
    let body = format!(
        "<header class=\"top\"><span class=\"brand\">Satchel</span><nav>{navs}</nav>\
<span class=\"who\"><span id=\"whoami\">{}{}</span>\
<form class=\"inline\" method=\"post\" action=\"/console/logout\">{}\
<button type=\"submit\" id=\"signout\">Sign out</button></form></span></header>\
<main><h1>{}</h1>{}{body}</main>",
        escape(&s.caller.user.name),
        if s.admin() { " (administrator)" } else { "" },
        csrf_field(s),
        escape(title),
        flash.map(Flash::html).unwrap_or_default(),
    );
    document(title, &body)
}

pub fn csrf_field(s: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&s.csrf)
    )
}

pub fn unix_time(secs: Option<i64>) -> String {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// An RFC 3339 time as the service reports it, made readable.
pub fn rfc3339(t: Option<&str>) -> String {
    match t {
        None => "—".to_string(),
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) => d.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
            Err(_) => t.to_string(),
        },
    }
}
