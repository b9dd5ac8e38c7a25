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
use prometheus_client::metrics::gauge::Gauge;
use tracing::debug;
use zonefleet_wire::{ApplyError, Delta, Snapshot, SnapshotReader};

use crate::{
    authority::{BuildError, ZoneIndex},
    encode::templates::AnswerTemplates,
};

/// One served zone version: an immutable index and its precomputed answers, replaced as a
/// whole on update. (It also plugs into hickory-server as a `ZoneHandler`, see
/// [`crate::zone_handler`].)
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
    /// The deltas that led to this version, oldest first (at most [`HISTORY_DELTAS`]): what
    /// an incremental zone transfer (RFC 1995) is made of. Empty for a version loaded whole.
    history: Arc<[Arc<Delta>]>,
}

/// How many deltas a zone version keeps for incremental transfers; a secondary further
/// behind gets a full transfer.
pub const HISTORY_DELTAS: usize = 32;

impl ServedZone {
    /// Indexes a snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Self, BuildError> {
        let index = ZoneIndex::build(&snapshot.origin, snapshot.records)?;
        Ok(Self::from_index(index, snapshot.digest))
    }

    /// Indexes an encoded snapshot, decoding its records one at a time (a large zone is
    /// never held as hickory `Record`s), and checks them against the digest it carries.
    pub fn from_encoded(bytes: &[u8]) -> Result<Self, LoadError> {
        let mut reader = SnapshotReader::new(bytes).map_err(LoadError::Malformed)?;
        let origin = reader.origin.clone();
        let carried = std::mem::take(&mut reader.digest);
        let records = reader
            .by_ref()
            .map(|record| record.map_err(BuildError::Malformed));
        let index = ZoneIndex::build_from(&origin, records)?;
        if index.digest().as_slice() != carried.as_slice() {
            return Err(LoadError::Digest {
                expected: zonefleet_wire::hex(&carried),
                actual: zonefleet_wire::hex(index.digest()),
            });
        }
        Ok(Self::from_index(index, carried))
    }

    /// The version `delta` makes from this one: this version's records (decoded one name
    /// at a time) without the removed ones, with the added ones, checked against the
    /// delta's digest. Neither version is ever held as hickory `Record`s all at once.
    pub fn apply(&self, delta: &Delta) -> Result<Self, DeltaError> {
        delta.check_base(self.serial())?;
        let mut removal = delta.removal();
        let index = ZoneIndex::build(
            self.origin(),
            self.index
                .records()
                .filter(|record| removal.keeps(record))
                .chain(delta.added.iter().cloned()),
        )?;
        removal.finish()?;
        if index.digest().as_slice() != delta.digest.as_slice() {
            return Err(ApplyError::DigestMismatch {
                expected: zonefleet_wire::hex(&delta.digest),
                actual: zonefleet_wire::hex(index.digest()),
            }
            .into());
        }
        let mut next = Self::from_index(index, delta.digest.clone());
        let kept = self.history.len().saturating_sub(HISTORY_DELTAS - 1);
        next.history = self.history[kept..]
            .iter()
            .cloned()
            .chain(std::iter::once(Arc::new(delta.clone())))
            .collect();
        Ok(next)
    }

    /// The deltas from the version at `serial` to this one, oldest first, if this version
    /// still knows them all; empty when `serial` is this version's.
    pub fn deltas_since(&self, serial: u32) -> Option<&[Arc<Delta>]> {
        if serial == self.serial() {
            return Some(&[]);
        }
        let start = self
            .history
            .iter()
            .position(|delta| delta.from_serial == serial)?;
        let chain = &self.history[start..];
        let linked = chain
            .windows(2)
            .all(|pair| pair[0].serial == pair[1].from_serial);
        let ends_here = chain
            .last()
            .is_some_and(|last| last.serial == self.serial());
        (linked && ends_here).then_some(chain)
    }

    /// The version encoded as a snapshot, written from the index a record at a time.
    pub fn encode(&self) -> Result<Vec<u8>, zonefleet_wire::WireError> {
        zonefleet_wire::encode_snapshot(
            self.origin(),
            self.serial(),
            &self.digest,
            self.index.record_count(),
            self.index.records(),
        )
    }

    fn from_index(index: ZoneIndex, digest: Vec<u8>) -> Self {
        let wire_origin = index
            .origin()
            .to_lowercase()
            .to_bytes()
            .unwrap_or_default()
            .into_boxed_slice();
        Self {
            lower_origin: LowerName::new(index.origin()),
            index,
            digest,
            wire_origin,
            templates: OnceLock::new(),
            history: Arc::from([]),
        }
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
        self.templates
            .get_or_init(|| AnswerTemplates::build(&self.index))
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

/// Why an encoded snapshot is not served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It does not decode as a snapshot.
    #[error("malformed snapshot: {0}")]
    Malformed(#[source] zonefleet_wire::WireError),
    /// Its records do not make a zone.
    #[error(transparent)]
    Index(#[from] BuildError),
    /// Its records do not have the digest it carries.
    #[error("the records' digest {actual} differs from the snapshot's {expected}")]
    Digest {
        /// The digest it carries (hex).
        expected: String,
        /// The digest of its records (hex).
        actual: String,
    },
}

/// Why a delta does not make a version from a served one.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// It is not for this version, or its result is not what it announces.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Its result does not make a zone.
    #[error(transparent)]
    Index(#[from] BuildError),
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
    precompute_pending: Gauge,
}

impl ZoneStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Zone versions whose answers are not precomputed yet (a gauge for `/metrics`; until
    /// they are, those versions are answered by index lookups).
    pub fn precompute_pending(&self) -> &Gauge {
        &self.precompute_pending
    }

    /// The zones served now. Lock-free; the set stays valid while it is held.
    pub fn load(&self) -> Arc<ZoneSet> {
        self.current.load_full()
    }

    /// Serves `zone` in place of any version of the same zone.
    pub fn insert(&self, zone: ServedZone) {
        let zone = Arc::new(zone);
        self.update(|set| set.insert(Arc::clone(&zone)));
        prepare_in_background(vec![zone], self.precompute_pending.clone());
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
        prepare_in_background(zones, self.precompute_pending.clone());
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
/// ready). A version replaced before its turn is skipped. `pending` counts the versions
/// not done yet.
fn prepare_in_background(zones: Vec<Arc<ServedZone>>, pending: Gauge) {
    let count = i64::try_from(zones.len()).unwrap_or(i64::MAX);
    pending.inc_by(count);
    let left = pending.clone();
    let spawned = std::thread::Builder::new()
        .name("precompute".into())
        .spawn(move || {
            for zone in zones {
                // A version only this thread holds is no longer served.
                if Arc::strong_count(&zone) > 1 {
                    let started = std::time::Instant::now();
                    let names = zone.prepare_fast_answers().len();
                    debug!(zone = %zone.origin(), names, took = ?started.elapsed(), "answers precomputed");
                }
                left.dec();
            }
        });
    if let Err(error) = spawned {
        pending.dec_by(count);
        debug!(%error, "could not start precomputing answers; the index answers alone");
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::serialize::txt::Parser;

    use super::*;

    fn snapshot() -> Snapshot {
        let origin = Name::from_ascii("example.com.").unwrap();
        let text =
            "@ 60 IN SOA ns1 hostmaster 4 60 60 60 60\n@ 60 IN NS ns1\nns1 60 IN A 192.0.2.1\n";
        let (_, rrsets) = Parser::new(text, None, Some(origin.clone()))
            .parse()
            .unwrap();
        let records: Vec<_> = rrsets
            .into_values()
            .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
            .collect();
        Snapshot {
            digest: zonefleet_wire::zone_digest(&origin, &records).to_vec(),
            origin,
            serial: 4,
            records,
        }
    }

    #[test]
    fn an_encoded_snapshot_is_indexed_and_checked_against_its_digest() {
        let snapshot = snapshot();
        let zone = ServedZone::from_encoded(&snapshot.encode().unwrap()).unwrap();
        assert_eq!(zone.serial(), 4);
        assert_eq!(zone.digest, snapshot.digest);
        assert_eq!(zone.index.record_count(), 3);

        let mut lying = snapshot.clone();
        lying.digest = vec![0; 32];
        assert!(matches!(
            ServedZone::from_encoded(&lying.encode().unwrap()),
            Err(LoadError::Digest { .. })
        ));
        let bytes = snapshot.encode().unwrap();
        assert!(matches!(
            ServedZone::from_encoded(&bytes[..bytes.len() - 2]),
            Err(LoadError::Index(BuildError::Malformed(_)))
        ));
        assert!(matches!(
            ServedZone::from_encoded(b"not a snapshot"),
            Err(LoadError::Malformed(_))
        ));
    }

    #[test]
    fn a_delta_applies_to_the_served_version_and_is_checked() {
        let old = snapshot();
        let mut new = old.clone();
        new.serial = 5;
        new.records
            .retain(|r| r.record_type() != hickory_proto::rr::RecordType::A);
        let (_, rrsets) = Parser::new(
            "@ 60 IN SOA ns1 hostmaster 5 60 60 60 60\nns1 60 IN A 192.0.2.9\n",
            None,
            Some(old.origin.clone()),
        )
        .parse()
        .unwrap();
        new.records
            .retain(|r| r.record_type() != hickory_proto::rr::RecordType::SOA);
        new.records.extend(
            rrsets
                .into_values()
                .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>()),
        );
        new.digest = zonefleet_wire::zone_digest(&new.origin, &new.records).to_vec();
        let delta = Delta::between(&old, &new);
        let served = ServedZone::from_snapshot(old.clone()).unwrap();
        let next = served.apply(&delta).unwrap();
        assert_eq!(next.serial(), 5);
        assert_eq!(next.digest, new.digest);
        let encoded = next.encode().unwrap();
        assert_eq!(
            ServedZone::from_encoded(&encoded).unwrap().digest,
            new.digest
        );

        // Not this version's delta, a lie about the result.
        assert!(matches!(
            next.apply(&delta),
            Err(DeltaError::Apply(ApplyError::WrongBase { .. }))
        ));
        let mut lying = delta.clone();
        lying.digest = vec![0; 32];
        assert!(matches!(
            served.apply(&lying),
            Err(DeltaError::Apply(ApplyError::DigestMismatch { .. }))
        ));
    }
}
