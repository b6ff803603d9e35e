//! Message links: `http://127.0.0.1:8481/m/ADDRESS/ID` (served by the agent)
//! and `satchel://ADDRESS/ID` (the URL scheme the desktop entry registers).
//! The format is satchel-message's, the one the stubs are written with.

pub use satchel_message::link::{DEFAULT_AGENT_ADDR, InvalidLink, MessageLink};

use crate::error::Error;

impl From<InvalidLink> for Error {
    fn from(e: InvalidLink) -> Self {
        Error::InvalidLink {
            link: e.link,
            reason: e.reason,
        }
    }
}
