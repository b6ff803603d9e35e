//! The home folder: where one user's laptop configuration, token, local
//! copies and search index live.
//!
//! ```text
//! <home>/                 0700
//!   config.json           0600  service URL, user name, API token (never the password)
//!   state.json            0600  last check / last sync, written by sync and the agent
//!   replicas/<mailbox>/   one local copy per mailbox (manifest.json, segments/, partial/)
//!   index/                the local search index (tantivy)
//!   .sync.lock            serialises syncs (agent and `satchel laptop sync`)
//! ```
//!
//! Several users on one laptop use several homes; nothing is shared between
//! them, and every directory is created 0700, every file 0600.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::service::Service;

/// One user's laptop home folder.
#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

/// What `setup` stores: enough to talk to the service as the user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// The archive service's base URL.
    pub server: String,
    /// The user name (shown in status, checked again by the service).
    pub user: String,
    /// API token created at setup; the password is never stored.
    pub token: String,
    /// When setup ran (RFC 3339).
    pub created: String,
    /// The private CA (PEM) given at setup (`--ca-file`), trusted for an
    /// `https://` service at every later sync; kept here so that the file it
    /// came from may move or go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl Config {
    /// The private CA this home trusts, if setup was given one.
    pub fn ca(&self) -> Result<Option<satchel_api::PrivateCa>> {
        let Some(pem) = &self.ca_pem else {
            return Ok(None);
        };
        satchel_api::PrivateCa::from_pem(pem.clone())
            .map(Some)
            .map_err(|reason| Error::BadFile {
                path: PathBuf::from("config.json (ca_pem)"),
                reason: reason.to_string(),
            })
    }
}

