//! The zone versions this pod refused: the last one per zone, until the pod serves that
//! zone at that serial or a newer one (RFC 1982), or the zone is retracted.
//!
//! [`Refusals`] is the bookkeeping alone (pure, no clock: the caller stamps each refusal);
//! [`RefusalBook`] shares it between the follower, which writes, and the admin endpoint and
//! re-sync replies, which read.

use std::{collections::HashMap, sync::Mutex};

use zonefleet_nats::RefusedVersion;

use super::plan::is_newer;

/// The last refused version of each zone, keyed by lowercased apex with a trailing dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    by_zone: HashMap<String, RefusedVersion>,
}

/// The key of a zone: its apex lowercased, with a trailing dot.
fn key(zone: &str) -> String {
    let mut key = zone.to_ascii_lowercase();
    if !key.ends_with('.') {
        key.push('.');
    }
    key
}

impl Refusals {
    /// Remembers `refused`, given the serial of the version of its zone served now (if any).
    /// Returns whether it is remembered: a refusal of a version older than the one served
    /// is not, since serving a newer version forgets it anyway; nor is one of a version older
    /// than the zone's refusal already remembered.
    pub fn refuse(&mut self, refused: RefusedVersion, served: Option<u32>) -> bool {
        if let (Some(serial), Some(served)) = (refused.serial, served)
            && is_newer(served, serial)
        {
            return false;
        }
        let key = key(&refused.zone);
        if let Some(known) = self.by_zone.get(&key)
            && let (Some(known), Some(serial)) = (known.serial, refused.serial)
            && is_newer(known, serial)
        {
            return false;
        }
        self.by_zone.insert(key, refused);
        true
    }

    /// The pod serves `zone` at `serial`: forgets the zone's refusal if it is of that serial
    /// or an older one, or of an unknown serial (the refusal came before this version).
    /// Returns whether a refusal was forgotten.
    pub fn served(&mut self, zone: &str, serial: u32) -> bool {
        let key = key(zone);
        let superseded = self
            .by_zone
            .get(&key)
            .is_some_and(|refused| match refused.serial {
                None => true,
                Some(refused) => refused == serial || is_newer(serial, refused),
            });
        if superseded {
            self.by_zone.remove(&key);
        }
        superseded
    }

    /// `zone` is retracted (or no longer in the store): forgets its refusal. Returns whether
    /// there was one.
    pub fn retracted(&mut self, zone: &str) -> bool {
        self.by_zone.remove(&key(zone)).is_some()
    }

    /// Keeps only the refusals of the zones for which `keep` (given the key: the apex
    /// lowercased, with a trailing dot) is true. Returns whether any was forgotten.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) -> bool {
        let before = self.by_zone.len();
        self.by_zone.retain(|zone, _| keep(zone));
        self.by_zone.len() != before
    }

    /// Every refusal, sorted by zone.
    pub fn all(&self) -> Vec<RefusedVersion> {
        let mut all: Vec<RefusedVersion> = self.by_zone.values().cloned().collect();
        all.sort_by(|a, b| a.zone.cmp(&b.zone));
        all
    }

    /// The refusals of these zones (apex names, in any case, with or without the trailing
    /// dot), sorted by zone.
    pub fn of<'z>(&self, zones: impl IntoIterator<Item = &'z str>) -> Vec<RefusedVersion> {
        let mut found: Vec<RefusedVersion> = zones
            .into_iter()
            .filter_map(|zone| self.by_zone.get(&key(zone)).cloned())
            .collect();
        found.sort_by(|a, b| a.zone.cmp(&b.zone));
        found.dedup();
        found
    }

    /// The number of zones with a refusal.
    pub fn len(&self) -> usize {
        self.by_zone.len()
    }

    /// True when no refusal is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_zone.is_empty()
    }
}

/// [`Refusals`] shared between the follower and the readers.
#[derive(Debug, Default)]
pub struct RefusalBook {
    refusals: Mutex<Refusals>,
}

