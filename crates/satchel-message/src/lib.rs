//! The one owner of a mail message in Satchel.
//!
//! Every part of Satchel that looks inside a message (the archive's index, the
//! console's message view, the laptop's viewer and local index, IMAP stubs) goes
//! through this crate, so that one set of rules decides how far a message is
//! parsed:
//!
//! - [`Parsed`] turns bytes into a MIME structure within a fixed [`Budget`] of size
//!   and nesting depth, contains any parser panic to that one message, and drops
//!   the structure without recursion. Beyond the budget, only the top-level header
//!   is parsed and the message is shown and indexed as its raw text, with a
//!   [`Limit`] saying why.
//! - [`MessageId`] is a message's identity (SHA-256 of its bytes), the one type
//!   every crate passes around.
//! - [`MessageSummary`] is what the search index and the stubs need.
//! - [`MessageView`] is what a person reads: headers, sanitized HTML or text, and
//!   attachments with safe names. [`sanitize_html`] is the one sanitizer.
//!
//! The raw bytes are never changed by any of this: the archive keeps them as they
//! came, whatever the parser made of them.

mod budget;
mod id;
pub mod link;
mod parsed;
mod summary;
mod view;

pub use budget::{Budget, Limit};
pub use id::{InvalidMessageId, MessageId, is_lower_hex_64};
pub use link::{DEFAULT_AGENT_ADDR, InvalidLink, MessageLink};
pub use parsed::Parsed;
pub use summary::{Attachment, MAX_BODY_CHARS, MessageSummary};
pub use view::{
    AttachmentFile, AttachmentInfo, Body, MessageView, escape_html, safe_file_name, sanitize_html,
};

/// Formats an address header as `Name <addr>, addr, ...` (the form listing,
/// search and the viewers show).
pub fn addresses(addr: Option<&mail_parser::Address<'_>>) -> String {
    let Some(addr) = addr else {
        return String::new();
    };
    addr.iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `raw` begins like an RFC 5322 message: RFC 5322 (section 3.6)
/// requires a message to begin with header fields, so its first line starts
/// a field: a name of printable characters other than the colon
/// (`field-name = 1*ftext`), then the colon, with white space allowed before
/// it by the obsolete syntax of section 4.5 (`Subject : x`). Nothing stricter.
pub fn begins_with_header_field(raw: &[u8]) -> bool {
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    // ftext = %d33-57 / %d59-126 (printable, not ':').
    let name = first_line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name > 0
        && first_line[name..]
            .iter()
            .find(|&&b| b != b' ' && b != b'\t')
            .is_some_and(|&b| b == b':')
}
