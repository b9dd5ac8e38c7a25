//! The zones a pod serves: immutable versions behind one atomically swapped pointer.
//!
//! Readers ([`ZoneStore::load`]) never block and never see a half-applied update: a writer
//! builds the next [`ZoneSet`] aside and swaps it in. Writers are serialised by a mutex, so
//! two updates never race to swap.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use hickory_proto::rr::{LowerName, Name};
use zonefleet_wire::Snapshot;

use crate::authority::{BuildError, ZoneIndex};

/// One served zone version: an immutable index, replaced as a whole on update. It answers
/// queries as a hickory-server `ZoneHandler` (see [`crate::zone_handler`]).
#[derive(Debug)]
pub struct ServedZone {
    /// The answer index.
    pub index: ZoneIndex,
    /// The content digest the version was published with (or computed, for zone files).
    pub digest: Vec<u8>,
    lower_origin: LowerName,
}

impl ServedZone {
    /// Indexes a snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, BuildError> {
        let index = ZoneIndex::build(&snapshot.origin, snapshot.records)?;
        Ok(Self {
            lower_origin: LowerName::new(index.origin()),
            index,
            digest: snapshot.digest,
        })
    }

    /// The apex, lowercased.
    pub fn lower_origin(&self) -> &LowerName {
        &self.lower_origin
    }

    /// The zone's apex.
    pub fn origin(&self) -> &Name {
        self.index.origin()
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.index.serial()
    }

    /// The version as a snapshot (the base for the next delta, or for the local copy).
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            origin: self.origin().clone(),
            serial: self.serial(),
            digest: self.digest.clone(),
            records: self.index.records().cloned().collect(),
        }
    }

    /// What `/zones` shows of it.
    pub fn summary(&self) -> ZoneSummary {
        ZoneSummary {
            zone: self.origin().to_string(),
            serial: self.serial(),
            digest: zonefleet_wire::hex(&self.digest),
            records: self.index.record_count(),
        }
    }
}

/// A served zone as `/zones` and re-sync replies show it.
pub type ZoneSummary = zonefleet_nats::ServedVersion;

/// Every zone served at one moment, keyed by lowercased apex.
#[derive(Clone, Debug, Default)]
pub struct ZoneSet {
    zones: HashMap<Name, Arc<ServedZone>>,
}

impl ZoneSet {
    /// The zone that holds `name`: the one with the longest apex that `name` is at or
    /// below. One hash lookup per label of `name`.
    pub fn find(&self, name: &Name) -> Option<&Arc<ServedZone>> {
        let mut candidate = name.to_lowercase();
        loop {
            if let Some(zone) = self.zones.get(&candidate) {
                return Some(zone);
            }
            if candidate.is_root() {
                return None;
            }
            candidate = candidate.base_name();
        }
    }

    /// The zone with exactly this apex.
    pub fn get(&self, origin: &Name) -> Option<&Arc<ServedZone>> {
        self.zones.get(&origin.to_lowercase())
    }

    /// Every zone, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ServedZone>> {
        self.zones.values()
    }

    /// The number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// True when no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Every zone's summary, sorted by apex.
    pub fn summaries(&self) -> Vec<ZoneSummary> {
        let mut all: Vec<ZoneSummary> = self.iter().map(|zone| zone.summary()).collect();
        all.sort_by(|a, b| a.zone.cmp(&b.zone));
        all
    }
}

/// The served zones, swapped atomically on update.
#[derive(Debug, Default)]
pub struct ZoneStore {
    current: ArcSwap<ZoneSet>,
    writer: std::sync::Mutex<()>,
}

impl ZoneStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The zones served now. Lock-free; the set stays valid while it is held.
    pub fn load(&self) -> Arc<ZoneSet> {
        self.current.load_full()
    }

    /// Serves `zone` in place of any version of the same zone.
    pub fn insert(&self, zone: ServedZone) {
        self.update(|set| {
            set.zones
                .insert(zone.origin().to_lowercase(), Arc::new(zone));
        });
    }

    /// Stops serving a zone; returns whether it was served.
    pub fn remove(&self, origin: &Name) -> bool {
        let mut removed = false;
        self.update(|set| removed = set.zones.remove(&origin.to_lowercase()).is_some());
        removed
    }

    /// Replaces every zone at once.
    pub fn replace_all(&self, zones: impl IntoIterator<Item = ServedZone>) {
        let zones = zones
            .into_iter()
            .map(|zone| (zone.origin().to_lowercase(), Arc::new(zone)))
            .collect();
        self.update(|set| *set = ZoneSet { zones });
    }

    fn update(&self, change: impl FnOnce(&mut ZoneSet)) {
        // A poisoned lock only means another writer panicked; the set itself is immutable.
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = ZoneSet::clone(&self.current.load());
        change(&mut next);
        self.current.store(Arc::new(next));
    }
}
