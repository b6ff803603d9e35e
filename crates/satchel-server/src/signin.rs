//! Who is calling, for the API, the console and laptop setup alike.
//!
//! A password sign-in passes the throttle ([`crate::throttle`]) before
//! anything is hashed, and its argon2 hash runs in one of a few slots
//! ([`HashSlots`]): a flood of guesses waits for a slot instead of taking
//! every core and ~19 MiB each, so requests that need no hash (API tokens,
//! console sessions, passwords already verified) keep their speed.
//!
//! With a directory configured ([`crate::directory`]), a name that is not a
//! local user's is signed in by the directory, through the same throttle and
//! slots: a local user of the same name wins, and local users sign in as
//! before while the directory is down. A directory user gets a row in the
//! users table at first sign-in (or first grant), with a password hash
//! ([`auth::DIRECTORY_HASH`]) that no password matches, so that API tokens,
//! console sessions and grants name them as they name local users.

use crate::auth::{self, Credentials};
use crate::directory::{Directory, DirectoryUser};
use crate::error::ServiceError;
use crate::http::blocking;
use crate::service::{Caller, Service};
use crate::throttle::{Attempt, LockedOut, MAX_FAILURES};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Half the cores, at least one: the other half keeps serving.
pub fn default_hash_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

/// A bound on password hashes running at once.
pub struct HashSlots {
    slots: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    limit: usize,
}

impl HashSlots {
    pub fn new(n: usize) -> Self {
        let limit = n.max(1);
        HashSlots {
            slots: Arc::new(Semaphore::new(limit)),
            running: Arc::default(),
            limit,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Verifies `password` against `stored` (a dummy hash for an unknown
    /// user, so that the refusal costs the same) once a slot is free and the
    /// attempt is still admitted. Returns the verdict and how many hashes ran
    /// at that moment, this one included. The slot is held by the hashing
    /// thread itself, so a caller that goes away cannot free it early.
    async fn verify(
        &self,
        attempt: &Attempt<'_>,
        password: String,
        stored: Option<String>,
    ) -> Result<(bool, usize)> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Internal(format!("password check slots: {e}")))?;
        attempt.recheck().map_err(locked_out)?;
        let running = self.running.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            let stored = stored.as_deref().unwrap_or_else(|| auth::dummy_hash());
            let ok = auth::verify_password(&password, stored);
            running.fetch_sub(1, Ordering::SeqCst);
            (ok, now)
        })
        .await?;
        Ok(verdict)
    }
}

impl HashSlots {
    /// Runs `work` (a directory bind) in a slot once the attempt is still
    /// admitted: a flood of guesses at directory users waits here as it
    /// would for hashes, and never floods the directory.
    async fn run<T>(&self, attempt: &Attempt<'_>, work: impl Future<Output = T>) -> Result<T> {
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(format!("password check slots: {e}")))?;
        attempt.recheck().map_err(locked_out)?;
        Ok(work.await)
    }
}

fn locked_out(l: LockedOut) -> ServiceError {
    ServiceError::TooManyRequests {
        message: format!(
            "too many failed sign-ins from this address or for this user: try again in {} s",
            l.retry_after
        ),
        retry_after: l.retry_after,
    }
}

/// The caller behind `creds`, coming from `client` through `via` ("api" or
/// "console", as the audit trail records a password sign-in).
pub async fn authenticate(
    service: &Arc<Service>,
    creds: Option<Credentials>,
    client: IpAddr,
    via: &'static str,
) -> Result<Caller> {
    match creds {
        None => Err(ServiceError::Unauthorized(
            "credentials required (user and password, or an API token)".into(),
        )),
        // 256-bit tokens cannot be guessed and cost one SHA-256: not throttled.
        Some(Credentials::Bearer(token)) => {
            let caller = blocking(service, move |s| s.authenticate_token(&token, client)).await?;
            with_directory(service, caller).await
        }
        Some(Credentials::Basic { user, password }) => {
            sign_in(service, user, password, client, via).await
        }
    }
}

async fn sign_in(
    service: &Arc<Service>,
    user: String,
    password: String,
    client: IpAddr,
    via: &'static str,
) -> Result<Caller> {
    let attempt = service.throttle.begin(&user, client).map_err(|l| {
        tracing::info!(user = ?user, %client, retry_after = l.retry_after, "sign-in refused: locked out");
        locked_out(l)
    })?;
    let name = user.clone();
    let info = blocking(service, move |s| Ok(s.archive().catalog()?.user(&name)?)).await?;
    if let Some(directory) = &service.directory
        && !info.as_ref().is_some_and(is_local)
    {
        return directory_sign_in(service, directory, attempt, user, password, client, via).await;
    }
    if let Some(info) = &info
        && service
            .verified
            .known(&user, &password, &info.password_hash)
    {
        attempt.succeeded();
        return signed_in(service, info.clone(), client, via).await;
    }
    let stored = info.as_ref().map(|i| i.password_hash.clone());
    let (ok, running) = service
        .hashing
        .verify(&attempt, password.clone(), stored)
        .await?;
    match info {
        Some(info) if ok => {
            service
                .verified
                .remember(&user, &password, &info.password_hash);
            attempt.succeeded();
            signed_in(service, info, client, via).await
        }
        known => {
            log_failure(attempt, &user, client, running);
            let actor = known.map_or_else(|| crate::audit::UNKNOWN_ACTOR.to_string(), |i| i.name);
            blocking(service, move |s| s.audit_signin(&actor, client, false, via)).await?;
            Err(ServiceError::Unauthorized(
                "wrong user name or password".into(),
            ))
        }
    }
}

