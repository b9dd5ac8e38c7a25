//! A Zone's access document (a [`ZoneAccess`]): its transfer rules and the TSIG keys they
//! name, each key's secret read from a Secret.
//!
//! Pure: the controller reads the Secrets the Zone's `tsigKeys` refer to and hands their
//! data in; [`zone_access`] checks the spec against them and builds the document the pods
//! get. A Zone without `transfer` gets a closed document (its keys are still listed).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use zonefleet_api::{TransferRule, TsigKey, ZoneSpec};
use zonefleet_nats::{AccessKey, AccessRule, ZoneAccess};
use zonefleet_tsig::{Algorithm, Key, KeyError};

/// The data of the Secrets a Zone's keys refer to, by Secret name, as the API server
/// returns it (each value decoded from base64 once, so it holds the key's base64 text). A
/// Secret that is not in the map does not exist.
pub type SecretData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Why a Zone's transfer rules or TSIG keys cannot be published. Each message names the
/// field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessSpecError {
    /// A network is neither a CIDR nor an IP address.
    #[error(
        "spec.transfer.allow[{rule}].networks[{index}] {network:?} is not a network in CIDR notation or an IP address"
    )]
    InvalidNetwork {
        /// The rule's index.
        rule: usize,
        /// The network's index in the rule.
        index: usize,
        /// The network as written.
        network: String,
    },
    /// A rule with neither networks nor a key would allow everyone.
    #[error("spec.transfer.allow[{rule}] needs networks, a tsigKey, or both")]
    OpenRule {
        /// The rule's index.
        rule: usize,
    },
    /// A rule names a key the Zone does not list.
    #[error("spec.transfer.allow[{rule}].tsigKey {key:?} names no key in spec.tsigKeys")]
    UnknownKey {
        /// The rule's index.
        rule: usize,
        /// The key name as written.
        key: String,
    },
    /// A secondary names a key the Zone does not list.
    #[error("spec.transfer.secondaries[{index}].tsigKey {key:?} names no key in spec.tsigKeys")]
    UnknownSecondaryKey {
        /// The secondary's index.
        index: usize,
        /// The key name as written.
        key: String,
    },
    /// A secondary's address is not an IP address.
    #[error("spec.transfer.secondaries[{index}].address {address:?} is not an IP address")]
    InvalidSecondaryAddress {
        /// The secondary's index.
        index: usize,
        /// The address as written.
        address: String,
    },
    /// Two keys with one name (compared without regard to case).
    #[error("spec.tsigKeys[{index}] ({name}): the name is already used by spec.tsigKeys[{first}]")]
    DuplicateKey {
        /// The later key's index.
        index: usize,
        /// The earlier key's index.
        first: usize,
        /// The name, lowercase and fully qualified.
        name: String,
    },
    /// A key's Secret does not exist.
    #[error("{0} not found")]
    SecretNotFound(Box<SecretSource>),
    /// A key's Secret exists but lacks the key.
    #[error("{0} has no key {key:?}", key = .0.key)]
    SecretKeyMissing(Box<SecretSource>),
    /// A key's secret is not a usable TSIG key (not text, not base64, empty, or a bad
    /// name), and why.
    #[error("{0} key {key:?}: {1}", key = .0.key)]
    InvalidSecret(Box<SecretSource>, String),
}

/// Where a TSIG key's secret is read from: the key (by its place in `spec.tsigKeys` and its
/// name) and the Secret's name and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSource {
    /// The key's index in `spec.tsigKeys`.
    pub index: usize,
    /// The key name, lowercase and fully qualified.
    pub name: String,
    /// The Zone's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// The key in the Secret's data.
    pub key: String,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spec.tsigKeys[{}] ({}): Secret {}/{}",
            self.index, self.name, self.namespace, self.secret
        )
    }
}

impl AccessSpecError {
    /// True if the error may go away without a change to the Zone: a Secret created or
    /// fixed later. Such errors are retried; the others wait for the Zone to change.
    pub fn depends_on_secrets(&self) -> bool {
        matches!(
            self,
            Self::SecretNotFound(_) | Self::SecretKeyMissing(_) | Self::InvalidSecret(..)
        )
    }
}

