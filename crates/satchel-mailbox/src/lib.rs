//! Archive runs from IMAP mailboxes (issue 3): the IMAP source ([`imap`]), the
//! stubs left in place of archived messages ([`stub`], docs/stub-format.md), and
//! the run that moves mail from a mailbox into the archive ([`run`]).
//!
//! Layering: IMAP source -> `satchel_archive::Archive`. The service
//! (satchel-server) owns run records, locking and schedules, and calls [`run::run`].

pub mod error;
pub mod imap;
pub mod run;
pub mod state;
pub mod stub;

pub use error::{Result, RunError};
pub use run::{Account, run};