/// True for a user who signs in with a password kept here (not the
/// directory's).
fn is_local(user: &satchel_archive::UserInfo) -> bool {
    user.password_hash != auth::DIRECTORY_HASH
}

/// Signs `user` in with the directory. A directory that does not answer
/// is a 503 naming it, not counted as a failure: the password was not
/// checked.
async fn directory_sign_in(
    service: &Arc<Service>,
    directory: &Directory,
    attempt: Attempt<'_>,
    user: String,
    password: String,
    client: IpAddr,
    via: &'static str,
) -> Result<Caller> {
    let via = directory_via(via);
    let groups = blocking(service, |s| Ok(s.archive().catalog()?.granted_groups()?)).await?;
    let found = match directory.verified(&user, &password, &groups) {
        Some(known) => Ok(Some(known)),
        None => {
            let work = directory.authenticate(&user, &password, &groups);
            service.hashing.run(&attempt, work).await?
        }
    };
    match found? {
        Some(found) => {
            attempt.succeeded();
            let info = provision(service, &user).await?;
            signed_in(service, directory_user(info, found), client, via).await
        }
        None => {
            log_failure(attempt, &user, client, 0);
            let actor = user.clone();
            blocking(service, move |s| s.audit_signin(&actor, client, false, via)).await?;
            Err(ServiceError::Unauthorized(
                "wrong user name or password".into(),
            ))
        }
    }
}

/// How the audit trail records a directory sign-in: `api+ldap`,
/// `console+ldap`.
fn directory_via(via: &'static str) -> &'static str {
    match via {
        "console" => "console+ldap",
        _ => "api+ldap",
    }
}

/// The users-table row of the directory user `name`, made at their first
/// sign-in or grant.
async fn provision(service: &Arc<Service>, name: &str) -> Result<satchel_archive::UserInfo> {
    let name = name.to_string();
    blocking(service, move |s| {
        let cat = s.archive().catalog()?;
        if let Some(info) = cat.user(&name)? {
            return Ok(info);
        }
        match cat.add_user(&name, auth::DIRECTORY_HASH, false) {
            // Another request made it first.
            Ok(()) | Err(satchel_archive::ArchiveError::Exists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        cat.user(&name)?
            .ok_or_else(|| ServiceError::Internal(format!("user {name} vanished")))
    })
    .await
}

/// `info` as the directory describes the user now.
fn directory_user(
    mut info: satchel_archive::UserInfo,
    found: DirectoryUser,
) -> satchel_archive::UserInfo {
    info.admin = found.admin;
    info.groups = found.groups;
    info
}

/// A directory user's caller (API token, console session) with what the
/// directory says now (cached briefly): administrator or not, and groups.
/// A local user's passes unchanged. Someone the directory no longer knows,
/// or a directory user when no directory is configured, is signed out.
pub async fn with_directory(service: &Arc<Service>, mut caller: Caller) -> Result<Caller> {
    if is_local(&caller.user) {
        return Ok(caller);
    }
    let name = caller.user.name.clone();
    let Some(directory) = &service.directory else {
        return Err(ServiceError::Unauthorized(format!(
            "user {name} signs in with a directory, and none is configured"
        )));
    };
    let groups = blocking(service, |s| Ok(s.archive().catalog()?.granted_groups()?)).await?;
    match directory.lookup(&name, &groups).await? {
        Some(found) => {
            caller.user = directory_user(caller.user, found);
            Ok(caller)
        }
        None => Err(ServiceError::Unauthorized(format!(
            "user {name} is no longer in the directory"
        ))),
    }
}

/// Before a grant to `name`: a directory user not seen yet gets their row,
/// so that the grant can name them. Local users, groups (`group:DN`) and
/// names the directory does not know pass unchanged (the grant then says
/// whether the user exists).
pub async fn provision_grantee(service: &Arc<Service>, name: &str) -> Result<()> {
    let Some(directory) = &service.directory else {
        return Ok(());
    };
    if name.starts_with(satchel_archive::catalog::GROUP_PREFIX) {
        return Ok(());
    }
    let wanted = name.to_string();
    let known = blocking(service, move |s| {
        Ok(s.archive().catalog()?.user(&wanted)?)
    })
    .await?;
    if known.is_none() && directory.lookup(name, &[]).await?.is_some() {
        provision(service, name).await?;
    }
    Ok(())
}

/// The caller of a password sign-in, once it is in the audit trail.
async fn signed_in(
    service: &Arc<Service>,
    user: satchel_archive::UserInfo,
    client: IpAddr,
    via: &'static str,
) -> Result<Caller> {
    let name = user.name.clone();
    blocking(service, move |s| s.audit_signin(&name, client, true, via)).await?;
    Ok(Caller {
        user,
        by_password: true,
        source: client,
    })
}

fn log_failure(attempt: Attempt<'_>, user: &str, client: IpAddr, running: usize) {
    let out = attempt.failed();
    crate::metrics::global().signin_failed(out.address_locked.is_some(), out.user_locked.is_some());
    tracing::warn!(
        user = ?user,
        %client,
        failures_from_client = out.address_failures,
        failures_for_user = out.user_failures,
        concurrent_hashes = running,
        "password sign-in failed"
    );
    if let Some(lock) = out.address_locked {
        tracing::warn!(
            %client,
            seconds = lock.as_secs(),
            "sign-in lockout: client address locked after {MAX_FAILURES} failures in a row"
        );
    }
    if let Some(lock) = out.user_locked {
        tracing::warn!(
            user = ?user,
            seconds = lock.as_secs(),
            "sign-in lockout: user locked after {MAX_FAILURES} failures in a row \
             (except from addresses it signed in from before)"
        );
    }
}
