//! TSIG keys: a name, an HMAC algorithm and a shared secret.

use base64::{Engine, engine::general_purpose::STANDARD};
use hickory_proto::rr::{Name, rdata::tsig::TsigAlgorithm};
use hmac::{Hmac, Mac};

/// The HMAC algorithms a key may use (RFC 8945 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-MD5 (`hmac-md5.sig-alg.reg.int`): still the default of some clients.
    HmacMd5,
    /// HMAC-SHA1.
    HmacSha1,
    /// HMAC-SHA224.
    HmacSha224,
    /// HMAC-SHA256: the one to choose.
    HmacSha256,
    /// HMAC-SHA384.
    HmacSha384,
    /// HMAC-SHA512.
    HmacSha512,
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not an algorithm name we know.
    #[error(
        "unknown TSIG algorithm {0:?}: use hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1 or hmac-md5"
    )]
    UnknownAlgorithm(String),
    /// Not a domain name.
    #[error("invalid TSIG key name {0:?}")]
    InvalidName(String),
    /// The secret is not base64.
    #[error("the secret of TSIG key {0} is not base64")]
    InvalidSecret(String),
    /// The secret is empty.
    #[error("the secret of TSIG key {0} is empty")]
    EmptySecret(String),
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Self; 6] = [
        Self::HmacMd5,
        Self::HmacSha1,
        Self::HmacSha224,
        Self::HmacSha256,
        Self::HmacSha384,
        Self::HmacSha512,
    ];

    /// The algorithm named `name`, as in BIND's and Knot's configuration (`hmac-sha256`)
    /// or on the wire (`hmac-md5.sig-alg.reg.int`), in any case, with or without the
    /// trailing dot.
    pub fn from_name(name: &str) -> Result<Self, KeyError> {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        match lower.as_str() {
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Ok(Self::HmacMd5),
            "hmac-sha1" => Ok(Self::HmacSha1),
            "hmac-sha224" => Ok(Self::HmacSha224),
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha384" => Ok(Self::HmacSha384),
            "hmac-sha512" => Ok(Self::HmacSha512),
            _ => Err(KeyError::UnknownAlgorithm(name.to_owned())),
        }
    }

    /// The configuration name (`hmac-sha256`; `hmac-md5` for MD5).
    pub fn config_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5",
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacSha224 => "hmac-sha224",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm as hickory names it in a TSIG record.
    pub fn to_hickory(self) -> TsigAlgorithm {
        match self {
            Self::HmacMd5 => TsigAlgorithm::HmacMd5,
            Self::HmacSha1 => TsigAlgorithm::HmacSha1,
            Self::HmacSha224 => TsigAlgorithm::HmacSha224,
            Self::HmacSha256 => TsigAlgorithm::HmacSha256,
            Self::HmacSha384 => TsigAlgorithm::HmacSha384,
            Self::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }

    /// The algorithm of a TSIG record, if we support it (names compare without regard
    /// to case: hickory knows MD5's only in capitals, clients send it in lowercase).
    pub fn from_hickory(algorithm: &TsigAlgorithm) -> Option<Self> {
        Self::from_name(&algorithm.to_name().to_ascii()).ok()
    }

    /// The length of a full MAC, in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Self::HmacMd5 => 16,
            Self::HmacSha1 => 20,
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.config_name())
    }
}

