//! Directory sign-in: users of an LDAP directory (`[ldap]` in the
//! configuration file) sign in with their directory password.
//!
//! A sign-in is *search then bind*: the service binds as `bind_dn` (or stays
//! anonymous), finds the one entry under `base_dn` that `user_filter` matches
//! for the name (escaped per RFC 4515), then binds as that entry with the
//! password; the directory decides whether the password is right and whether
//! the account may sign in at all (a ppolicy lock is a refused bind). The
//! service then reads, again as `bind_dn`, which of the groups it cares about
//! (`admin_group` and the groups named in grants) list the entry as a
//! `member` (groupOfNames).
//!
//! Everything from the directory comes within a budget ([`TIMEOUT`] to
//! connect and per operation) and is remembered for [`CACHE_FOR`]: requests
//! that send the password each time (the command line's Basic scheme) bind
//! once a minute, not once a request, and a lock or a group change in the
//! directory takes effect within that minute.

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The budget to connect, and then for each operation.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long a directory answer (a verified password, group memberships) is
/// used before it is asked again.
pub const CACHE_FOR: Duration = Duration::from_secs(60);

/// The LDAP result code of a bind with a wrong password, an unknown entry or
/// an account the directory refuses (RFC 4511 `invalidCredentials`).
const INVALID_CREDENTIALS: u32 = 49;

/// The LDAP result code for an entry that does not exist (`noSuchObject`).
const NO_SUCH_OBJECT: u32 = 32;

/// `[ldap]`: where the directory is and how users are found in it.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
    pub url: String,
    /// The entry the service searches as; `None`: anonymous search.
    pub bind_dn: Option<String>,
    /// `bind_dn`'s password (read from the environment variable the
    /// configuration names).
    pub bind_password: Option<String>,
    /// Where users are searched (the whole subtree).
    pub base_dn: String,
    /// The search filter, with `{user}` standing for the escaped user name.
    pub user_filter: String,
    /// A groupOfNames whose members are administrators.
    pub admin_group: Option<String>,
}

/// What the directory says about one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// A member of `admin_group`.
    pub admin: bool,
    /// The groups asked about that list the user as a member.
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The directory could not be reached or did not answer in time: the
    /// sign-in cannot be decided.
    #[error("the directory {url} is unavailable: {source}")]
    Unavailable {
        url: String,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The directory answered with an error that is not "wrong password"
    /// (a bad base DN or filter, the service account refused).
    #[error("the directory {url} refused {what}: {source}")]
    Refused {
        url: String,
        what: &'static str,
        #[source]
        source: Box<ldap3::LdapError>,
    },
}

/// A directory answer remembered for [`CACHE_FOR`].
struct Cached {
    user: DirectoryUser,
    /// The groups that were asked about (a new group grant asks again).
    asked: Vec<String>,
    /// SHA-256 of the password that bound, if one did.
    password: Option<Vec<u8>>,
    at: Instant,
}

/// The directory and what it said lately.
pub struct Directory {
    config: DirectoryConfig,
    /// For `ldaps://`: ring (as the rest of Satchel) and the system's
    /// certificate authorities, where a company CA is installed.
    tls: Arc<rustls::ClientConfig>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Directory {
    pub fn new(config: DirectoryConfig) -> Result<Self, rustls::Error> {
        Ok(Directory {
            config,
            tls: Arc::new(tls_config()?),
            cache: Mutex::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The user `name` if `password` binds as their entry; `None` for a
    /// wrong password, an unknown user or an account the directory refuses.
    /// `groups` are the groups whose membership matters (besides
    /// `admin_group`).
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        groups: &[String],
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        // An empty password is an "unauthenticated bind" that succeeds
        // without checking anything (RFC 4513 section 5.1.2).
        if password.is_empty() {
            return Ok(None);
        }
        let digest = password_digest(name, password);
        let mut conn = self.connect().await?;
        let Some(dn) = conn.find(name).await? else {
            return Ok(None);
        };
        if !conn.bind_as(&dn, password).await? {
            return Ok(None);
        }
        conn.bind_service().await?;
        let user = conn.memberships(dn, groups).await?;
        conn.close().await;
        self.remember(name, &user, groups, Some(digest));
        Ok(Some(user))
    }

    /// The user `name` if `password` bound as them within [`CACHE_FOR`]
    /// (asked about the same `groups`): no directory request, no slot.
    pub fn verified(&self, name: &str, password: &str, groups: &[String]) -> Option<DirectoryUser> {
        if password.is_empty() {
            return None;
        }
        self.cached(name, groups, Some(&password_digest(name, password)))
    }

    /// The user `name` as the directory has them now (without a password:
    /// for API tokens and console sessions opened with one earlier, and to
    /// name the user in a grant); `None` if they are no longer there.
    pub async fn lookup(
        &self,
        name: &str,
        groups: &[String],
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        if let Some(user) = self.cached(name, groups, None) {
            return Ok(Some(user));
        }
        let mut conn = self.connect().await?;
        let Some(dn) = conn.find(name).await? else {
            return Ok(None);
        };
        let user = conn.memberships(dn, groups).await?;
        conn.close().await;
        self.remember(name, &user, groups, None);
        Ok(Some(user))
    }

    /// A fresh answer for `name` about the same `groups`; with `password`,
    /// only one given after that very password bound.
    fn cached(
        &self,
        name: &str,
        groups: &[String],
        password: Option<&[u8]>,
    ) -> Option<DirectoryUser> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(name)?;
        let fresh = c.at.elapsed() < CACHE_FOR && c.asked == groups;
        let verified = match password {
            Some(p) => c.password.as_deref() == Some(p),
            None => true,
        };
        (fresh && verified).then(|| c.user.clone())
    }

    fn remember(
        &self,
        name: &str,
        user: &DirectoryUser,
        groups: &[String],
        password: Option<Vec<u8>>,
    ) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        cache.retain(|_, c| c.at.elapsed() < CACHE_FOR);
        // A lookup keeps a password verified by an earlier sign-in.
        let password = password.or_else(|| cache.get(name).and_then(|c| c.password.clone()));
        cache.insert(
            name.to_string(),
            Cached {
                user: user.clone(),
                asked: groups.to_vec(),
                password,
                at: Instant::now(),
            },
        );
    }

    /// Connects and binds as the service account.
    async fn connect(&self) -> Result<Connection<'_>, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_config(self.tls.clone());
        let (driver, ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|source| self.unavailable(source))?;
        ldap3::drive!(driver);
        let mut conn = Connection {
            ldap,
            config: &self.config,
        };
        conn.bind_service().await?;
        Ok(conn)
    }