/// The access document of the Zone in `namespace` with apex `origin` and `spec`, its keys'
/// secrets taken from `secrets`.
pub fn zone_access(
    namespace: &str,
    origin: &str,
    spec: &ZoneSpec,
    secrets: &SecretData,
) -> Result<ZoneAccess, AccessSpecError> {
    let origin = fully_qualified(&origin.to_ascii_lowercase());
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, key) in spec.tsig_keys.iter().enumerate() {
        let name = key_name(&key.name);
        if let Some(first) = names.insert(name.clone(), index) {
            return Err(AccessSpecError::DuplicateKey { index, first, name });
        }
    }
    let allow = spec
        .transfer
        .as_ref()
        .map(|t| t.allow.as_slice())
        .unwrap_or_default();
    let transfer = allow
        .iter()
        .enumerate()
        .map(|(index, rule)| access_rule(index, rule, &names))
        .collect::<Result<Vec<_>, _>>()?;
    let secondaries = spec
        .transfer
        .as_ref()
        .map(|t| t.secondaries.as_slice())
        .unwrap_or_default();
    for (index, secondary) in secondaries.iter().enumerate() {
        if secondary.address.parse::<IpAddr>().is_err() {
            return Err(AccessSpecError::InvalidSecondaryAddress {
                index,
                address: secondary.address.clone(),
            });
        }
        if let Some(written) = &secondary.tsig_key
            && !names.contains_key(&key_name(written))
        {
            return Err(AccessSpecError::UnknownSecondaryKey {
                index,
                key: written.clone(),
            });
        }
    }
    let keys = spec
        .tsig_keys
        .iter()
        .enumerate()
        .map(|(index, key)| access_key(namespace, index, key, secrets))
        .collect::<Result<Vec<_>, _>>()?;
    let mut access = ZoneAccess::closed(&origin);
    access.transfer = transfer;
    access.keys = keys;
    Ok(access)
}

