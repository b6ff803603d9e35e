//! Failed password sign-ins, counted per client address and per user name.
//!
//! After [`MAX_FAILURES`] failures in a row a client address is locked out: its
//! password sign-ins are answered 429 with `Retry-After` before any password is
//! hashed. A user name with as many failures in a row, from more than one
//! address, is locked the same way, except from the addresses it signed in
//! from before: a guesser spread over many addresses is slowed down, while the
//! real user, at home, keeps working. A guesser at one address is stopped by
//! the address lock alone and locks the user out of nowhere.
//!
//! When a lock expires one more guess is allowed; its failure locks again for
//! twice as long (up to [`MAX_LOCK`]). A success from an address clears that
//! address and that user. An admitted attempt is checked again right before
//! its hash ([`Attempt::recheck`]): hashes run a few at a time, so of a burst
//! of concurrent guesses only the first [`MAX_FAILURES`] or so are hashed.
//!
//! Hand-written rather than `governor`: a rate limiter spends its budget on
//! every attempt, successful or not, and cannot be cleared by a success or
//! consulted without spending; this needs "failures in a row".

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in a row that lock an address or a user name.
pub const MAX_FAILURES: u32 = 10;
/// The first lock; each further one doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(60);
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Records idle this long (and not locked) are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Records kept at most per kind; past this, idle unlocked ones go first.
const MAX_RECORDS: usize = 100_000;
/// Addresses remembered per user as "signed in from here before".
const TRUSTED_PER_USER: usize = 8;

/// The failures of one address or one user name.
#[derive(Default)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
    last: Option<Instant>,
}

impl Record {
    /// Seconds until this record accepts another attempt, if it does not now.
    fn wait(&self, now: Instant) -> Option<u64> {
        if let Some(until) = self.locked_until
            && until > now
        {
            return Some(ceil_secs(until - now));
        }
        None
    }

    /// True when the last failure is so old that counting starts afresh.
    fn stale(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|l| now.duration_since(l) > FORGET_AFTER)
    }

    /// Counts a failure; returns the new lock's length if this one locks
    /// (only when `may_lock`). After an hour without failures the count and
    /// the lock length start afresh.
    fn fail(&mut self, now: Instant, may_lock: bool) -> Option<Duration> {
        if self.stale(now) {
            *self = Record::default();
        }
        self.failures = self.failures.saturating_add(1);
        self.last = Some(now);
        if self.failures < MAX_FAILURES || !may_lock {
            return None;
        }
        let lock = FIRST_LOCK
            .saturating_mul(1u32 << self.lockouts.min(16))
            .min(MAX_LOCK);
        self.locked_until = Some(now + lock);
        self.lockouts = self.lockouts.saturating_add(1);
        // After the lock, one more guess: its failure locks again.
        self.failures = MAX_FAILURES - 1;
        Some(lock)
    }

    /// Failures in a row, as a person would count them (a lock resets the
    /// counter to one below the limit, for the guess allowed after it).
    fn in_a_row(&self) -> u32 {
        if self.lockouts > 0 && self.failures == MAX_FAILURES - 1 {
            MAX_FAILURES
        } else {
            self.failures
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.locked_until.is_none_or(|u| u <= now)
            && self
                .last
                .is_none_or(|l| now.duration_since(l) > FORGET_AFTER)
    }
}

#[derive(Default)]
struct UserRecord {
    record: Record,
    trusted: Vec<IpAddr>,
    /// Addresses the current failures came from (two are enough to know the
    /// guessing is spread).
    guessers: Vec<IpAddr>,
}

#[derive(Default)]
struct State {
    addresses: HashMap<IpAddr, Record>,
    users: HashMap<String, UserRecord>,
}

/// The sign-in throttle of one service.
#[derive(Default)]
pub struct Throttle {
    state: Mutex<State>,
}

/// A refused attempt: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    pub retry_after: u64,
}

