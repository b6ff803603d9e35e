//! The agent's own pages, in maud (every spliced value escaped): the status
//! page at `/` and the page explaining why a link cannot be shown. The
//! message page itself is the viewer's ([`crate::viewer::render_message`]);
//! all share the viewer's frame and style ([`crate::viewer::page`]).

use indicatif::DecimalBytes;
use maud::{Markup, PreEscaped, html};

use crate::error::Error;
use crate::status::Status;
use crate::viewer;

/// A page in the viewer's frame.
fn framed(title: &str, body: Markup) -> Markup {
    PreEscaped(viewer::page(title, body))
}

/// The home's user and service, whether the service answered, and each
/// local copy.
pub(super) fn status(s: &Status) -> Markup {
    let online = match s.online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "not checked yet",
    };
    let body = html! {
        header {
            h2 { "Satchel laptop" }
            p { "User " b { (s.user) } " · service " (s.server) " · " b #online { (online) } }
            p {
                "Last check: " (s.last_check.as_deref().unwrap_or("never"))
                " · last sync: " (s.last_sync.as_deref().unwrap_or("never"))
            }
            @if let Some(e) = &s.last_error { p { "Last error: " (e) } }
        }
        main {
            table.s {
                tr {
                    th { "Mailbox" } th { "Messages" } th { "Size" } th { "Generation" }
                    th { "Updated on the service" }
                }
                @for m in &s.mailboxes {
                    tr {
                        td { (m.mailbox) }
                        td { (m.messages) }
                        td { (DecimalBytes(m.bytes)) }
                        td { (m.generation) }
                        td { @if m.complete { (m.updated) } @else { "(first sync incomplete)" } }
                    }
                }
            }
        }
    };
    framed("Satchel laptop", body)
}

/// Why a link cannot be shown, with the way back to the status page.
pub(super) fn error(e: &Error) -> Markup {
    let body = html! {
        main {
            h2 { "Cannot show this message" }
            p { (e) }
            p { a href="/" { "Status" } }
        }
    };
    framed("Satchel", body)
}