/// What the last check and sync found; shown by `status` and the agent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Unix seconds of the last reachability check (agent or sync).
    #[serde(default)]
    pub last_check: Option<i64>,
    /// Whether the service answered at the last check.
    #[serde(default)]
    pub online: Option<bool>,
    /// Unix seconds of the last sync that completed without error.
    #[serde(default)]
    pub last_sync: Option<i64>,
    /// The error of the last sync, if it failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Home {
    /// The home folder `dir` (from --home / SATCHEL_HOME), else the default:
    /// `$XDG_DATA_HOME/satchel`, else `$HOME/.local/share/satchel`.
    pub fn resolve(dir: Option<PathBuf>) -> Result<Home> {
        match dir.or_else(Home::default_dir) {
            Some(dir) => Ok(Home { dir }),
            None => Err(Error::NoHome),
        }
    }

    /// A home at exactly `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Home {
        Home { dir: dir.into() }
    }

    /// The default home of the current user, if the environment names one.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(x).join("satchel"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".local/share/satchel"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn replicas_dir(&self) -> PathBuf {
        self.dir.join("replicas")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.dir.join("index")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.dir.join(".sync.lock")
    }

    /// The local copy directory of `mailbox`, named by
    /// [`satchel_offline::mailbox_dir_name`] (as on the service), which cannot
    /// leave `replicas/`. A copy an earlier version kept under its old name
    /// ([`fsutil::legacy_name`]) is moved there first.
    pub fn replica_dir(&self, mailbox: &str) -> PathBuf {
        let dir = self
            .replicas_dir()
            .join(satchel_offline::mailbox_dir_name(mailbox));
        let legacy = self.replicas_dir().join(fsutil::legacy_name(mailbox));
        let (dir, failed) = satchel_offline::adopt_legacy_dir(&legacy, &dir);
        if let Some(e) = failed {
            tracing::warn!("kept {} under its old name: {e}", dir.display());
        }
        dir
    }

    /// Creates the home and its subfolders, all 0700.
    pub fn create(&self) -> Result<()> {
        fsutil::private_dir(&self.dir)?;
        fsutil::private_dir(&self.replicas_dir())?;
        Ok(())
    }

    /// The stored configuration, or [`Error::NotSetUp`].
    pub fn config(&self) -> Result<Config> {
        let path = self.config_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotSetUp(self.dir.clone()));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::BadFile {
            path,
            reason: e.to_string(),
        })
    }

    /// Stores the configuration (0600, atomically).
    pub fn save_config(&self, config: &Config) -> Result<()> {
        self.create()?;
        let bytes = serde_json::to_vec_pretty(config).expect("config serialises");
        fsutil::write_private(&self.config_path(), &bytes)
    }

    /// The last recorded state (default if none yet or unreadable: it is
    /// only informative).
    pub fn state(&self) -> State {
        fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Updates the state file with `f` (read, modify, write atomically).
    pub fn update_state(&self, f: impl FnOnce(&mut State)) -> Result<State> {
        let mut s = self.state();
        f(&mut s);
        let bytes = serde_json::to_vec_pretty(&s).expect("state serialises");
        fsutil::write_private(&self.state_path(), &bytes)?;
        Ok(s)
    }

    /// The mailboxes with a local copy directory in this home, sorted.
    pub fn local_mailboxes(&self) -> Result<Vec<String>> {
        let dir = self.replicas_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = std::collections::BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(mailbox) = satchel_message::link::decode_segment(&name) else {
                continue;
            };
            if satchel_offline::mailbox_dir_name(&mailbox) == name {
                out.insert(mailbox);
            } else if fsutil::legacy_name(&mailbox) == name {
                self.replica_dir(&mailbox);
                out.insert(mailbox);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Drops every local copy and the search index (used by `setup --force`).
    pub fn drop_local_data(&self) -> Result<()> {
        fsutil::remove_dir_if_exists(&self.replicas_dir())?;
        fsutil::remove_dir_if_exists(&self.index_dir())?;
        fsutil::remove_file_if_exists(&self.state_path())?;
        Ok(())
    }
}

/// `satchel laptop setup`: checks the credentials with the service, creates
/// an API token and stores service, user and token in the home (0700/0600).
/// The password is used for these two requests only and never written.
///
/// A home already set up for another user or service is refused unless
/// `force`, which also drops its local copies (they belong to the other user).
/// `ca`, a private CA for an `https://` service, is stored with the token.
pub async fn setup(
    home: &Home,
    server: &str,
    user: &str,
    password: &str,
    ca: Option<satchel_api::PrivateCa>,
    force: bool,
) -> Result<Config> {
    let server = server.trim_end_matches('/').to_string();
    let previous = match home.config() {
        Ok(c) => Some(c),
        Err(Error::NotSetUp(_)) => None,
        Err(e) if force => {
            tracing::warn!("ignoring unreadable configuration: {e}");
            None
        }
        Err(e) => return Err(e),
    };
    let same_owner = previous
        .as_ref()
        .is_some_and(|p| p.user == user && p.server == server);
    if let Some(p) = &previous
        && !same_owner
        && !force
    {
        return Err(Error::HomeInUse {
            home: home.dir().to_path_buf(),
            user: p.user.clone(),
            server: p.server.clone(),
        });
    }

    let with_password = Service::with_password(&server, user, password, ca.as_ref())?;
    let me = with_password.whoami().await?;
    if me.name != user {
        return Err(Error::Protocol {
            what: "whoami".into(),
            reason: format!("logged in as {:?}, expected {user:?}", me.name),
        });
    }
    let label = format!("satchel laptop ({})", hostname());
    let token = with_password.create_token(&label).await?;

    if previous.is_some() && !same_owner {
        home.drop_local_data()?;
    }
    let config = Config {
        server,
        user: user.to_string(),
        token,
        created: fsutil::rfc3339(fsutil::now_unix()),
        ca_pem: ca.map(|ca| ca.pem().to_string()),
    };
    // Check the token works before storing it.
    Service::new(&config)?.whoami().await?;
    home.save_config(&config)?;
    Ok(config)
}

fn hostname() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "laptop".into())
}