/// A TSIG key. Its secret never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    name: Name,
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name.to_string())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key named `name` (a domain name; compared without regard to case) with the
    /// given secret bytes.
    pub fn new(name: &str, algorithm: Algorithm, secret: Vec<u8>) -> Result<Self, KeyError> {
        let mut parsed =
            Name::from_ascii(name).map_err(|_| KeyError::InvalidName(name.to_owned()))?;
        if name.is_empty() || parsed.is_root() {
            return Err(KeyError::InvalidName(name.to_owned()));
        }
        parsed.set_fqdn(true);
        if secret.is_empty() {
            return Err(KeyError::EmptySecret(name.to_owned()));
        }
        Ok(Self {
            name: parsed.to_lowercase(),
            algorithm,
            secret,
        })
    }

    /// A key whose secret is given in base64, as `tsig-keygen`, `keymgr` and every client's
    /// configuration write it (whitespace inside is ignored).
    pub fn from_base64(name: &str, algorithm: Algorithm, secret: &str) -> Result<Self, KeyError> {
        let compact: String = secret.split_whitespace().collect();
        let bytes = STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| KeyError::InvalidSecret(name.to_owned()))?;
        Self::new(name, algorithm, bytes)
    }

    /// The key's name, lowercase and fully qualified.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Its secret in base64.
    pub fn secret_base64(&self) -> String {
        STANDARD.encode(&self.secret)
    }

    /// The MAC of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        match self.algorithm {
            Algorithm::HmacMd5 => mac_of::<Hmac<md5::Md5>>(&self.secret, data),
            Algorithm::HmacSha1 => mac_of::<Hmac<sha1::Sha1>>(&self.secret, data),
            Algorithm::HmacSha224 => mac_of::<Hmac<sha2::Sha224>>(&self.secret, data),
            Algorithm::HmacSha256 => mac_of::<Hmac<sha2::Sha256>>(&self.secret, data),
            Algorithm::HmacSha384 => mac_of::<Hmac<sha2::Sha384>>(&self.secret, data),
            Algorithm::HmacSha512 => mac_of::<Hmac<sha2::Sha512>>(&self.secret, data),
        }
    }

    /// True if `mac` is the full MAC of `data` under this key, compared in constant time.
    pub fn verifies(&self, data: &[u8], mac: &[u8]) -> bool {
        match self.algorithm {
            Algorithm::HmacMd5 => verify_with::<Hmac<md5::Md5>>(&self.secret, data, mac),
            Algorithm::HmacSha1 => verify_with::<Hmac<sha1::Sha1>>(&self.secret, data, mac),
            Algorithm::HmacSha224 => verify_with::<Hmac<sha2::Sha224>>(&self.secret, data, mac),
            Algorithm::HmacSha256 => verify_with::<Hmac<sha2::Sha256>>(&self.secret, data, mac),
            Algorithm::HmacSha384 => verify_with::<Hmac<sha2::Sha384>>(&self.secret, data, mac),
            Algorithm::HmacSha512 => verify_with::<Hmac<sha2::Sha512>>(&self.secret, data, mac),
        }
    }
}

fn keyed<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> M {
    // HMAC takes keys of any length.
    let mut mac = <M as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac
}

fn mac_of<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
    keyed::<M>(secret, data).finalize().into_bytes().to_vec()
}

fn verify_with<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8], mac: &[u8]) -> bool {
    keyed::<M>(secret, data).verify_slice(mac).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse_from_configuration_and_wire_forms() {
        assert_eq!(
            Algorithm::from_name("HMAC-SHA256"),
            Ok(Algorithm::HmacSha256)
        );
        assert_eq!(
            Algorithm::from_name("hmac-md5.sig-alg.reg.int."),
            Ok(Algorithm::HmacMd5)
        );
        assert!(Algorithm::from_name("hmac-sha3").is_err());
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.config_name()), Ok(algorithm));
            assert_eq!(
                Algorithm::from_hickory(&algorithm.to_hickory()),
                Some(algorithm)
            );
        }
    }

    #[test]
    fn macs_have_the_algorithms_lengths_and_verify() {
        for algorithm in Algorithm::ALL {
            let key = Key::new("k.", algorithm, b"secret".to_vec()).expect("key");
            let mac = key.mac(b"data");
            assert_eq!(mac.len(), algorithm.mac_len(), "{algorithm}");
            assert!(key.verifies(b"data", &mac));
            assert!(!key.verifies(b"datb", &mac));
            assert!(!key.verifies(b"data", &mac[..mac.len() - 1]));
        }
    }

    #[test]
    fn rfc_4231_test_case_2_hmac_sha256() {
        let key = Key::new("k.", Algorithm::HmacSha256, b"Jefe".to_vec()).expect("key");
        let mac = key.mac(b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_need_a_name_and_a_base64_secret() {
        assert!(Key::from_base64("", Algorithm::HmacSha256, "c2VjcmV0").is_err());
        assert!(Key::from_base64("k", Algorithm::HmacSha256, "not base64!").is_err());
        assert!(Key::from_base64("k", Algorithm::HmacSha256, "").is_err());
        let key =
            Key::from_base64("Transfer.Key", Algorithm::HmacSha256, "c2Vj cmV0").expect("key");
        assert_eq!(key.name().to_string(), "transfer.key.");
        assert_eq!(key.secret_base64(), "c2VjcmV0");
        assert!(!format!("{key:?}").contains("c2Vj"));
    }
}
