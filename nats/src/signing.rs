//! Message authentication: with a shared key, the operator signs every change event and
//! snapshot (HMAC-SHA256), and the pods refuse what is unsigned or signed wrongly. NATS
//! permissions decide who may publish at all; the key makes sure that whoever can publish
//! to the subjects still cannot make the pods serve a zone the operator did not publish.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The event header, and the snapshot object's metadata key, that carry the signature.
pub const SIGNATURE: &str = "Zonefleet-Signature";
const SCHEME: &str = "hmac-sha256=";

/// A shared signing key.
#[derive(Clone)]
pub struct MessageKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the message key {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error("the message key must hold at least 32 bytes")]
    TooShort,
}

/// Why a message is not authentic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No signature.
    #[error("the message is not signed")]
    Missing,
    /// A signature that does not verify.
    #[error("the message's signature does not verify")]
    Invalid,
}

impl MessageKey {
    /// A key from its bytes (at least 32).
    pub fn new(key: Vec<u8>) -> Result<Self, KeyError> {
        if key.len() < 32 {
            return Err(KeyError::TooShort);
        }
        Ok(Self { key })
    }

    /// Reads a key file; surrounding whitespace is not part of the key.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        Self::new(text.trim().as_bytes().to_vec())
    }

    fn mac(&self, context: &str, payload: &[u8]) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC; `new` checked the minimum.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(
            &u32::try_from(context.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        mac.update(context.as_bytes());
        mac.update(payload);
        mac
    }

    /// A 32-byte key for another purpose, derived from this one (HMAC-SHA256 of `context`),
    /// so one configured secret serves signing and sealing without reuse.
    pub fn derive(&self, context: &str) -> [u8; 32] {
        self.mac(context, b"derive").finalize().into_bytes().into()
    }

    /// The signature of `payload` sent in `context` (the subject of an event, or the
    /// object name of a snapshot), as the header value.
    pub fn sign(&self, context: &str, payload: &[u8]) -> String {
        let tag = self.mac(context, payload).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{SCHEME}{hex}")
    }

    /// Checks a signature, in constant time.
    pub fn verify(
        &self,
        context: &str,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        let hex = signature
            .strip_prefix(SCHEME)
            .ok_or(SignatureError::Invalid)?;
        let tag = decode_hex(hex).ok_or(SignatureError::Invalid)?;
        self.mac(context, payload)
            .verify_slice(&tag)
            .map_err(|_| SignatureError::Invalid)
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MessageKey {
        MessageKey::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn signatures_bind_key_context_and_payload() {
        let signature = key(1).sign("zonefleet.events.example~com", b"payload");
        assert!(signature.starts_with("hmac-sha256="));
        let ok = key(1).verify("zonefleet.events.example~com", b"payload", Some(&signature));
        assert_eq!(ok, Ok(()));
        for (k, context, payload) in [
            (
                key(2),
                "zonefleet.events.example~com",
                b"payload".as_slice(),
            ),
            (key(1), "zonefleet.events.other~com", b"payload".as_slice()),
            (
                key(1),
                "zonefleet.events.example~com",
                b"payloaD".as_slice(),
            ),
        ] {
            assert_eq!(
                k.verify(context, payload, Some(&signature)),
                Err(SignatureError::Invalid)
            );
        }
    }

    #[test]
    fn missing_or_garbled_signatures_are_refused() {
        let k = key(1);
        assert_eq!(k.verify("s", b"p", None), Err(SignatureError::Missing));
        for garbled in [
            "",
            "hmac-sha256=",
            "hmac-sha256=zz",
            "sha1=00",
            "hmac-sha256=abc",
        ] {
            assert_eq!(
                k.verify("s", b"p", Some(garbled)),
                Err(SignatureError::Invalid),
                "{garbled:?}"
            );
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(
            MessageKey::new(vec![0; 31]),
            Err(KeyError::TooShort)
        ));
    }
}
