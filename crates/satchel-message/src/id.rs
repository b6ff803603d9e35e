//! A message's identity: the SHA-256 of its raw RFC 5322 bytes.
//!
//! One type for every crate: the archive's catalog stores it as 64 lowercase
//! hex digits (TEXT), an offline segment as its 32 bytes, JSON and URLs carry the
//! hex. Identical bytes are one message, however many mailboxes hold it.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 of a message's raw bytes. Any 32 bytes are a valid id, so the
/// digest is public; the text form is always 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

/// Text that is not a message id: not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message id {0:?}: expected 64 hex digits")]
pub struct InvalidMessageId(pub String);

impl MessageId {
    /// The id of `raw`: its SHA-256.
    pub fn of(raw: &[u8]) -> Self {
        MessageId(Sha256::digest(raw).into())
    }

    /// Parses the canonical text form only: 64 *lowercase* hex digits, the form
    /// Satchel itself writes (catalog rows, manifests), so one message has exactly
    /// one stored text. Text a person or a link gives goes through [`FromStr`],
    /// which also accepts upper case.
    pub fn from_hex(text: &str) -> Result<Self, InvalidMessageId> {
        if !is_lower_hex_64(text) {
            return Err(InvalidMessageId(text.to_string()));
        }
        text.parse()
    }

    /// The 64 lowercase hex digits (the same as `to_string()`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Exactly 64 characters of `[0-9a-f]`: the canonical text of a message id (and
/// of every SHA-256 name Satchel writes).
pub fn is_lower_hex_64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FromStr for MessageId {
    type Err = InvalidMessageId;

    /// 64 hex digits, either case; nothing else (no path, no wildcard, no
    /// prefix), so an id taken from a URL can never be anything but an id.
    fn from_str(text: &str) -> Result<Self, InvalidMessageId> {
        let mut out = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text, &mut out).is_err() {
            return Err(InvalidMessageId(text.to_string()));
        }
        Ok(MessageId(out))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Catalog columns hold the id as its canonical hex TEXT (unchanged on disk).
#[cfg(feature = "rusqlite")]
impl rusqlite::ToSql for MessageId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.to_hex()))
    }
}

#[cfg(feature = "rusqlite")]
impl rusqlite::types::FromSql for MessageId {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        MessageId::from_hex(text).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn ids_are_sha256_hex() {
        let id = MessageId::of(b"abc");
        assert_eq!(id.to_string(), ABC);
        assert_eq!(id.to_hex(), ABC);
        assert_eq!(format!("{id:?}"), format!("MessageId({ABC})"));
        assert_eq!(MessageId::from_hex(ABC), Ok(id));
        assert_eq!(ABC.parse(), Ok(id));
    }

    #[test]
    fn upper_case_parses_but_is_not_canonical() {
        let id = MessageId::of(b"abc");
        assert_eq!(ABC.to_uppercase().parse(), Ok(id));
        assert!(MessageId::from_hex(&ABC.to_uppercase()).is_err());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "../etc/passwd",
            &ABC[..63],
            &format!("{ABC}0"),
            &format!("{}g", &ABC[..63]),
            &format!("{}/", &ABC[..63]),
            &format!(" {}", &ABC[..63]),
            "*",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?}");
            assert!(MessageId::from_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_the_hex_string() {
        let id = MessageId::of(b"abc");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<MessageId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<MessageId>("42").is_err());
    }

    proptest! {
        #[test]
        fn text_round_trips(bytes in any::<[u8; 32]>()) {
            let id = MessageId(bytes);
            let text = id.to_string();
            prop_assert!(is_lower_hex_64(&text));
            prop_assert_eq!(MessageId::from_hex(&text), Ok(id));
            prop_assert_eq!(text.to_uppercase().parse::<MessageId>(), Ok(id));
        }
    }
}