/// One rule, its networks parsed and its key named as the document names keys.
fn access_rule(
    index: usize,
    rule: &TransferRule,
    keys: &BTreeMap<String, usize>,
) -> Result<AccessRule, AccessSpecError> {
    if rule.networks.is_empty() && rule.tsig_key.is_none() {
        return Err(AccessSpecError::OpenRule { rule: index });
    }
    let networks = rule
        .networks
        .iter()
        .enumerate()
        .map(|(i, network)| {
            network_of(network).ok_or_else(|| AccessSpecError::InvalidNetwork {
                rule: index,
                index: i,
                network: network.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = match &rule.tsig_key {
        Some(written) => {
            let name = key_name(written);
            if !keys.contains_key(&name) {
                return Err(AccessSpecError::UnknownKey {
                    rule: index,
                    key: written.clone(),
                });
            }
            Some(name)
        }
        None => None,
    };
    Ok(AccessRule { networks, key })
}

/// A network in CIDR notation, or a bare address as the one host.
fn network_of(written: &str) -> Option<IpNet> {
    written
        .parse::<IpNet>()
        .ok()
        .or_else(|| written.parse::<IpAddr>().ok().map(IpNet::from))
}

/// One key with its secret, checked by making a TSIG key of it.
fn access_key(
    namespace: &str,
    index: usize,
    key: &TsigKey,
    secrets: &SecretData,
) -> Result<AccessKey, AccessSpecError> {
    let reference = &key.secret_ref;
    let source = || {
        Box::new(SecretSource {
            index,
            name: key_name(&key.name),
            namespace: namespace.to_owned(),
            secret: reference.name.clone(),
            key: reference.key.clone(),
        })
    };
    let secret = secrets
        .get(&reference.name)
        .ok_or_else(|| AccessSpecError::SecretNotFound(source()))?;
    let value = secret
        .get(&reference.key)
        .ok_or_else(|| AccessSpecError::SecretKeyMissing(source()))?;
    let invalid = |problem: String| AccessSpecError::InvalidSecret(source(), problem);
    let text = std::str::from_utf8(value)
        .map_err(|_| invalid("not text (it must hold the secret in base64)".to_owned()))?;
    let tsig = Algorithm::from_name(key.algorithm.as_str())
        .and_then(|algorithm| Key::from_base64(&key.name, algorithm, text.trim()))
        .map_err(|e: KeyError| invalid(e.to_string()))?;
    Ok(AccessKey {
        name: tsig.name().to_ascii(),
        algorithm: tsig.algorithm().config_name().to_owned(),
        secret: tsig.secret_base64(),
    })
}

/// A key name as the document names keys: lowercase, fully qualified.
/// A key name as documents write it: lowercase, fully qualified.
pub(crate) fn key_name(written: &str) -> String {
    fully_qualified(&written.to_ascii_lowercase())
}

fn fully_qualified(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// The Secrets `spec`'s keys refer to, by name: what the controller reads.
pub fn referenced_secrets(spec: &ZoneSpec) -> BTreeSet<&str> {
    spec.tsig_keys
        .iter()
        .map(|key| key.secret_ref.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 32 bytes in base64, as `tsig-keygen` prints a hmac-sha256 key.
    const SECRET: &str = "ZXhhbXBsZS10c2lnLXNlY3JldC0zMi1ieXRlcy1sb25nIQ==";

    fn spec(extra: serde_json::Value) -> ZoneSpec {
        let mut value = json!({
            "domain": "Example.COM",
            "nameServers": [{"name": "ns1.example.net"}],
        });
        if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        serde_json::from_value(value).expect("a Zone spec")
    }

    fn secrets(entries: &[(&str, &str, &[u8])]) -> SecretData {
        let mut data = SecretData::new();
        for (secret, key, value) in entries {
            data.entry((*secret).to_owned())
                .or_default()
                .insert((*key).to_owned(), value.to_vec());
        }
        data
    }

    fn with_transfer() -> ZoneSpec {
        spec(json!({
            "transfer": {"allow": [
                {"networks": ["192.0.2.0/24", "2001:db8::1"], "tsigKey": "Transfer.Example.com"},
                {"networks": ["198.51.100.7"]},
                {"tsigKey": "transfer.example.com."},
            ]},
            "tsigKeys": [{
                "name": "Transfer.Example.com",
                "algorithm": "hmac-sha512",
                "secretRef": {"name": "xfr"},
            }],
        }))
    }

    #[test]
    fn rules_and_keys_become_the_document() {
        let secret = format!("  {SECRET}\n");
        let access = zone_access(
            "dns",
            "Example.COM",
            &with_transfer(),
            &secrets(&[("xfr", "secret", secret.as_bytes())]),
        )
        .expect("valid");
        let key = Some("transfer.example.com.".to_owned());
        let net = |s: &str| s.parse::<IpNet>().expect("a network");
        assert_eq!(access.origin, "example.com.");
        assert_eq!(
            access.transfer,
            vec![
                AccessRule {
                    networks: vec![net("192.0.2.0/24"), net("2001:db8::1/128")],
                    key: key.clone(),
                },
                AccessRule {
                    networks: vec![net("198.51.100.7/32")],
                    key: None,
                },
                AccessRule {
                    networks: Vec::new(),
                    key,
                },
            ]
        );
        assert_eq!(
            access.keys,
            vec![AccessKey {
                name: "transfer.example.com.".into(),
                algorithm: "hmac-sha512".into(),
                secret: SECRET.into(),
            }]
        );
    }

    #[test]
    fn a_zone_without_transfer_is_closed_but_lists_its_keys() {
        let bare = spec(json!({}));
        assert_eq!(
            zone_access("dns", "example.com.", &bare, &SecretData::new()),
            Ok(ZoneAccess::closed("example.com."))
        );
        let keys_only = spec(json!({
            "tsigKeys": [{"name": "notify.example.com", "secretRef": {"name": "n", "key": "k"}}],
        }));
        let access = zone_access(
            "dns",
            "example.com",
            &keys_only,
            &secrets(&[("n", "k", SECRET.as_bytes())]),
        )
        .expect("valid");
        assert!(access.transfer.is_empty());
        assert_eq!(access.keys.len(), 1);
        assert_eq!(access.keys[0].name, "notify.example.com.");
        assert_eq!(access.keys[0].algorithm, "hmac-sha256");
        assert_eq!(referenced_secrets(&keys_only), BTreeSet::from(["n"]));
    }

    #[test]
    fn a_missing_secret_or_key_names_the_field_and_the_secret() {
        let error = zone_access("dns", "example.com", &with_transfer(), &SecretData::new())
            .expect_err("no Secret");
        assert_eq!(
            error.to_string(),
            "spec.tsigKeys[0] (transfer.example.com.): Secret dns/xfr not found"
        );
        assert!(error.depends_on_secrets());
        let error = zone_access(
            "dns",
            "example.com",
            &with_transfer(),
            &secrets(&[("xfr", "other", SECRET.as_bytes())]),
        )
        .expect_err("no key");
        assert_eq!(
            error.to_string(),
            "spec.tsigKeys[0] (transfer.example.com.): Secret dns/xfr has no key \"secret\""
        );
        assert!(error.depends_on_secrets());
    }

    #[test]
    fn a_secret_that_is_no_key_is_refused() {
        for (value, problem) in [
            (&b"not base64!"[..], "is not base64"),
            (&b""[..], "is empty"),
            (&b"\xff\xfe"[..], "not text"),
        ] {
            let error = zone_access(
                "dns",
                "example.com",
                &with_transfer(),
                &secrets(&[("xfr", "secret", value)]),
            )
            .expect_err("a bad secret");
            let message = error.to_string();
            assert!(
                message.starts_with(
                    "spec.tsigKeys[0] (transfer.example.com.): Secret dns/xfr key \"secret\": "
                ) && message.contains(problem),
                "{message}"
            );
            assert!(error.depends_on_secrets());
        }
    }

    #[test]
    fn a_rule_naming_an_unknown_key_is_refused() {
        let spec = spec(json!({
            "transfer": {"allow": [{"networks": ["192.0.2.1"]}, {"tsigKey": "x"}]},
        }));
        let error =
            zone_access("dns", "example.com", &spec, &SecretData::new()).expect_err("unknown key");
        assert_eq!(
            error.to_string(),
            "spec.transfer.allow[1].tsigKey \"x\" names no key in spec.tsigKeys"
        );
        assert!(!error.depends_on_secrets());
    }

    #[test]
    fn networks_must_parse() {
        let spec = spec(json!({
            "transfer": {"allow": [{"networks": ["192.0.2.0/24", "192.0.2.0/33"]}]},
        }));
        let error =
            zone_access("dns", "example.com", &spec, &SecretData::new()).expect_err("bad net");
        assert_eq!(
            error,
            AccessSpecError::InvalidNetwork {
                rule: 0,
                index: 1,
                network: "192.0.2.0/33".into(),
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("spec.transfer.allow[0].networks[1] ")
        );
    }

    #[test]
    fn a_rule_that_would_allow_everyone_is_refused() {
        let spec = spec(json!({"transfer": {"allow": [{}]}}));
        assert_eq!(
            zone_access("dns", "example.com", &spec, &SecretData::new()),
            Err(AccessSpecError::OpenRule { rule: 0 })
        );
    }

    #[test]
    fn key_names_are_unique_without_regard_to_case() {
        let spec = spec(json!({
            "tsigKeys": [
                {"name": "a.example", "secretRef": {"name": "s"}},
                {"name": "A.Example.", "secretRef": {"name": "s"}},
            ],
        }));
        let error = zone_access(
            "dns",
            "example.com",
            &spec,
            &secrets(&[("s", "secret", SECRET.as_bytes())]),
        )
        .expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "spec.tsigKeys[1] (a.example.): the name is already used by spec.tsigKeys[0]"
        );
    }

    #[test]
    fn a_secondary_must_name_a_listed_key_and_an_address() {
        let secrets = secrets(&[("xfr", "secret", b"c2VjcmV0")]);
        let with = |secondary: serde_json::Value| {
            spec(json!({
                "tsigKeys": [{"name": "transfer.example.com", "secretRef": {"name": "xfr"}}],
                "transfer": {"secondaries": [secondary]},
            }))
        };
        let good = with(json!({"address": "192.0.2.9", "tsigKey": "Transfer.Example.COM."}));
        assert!(zone_access("dns", "example.com.", &good, &secrets).is_ok());
        let unknown = with(json!({"address": "192.0.2.9", "tsigKey": "other"}));
        assert_eq!(
            zone_access("dns", "example.com.", &unknown, &secrets)
                .expect_err("unknown key")
                .to_string(),
            "spec.transfer.secondaries[0].tsigKey \"other\" names no key in spec.tsigKeys"
        );
        let bad = with(json!({"address": "ns1.example.net"}));
        assert!(matches!(
            zone_access("dns", "example.com.", &bad, &secrets),
            Err(AccessSpecError::InvalidSecondaryAddress { index: 0, .. })
        ));
    }
}
