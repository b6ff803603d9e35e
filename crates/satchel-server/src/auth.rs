//! Who is calling: passwords (argon2id), API tokens, and HTTP credentials.
//!
//! Command-line users send their password with every request (HTTP Basic). An
//! argon2 verification costs tens of milliseconds by design, so a successful one is
//! remembered as a SHA-256 of (user, password) until that user's password changes;
//! a wrong password always pays the full cost.

use crate::error::ServiceError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// The stored "password hash" of a directory user: not a PHC string, so no
/// password ever verifies against it here; the directory checks theirs.
pub const DIRECTORY_HASH: &str = "!directory";

pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing a password: {e}")))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fresh secret: 32 random bytes, hex.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The credentials a request carries.
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Parses an `Authorization` value. The scheme name is case-insensitive
/// (RFC 9110 section 11.1): `basic`, `BASIC` and `Basic` are one scheme.
pub fn parse_authorization(value: &str) -> Result<Credentials, ServiceError> {
    let bad = || ServiceError::Unauthorized("malformed Authorization header".into());
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("Basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, password) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    if scheme.eq_ignore_ascii_case("Bearer") {
        return Ok(Credentials::Bearer(rest.to_string()));
    }
    Err(bad())
}

/// Remembers verified (user, password) pairs so that argon2 runs once per user.
#[derive(Default)]
pub struct VerifiedCache {
    inner: Mutex<HashMap<String, String>>,
}

impl VerifiedCache {
    fn key(user: &str, password: &str, stored_hash: &str) -> String {
        // Binding the stored hash means a password change invalidates the entry.
        let mut h = Sha256::new();
        for part in [user, password, stored_hash] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// True if this password was verified for this user and stored hash.
    pub fn known(&self, user: &str, password: &str, stored_hash: &str) -> bool {
        let key = Self::key(user, password, stored_hash);
        self.inner
            .lock()
            .is_ok_and(|map| map.get(user) == Some(&key))
    }

    /// Remembers a password that argon2 just verified.
    pub fn remember(&self, user: &str, password: &str, stored_hash: &str) {
        let key = Self::key(user, password, stored_hash);
        if let Ok(mut map) = self.inner.lock() {
            map.insert(user.to_string(), key);
        }
    }
}

/// A hash to verify against when the user does not exist, so that the refusal
/// takes as long as for a real user and a probe learns nothing from timing.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_are_case_insensitive() {
        // "alice:pw" in base64
        for value in [
            "Basic YWxpY2U6cHc=",
            "basic YWxpY2U6cHc=",
            "BASIC  YWxpY2U6cHc=",
        ] {
            match parse_authorization(value) {
                Ok(Credentials::Basic { user, password }) => {
                    assert_eq!((user.as_str(), password.as_str()), ("alice", "pw"))
                }
                _ => panic!("{value:?} is Basic"),
            }
        }
        for value in ["Bearer sat_x", "bearer sat_x", "BEARER sat_x"] {
            assert!(
                matches!(parse_authorization(value), Ok(Credentials::Bearer(t)) if t == "sat_x"),
                "{value:?} is Bearer"
            );
        }
        for value in ["Basic", "Digest abc", "Basicabc", ""] {
            assert!(parse_authorization(value).is_err(), "{value:?} refused");
        }
    }
}