/// What a failure did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Failures in a row of the address, this one included.
    pub address_failures: u32,
    /// Failures in a row of the user name, this one included.
    pub user_failures: u32,
    /// Set when this failure locked the address.
    pub address_locked: Option<Duration>,
    /// Set when this failure locked the user name.
    pub user_locked: Option<Duration>,
}

/// An admitted attempt; dropping it without an outcome (a client that went
/// away) counts nothing.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    user: String,
    address: IpAddr,
}

/// The key of a client address: IPv6 clients usually hold a whole /64, so
/// that is one address here.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a password attempt for `user` from `address`, or refuses it
    /// without anything being hashed.
    pub fn begin(&self, user: &str, address: IpAddr) -> Result<Attempt<'_>, LockedOut> {
        let address = client_key(address);
        let mut state = self.lock();
        state.prune(Instant::now());
        state.check(user, address)?;
        Ok(Attempt {
            throttle: self,
            user: user.to_string(),
            address,
        })
    }
}

impl State {
    fn check(&self, user: &str, address: IpAddr) -> Result<(), LockedOut> {
        let now = Instant::now();
        let by_address = self.addresses.get(&address).and_then(|r| r.wait(now));
        let by_user = self
            .users
            .get(user)
            .filter(|u| !u.trusted.contains(&address))
            .and_then(|u| u.record.wait(now));
        match by_address.max(by_user) {
            Some(retry_after) => Err(LockedOut { retry_after }),
            None => Ok(()),
        }
    }

    fn prune(&mut self, now: Instant) {
        if self.addresses.len() > MAX_RECORDS {
            self.addresses.retain(|_, r| !r.idle(now));
        }
        if self.users.len() > MAX_RECORDS {
            self.users
                .retain(|_, u| !u.record.idle(now) || !u.trusted.is_empty());
        }
        // Still too many: a flood of fresh keys. Keep what is locked.
        if self.addresses.len() > MAX_RECORDS {
            self.addresses
                .retain(|_, r| r.locked_until.is_some_and(|u| u > now));
        }
        if self.users.len() > MAX_RECORDS {
            self.users
                .retain(|_, u| u.record.locked_until.is_some_and(|t| t > now));
        }
    }
}

