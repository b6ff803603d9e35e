//! What `satchel laptop status` and the agent's status page show.

use serde::{Deserialize, Serialize};

use crate::config::Home;
use crate::error::Result;
use crate::fsutil::rfc3339;
use crate::replica::Replica;

/// The state of one home.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub home: String,
    pub server: String,
    pub user: String,
    /// Whether the service answered at the last check (`None`: never checked).
    pub online: Option<bool>,
    pub last_check: Option<String>,
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
    pub mailboxes: Vec<MailboxStatus>,
}

/// One local copy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MailboxStatus {
    pub mailbox: String,
    /// False if there is no complete copy yet (first sync interrupted).
    pub complete: bool,
    pub generation: u64,
    pub epoch: String,
    pub messages: u64,
    pub segments: u64,
    pub bytes: u64,
    /// When the service produced this generation.
    pub updated: String,
    /// Set if the local manifest cannot be read.
    pub error: Option<String>,
}

/// The home's status from its files (no network).
pub fn local_status(home: &Home) -> Result<Status> {
    let config = home.config()?;
    let state = home.state();
    let mut mailboxes = Vec::new();
    for mailbox in home.local_mailboxes()? {
        let replica = Replica::new(home.replica_dir(&mailbox), &mailbox);
        let mut s = MailboxStatus {
            mailbox,
            complete: false,
            generation: 0,
            epoch: String::new(),
            messages: 0,
            segments: 0,
            bytes: 0,
            updated: String::new(),
            error: None,
        };
        match replica.manifest() {
            Ok(Some(m)) => {
                s.complete = true;
                s.generation = m.generation;
                s.epoch = m.epoch;
                s.messages = m.totals.messages;
                s.segments = m.totals.segments;
                s.bytes = m.totals.bytes;
                s.updated = m.updated;
            }
            Ok(None) => {}
            Err(e) => s.error = Some(e.to_string()),
        }
        mailboxes.push(s);
    }
    Ok(Status {
        home: home.dir().display().to_string(),
        server: config.server,
        user: config.user,
        online: state.online,
        last_check: state.last_check.map(rfc3339),
        last_sync: state.last_sync.map(rfc3339),
        last_error: state.last_error,
        mailboxes,
    })
}
