//! The agent (`satchel laptop run`): checks regularly whether the service is
//! reachable and syncs when it is; serves message links on 127.0.0.1:8481.
//! Split by job: [`checker`] (the loop), `router` (handlers and the
//! same-user and own-name guards), `listener` (who is connecting), `pages`
//! (the agent's own HTML); this module holds the shared state.
//!
//! * Checks: every `interval` (default 5 min) with ±25 % random jitter, so a
//!   thousand laptops coming online together spread out; while offline the
//!   retry delay starts at `min_retry` and doubles up to `interval`.
//! * `GET /m/ADDRESS/ID`: the message as a safe page ([`crate::viewer`]),
//!   from the service when online, else from the local copy.
//!   `/m/ADDRESS/ID.eml`: the raw message. `/m/ADDRESS/ID/attachments/N`:
//!   attachment N as a download. `/`: status page; `/status.json`.
//! * Only this home's user's mail: online, the service checks the home's
//!   token; offline, only this home's local copies exist. On Linux the agent
//!   also refuses loopback connections from processes of other local users
//!   (looked up in /proc/net/tcp), so another account on the laptop cannot
//!   read this user's copy through the agent.
//! * Only requests addressed to the agent by its own name: the `Host` must be
//!   `localhost`, `127.0.0.1`, `[::1]` or the address it listens on, with its
//!   port. A web page whose own name resolves to 127.0.0.1 (DNS rebinding)
//!   sends its name instead and gets 421, so it cannot read mail through the
//!   user's browser.

mod checker;
mod listener;
mod pages;
mod router;

pub use checker::next_delay;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use satchel_api::ApiError;
use satchel_offline::{Manifest, MessageId, ReplicaIndex};
use tokio::sync::Notify;

use crate::config::{Config, Home};
use crate::error::{Error, Result};
use crate::read_checked;
use crate::replica::Replica;
use crate::service::Service;
use crate::status::{Status, local_status};
use crate::viewer::Source;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub listen: String,
    /// Time between checks while online (before jitter).
    pub interval: Duration,
    /// First retry delay while offline (doubles up to `interval`).
    pub min_retry: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            listen: crate::link::DEFAULT_AGENT_ADDR.into(),
            interval: Duration::from_secs(300),
            min_retry: Duration::from_secs(15),
        }
    }
}

/// What the agent knows about the service's reachability.
const UNKNOWN: u8 = 0;
const ONLINE: u8 = 1;
const OFFLINE: u8 = 2;

/// The state the loop and the handlers share.
struct Agent {
    home: Home,
    config: Config,
    service: Service,
    online: AtomicU8,
    /// Open local copies, keyed by mailbox, with the manifest they were opened with.
    copies: Mutex<HashMap<String, (Manifest, Arc<ReplicaIndex>)>>,
    wake: Notify,
    uid: Option<u32>,
    /// The address the agent listens on (for the `Host` check).
    local: SocketAddr,
}

/// Runs the agent until the process is stopped.
pub async fn run(home: Home, options: AgentOptions) -> Result<()> {
    let config = home.config()?;
    let service = Service::new(&config)?;
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: options.listen.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Listen {
        addr: options.listen.clone(),
        source,
    })?;
    let agent = Arc::new(Agent {
        home,
        config,
        service,
        online: AtomicU8::new(UNKNOWN),
        copies: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        uid: listener::own_uid(),
        local,
    });
    tracing::info!(
        "satchel laptop agent for {} on http://{local}",
        agent.config.user,
    );
    tokio::spawn(checker::run(agent.clone(), options));
    let app = router::app(agent);
    // No Nagle delay on small responses; the peer's owner is looked up once
    // per connection (see `AgentListener`).
    axum::serve(
        listener::AgentListener(listener),
        app.into_make_service_with_connect_info::<listener::Peer>(),
    )
    .await
    .map_err(|e| Error::io("agent", e))
}