    fn unavailable(&self, source: ldap3::LdapError) -> DirectoryError {
        DirectoryError::Unavailable {
            url: self.config.url.clone(),
            source: Box::new(source),
        }
    }
}

/// One connection to the directory, for one sign-in or look-up.
struct Connection<'a> {
    ldap: ldap3::Ldap,
    config: &'a DirectoryConfig,
}

impl Connection<'_> {
    /// Binds as `bind_dn`, or anonymously when none is configured.
    async fn bind_service(&mut self) -> Result<(), DirectoryError> {
        let (dn, password) = match (&self.config.bind_dn, &self.config.bind_password) {
            (Some(dn), Some(pw)) => (dn.as_str(), pw.as_str()),
            (Some(dn), None) => (dn.as_str(), ""),
            (None, _) => ("", ""),
        };
        let result = self
            .ldap
            .with_timeout(TIMEOUT)
            .simple_bind(dn, password)
            .await
            .map_err(|e| self.failed(e, "the service's bind"))?;
        result
            .success()
            .map_err(|e| self.failed(e, "the service's bind (bind_dn and its password)"))?;
        Ok(())
    }

    /// The DN of the one entry `user_filter` finds for `name`; `None` for no
    /// entry or several (a filter that is not unique names nobody).
    async fn find(&mut self, name: &str) -> Result<Option<String>, DirectoryError> {
        let filter = self
            .config
            .user_filter
            .replace("{user}", &ldap_escape(name));
        let (entries, _) = self
            .ldap
            .with_timeout(TIMEOUT)
            .search(&self.config.base_dn, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| self.failed(e, "the user search (base_dn, user_filter)"))?;
        if entries.len() > 1 {
            tracing::warn!(user = ?name, entries = entries.len(), %filter,
                "directory sign-in refused: the user filter matches several entries");
            return Ok(None);
        }
        Ok(entries
            .into_iter()
            .next()
            .map(|e| SearchEntry::construct(e).dn))
    }

    /// True if `password` binds as `dn`; false if the directory refuses it
    /// (wrong password, or an account it does not let sign in).
    async fn bind_as(&mut self, dn: &str, password: &str) -> Result<bool, DirectoryError> {
        let result = self
            .ldap
            .with_timeout(TIMEOUT)
            .simple_bind(dn, password)
            .await
            .map_err(|e| self.failed(e, "the user's bind"))?;
        match result.rc {
            0 => Ok(true),
            INVALID_CREDENTIALS => {
                tracing::info!(%dn, text = %result.text, "the directory refused the user's bind");
                Ok(false)
            }
            _ => Err(self.failed(result.into(), "the user's bind")),
        }
    }

    /// Which of `groups` (and the admin group) list `dn` as a member.
    async fn memberships(
        &mut self,
        dn: String,
        groups: &[String],
    ) -> Result<DirectoryUser, DirectoryError> {
        let mut member_of = Vec::new();
        for group in groups {
            if self.is_member(&dn, group).await? {
                member_of.push(group.clone());
            }
        }
        let admin = match self.config.admin_group.clone() {
            Some(group) => self.is_member(&dn, &group).await?,
            None => false,
        };
        Ok(DirectoryUser {
            dn,
            admin,
            groups: member_of,
        })
    }

    /// True if the groupOfNames `group` has `dn` among its `member`s. A group
    /// that does not exist has no members.
    async fn is_member(&mut self, dn: &str, group: &str) -> Result<bool, DirectoryError> {
        let filter = format!("(member={})", ldap_escape(dn));
        let found = self
            .ldap
            .with_timeout(TIMEOUT)
            .search(group, Scope::Base, &filter, vec!["1.1"])
            .await
            .map_err(|e| self.failed(e, "the group search"))?;
        match found.1.rc {
            0 => Ok(!found.0.is_empty()),
            NO_SUCH_OBJECT => {
                tracing::warn!(%group, "directory group not found: it has no members");
                Ok(false)
            }
            _ => Err(self.failed(found.1.into(), "the group search")),
        }
    }

    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    /// Maps an LDAP failure: no answer (I/O, time-out) is "unavailable",
    /// any other is the directory refusing `what`.
    fn failed(&self, e: ldap3::LdapError, what: &'static str) -> DirectoryError {
        let url = self.config.url.clone();
        match e {
            ldap3::LdapError::LdapResult { .. } => DirectoryError::Refused {
                url,
                what,
                source: Box::new(e),
            },
            _ => DirectoryError::Unavailable {
                url,
                source: Box::new(e),
            },
        }
    }
}

/// The TLS client configuration for `ldaps://`. ldap3's own would take the
/// process's default crypto provider, which a binary with two (ring and
/// aws-lc-rs, through other crates) does not have.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "loading the system's certificate authorities");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "certificate authorities for ldaps://");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What a verified password is remembered by: never the password itself.
fn password_digest(name: &str, password: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [name, password] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}
