//! Who may do what with a zone beyond querying it: the transfer rules and the TSIG keys
//! they name, one document per zone on the access stream (`P.access.<zone token>`, the last
//! message per subject kept).
//!
//! The operator publishes a zone's document whenever its rules or keys change; the pods keep
//! the latest in memory only. Key secrets travel sealed (ChaCha20-Poly1305 under a key
//! derived from the [`MessageKey`]), so NATS stores none in the clear; without a message
//! key they travel as base64, and the documentation says so.

use base64::{Engine, engine::general_purpose::STANDARD};
use ipnet::IpNet;
use ring::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};
use zonefleet_tsig::{Algorithm, Key, KeyError};

use crate::MessageKey;

/// The event header naming the digest of a document's content (its secrets unsealed), so
/// the operator publishes only what changed.
pub const ACCESS_DIGEST: &str = "Zonefleet-Access-Digest";

const SEALED: &str = "sealed:";
const PLAIN: &str = "plain:";
const SEAL_CONTEXT: &str = "zonefleet access seal v1";

/// A zone's access document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAccess {
    /// The zone's apex, lowercase, with the trailing dot.
    pub origin: String,
    /// Transfer rules: a request matching any one may transfer.
    #[serde(default)]
    pub transfer: Vec<AccessRule>,
    /// The keys the rules name.
    #[serde(default)]
    pub keys: Vec<AccessKey>,
}

/// A rule: from one of `networks` (any address if empty), signed with `key` (if given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Client networks; empty: any.
    #[serde(default)]
    pub networks: Vec<IpNet>,
    /// The TSIG key that must sign the request, by name.
    #[serde(default)]
    pub key: Option<String>,
}

/// A TSIG key. In a [`ZoneAccess`] in memory the secret is plain base64; on the stream it
/// is sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// The key name, lowercase, fully qualified.
    pub name: String,
    /// The algorithm, as configuration names it (`hmac-sha256`).
    pub algorithm: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl AccessKey {
    /// The TSIG key it describes.
    pub fn tsig_key(&self) -> Result<Key, KeyError> {
        Key::from_base64(
            &self.name,
            Algorithm::from_name(&self.algorithm)?,
            &self.secret,
        )
    }
}

/// A document that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    /// Not JSON of a document.
    #[error("malformed access document: {0}")]
    Malformed(String),
    /// A sealed secret that does not open with our key (or we have none).
    #[error("the secret of TSIG key {0} does not open with this pod's message key")]
    Unsealable(String),
    /// A secret sent in the clear to a pod that requires sealed ones.
    #[error("the secret of TSIG key {0} is not sealed, and this pod has a message key")]
    NotSealed(String),
}

impl ZoneAccess {
    /// A document that allows nothing.
    pub fn closed(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            transfer: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// The digest of the content, secrets included, as the [`ACCESS_DIGEST`] header: a
    /// MAC under the message key when there is one (so the header says nothing about the
    /// secrets), SHA-256 otherwise.
    pub fn digest(&self, key: Option<&MessageKey>) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        match key {
            Some(key) => key.sign(SEAL_CONTEXT, &json),
            None => {
                use sha2::Digest;
                let hash = sha2::Sha256::digest(&json);
                hash.iter().map(|b| format!("{b:02x}")).collect()
            }
        }
    }

    /// The document as published: JSON with every secret sealed under `key` (or marked
    /// plain without one).
    pub fn seal(&self, key: Option<&MessageKey>) -> Vec<u8> {
        let mut sealed = self.clone();
        for access_key in &mut sealed.keys {
            access_key.secret = match key {
                Some(key) => seal_secret(key, &self.origin, access_key),
                None => format!("{PLAIN}{}", access_key.secret),
            };
        }
        serde_json::to_vec(&sealed).unwrap_or_default()
    }

    /// Reads a published document, opening its secrets with `key`. A pod with a key takes
    /// only sealed secrets.
    pub fn open(bytes: &[u8], key: Option<&MessageKey>) -> Result<Self, AccessError> {
        let mut access: Self =
            serde_json::from_slice(bytes).map_err(|e| AccessError::Malformed(e.to_string()))?;
        let origin = access.origin.clone();
        for access_key in &mut access.keys {
            let secret = if let Some(sealed) = access_key.secret.strip_prefix(SEALED) {
                let key = key.ok_or_else(|| AccessError::Unsealable(access_key.name.clone()))?;
                open_secret(key, &origin, &access_key.name, sealed)
                    .ok_or_else(|| AccessError::Unsealable(access_key.name.clone()))?
            } else if let Some(plain) = access_key.secret.strip_prefix(PLAIN) {
                if key.is_some() {
                    return Err(AccessError::NotSealed(access_key.name.clone()));
                }
                plain.to_owned()
            } else {
                return Err(AccessError::Malformed(format!(
                    "the secret of key {} is neither sealed nor plain",
                    access_key.name
                )));
            };
            access_key.secret = secret;
        }
        Ok(access)
    }
}

