//! The page frame and small formatters, in maud: every `(value)` spliced into
//! a template is HTML-escaped, so a page cannot carry a value's markup by
//! mistake. The only raw HTML is a message body already sanitized by
//! satchel-message, inserted with `PreEscaped` in `search::message`.

use super::Session;
use maud::{DOCTYPE, Markup, html};

/// A whole HTML document.
pub fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="referrer" content="no-referrer";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Satchel" }
                link rel="stylesheet" href="/console/console.css";
            }
            body { (body) }
        }
    }
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Search,
    Mailboxes,
    Status,
    Holds,
    Audit,
}

/// A message above the page's content.
pub enum Flash {
    Notice(String),
    Error(String),
}

impl maud::Render for Flash {
    fn render(&self) -> Markup {
        match self {
            Flash::Notice(n) => html! { div.notice #notice { (n) } },
            Flash::Error(e) => html! { div.error #error { (e) } },
        }
    }
}

/// A signed-in page: navigation, who is signed in, sign-out, the flash.
pub fn frame(s: &Session, nav: Nav, title: &str, flash: Option<&Flash>, body: Markup) -> Markup {
    let link = |n: Nav, href: &str, label: &str| html! { a href=(href) class=[(n == nav).then_some("here")] { (label) } };
    document(
        title,
        html! {
            header.top {
                span.brand { "Satchel" }
                nav {
                    (link(Nav::Search, "/console/search", "Search"))
                    @if s.admin() {
                        (link(Nav::Mailboxes, "/console/mailboxes", "Mailbox Manager"))
                        (link(Nav::Status, "/console/status", "Status"))
                        (link(Nav::Holds, "/console/holds", "Holds"))
                        (link(Nav::Audit, "/console/audit", "Audit"))
                    }
                }
                span.who {
                    span #whoami {
                        (s.caller.user.name)
                        @if s.admin() { " (administrator)" }
                    }
                    form.inline method="post" action="/console/logout" {
                        (csrf_field(s))
                        button type="submit" #signout { "Sign out" }
                    }
                }
            }
            main {
                h1 { (title) }
                @if let Some(f) = flash { (f) }
                (body)
            }
        },
    )
}

/// The hidden field that every changing form carries (checked by
/// [`Session::check_csrf`]).
pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
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