impl RefusalBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `change` on the refusals and returns what it returns.
    pub fn update<R>(&self, change: impl FnOnce(&mut Refusals) -> R) -> R {
        // A poisoned lock only means a writer panicked mid-way; the map is still usable.
        let mut refusals = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut refusals)
    }

    /// A copy of the refusals now.
    pub fn snapshot(&self) -> Refusals {
        self.update(|refusals| refusals.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(zone: &str, serial: Option<u32>, at_millis: u64) -> RefusedVersion {
        RefusedVersion {
            zone: zone.into(),
            serial,
            reason: "malformed".into(),
            error: "malformed DNS data: incorrect rdata length".into(),
            at_millis,
        }
    }

    #[test]
    fn a_refusal_is_remembered_until_that_serial_or_a_newer_one_is_served() {
        let mut refusals = Refusals::default();
        assert!(refusals.refuse(refused("example.com.", Some(6), 1), Some(5)));
        assert_eq!(refusals.all(), [refused("example.com.", Some(6), 1)]);
        // The old version again (a re-sync, another zone's update): still refused.
        assert!(!refusals.served("example.com.", 5));
        assert!(!refusals.served("example.net.", 9));
        assert_eq!(refusals.len(), 1);
        // A later good version.
        assert!(refusals.served("example.com.", 7));
        assert!(refusals.is_empty());

        // That very serial, repaired.
        refusals.refuse(refused("example.com.", Some(8), 2), Some(7));
        assert!(refusals.served("example.com.", 8));
        assert!(refusals.is_empty());
    }

    #[test]
    fn serials_compare_under_rfc_1982() {
        let mut refusals = Refusals::default();
        refusals.refuse(
            refused("example.com.", Some(u32::MAX), 1),
            Some(u32::MAX - 1),
        );
        // 2 follows 4294967295, though smaller.
        assert!(refusals.served("example.com.", 2));
        // Refusing 1 while 2 is served: older, not remembered.
        assert!(!refusals.refuse(refused("example.com.", Some(1), 2), Some(2)));
        assert!(refusals.is_empty());
    }

    #[test]
    fn the_same_serial_as_the_served_one_is_remembered() {
        // Same serial, other content (a repair that does not decode): worth reporting.
        let mut refusals = Refusals::default();
        assert!(refusals.refuse(refused("example.com.", Some(5), 1), Some(5)));
        assert!(!refusals.refuse(refused("example.com.", Some(4), 1), Some(5)));
        assert_eq!(refusals.len(), 1);
    }

    #[test]
    fn the_last_refusal_of_a_zone_wins_unless_it_is_of_an_older_version() {
        let mut refusals = Refusals::default();
        refusals.refuse(refused("example.com.", Some(6), 1), Some(5));
        assert!(refusals.refuse(refused("example.com.", Some(7), 2), Some(5)));
        assert_eq!(refusals.all(), [refused("example.com.", Some(7), 2)]);
        // A late, older version does not hide the newer refusal.
        assert!(!refusals.refuse(refused("example.com.", Some(6), 3), Some(5)));
        // The same version refused again: the latest time.
        assert!(refusals.refuse(refused("example.com.", Some(7), 4), Some(5)));
        // A version whose serial could not be read: the latest word.
        assert!(refusals.refuse(refused("example.com.", None, 5), Some(5)));
        assert_eq!(refusals.all(), [refused("example.com.", None, 5)]);
    }

    #[test]
    fn a_refusal_of_an_unknown_serial_is_forgotten_by_any_later_version() {
        let mut refusals = Refusals::default();
        assert!(refusals.refuse(refused("example.com.", None, 1), None));
        assert!(refusals.served("example.com.", 1));
        assert!(refusals.is_empty());
    }

    #[test]
    fn a_retraction_forgets_the_refusal() {
        let mut refusals = Refusals::default();
        refusals.refuse(refused("example.com.", Some(6), 1), None);
        assert!(refusals.retracted("EXAMPLE.com"));
        assert!(!refusals.retracted("example.com."));
        assert!(refusals.is_empty());
    }

    #[test]
    fn zones_are_matched_without_case_and_listed_in_order() {
        let mut refusals = Refusals::default();
        refusals.refuse(refused("b.example.", Some(1), 1), None);
        refusals.refuse(refused("a.example.", Some(1), 1), None);
        refusals.refuse(refused("c.example.", Some(1), 1), None);
        let zones: Vec<String> = refusals.all().into_iter().map(|r| r.zone).collect();
        assert_eq!(zones, ["a.example.", "b.example.", "c.example."]);
        let some: Vec<String> = refusals
            .of(["C.EXAMPLE", "a.example.", "a.example", "d.example."])
            .into_iter()
            .map(|r| r.zone)
            .collect();
        assert_eq!(some, ["a.example.", "c.example."]);
        assert!(refusals.served("B.Example.", 1));
    }

    #[test]
    fn zones_dropped_from_the_store_are_forgotten() {
        let mut refusals = Refusals::default();
        refusals.refuse(refused("Kept.example.", Some(1), 1), None);
        refusals.refuse(refused("gone.example.", Some(1), 1), None);
        assert!(refusals.retain(|zone| zone == "kept.example."));
        assert!(!refusals.retain(|zone| zone == "kept.example."));
        assert_eq!(refusals.all(), [refused("Kept.example.", Some(1), 1)]);
    }

    #[test]
    fn the_book_shares_the_refusals() {
        let book = RefusalBook::new();
        book.update(|refusals| refusals.refuse(refused("example.com.", Some(2), 1), Some(1)));
        assert_eq!(book.snapshot().len(), 1);
    }
}
