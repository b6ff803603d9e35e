//! [`Service`]: the archive service's operations, each checking who may do it.

use crate::audit::action;
use crate::auth::{self, VerifiedCache};
use crate::error::ServiceError;
use satchel_api as api;
use satchel_archive::secret::SecretKey;
use satchel_archive::{
    Archive, ArchiveError, BatchItem, MailboxInfo, MessageId, SearchRequest, UserInfo,
};
use serde_json::json;
use std::path::{Path, PathBuf};

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

pub struct Service {
    pub(crate) archive: Archive,
    pub(crate) verified: VerifiedCache,
    pub(crate) offline: crate::offline::OfflineRuntime,
    /// The scheduler's wake-up and the archive runs in progress.
    pub(crate) jobs: crate::jobs::JobRuntime,
    /// Failed password sign-ins per client address and user (429 past the limit).
    pub(crate) throttle: crate::throttle::Throttle,
    /// How many password hashes may run at once.
    pub(crate) hashing: crate::signin::HashSlots,
    /// Audit appends waiting for, or in, a group commit.
    pub(crate) audit_log: crate::audit::GroupCommit,
    /// The LDAP directory whose users sign in too, if configured.
    pub(crate) directory: Option<crate::directory::Directory>,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: UserInfo,
    /// Signed in with the password (the API's Basic scheme or the console), not
    /// an API token: only such a caller may change a password, so a stolen
    /// token never leads to the account itself.
    pub by_password: bool,
    /// The client's address, recorded in the audit trail.
    pub source: std::net::IpAddr,
}

impl Caller {
    /// The local user `name`, as if signed in with a password from this
    /// machine: for in-process callers (benches, tests) that have no HTTP
    /// request to sign in through. `None` if no such user exists.
    pub fn local(service: &Service, name: &str) -> Result<Option<Caller>> {
        let user = service.archive().catalog()?.user(name)?;
        Ok(user.map(|user| Caller {
            user,
            by_password: true,
            source: std::net::Ipv4Addr::LOCALHOST.into(),
        }))
    }

    pub(crate) fn require_admin(&self) -> Result<()> {
        if self.user.admin {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "user {} is not an administrator",
                self.user.name
            )))
        }
    }
}

pub const ADMIN: &str = "admin";

/// Where the key that seals IMAP passwords comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A file holding 64 hex digits, created with a fresh key if absent.
    File(PathBuf),
    /// The 64 hex digits themselves (`SATCHEL_KEY`); nothing is written.
    Hex(String),
}

impl KeySource {
    fn load(&self) -> Result<SecretKey> {
        match self {
            KeySource::File(path) => {
                let (key, created) = SecretKey::load_or_create(path)?;
                if created {
                    tracing::warn!(path = %path.display(),
                        "created the key that seals IMAP passwords: back it up apart from the data folder");
                }
                Ok(key)
            }
            KeySource::Hex(hex) => Ok(SecretKey::from_hex(hex)
                .map_err(|e| ServiceError::BadRequest(format!("SATCHEL_KEY: {e}")))?),
        }
    }
}

/// The default key file: beside the data folder, never inside it, so that a
/// copy of the data folder holds no usable IMAP password
/// (`./satchel-data` -> `./satchel-data.key`).
pub fn default_key_file(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    data.with_file_name(name)
}

impl Service {
    /// Opens the data folder with the secret key in [`default_key_file`];
    /// on first start creates user `admin`.
    pub fn open(data: &Path, admin_password: Option<String>) -> Result<Self> {
        Service::open_with_key(
            data,
            admin_password,
            &KeySource::File(default_key_file(data)),
        )
    }

    /// Opens the data folder; IMAP passwords are sealed under `key`.
    pub fn open_with_key(
        data: &Path,
        admin_password: Option<String>,
        key: &KeySource,
    ) -> Result<Self> {
        Service::open_on_catalog(data, None, admin_password, key)
    }

    /// Opens the data folder with its catalog in PostgreSQL when
    /// `catalog_url` names one (else SQLite in the data folder).
    pub fn open_on_catalog(
        data: &Path,
        catalog_url: Option<&str>,
        admin_password: Option<String>,
        key: &KeySource,
    ) -> Result<Self> {
        let connections = crate::DEFAULT_CATALOG_CONNECTIONS;
        let cache = satchel_archive::repository::cache::DEFAULT_BYTES;
        Service::open_pooled(data, catalog_url, connections, admin_password, key, cache)
    }