impl Agent {
    fn is_offline(&self) -> bool {
        self.online.load(Ordering::SeqCst) == OFFLINE
    }

    /// Records what the last check or fetch learnt about the service.
    fn set_online(&self, online: bool) {
        let v = if online { ONLINE } else { OFFLINE };
        self.online.store(v, Ordering::SeqCst);
    }

    /// The home's status, with what this agent learnt since its last check
    /// was written down.
    fn status(&self) -> Result<Status> {
        let mut s = local_status(&self.home)?;
        s.online = match self.online.load(Ordering::SeqCst) {
            ONLINE => Some(true),
            OFFLINE => Some(false),
            _ => s.online,
        };
        Ok(s)
    }

    /// An open reader on the current local copy of `mailbox` (reopened
    /// when its manifest changed, or when `fresh`).
    fn copy(&self, mailbox: &str, fresh: bool) -> Result<Arc<ReplicaIndex>> {
        let not_here = |reason: &str| Error::NotInLocalCopy {
            server: self.config.server.clone(),
            mailbox: mailbox.to_string(),
            id: String::new(),
            reason: reason.to_string(),
        };
        let replica = Replica::new(self.home.replica_dir(mailbox), mailbox);
        if !replica.dir().exists() {
            return Err(not_here("this home has no local copy of that mailbox"));
        }
        let manifest = replica
            .manifest()?
            .ok_or_else(|| not_here("the first sync has not completed"))?;
        let mut copies = self.copies.lock().expect("copies lock");
        if !fresh
            && let Some((m, r)) = copies.get(mailbox)
            && *m == manifest
        {
            return Ok(r.clone());
        }
        let reader = Arc::new(replica.open()?);
        copies.insert(
            mailbox.to_string(),
            (reader.manifest().clone(), reader.clone()),
        );
        Ok(reader)
    }

    fn read_local(&self, mailbox: &str, id: &MessageId) -> Result<Vec<u8>> {
        let attempt = |fresh: bool| -> Result<Vec<u8>> {
            let reader = self.copy(mailbox, fresh)?;
            read_checked(&reader, mailbox, id)
        };
        let result = match attempt(false) {
            // A repaired segment replaced the file under an open handle: reopen once.
            Err(Error::Damaged { .. }) => attempt(true),
            other => other,
        };
        result.map_err(|e| match e {
            Error::Replica(satchel_offline::Error::MessageNotFound(_)) => Error::NotInLocalCopy {
                server: self.config.server.clone(),
                mailbox: mailbox.to_string(),
                id: id.to_hex(),
                reason: "the local copy does not hold it".into(),
            },
            Error::NotInLocalCopy {
                server,
                mailbox,
                reason,
                ..
            } => Error::NotInLocalCopy {
                server,
                mailbox,
                id: id.to_hex(),
                reason,
            },
            other => other,
        })
    }

    /// The raw message: from the service unless it is known to be offline
    /// (or turns out to be), else from the local copy.
    async fn fetch(&self, mailbox: &str, id: &MessageId) -> Result<(Vec<u8>, Source)> {
        if !self.is_offline() {
            match self.service.message(mailbox, id).await {
                Ok(raw) if MessageId::of(&raw) == *id => return Ok((raw, Source::Service)),
                Ok(_) => {
                    return Err(Error::Protocol {
                        what: format!("message {id}"),
                        reason: "the bytes do not hash to the id".into(),
                    });
                }
                Err(e) if e.is_offline() => {
                    self.set_online(false);
                    self.wake.notify_one();
                }
                // Until the user sets up again, the local copy answers.
                Err(e @ Error::TokenRevoked { .. }) => tracing::warn!("{e}"),
                Err(Error::Api(ApiError::Status { status, .. })) if status >= 500 => {}
                Err(e) => return Err(e),
            }
        }
        let raw = self.read_local(mailbox, id)?;
        Ok((raw, Source::LocalCopy))
    }
}