impl Attempt<'_> {
    /// Checks again, right before hashing: attempts admitted together may
    /// have locked this address or user while this one waited.
    pub fn recheck(&self) -> Result<(), LockedOut> {
        self.throttle.lock().check(&self.user, self.address)
    }

    /// The password was right: the address starts afresh, and the user
    /// trusts it from now on. The user's count starts afresh too, unless the
    /// name is locked: a guesser elsewhere must not get new guesses each time
    /// the real user signs in.
    pub fn succeeded(self) {
        let now = Instant::now();
        let mut state = self.throttle.lock();
        state.addresses.remove(&self.address);
        let user = state.users.entry(self.user.clone()).or_default();
        if user.record.wait(now).is_none() {
            user.record.failures = 0;
            user.guessers.clear();
        }
        if !user.trusted.contains(&self.address) {
            if user.trusted.len() >= TRUSTED_PER_USER {
                user.trusted.remove(0);
            }
            user.trusted.push(self.address);
        }
    }

    /// The password was wrong.
    pub fn failed(self) -> FailureOutcome {
        let now = Instant::now();
        let mut state = self.throttle.lock();
        let mut out = FailureOutcome::default();
        let address = state.addresses.entry(self.address).or_default();
        out.address_locked = address.fail(now, true);
        out.address_failures = address.in_a_row();
        let user = state.users.entry(self.user.clone()).or_default();
        if user.record.stale(now) {
            user.guessers.clear();
        }
        if user.guessers.len() < 2 && !user.guessers.contains(&self.address) {
            user.guessers.push(self.address);
        }
        let spread = user.guessers.len() >= 2;
        out.user_locked = user.record.fail(now, spread);
        out.user_failures = user.record.in_a_row();
        out
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn fail_n(t: &Throttle, user: &str, addr: &str, n: u32) {
        for _ in 0..n {
            t.begin(user, ip(addr)).expect("admitted").failed();
        }
    }

    #[test]
    fn one_guessing_address_is_locked_alone() {
        let t = Throttle::default();
        fail_n(&t, "alice", "10.0.0.1", MAX_FAILURES - 1);
        let last = t.begin("alice", ip("10.0.0.1")).expect("tenth").failed();
        assert_eq!(last.address_locked, Some(FIRST_LOCK));
        assert_eq!(last.user_locked, None, "one address locks no user");
        let refused = t
            .begin("bob", ip("10.0.0.1"))
            .err()
            .expect("address locked");
        assert!(refused.retry_after > 1 && refused.retry_after <= 60);
        t.begin("alice", ip("10.0.0.2"))
            .expect("alice elsewhere still works")
            .succeeded();
    }

    #[test]
    fn spread_guessing_locks_the_name_except_where_it_signed_in() {
        let t = Throttle::default();
        t.begin("bob", ip("10.0.0.9")).expect("home").succeeded();
        let mut last = FailureOutcome::default();
        for n in 0..MAX_FAILURES {
            last = t
                .begin("bob", ip(&format!("10.0.3.{n}")))
                .expect("one guess each")
                .failed();
        }
        assert_eq!(last.user_locked, Some(FIRST_LOCK));
        assert!(t.begin("bob", ip("10.0.4.1")).is_err(), "name locked");
        t.begin("bob", ip("10.0.0.9"))
            .expect("bob's own address still works")
            .succeeded();
        t.begin("carl", ip("10.0.4.1"))
            .expect("other users work")
            .succeeded();
    }

    #[test]
    fn attempts_admitted_together_are_refused_once_locked() {
        let t = Throttle::default();
        let mut held: Vec<_> = (0..MAX_FAILURES + 5)
            .map(|_| t.begin("carol", ip("10.0.0.3")).expect("admitted"))
            .collect();
        let late = held.split_off(MAX_FAILURES as usize);
        for a in held {
            a.recheck().expect("not locked yet");
            a.failed();
        }
        for a in late {
            assert!(a.recheck().is_err(), "locked before its hash");
        }
    }

    #[test]
    fn the_real_user_signing_in_does_not_unlock_the_name() {
        let t = Throttle::default();
        t.begin("gina", ip("10.0.0.5")).expect("home").succeeded();
        for n in 0..MAX_FAILURES {
            t.begin("gina", ip(&format!("10.0.1.{n}")))
                .expect("spread guesses")
                .failed();
        }
        t.begin("gina", ip("10.0.0.5")).expect("home").succeeded();
        assert!(t.begin("gina", ip("10.0.2.1")).is_err(), "still locked");
    }

    #[test]
    fn a_success_clears_and_locks_double() {
        let t = Throttle::default();
        fail_n(&t, "erin", "10.0.0.4", MAX_FAILURES - 1);
        t.begin("erin", ip("10.0.0.4")).expect("tenth").succeeded();
        fail_n(&t, "erin", "10.0.0.4", MAX_FAILURES - 1);
        let after = t
            .begin("erin", ip("10.0.0.4"))
            .expect("not locked")
            .failed();
        assert_eq!(after.address_failures, MAX_FAILURES);
        assert!(
            after.address_locked.is_some(),
            "counted afresh after the success"
        );
        let mut r = Record::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(r.fail(now, true), None);
        }
        assert_eq!(r.fail(now, true), Some(FIRST_LOCK));
        assert_eq!(r.fail(now, true), Some(FIRST_LOCK * 2));
        for _ in 0..10 {
            r.fail(now, true);
        }
        assert_eq!(r.fail(now, true), Some(MAX_LOCK));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }
}
