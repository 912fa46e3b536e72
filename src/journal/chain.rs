//! The hash function that links records: plain SHA-256, or HMAC-SHA-256 when a key is given.
//!
//! Plain SHA-256 makes accidental or careless edits evident; anyone can recompute it, so it does
//! not stop a deliberate forger. A keyed chain does: without the key nobody can produce hashes
//! that verify. The key never appears in the journal; the first record names the algorithm only.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The environment variable the CLI reads the chain key from.
pub const KEY_ENV: &str = "FIREBREAK_JOURNAL_KEY";

/// `prev` of the first record: there is no previous line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Length of a hex digest, for checking records without trusting them.
pub const HEX_LEN: usize = 64;

/// The secret that keys the chain. Its `Debug` hides the bytes so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainKey(Vec<u8>);

impl ChainKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ChainKey(bytes.into())
    }

    /// The key from [`KEY_ENV`]; an unset or empty variable means no key (plain SHA-256).
    pub fn from_env() -> Option<Self> {
        std::env::var_os(KEY_ENV)
            .filter(|v| !v.is_empty())
            .map(|v| ChainKey(v.into_encoded_bytes()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for ChainKey {
    fn from(bytes: Vec<u8>) -> Self {
        ChainKey(bytes)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// The name the caller records in the first record's `chain` field.
pub fn algorithm(key: Option<&[u8]>) -> &'static str {
    match key {
        Some(_) => "hmac-sha256",
        None => "sha256",
    }
}

/// Lowercase hex of H(`bytes`).
pub fn digest(key: Option<&[u8]>, bytes: &[u8]) -> String {
    match key {
        None => hex::encode(Sha256::digest(bytes)),
        Some(key) => {
            // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .expect("HMAC-SHA-256 accepts keys of any length");
            mac.update(bytes);
            hex::encode(mac.finalize().into_bytes())
        }
    }
}

/// Whether `s` looks like a digest this module produces (64 lowercase hex digits).
pub fn is_digest(s: &str) -> bool {
    s.len() == HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            digest(None, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            digest(Some(b"Jefe"), b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn key_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ChainKey::new("s3cret")),
            "ChainKey(<redacted>)"
        );
    }

    #[test]
    fn genesis_is_a_digest() {
        assert!(is_digest(GENESIS));
        assert!(!is_digest("ABC"));
    }
}
