//! The zones a pod serves: immutable versions behind one atomically swapped pointer.
//!
//! Readers ([`ZoneStore::load`]) never block and never see a half-applied update: a writer
//! builds the next [`ZoneSet`] aside and swaps it in. Writers are serialised by a mutex, so
//! two updates never race to swap.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use arc_swap::ArcSwap;
use hickory_proto::{
    rr::{LowerName, Name},
    serialize::binary::BinEncodable,
};
use tracing::debug;
use zonefleet_wire::Snapshot;

use crate::{
    authority::{BuildError, ZoneIndex},
    serve::fast::templates::AnswerTemplates,
};

/// One served zone version: an immutable index, replaced as a whole on update. It answers
/// queries as a hickory-server `ZoneHandler` (see [`crate::zone_handler`]).
#[derive(Debug)]
pub struct ServedZone {
    /// The answer index.
    pub index: ZoneIndex,
    /// The content digest the version was published with (or computed, for zone files).
    pub digest: Vec<u8>,
    lower_origin: LowerName,
    /// The apex lowercased in wire form, the key of the fast path's zone lookup.
    wire_origin: Box<[u8]>,
    /// The precomputed answers, built after the version is served.
    templates: OnceLock<AnswerTemplates>,
}

impl ServedZone {
    /// Indexes a snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, BuildError> {
        let index = ZoneIndex::build(&snapshot.origin, snapshot.records)?;
        let wire_origin = index
            .origin()
            .to_lowercase()
            .to_bytes()
            .unwrap_or_default()
            .into_boxed_slice();
        Ok(Self {
            lower_origin: LowerName::new(index.origin()),
            index,
            digest: snapshot.digest,
            wire_origin,
            templates: OnceLock::new(),
        })
    }

    /// The apex, lowercased, in wire form.
    pub fn wire_origin(&self) -> &[u8] {
        &self.wire_origin
    }

    /// The precomputed answers, once they are built.
    pub fn fast_answers(&self) -> Option<&AnswerTemplates> {
        self.templates.get()
    }

    /// Builds the precomputed answers now, if they are not built yet.
    pub fn prepare_fast_answers(&self) -> &AnswerTemplates {
        self.templates.get_or_init(|| AnswerTemplates::build(self))
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
            records: self.index.records().collect(),
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
    /// The same zones by lowercase wire-form apex.
    by_wire: HashMap<Box<[u8]>, Arc<ServedZone>>,
}

impl ZoneSet {
    fn insert(&mut self, zone: Arc<ServedZone>) {
        self.by_wire
            .insert(zone.wire_origin.clone(), Arc::clone(&zone));
        self.zones.insert(zone.origin().to_lowercase(), zone);
    }

    fn remove(&mut self, origin: &Name) -> bool {
        let Some(zone) = self.zones.remove(&origin.to_lowercase()) else {
            return false;
        };
        self.by_wire.remove(&zone.wire_origin);
        true
    }

    /// The zone whose apex is exactly this lowercase wire-form name.
    pub fn find_wire(&self, lowercase_apex: &[u8]) -> Option<&Arc<ServedZone>> {
        self.by_wire.get(lowercase_apex)
    }

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
        let zone = Arc::new(zone);
        self.update(|set| set.insert(Arc::clone(&zone)));
        prepare_in_background(vec![zone]);
    }

    /// Stops serving a zone; returns whether it was served.
    pub fn remove(&self, origin: &Name) -> bool {
        let mut removed = false;
        self.update(|set| removed = set.remove(origin));
        removed
    }

    /// Replaces every zone at once.
    pub fn replace_all(&self, zones: impl IntoIterator<Item = ServedZone>) {
        let zones: Vec<Arc<ServedZone>> = zones.into_iter().map(Arc::new).collect();
        let mut next = ZoneSet::default();
        for zone in &zones {
            next.insert(Arc::clone(zone));
        }
        self.update(|set| *set = next);
        prepare_in_background(zones);
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

/// Builds the precomputed answers of new zone versions on a thread of their own, so a
/// version is served as soon as it is indexed (by the index alone until its answers are
/// ready). A version replaced before its turn is skipped.
fn prepare_in_background(zones: Vec<Arc<ServedZone>>) {
    let spawned = std::thread::Builder::new()
        .name("precompute".into())
        .spawn(move || {
            for zone in zones {
                // Only this thread holds it: the version is no longer served.
                if Arc::strong_count(&zone) == 1 {
                    continue;
                }
                let started = std::time::Instant::now();
                let names = zone.prepare_fast_answers().len();
                debug!(zone = %zone.origin(), names, took = ?started.elapsed(), "answers precomputed");
            }
        });
    if let Err(error) = spawned {
        debug!(%error, "could not start precomputing answers; the index answers alone");
    }
}
