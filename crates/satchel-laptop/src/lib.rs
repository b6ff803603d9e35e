//! The Satchel laptop client: keeps local copies of the offline repositories
//! of every mailbox its user may search, and opens message links from the
//! service when online and from the local copy when offline.
//!
//! Concepts, one module each:
//! * [`config`]: the home folder (one per user, 0700/0600): service, user, token;
//! * [`service`]: the archive service over HTTP (short timeouts decide "offline");
//! * [`replica`]: one mailbox's local copy: download, verify, install, switch;
//! * [`sync`]: one pass over all mailboxes (+ removal of those no longer offered);
//! * [`search`]: the local tantivy index, for searching offline;
//! * [`link`]: message links (`http://127.0.0.1:8481/m/ADDRESS/ID`, `satchel://ADDRESS/ID`)
//!   and [`open_message`], which resolves one;
//! * [`viewer`]: a message as a safe HTML page;
//! * [`agent`]: the background agent: periodic checks and syncs, link resolver;
//! * [`status`]: what status shows.
//!
//! This crate depends on `satchel-offline` (the format) and `satchel-api`
//! (the wire types), never on the service.

pub mod agent;
pub mod config;
pub mod error;
mod fsutil;
pub mod link;
pub mod replica;
pub mod search;
pub mod service;
pub mod status;
pub mod sync;
mod verified;
pub mod viewer;

pub use config::{Config, Home, setup};
pub use error::{Error, Result};
pub use fsutil::{now_unix, rfc3339};
pub use link::MessageLink;
pub use replica::{Change, MailboxSync, NoProgress, Progress, Replica};
pub use search::LocalIndex;
pub use service::Service;
pub use status::{Status, local_status};
pub use sync::{SyncReport, VerifyReport, sync_all, verify_all};
pub use viewer::Source;

use satchel_api::SearchResults;
use satchel_offline::MessageId;

/// An answer, where it came from, and why not from the service (offline,
/// or [`Error::TokenRevoked`]) when it came from the local copy.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub source: Source,
    pub service_error: Option<Error>,
}

/// The raw bytes of a linked message, exactly as archived: from the service
/// if it answers, else from this home's local copy (hash-checked), also when
/// the service no longer accepts the home's token. Offline and not in the
/// local copy is [`Error::NotInLocalCopy`].
pub async fn open_message(home: &Home, link: &MessageLink) -> Result<Answer<Vec<u8>>> {
    let config = home.config()?;
    let service = Service::new(&config)?;
    let why = match service.message(&link.mailbox, &link.id).await {
        Ok(raw) => return Ok(Answer::from_service(raw)),
        Err(e) if e.use_local_copy() => e,
        Err(e) => return Err(e),
    };
    let raw = read_local(home, &config.server, &link.mailbox, &link.id)?;
    Ok(Answer::local(raw, why))
}

impl<T> Answer<T> {
    fn from_service(value: T) -> Self {
        Answer {
            value,
            source: Source::Service,
            service_error: None,
        }
    }

    fn local(value: T, why: Error) -> Self {
        Answer {
            value,
            source: Source::LocalCopy,
            service_error: Some(why),
        }
    }
}

/// Reads a message from this home's local copy of `mailbox`.
pub fn read_local(home: &Home, server: &str, mailbox: &str, id: &MessageId) -> Result<Vec<u8>> {
    let not_here = |reason: &str| Error::NotInLocalCopy {
        server: server.to_string(),
        mailbox: mailbox.to_string(),
        id: id.to_hex(),
        reason: reason.to_string(),
    };
    if !home.local_mailboxes()?.iter().any(|m| m == mailbox) {
        return Err(not_here("this home has no local copy of that mailbox"));
    }
    let replica = Replica::new(home.replica_dir(mailbox), mailbox);
    let reader = match replica.open() {
        Ok(r) => r,
        Err(Error::NotInLocalCopy { .. }) => {
            return Err(not_here("the first sync has not completed"));
        }
        Err(e) => return Err(e),
    };
    read_checked(&reader, mailbox, id).map_err(|e| match e {
        Error::Replica(satchel_offline::Error::MessageNotFound(_)) => {
            not_here("the local copy does not hold it")
        }
        other => other,
    })
}

/// Reads `id` from an open local copy; a damaged message is an error, never
/// returned.
pub(crate) fn read_checked(
    reader: &satchel_offline::ReplicaIndex,
    mailbox: &str,
    id: &MessageId,
) -> Result<Vec<u8>> {
    match reader.read(id) {
        Ok(raw) => Ok(raw),
        Err(e @ satchel_offline::Error::MessageNotFound(_)) => Err(e.into()),
        Err(e) => Err(Error::Damaged {
            mailbox: mailbox.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Searches: through the service if it answers (and accepts the home's
/// token), else the local index.
pub async fn search(
    home: &Home,
    query: &str,
    mailbox: Option<&str>,
    limit: usize,
) -> Result<Answer<SearchResults>> {
    let config = home.config()?;
    let service = Service::new(&config)?;
    let why = match service.search(query, mailbox, limit).await {
        Ok(r) => return Ok(Answer::from_service(r)),
        Err(e) if e.use_local_copy() => e,
        Err(e) => return Err(e),
    };
    let found = search::search_home(home, query, mailbox, limit)?;
    Ok(Answer::local(found, why))
}