fn aead_key(key: &MessageKey) -> LessSafeKey {
    let derived = key.derive(SEAL_CONTEXT);
    // A 32-byte key is what ChaCha20-Poly1305 takes.
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &derived)
        .unwrap_or_else(|_| unreachable!("a 32-byte key"));
    LessSafeKey::new(unbound)
}

fn aad(origin: &str, name: &str) -> Vec<u8> {
    format!("{origin}\n{name}").into_bytes()
}

fn seal_secret(key: &MessageKey, origin: &str, access_key: &AccessKey) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    // The system's random source does not fail on Linux once booted.
    let _ = SystemRandom::new().fill(&mut nonce);
    let mut in_out = access_key.secret.as_bytes().to_vec();
    let sealed = aead_key(key).seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(origin, &access_key.name)),
        &mut in_out,
    );
    if sealed.is_err() {
        return String::new();
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&in_out);
    format!("{SEALED}{}", STANDARD.encode(out))
}

fn open_secret(key: &MessageKey, origin: &str, name: &str, sealed: &str) -> Option<String> {
    let bytes = STANDARD.decode(sealed).ok()?;
    let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    let plain = aead_key(key)
        .open_in_place(nonce, Aad::from(aad(origin, name)), &mut in_out)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> ZoneAccess {
        ZoneAccess {
            origin: "example.test.".into(),
            transfer: vec![AccessRule {
                networks: vec!["192.0.2.0/24".parse().expect("net")],
                key: Some("transfer.key.".into()),
            }],
            keys: vec![AccessKey {
                name: "transfer.key.".into(),
                algorithm: "hmac-sha256".into(),
                secret: "c2VjcmV0".into(),
            }],
        }
    }

    fn message_key(byte: u8) -> MessageKey {
        MessageKey::new(vec![byte; 32]).expect("key")
    }

    #[test]
    fn sealed_secrets_open_with_the_same_key_only() {
        let key = message_key(1);
        let published = document().seal(Some(&key));
        let text = String::from_utf8_lossy(&published);
        assert!(
            !text.contains("c2VjcmV0"),
            "the secret is not in the clear: {text}"
        );
        assert_eq!(ZoneAccess::open(&published, Some(&key)), Ok(document()));
        assert_eq!(
            ZoneAccess::open(&published, Some(&message_key(2))),
            Err(AccessError::Unsealable("transfer.key.".into()))
        );
        assert!(ZoneAccess::open(&published, None).is_err());
    }

    #[test]
    fn a_sealed_secret_moved_to_another_zone_does_not_open() {
        let key = message_key(1);
        let published = document().seal(Some(&key));
        let moved = String::from_utf8_lossy(&published).replace("example.test.", "other.test.");
        assert!(ZoneAccess::open(moved.as_bytes(), Some(&key)).is_err());
    }

    #[test]
    fn plain_secrets_are_refused_by_a_pod_with_a_key() {
        let published = document().seal(None);
        assert_eq!(ZoneAccess::open(&published, None), Ok(document()));
        assert_eq!(
            ZoneAccess::open(&published, Some(&message_key(1))),
            Err(AccessError::NotSealed("transfer.key.".into()))
        );
        assert!(matches!(
            ZoneAccess::open(b"{not json", None),
            Err(AccessError::Malformed(_))
        ));
    }

    #[test]
    fn the_digest_changes_with_the_content_and_not_with_the_seal() {
        let key = message_key(1);
        assert_eq!(document().digest(Some(&key)), document().digest(Some(&key)));
        assert_ne!(document().seal(Some(&key)), document().seal(Some(&key)));
        let mut changed = document();
        changed.keys[0].secret = "b3RoZXI=".into();
        assert_ne!(document().digest(Some(&key)), changed.digest(Some(&key)));
        assert_ne!(document().digest(None), changed.digest(None));
    }
}
