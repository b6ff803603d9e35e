//! Secrets the catalog must keep but never in clear (IMAP passwords), sealed
//! with ChaCha20-Poly1305 (ring) under a 32-byte key that lives outside the
//! data folder: a copy of the data folder (a backup, a disk sent for repair)
//! then reveals no password.
//!
//! Sealed layout: one version byte (1), the 12-byte random nonce, then the
//! ciphertext and its 16-byte tag. The associated data names what the secret
//! belongs to (the mailbox), so a sealed value copied onto another row does
//! not open.

use crate::error::{ArchiveError, Result};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Key length in bytes (written as 64 hex digits).
pub const KEY_LEN: usize = 32;
const SEALED_VERSION: u8 = 1;

/// The key that seals the catalog's secrets.
pub struct SecretKey(LessSafeKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn invalid(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid {
        what: "secret key",
        why: why.into(),
    }
}

impl SecretKey {
    /// A key from its 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| invalid("it is not hexadecimal (64 hex digits expected)"))?;
        if bytes.len() != KEY_LEN {
            return Err(invalid(format!(
                "it has {} bytes, {KEY_LEN} expected (64 hex digits)",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| invalid("rejected"))?;
        Ok(SecretKey(LessSafeKey::new(key)))
    }

    /// Loads the key from `file`, creating the file with a fresh random key
    /// (mode 0600) if there is none. Returns the key and whether it was created.
    pub fn load_or_create(file: &Path) -> Result<(Self, bool)> {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let key = SecretKey::from_hex(&text)
                    .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
                Ok((key, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(file),
            Err(source) => Err(ArchiveError::Io {
                path: file.into(),
                source,
            }),
        }
    }

    /// Seals `plain` for `owner` (what it belongs to: the mailbox address).
    pub fn seal(&self, owner: &str, plain: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| invalid("the system random generator failed"))?;
        let mut in_out = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| invalid("sealing failed"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens a value sealed for `owner`; fails (never returns garbage) under
    /// another key, for another owner, or when the bytes were changed.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<String> {
        let refused = || ArchiveError::Invalid {
            what: "stored secret",
            why: format!(
                "the secret of {owner} does not open with this key \
                 (was the key file replaced, or SATCHEL_KEY changed?)"
            ),
        };
        let (version, rest) = sealed.split_first().ok_or_else(refused)?;
        if *version != SEALED_VERSION || rest.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut in_out = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut in_out)
            .map_err(|_| refused())?;
        String::from_utf8(plain.to_vec()).map_err(|_| refused())
    }
}

/// Writes a fresh key to `file` (never replacing one: two services starting
/// at once both end up with the first one's key).
fn create_key_file(file: &Path) -> Result<(SecretKey, bool)> {
    let io = |source| ArchiveError::Io {
        path: file.into(),
        source,
    };
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| invalid("the system random generator failed"))?;
    let text = hex::encode(bytes);
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = match options.open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return SecretKey::load_or_create(file);
        }
        Err(e) => return Err(io(e)),
    };
    f.write_all(format!("{text}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io)?;
    Ok((SecretKey::from_hex(&text)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_hex(&hex::encode([byte; KEY_LEN])).expect("key")
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_owner() {
        let sealed = key(1).seal("a@example.com", "hunter2").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            key(1).open("a@example.com", &sealed).expect("open"),
            "hunter2"
        );
        assert!(key(2).open("a@example.com", &sealed).is_err());
        assert!(key(1).open("b@example.com", &sealed).is_err());
        let mut changed = sealed.clone();
        *changed.last_mut().expect("byte") ^= 1;
        assert!(key(1).open("a@example.com", &changed).is_err());
        assert!(key(1).open("a@example.com", &[]).is_err());
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let short = SecretKey::from_hex("abcd").expect_err("short");
        assert!(short.to_string().contains("64 hex digits"), "{short}");
        assert!(SecretKey::from_hex("zz").is_err());
    }
}
