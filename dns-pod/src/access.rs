//! Who may do what with each zone beyond querying it: the transfer rules and TSIG keys of
//! the zone's access document, as this pod serves them. Kept in memory only; a zone with
//! no document allows nothing beyond queries.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use zonefleet_nats::{AccessKey, ZoneAccess};
use zonefleet_tsig::{Key, KeyError};

/// A zone's access, ready to check requests against.
#[derive(Debug)]
pub struct ServedAccess {
    rules: Vec<TransferRule>,
    keys: Vec<Key>,
}

#[derive(Debug)]
struct TransferRule {
    networks: Vec<IpNet>,
    key: Option<Name>,
}

/// A document that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AccessBuildError {
    /// The origin is not a name.
    #[error("the access document names no zone: {0:?}")]
    Origin(String),
    /// A key cannot be used.
    #[error("TSIG key: {0}")]
    Key(#[from] KeyError),
    /// A rule names a key the document does not hold.
    #[error("a transfer rule names the key {0}, which the document does not hold")]
    UnknownKey(String),
}

impl ServedAccess {
    /// The access a document describes.
    pub fn from_document(document: &ZoneAccess) -> Result<(Name, Self), AccessBuildError> {
        let origin = Name::from_ascii(&document.origin)
            .map_err(|_| AccessBuildError::Origin(document.origin.clone()))?
            .to_lowercase();
        let keys = document
            .keys
            .iter()
            .map(AccessKey::tsig_key)
            .collect::<Result<Vec<Key>, KeyError>>()?;
        let rules = document
            .transfer
            .iter()
            .map(|rule| {
                let key = match &rule.key {
                    Some(name) => Some(
                        keys.iter()
                            .map(Key::name)
                            .find(|key| key_named(key, name))
                            .cloned()
                            .ok_or_else(|| AccessBuildError::UnknownKey(name.clone()))?,
                    ),
                    None => None,
                };
                Ok(TransferRule {
                    networks: rule.networks.clone(),
                    key,
                })
            })
            .collect::<Result<Vec<_>, AccessBuildError>>()?;
        Ok((origin, Self { rules, keys }))
    }

    /// The key named `name` (lowercase), if the zone has it.
    pub fn key(&self, name: &Name) -> Option<&Key> {
        self.keys.iter().find(|key| key.name() == name)
    }

    /// True if a transfer request from `ip`, signed with the key named `signed_by` (verified
    /// already) or unsigned, matches a rule.
    pub fn allows_transfer(&self, ip: IpAddr, signed_by: Option<&Name>) -> bool {
        self.rules.iter().any(|rule| {
            (rule.networks.is_empty() || rule.networks.iter().any(|net| net.contains(&ip)))
                && rule
                    .key
                    .as_ref()
                    .is_none_or(|needed| signed_by == Some(needed))
        })
    }
}

/// True if `name` (fully qualified or not, any case) names `key`.
fn key_named(key: &Name, name: &str) -> bool {
    Name::from_ascii(name).is_ok_and(|mut name| {
        name.set_fqdn(true);
        name.to_lowercase() == *key
    })
}

/// The access of every zone that has a document, swapped whole on each change.
#[derive(Debug, Default)]
pub struct AccessStore {
    zones: ArcSwap<HashMap<Name, Arc<ServedAccess>>>,
}

impl AccessStore {
    /// The access of the zone at `origin` (lowercase), if it has a document.
    pub fn get(&self, origin: &Name) -> Option<Arc<ServedAccess>> {
        self.zones.load().get(origin).cloned()
    }

    /// Serves `access` for `origin` (lowercase); `None` drops the zone's document.
    pub fn set(&self, origin: Name, access: Option<ServedAccess>) {
        let access = access.map(Arc::new);
        self.zones.rcu(|zones| {
            let mut zones = HashMap::clone(zones);
            match &access {
                Some(access) => {
                    zones.insert(origin.clone(), Arc::clone(access));
                }
                None => {
                    zones.remove(&origin);
                }
            }
            zones
        });
    }

    /// How many zones have a document.
    pub fn len(&self) -> usize {
        self.zones.load().len()
    }

    /// True if no zone has a document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use zonefleet_nats::AccessRule;

    use super::*;

    fn document() -> ZoneAccess {
        ZoneAccess {
            origin: "Example.TEST.".into(),
            transfer: vec![
                AccessRule {
                    networks: vec!["192.0.2.0/24".parse().expect("net")],
                    key: None,
                },
                AccessRule {
                    networks: Vec::new(),
                    key: Some("Transfer.Key".into()),
                },
                AccessRule {
                    networks: vec!["198.51.100.7/32".parse().expect("net")],
                    key: Some("other.key.".into()),
                },
            ],
            keys: vec![
                AccessKey {
                    name: "transfer.key.".into(),
                    algorithm: "hmac-sha256".into(),
                    secret: "c2VjcmV0".into(),
                },
                AccessKey {
                    name: "other.key.".into(),
                    algorithm: "hmac-md5".into(),
                    secret: "b3RoZXI=".into(),
                },
            ],
        }
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    #[test]
    fn a_rule_needs_its_network_and_its_key() {
        let (origin, access) = ServedAccess::from_document(&document()).expect("builds");
        assert_eq!(origin, name("example.test."));
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        // Network only.
        assert!(access.allows_transfer(ip("192.0.2.9"), None));
        // Key only, from anywhere.
        assert!(access.allows_transfer(ip("203.0.113.1"), Some(&name("transfer.key."))));
        assert!(!access.allows_transfer(ip("203.0.113.1"), None));
        // Network and key: both needed.
        assert!(access.allows_transfer(ip("198.51.100.7"), Some(&name("other.key."))));
        assert!(!access.allows_transfer(ip("198.51.100.8"), Some(&name("other.key."))));
        assert!(!access.allows_transfer(ip("198.51.100.7"), None));
        assert!(access.key(&name("other.key.")).is_some());
        assert!(access.key(&name("third.key.")).is_none());
    }

    #[test]
    fn a_closed_document_allows_nothing_and_a_bad_one_is_refused() {
        let (_, closed) =
            ServedAccess::from_document(&ZoneAccess::closed("example.test.")).expect("builds");
        assert!(!closed.allows_transfer("192.0.2.1".parse().expect("ip"), None));

        let mut unknown = document();
        unknown.transfer[1].key = Some("missing.key.".into());
        assert!(matches!(
            ServedAccess::from_document(&unknown),
            Err(AccessBuildError::UnknownKey(_))
        ));
        let mut bad_secret = document();
        bad_secret.keys[0].secret = "***".into();
        assert!(matches!(
            ServedAccess::from_document(&bad_secret),
            Err(AccessBuildError::Key(_))
        ));
    }

    #[test]
    fn the_store_sets_and_drops_documents() {
        let store = AccessStore::default();
        let (origin, access) = ServedAccess::from_document(&document()).expect("builds");
        store.set(origin.clone(), Some(access));
        assert_eq!(store.len(), 1);
        assert!(store.get(&origin).is_some());
        store.set(origin.clone(), None);
        assert!(store.get(&origin).is_none());
        assert!(store.is_empty());
    }
}
