//! Which Records reference which Zone, kept up to date from the Record watch, so a Zone's
//! reconcile finds its Records without scanning every Record.

use std::collections::{BTreeSet, HashMap};

use kube::core::DeserializeGuard;
use zonefleet_api::Record;

use super::{key_of, zone_key_of};
use crate::zone::ObjectKey;

/// Zone → the Records that reference it.
#[derive(Debug, Default)]
pub struct RecordIndex {
    by_zone: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    zone_of: HashMap<ObjectKey, ObjectKey>,
}

impl RecordIndex {
    /// The Zone a Record references, if it can be read.
    fn zone_key(record: &DeserializeGuard<Record>) -> Option<ObjectKey> {
        let (namespace, name) = record.0.as_ref().ok().and_then(zone_key_of)?;
        Some(ObjectKey { namespace, name })
    }

    /// A Record was added or changed.
    pub fn apply(&mut self, record: &DeserializeGuard<Record>) {
        let key = key_of(record);
        self.remove_key(&key);
        if let Some(zone) = Self::zone_key(record) {
            self.by_zone
                .entry(zone.clone())
                .or_default()
                .insert(key.clone());
            self.zone_of.insert(key, zone);
        }
    }

    /// A Record was deleted.
    pub fn delete(&mut self, record: &DeserializeGuard<Record>) {
        self.remove_key(&key_of(record));
    }

    fn remove_key(&mut self, key: &ObjectKey) {
        if let Some(zone) = self.zone_of.remove(key)
            && let Some(records) = self.by_zone.get_mut(&zone)
        {
            records.remove(key);
            if records.is_empty() {
                self.by_zone.remove(&zone);
            }
        }
    }

    /// The Records that reference `zone`.
    pub fn records_of(&self, zone: &ObjectKey) -> Vec<ObjectKey> {
        self.by_zone
            .get(zone)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(namespace: &str, name: &str, zone: serde_json::Value) -> DeserializeGuard<Record> {
        serde_json::from_value(json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"zoneRef": zone, "name": "www", "type": "A", "values": ["192.0.2.1"]},
        }))
        .unwrap()
    }

    fn key(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn follows_adds_moves_and_deletes() {
        let mut index = RecordIndex::default();
        index.apply(&record("a", "r1", json!({"name": "z"})));
        index.apply(&record("b", "r2", json!({"name": "z", "namespace": "a"})));
        index.apply(&record("a", "r3", json!({"name": "other"})));
        assert_eq!(
            index.records_of(&key("a", "z")),
            [key("a", "r1"), key("b", "r2")]
        );
        // A changed reference moves the record.
        index.apply(&record("a", "r1", json!({"name": "other"})));
        assert_eq!(index.records_of(&key("a", "z")), [key("b", "r2")]);
        assert_eq!(
            index.records_of(&key("a", "other")),
            [key("a", "r1"), key("a", "r3")]
        );
        index.delete(&record("b", "r2", json!({"name": "z", "namespace": "a"})));
        assert!(index.records_of(&key("a", "z")).is_empty());
    }

    #[test]
    fn malformed_records_reference_nothing() {
        let mut index = RecordIndex::default();
        let malformed: DeserializeGuard<Record> = serde_json::from_value(json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
            "metadata": {"name": "bad", "namespace": "a"}, "spec": {"zoneRef": 42},
        }))
        .unwrap();
        assert!(malformed.0.is_err());
        index.apply(&malformed);
        assert!(index.by_zone.is_empty());
    }
}