    /// Like [`Service::open_on_catalog`], keeping up to `connections`
    /// connections to a PostgreSQL catalog and at most `s3_cache_bytes` of
    /// messages read from S3 repositories in memory.
    pub fn open_pooled(
        data: &Path,
        catalog_url: Option<&str>,
        connections: usize,
        admin_password: Option<String>,
        key: &KeySource,
        s3_cache_bytes: u64,
    ) -> Result<Self> {
        let archive = Archive::open_sized(data, catalog_url, connections, s3_cache_bytes)?;
        let sealed = archive.catalog()?.use_secret_key(key.load()?)?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "sealed IMAP passwords stored in clear by an older version"
            );
        }
        {
            // The tables the service's parts keep in the catalog's file, each
            // with its own migrations.
            let cat = archive.catalog()?;
            satchel_mailbox::state::migrate(&cat)?;
            crate::offline::state::migrate(&cat)?;
            crate::jobs::migrate(&cat)?;
            crate::console::sessions::migrate(&cat)?;
            crate::audit::migrate(&cat)?;
            crate::retention::migrate(&cat)?;
            crate::hold::migrate(&cat)?;
        }
        let jobs = crate::jobs::JobRuntime::new(crate::jobs::claims::node_id(data)?);
        let interrupted = jobs.mark_interrupted(archive.catalog()?.db())?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "jobs cut short by the previous stop");
        }
        let service = Service {
            archive,
            verified: VerifiedCache::default(),
            offline: crate::offline::OfflineRuntime::new(data),
            jobs,
            throttle: Default::default(),
            hashing: crate::signin::HashSlots::new(crate::signin::default_hash_slots()),
            audit_log: Default::default(),
            directory: None,
        };
        service.ensure_admin(admin_password)?;
        service.offline_garbage_at_start()?;
        Ok(service)
    }

    fn ensure_admin(&self, password: Option<String>) -> Result<()> {
        let cat = self.archive.catalog()?;
        // Any administrator will do: one who removed user admin does not want
        // it back at the next start.
        if cat.users()?.iter().any(|u| u.admin) {
            return Ok(());
        }
        let (password, generated) = match password.filter(|p| !p.is_empty()) {
            Some(p) => (p, false),
            None => (auth::random_secret()[..24].to_string(), true),
        };
        cat.add_user(ADMIN, &auth::hash_password(&password)?, true)?;
        if generated {
            // Printed once, on the first start only: it is stored nowhere in clear.
            println!("satchel: created user admin with password {password}");
        } else {
            println!("satchel: created user admin (password from SATCHEL_ADMIN_PASSWORD)");
        }
        Ok(())
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// At most `n` (at least 1) password hashes at once; the rest wait.
    pub fn with_hash_slots(mut self, n: usize) -> Self {
        self.hashing = crate::signin::HashSlots::new(n);
        self
    }

    /// Signs in the users of this directory too (see [`crate::signin`]).
    pub fn with_directory(
        mut self,
        config: Option<crate::directory::DirectoryConfig>,
    ) -> Result<Self> {
        self.directory = config
            .map(crate::directory::Directory::new)
            .transpose()
            .map_err(|e| ServiceError::Internal(format!("TLS for the directory: {e}")))?;
        Ok(self)
    }

    /// The caller an API token stands for. Password sign-ins go through
    /// [`crate::signin::authenticate`], which throttles them.
    pub fn authenticate_token(&self, token: &str, source: std::net::IpAddr) -> Result<Caller> {
        let revoked = || ServiceError::Unauthorized("unknown or revoked API token".into());
        let cat = self.archive.catalog()?;
        let name = cat
            .token_user(&auth::token_hash(token))?
            .ok_or_else(revoked)?;
        let info = cat.user(&name)?.ok_or_else(revoked)?;
        Ok(Caller {
            user: info,
            by_password: false,
            source,
        })
    }

    pub fn create_token(&self, caller: &Caller, label: &str) -> Result<api::Token> {
        let token = format!("sat_{}", auth::random_secret());
        let cat = self.archive.catalog()?;
        cat.add_token(&auth::token_hash(&token), &caller.user.name, label)?;
        crate::audit::note(
            &cat,
            caller,
            action::TOKEN_CREATE,
            json!({ "label": label }),
        )?;
        Ok(api::Token {
            token,
            user: caller.user.name.clone(),
        })
    }

    pub fn add_user(&self, caller: &Caller, new: &api::NewUser) -> Result<api::User> {
        caller.require_admin()?;
        validate_name("user name", &new.name)?;
        validate_password(&new.password)?;
        let hash = auth::hash_password(&new.password)?;
        let cat = self.archive.catalog()?;
        cat.add_user(&new.name, &hash, new.admin)?;
        crate::audit::note(
            &cat,
            caller,
            action::USER_ADD,
            json!({ "user": new.name, "admin": new.admin }),
        )?;
        Ok(api::User {
            name: new.name.clone(),
            admin: new.admin,
        })
    }

    /// Sets `name`'s password (yours, or anyone's for an administrator) and
    /// revokes all of `name`'s API tokens; console sessions opened with the
    /// old password end at their next request.
    pub fn set_password(
        &self,
        caller: &Caller,
        name: &str,
        password: &str,
    ) -> Result<api::PasswordChanged> {
        if !caller.by_password {
            return Err(ServiceError::Forbidden(
                "changing a password needs a user and password, not an API token".into(),
            ));
        }
        if caller.user.name != name {
            caller.require_admin()?;
        }
        validate_password(password)?;
        let target = self.archive.catalog()?.user(name)?;
        if target.is_some_and(|u| u.password_hash == auth::DIRECTORY_HASH) {
            return Err(ServiceError::BadRequest(format!(
                "user {name} signs in with the directory: change the password there"
            )));
        }
        let hash = auth::hash_password(password)?;
        let revoked = self.archive.catalog()?.set_password(name, &hash)?;
        self.audit(caller, action::USER_PASSWORD, json!({ "user": name }))?;
        tracing::info!(user = ?name, by = ?caller.user.name, tokens_revoked = revoked, "password changed");
        Ok(api::PasswordChanged {
            user: name.to_string(),
            tokens_revoked: revoked,
        })
    }

    /// Removes a user with their API tokens, grants and console sessions.
    /// The last administrator stays.
    pub fn remove_user(&self, caller: &Caller, name: &str) -> Result<api::UserRemoved> {
        caller.require_admin()?;
        let mut cat = self.archive.catalog()?;
        let users = cat.users()?;
        let target = users
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("no user {name}")))?;
        if target.admin && users.iter().filter(|u| u.admin).count() == 1 {
            return Err(ServiceError::Conflict(format!(
                "{name} is the last administrator: make another one first"
            )));
        }
        let removed = cat.remove_user(name)?;
        crate::audit::note(&cat, caller, action::USER_REMOVE, json!({ "user": name }))?;
        tracing::info!(user = ?name, by = ?caller.user.name, tokens_revoked = removed.tokens, grants_revoked = removed.grants, "user removed");
        Ok(api::UserRemoved {
            user: name.to_string(),
            tokens_revoked: removed.tokens,
            grants_revoked: removed.grants,
        })
    }

    /// The caller's API tokens; an administrator's: everyone's.
    pub fn tokens(&self, caller: &Caller) -> Result<Vec<api::TokenListing>> {
        let owner = (!caller.user.admin).then_some(caller.user.name.as_str());
        Ok(self
            .archive
            .catalog()?
            .tokens(owner)?
            .into_iter()
            .map(token_view)
            .collect())
    }

    /// Revokes one of the caller's tokens (an administrator: anyone's). Someone
    /// else's token is "no such token", as if it did not exist.
    pub fn revoke_token(&self, caller: &Caller, id: &str) -> Result<api::TokenListing> {
        let well_formed = id.len() == satchel_archive::catalog::TOKEN_ID_LEN
            && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(ServiceError::BadRequest(format!(
                "{id:?} is not a token id (16 lowercase hex digits, from `satchel token list`)"
            )));
        }
        let owner = (!caller.user.admin).then_some(caller.user.name.as_str());
        let revoked = self
            .archive
            .catalog()?
            .revoke_token(id, owner)?
            .ok_or_else(|| ServiceError::NotFound(format!("no API token {id}")))?;
        self.audit(
            caller,
            action::TOKEN_REVOKE,
            json!({ "token": id, "user": revoked.user }),
        )?;
        tracing::info!(token = id, user = ?revoked.user, by = ?caller.user.name, "API token revoked");
        Ok(token_view(revoked))
    }

    pub fn users(&self, caller: &Caller) -> Result<Vec<api::User>> {
        caller.require_admin()?;
        Ok(self
            .archive
            .catalog()?
            .users()?
            .into_iter()
            .map(|u| api::User {
                name: u.name,
                admin: u.admin,
            })
            .collect())
    }

    pub fn add_repository(
        &self,
        caller: &Caller,
        new: &api::NewRepository,
    ) -> Result<api::Repository> {
        caller.require_admin()?;
        validate_name("repository name", &new.name)?;
        let repo = match &new.s3 {
            Some(url) => s3_repository(new, url)?,
            None => {
                let mut repo = disk_repository(new)?;
                repo.path = self.archive.recorded(&repo.path);
                repo
            }
        };
        self.archive.catalog()?.add_repository(&repo)?;
        self.audit(
            caller,
            action::REPOSITORY_ADD,
            json!({ "repository": repo.name, "kind": repo.kind }),
        )?;
        Ok(self.repository_view(repo))
    }

    fn repository_view(&self, r: satchel_archive::RepositoryInfo) -> api::Repository {
        let path = match r.kind.as_str() {
            "disk" => self.archive.resolve(&r.path).display().to_string(),
            _ => r.path.display().to_string(),
        };
        api::Repository {
            name: r.name,
            kind: r.kind,
            path,
            endpoint: r.endpoint,
            cold: r.cold,
        }
    }

    pub fn repositories(&self, caller: &Caller) -> Result<Vec<api::Repository>> {
        caller.require_admin()?;
        Ok(self
            .archive
            .catalog()?
            .repositories()?
            .into_iter()
            .map(|r| self.repository_view(r))
            .collect())
    }

    pub fn add_mailbox(&self, caller: &Caller, new: &api::NewMailbox) -> Result<api::Mailbox> {
        caller.require_admin()?;
        satchel_archive::address::check_address(&new.address)?;
        let repo = new
            .repo
            .clone()
            .unwrap_or_else(|| satchel_archive::archive::DEFAULT_REPOSITORY.to_string());
        let imap = match (&new.imap_url, &new.imap_user, &new.imap_password) {
            (Some(u), Some(n), Some(p)) => Some((u.as_str(), n.as_str(), p.as_str())),
            (None, None, None) => None,
            _ => {
                return Err(ServiceError::BadRequest(
                    "an IMAP mailbox needs its URL, user and password".into(),
                ));
            }
        };
        let cat = self.archive.catalog()?;
        cat.add_mailbox(&new.address, &repo, imap)?;
        crate::audit::note(
            &cat,
            caller,
            action::MAILBOX_ADD,
            json!({ "mailbox": new.address, "repository": repo, "imap_url": new.imap_url }),
        )?;
        Ok(mailbox_view(cat.mailbox(&new.address)?))
    }

    pub fn mailboxes(&self, caller: &Caller) -> Result<Vec<api::Mailbox>> {
        let cat = self.archive.catalog()?;
        let visible = cat.searchable_by(&caller.user)?;
        Ok(cat
            .mailboxes()?
            .into_iter()
            .filter(|m| visible.contains(&m.address))
            .map(mailbox_view)
            .collect())
    }

    /// Refuses with 403 unless `caller` may search `address`.
    pub fn require_search(&self, caller: &Caller, address: &str) -> Result<()> {
        if self.archive.catalog()?.may_search(&caller.user, address)? {
            Ok(())
        } else {
            Err(not_searchable(caller, address))
        }
    }

    pub fn mailbox(&self, caller: &Caller, address: &str) -> Result<api::Mailbox> {
        self.require_search(caller, address)?;
        Ok(mailbox_view(self.archive.catalog()?.mailbox(address)?))
    }

    pub fn set_repository(
        &self,
        caller: &Caller,
        address: &str,
        repo: &str,
    ) -> Result<api::Mailbox> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        cat.set_mailbox_repository(address, repo)?;
        crate::audit::note(
            &cat,
            caller,
            action::MAILBOX_REPOSITORY,
            json!({ "mailbox": address, "repository": repo }),
        )?;
        Ok(mailbox_view(cat.mailbox(address)?))
    }

    pub fn grant(&self, caller: &Caller, address: &str, user: &str) -> Result<api::Mailbox> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        match user.strip_prefix(satchel_archive::catalog::GROUP_PREFIX) {
            Some(group) => cat.grant_group(address, &check_group(group)?)?,
            None => cat.grant(address, user)?,
        }
        crate::audit::note(
            &cat,
            caller,
            action::GRANT,
            json!({ "mailbox": address, "user": user }),
        )?;
        Ok(mailbox_view(cat.mailbox(address)?))
    }

    /// Withdraws USER's right to search ADDRESS; laptops drop their copy at the
    /// next sync because the repository is no longer offered to them.
    pub fn revoke(&self, caller: &Caller, address: &str, user: &str) -> Result<api::Mailbox> {
        caller.require_admin()?;
        let cat = self.archive.catalog()?;
        cat.require_mailbox(address)?;
        match user.strip_prefix(satchel_archive::catalog::GROUP_PREFIX) {
            Some(group) => cat.revoke_group(address, group)?,
            None => cat.revoke(address, user)?,
        }
        crate::audit::note(
            &cat,
            caller,
            action::REVOKE,
            json!({ "mailbox": address, "user": user }),
        )?;
        Ok(mailbox_view(cat.mailbox(address)?))
    }

    /// Checks, before an upload is read, that `caller` may import and that
    /// the mailbox exists: a refused upload is refused before its body is read.
    pub fn require_import(&self, caller: &Caller, address: &str) -> Result<()> {
        caller.require_admin()?;
        self.archive.catalog()?.require_mailbox(address)?;
        Ok(())
    }

    pub fn import(
        &self,
        caller: &Caller,
        address: &str,
        items: Vec<BatchItem>,
    ) -> Result<api::ImportReport> {
        caller.require_admin()?;
        let started = std::time::Instant::now();
        let sizes: Vec<u64> = items.iter().map(|i| i.raw.len() as u64).collect();
        let outcomes = self.archive.add_messages(address, items)?;
        let new = outcomes
            .iter()
            .zip(&sizes)
            .filter(|(o, _)| o.status == satchel_archive::ItemStatus::Imported);
        let (count, bytes) = new.fold((0, 0), |(n, b), (_, size)| (n + 1, b + size));
        crate::metrics::global().imported(count, bytes, started.elapsed());
        self.audit(
            caller,
            action::IMPORT,
            json!({ "mailbox": address, "messages": outcomes.len() }),
        )?;
        let results = outcomes
            .into_iter()
            .map(|o| api::ImportResult {
                origin: o.origin,
                id: o.id,
                status: match o.status {
                    satchel_archive::ItemStatus::Imported => api::ImportStatus::Imported,
                    satchel_archive::ItemStatus::Duplicate => api::ImportStatus::Duplicate,
                    satchel_archive::ItemStatus::Failed => api::ImportStatus::Failed,
                },
                reason: o.reason,
            })
            .collect();
        Ok(api::ImportReport { results })
    }

    /// A message of a mailbox the caller may search. The id is parsed by the
    /// caller ([`ServiceError`] has the 400 for text that is not an id).
    pub fn message(&self, caller: &Caller, address: &str, id: &MessageId) -> Result<Vec<u8>> {
        self.read_message(caller, address, id, crate::audit::Read::Api)
    }

    /// [`Service::message`], recorded as read the way `read` says.
    pub fn read_message(
        &self,
        caller: &Caller,
        address: &str,
        id: &MessageId,
        read: crate::audit::Read,
    ) -> Result<Vec<u8>> {
        self.require_search(caller, address)?;
        let raw = self.archive.get(address, id)?;
        self.audit(caller, action::MESSAGE_READ, read.target(address, id))?;
        Ok(raw)
    }

    pub fn search(
        &self,
        caller: &Caller,
        query: &str,
        mailbox: Option<&str>,
        limit: usize,
    ) -> Result<api::SearchResults> {
        if let Some(mb) = mailbox {
            self.require_search(caller, mb)?;
        }
        let req = SearchRequest {
            query: query.to_string(),
            mailbox: mailbox.map(str::to_string),
            limit,
        };
        let hits = self
            .archive
            .search(&caller.user, &req)
            .map_err(|e| match e {
                // Only a mailbox that does not exist is outside an administrator's.
                ArchiveError::NotSearchable(mb) if caller.user.admin => {
                    ServiceError::NotFound(format!("no such mailbox: {mb}"))
                }
                ArchiveError::NotSearchable(mb) => not_searchable(caller, &mb),
                other => other.into(),
            })?
            .into_iter()
            .map(|h| api::SearchHit {
                id: h.id,
                mailboxes: h.mailboxes,
                date: h.date,
                from: h.from,
                subject: h.subject,
                snippet: h.snippet,
                size: h.size,
            })
            .collect();
        self.audit_search(caller, query, mailbox)?;
        Ok(api::SearchResults {
            query: query.to_string(),
            hits,
        })
    }
}

/// The one refusal for a mailbox the caller may not search, the same whether
/// or not it exists, so that it cannot be used to probe for mailboxes.
fn not_searchable(caller: &Caller, address: &str) -> ServiceError {
    ServiceError::Forbidden(format!(
        "user {} may not search mailbox {address}",
        caller.user.name
    ))
}

fn mailbox_view(m: MailboxInfo) -> api::Mailbox {
    api::Mailbox {
        address: m.address,
        repo: m.repo,
        imap_url: m.imap_url,
        imap_user: m.imap_user,
        messages: m.messages,
        bytes: m.bytes,
        grants: m.grants,
    }
}

fn token_view(t: satchel_archive::TokenInfo) -> api::TokenListing {
    api::TokenListing {
        id: t.id,
        user: t.user,
        label: t.label,
        created: satchel_offline::rfc3339(t.created),
    }
}

/// The DN of a group grant (`group:DN`), refused when it cannot be a DN.
fn check_group(dn: &str) -> Result<String> {
    let dn = dn.trim();
    if dn.is_empty() || !dn.contains('=') {
        return Err(ServiceError::BadRequest(format!(
            "{dn:?} is not a group: name it by its DN, group:cn=NAME,ou=groups,dc=example,dc=com"
        )));
    }
    Ok(dn.to_string())
}

fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(ServiceError::BadRequest(
            "a password needs at least 8 characters".into(),
        ));
    }
    Ok(())
}

pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::BadRequest(format!(
            "{what} {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// A local-disk repository: its folder, absolute, created if missing.
fn disk_repository(new: &api::NewRepository) -> Result<satchel_archive::RepositoryInfo> {
    if new.endpoint.is_some() {
        return Err(ServiceError::BadRequest(
            "an endpoint belongs to an S3 repository (--s3), not a disk folder".into(),
        ));
    }
    let path = PathBuf::from(&new.disk);
    if !path.is_absolute() {
        return Err(ServiceError::BadRequest(format!(
            "repository folder must be an absolute path, not {}",
            new.disk
        )));
    }
    std::fs::create_dir_all(&path).map_err(|e| {
        ServiceError::BadRequest(format!("cannot create folder {}: {e}", path.display()))
    })?;
    Ok(satchel_archive::RepositoryInfo {
        name: new.name.clone(),
        kind: "disk".into(),
        path,
        endpoint: None,
        cold: new.cold,
    })
}

/// An S3-compatible repository: `s3://BUCKET[/PREFIX]` and an optional
/// `http(s)://` endpoint, checked before anything is recorded.
fn s3_repository(new: &api::NewRepository, url: &str) -> Result<satchel_archive::RepositoryInfo> {
    if !new.disk.is_empty() {
        return Err(ServiceError::BadRequest(
            "a repository is either a disk folder or an S3 URL, not both".into(),
        ));
    }
    satchel_archive::repository::S3Location::parse(url)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if let Some(endpoint) = &new.endpoint {
        satchel_archive::repository::check_endpoint(endpoint)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    }
    Ok(satchel_archive::RepositoryInfo {
        name: new.name.clone(),
        kind: "s3".into(),
        path: PathBuf::from(url),
        endpoint: new.endpoint.clone(),
        cold: new.cold,
    })
}
