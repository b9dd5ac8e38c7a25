//! The controllers: Zones (assemble, version, publish, status) and Records (orphans).
//!
//! Both watch through [`DeserializeGuard`], so an object that does not deserialize is
//! reported on its own and never stalls the watch of the others.

pub mod fleet;
pub mod index;
pub mod record;
pub mod secondaries;
pub mod status;
pub mod zone;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use kube::{
    Api, Client, Resource, ResourceExt,
    core::DeserializeGuard,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store, reflector},
        watcher,
    },
};
use tokio::sync::watch;
use zonefleet_api::{Record, Zone};

pub use status::FleetView;

use crate::{error::Error, metrics::Metrics, publish::ZonePublisher, zone::ObjectKey};

/// The field manager of every status the operator writes.
pub const FIELD_MANAGER: &str = "zonefleet-operator";
/// The finalizer that publishes a Zone's retraction before it goes.
pub const ZONE_FINALIZER: &str = "dns.zonefleet.io/retract";

/// An Event's note, and whether kube-runtime's recorder may fold the Event into an earlier
/// one with the same reason (it counts repeats as a series and keeps the first note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// May be folded into a series: what a plain `String` is.
    Folded(String),
    /// Never folded: for notes that carry news, such as the serial published.
    News(String),
}

impl From<String> for Note {
    fn from(note: String) -> Self {
        Note::Folded(note)
    }
}

/// What the reconcilers share.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Where zone versions go.
    pub publisher: Arc<dyn ZonePublisher>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Events.
    pub recorder: Recorder,
    /// Who reports Events.
    pub reporter: Reporter,
    /// Every Record. The same watch triggers Zone reconciles, after this store has the
    /// change, so a reconcile always sees the Record that triggered it.
    pub records: Store<DeserializeGuard<Record>>,
    /// Every Zone, from the Zone controller's watch.
    pub zones: Store<DeserializeGuard<Zone>>,
    /// Whether this replica leads; reconciles stop writing when it does not.
    pub leading: watch::Receiver<bool>,
    /// Which Records reference which Zone.
    pub record_index: Arc<std::sync::RwLock<index::RecordIndex>>,
    /// The last version of each zone this replica published and recorded: its cache of the
    /// Zone may not show its own last status write yet, and a serial once published must
    /// never be decided again.
    pub published: Mutex<HashMap<ObjectKey, PublishedVersion>>,
    /// Per-zone Record tallies, for the gauges.
    pub tallies: Mutex<HashMap<ObjectKey, BTreeMap<&'static str, i64>>>,
    /// The pods the fleet health checker could not repair, per zone, and why: the Zone's
    /// `Degraded` condition says so.
    pub fleet_problems: Mutex<HashMap<ObjectKey, String>>,
    /// The last status this replica wrote for each Zone, with the resourceVersion it
    /// made, until the cache shows it.
    pub zone_statuses: Mutex<HashMap<ObjectKey, (String, zonefleet_api::ZoneStatus)>>,
    /// The last assembly of each zone, with a fingerprint of its inputs.
    pub assemblies: Mutex<HashMap<ObjectKey, (u64, Arc<crate::zone::Assembly>)>>,
    /// What the fleet health checker last saw of each zone; `Ready` needs it.
    pub fleet_views: Mutex<HashMap<ObjectKey, status::FleetView>>,
    /// Where publishes are announced to the fleet health checker, if it runs.
    pub publish_notices: Option<tokio::sync::mpsc::UnboundedSender<crate::fleet::PublishNotice>>,
    /// Asks the Zone controller to reconcile a Zone again.
    pub zone_triggers: tokio::sync::mpsc::UnboundedSender<ObjectKey>,
    /// The generation and deletion state of each Zone as last reconciled: when they change,
    /// the Zones whose domain ownership may depend on it are reconciled too.
    pub claims_seen: Mutex<HashMap<ObjectKey, (Option<i64>, bool)>>,
    /// Where each zone's external secondaries are handed to the secondaries tracker, if it
    /// runs.
    pub secondaries: Option<tokio::sync::mpsc::UnboundedSender<crate::secondaries::Update>>,
    /// What the secondaries tracker last reported of each zone's secondaries.
    pub secondaries_statuses: Mutex<HashMap<ObjectKey, zonefleet_api::SecondariesStatus>>,
}

/// The fleet health checker's knowledge of one zone, for the status.
#[derive(Clone, Debug)]
pub struct FleetState {
    checked: bool,
    view: Option<status::FleetView>,
}

impl FleetState {
    /// As the pure status functions take it.
    pub fn as_fleet(&self) -> status::Fleet<'_> {
        match (&self.view, self.checked) {
            (_, false) => status::Fleet::Off,
            (None, true) => status::Fleet::Unseen,
            (Some(view), true) => status::Fleet::Seen(view),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Fails when this replica is no longer the leader.
    pub fn ensure_leading(&self) -> Result<(), Error> {
        if *self.leading.borrow() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }

    /// What the fleet health checker knows of a zone, with the pods it could not repair.
    pub fn fleet_of(&self, zone: &ObjectKey) -> FleetState {
        let mut view = self
            .fleet_views
            .lock()
            .ok()
            .and_then(|views| views.get(zone).cloned());
        if let Some(view) = &mut view {
            view.problems = self
                .fleet_problems
                .lock()
                .ok()
                .and_then(|problems| problems.get(zone).cloned());
        }
        FleetState {
            checked: self.publish_notices.is_some(),
            view,
        }
    }

    /// Notes a Zone's claim on its domain as it is reconciled; when it is new, its spec
    /// changed or its deletion started, the Zones for related domains are reconciled too,
    /// since who owns what may have changed.
    pub fn announce_claim(
        &self,
        zone: &Zone,
        claim: Option<&crate::domains::Claim>,
        claims: &[crate::domains::Claim],
    ) {
        let key = key_of(zone);
        let state = (
            zone.meta().generation,
            zone.meta().deletion_timestamp.is_some(),
        );
        let changed = self
            .claims_seen
            .lock()
            .map(|mut seen| seen.insert(key, state) != Some(state))
            .unwrap_or(false);
        if let (true, Some(claim)) = (changed, claim) {
            for related in crate::domains::related(claim, claims) {
                let _ = self.zone_triggers.send(related.clone());
            }
        }
    }

    /// Forgets a deleted Zone: its published version, tallies, fleet view, assembly, last
    /// status, claim and metric series.
    pub fn forget_zone(&self, zone: &ObjectKey) {
        fn forget<V>(map: &Mutex<HashMap<ObjectKey, V>>, zone: &ObjectKey) {
            if let Ok(mut map) = map.lock() {
                map.remove(zone);
            }
        }
        self.tally(zone, None);
        forget(&self.published, zone);
        forget(&self.fleet_views, zone);
        forget(&self.assemblies, zone);
        forget(&self.zone_statuses, zone);
        forget(&self.fleet_problems, zone);
        forget(&self.claims_seen, zone);
        self.forget_secondaries(zone);
        self.metrics.forget_zone(zone);
    }

    /// Publishes an Event about an object; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        kind: EventType,
        reason: &str,
        note: impl Into<Note>,
    ) {
        if self.ensure_leading().is_err() {
            return;
        }
        let reference = obj.object_ref(&());
        let published = match note.into() {
            Note::Folded(note) => {
                let event = Event {
                    type_: kind,
                    reason: reason.into(),
                    note: Some(note),
                    action: "Reconcile".into(),
                    secondary: None,
                };
                self.recorder.publish(&event, &reference).await
            }
            Note::News(note) => self.publish_news(reference, kind, reason, note).await,
        };
        if let Err(e) = published {
            tracing::warn!(error = %e, reason, "could not publish an event");
        }
    }

    /// Creates an Event of its own, bypassing the recorder's series.
    async fn publish_news(
        &self,
        reference: k8s_openapi::api::core::v1::ObjectReference,
        kind: EventType,
        reason: &str,
        note: String,
    ) -> kube::Result<()> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let namespace = reference.namespace.clone();
        let event = k8s_openapi::api::events::v1::Event {
            action: Some("Reconcile".into()),
            reason: Some(reason.into()),
            note: Some(note),
            event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                now,
            )),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match kind {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            metadata: kube::api::ObjectMeta {
                namespace: namespace.clone(),
                // As kube-runtime's recorder names its Events.
                name: Some(format!(
                    "{}.{:x}",
                    reference.name.as_deref().unwrap_or("zonefleet"),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            regarding: Some(reference),
            ..Default::default()
        };
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(
            self.client.clone(),
            namespace.as_deref().unwrap_or("default"),
        );
        api.create(&Default::default(), &event).await.map(drop)
    }

    /// Records a zone's Record verdict counts and refreshes the gauges.
    pub fn tally(&self, zone: &ObjectKey, counts: Option<BTreeMap<&'static str, i64>>) {
        let Ok(mut tallies) = self.tallies.lock() else {
            return;
        };
        match counts {
            Some(counts) => tallies.insert(zone.clone(), counts),
            None => tallies.remove(zone),
        };
        self.metrics
            .zones
            .set(i64::try_from(tallies.len()).unwrap_or(i64::MAX));
        let mut totals: BTreeMap<&'static str, i64> = BTreeMap::new();
        for counts in tallies.values() {
            for (reason, n) in counts {
                *totals.entry(reason).or_default() += n;
            }
        }
        self.metrics.records.clear();
        for (reason, n) in totals {
            self.metrics
                .records
                .get_or_create(&crate::metrics::VerdictLabels { reason })
                .set(n);
        }
    }
}

/// A zone version as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVersion {
    /// Its serial.
    pub serial: u32,
    /// Its content digest.
    pub digest: String,
}

/// Runs `reconcile` on an object read through [`DeserializeGuard`]: a malformed object
/// gets a `Malformed` Event instead, and every outcome is counted and failures logged.
pub async fn guarded<'a, K, Fut>(
    kind: &'static str,
    guard: &'a DeserializeGuard<K>,
    ctx: &'a Context,
    reconcile: impl FnOnce(&'a K) -> Fut,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    Fut: std::future::Future<Output = Result<Action, Error>> + 'a,
{
    let started = std::time::Instant::now();
    let result = match &guard.0 {
        Ok(object) => reconcile(object).await,
        Err(invalid) => {
            ctx.event(
                guard,
                EventType::Warning,
                "Malformed",
                invalid.error.clone(),
            )
            .await;
            Err(Error::Malformed(Box::new(invalid.clone())))
        }
    };
    let outcome = result.as_ref().map_or_else(Error::category, |_| "success");
    ctx.metrics
        .observe_reconcile(kind, outcome, started.elapsed());
    if let Err(e) = &result {
        tracing::warn!(kind, object = %key_of(guard), category = e.category(), error = %e, "reconcile failed");
    }
    result
}

/// How errors are retried: transient ones with back-off, a bad spec waits for a change.
pub fn error_policy<K>(_obj: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    if error.is_transient() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::await_change()
    }
}

/// The fleet health checker's part: its settings and its NATS connection.
#[derive(Clone, Debug)]
pub struct FleetHealth {
    /// How it runs.
    pub settings: crate::fleet::FleetSettings,
    /// Where re-sync requests go.
    pub nats: async_nats::Client,
}

/// The settings the controllers run with.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// The controller's name in Events.
    pub reporter: String,
    /// This replica's name (the pod name) in Events.
    pub instance: Option<String>,
    /// How often every Zone is reconciled even without a change.
    pub resync: Duration,
    /// How many Zones (and, apart, Records) are reconciled at once.
    pub concurrency: u16,
    /// The fleet health checker, if the DNS pods are to be checked.
    pub fleet: Option<FleetHealth>,
}

/// Runs the Zone and Record controllers until shutdown.
///
/// There is one watch per kind. Each feeds its store from a task of its own and then fans
/// the changed objects out to the controllers: Zones trigger themselves, Records trigger
/// both their own controller and their Zone. Because the stores do not depend on the
/// controllers polling them, a reconcile waiting for a store never waits forever, also
/// while the controllers shut down.
pub async fn run(
    client: Client,
    publisher: Arc<dyn ZonePublisher>,
    metrics: Arc<Metrics>,
    leading: watch::Receiver<bool>,
    settings: ControllerSettings,
) {
    let mut zone_filter = ZoneFilter::default();
    let (zone_store, [zone_changes]) = shared_watch(
        Api::<DeserializeGuard<Zone>>::all(client.clone()),
        move |event| [zone_filter.wants(event)],
    );
    let record_index = Arc::new(std::sync::RwLock::new(index::RecordIndex::default()));
    let mut feeder = IndexFeeder {
        shared: record_index.clone(),
        relisting: None,
        generations: HashMap::new(),
    };
    let (record_store, [record_changes, record_zone_triggers]) = shared_watch(
        Api::<DeserializeGuard<Record>>::all(client.clone()),
        move |event| feeder.feed(event),
    );
    // Wait for both initial lists here, one waiter per store, before any controller or
    // reconcile waits on them: the stores' readiness signal wakes only one pending waiter,
    // so concurrent first waits could sleep forever. Once ready, every later wait returns
    // at once.
    for (kind, ready) in [
        ("Zone", zone_store.wait_until_ready().await),
        ("Record", record_store.wait_until_ready().await),
    ] {
        if let Err(e) = ready {
            tracing::error!(kind, error = %e, "the watch stopped before its first list");
            return;
        }
    }
    let reporter = Reporter {
        controller: settings.reporter.clone(),
        instance: settings.instance.clone(),
    };
    let (notices_tx, notices_rx) = tokio::sync::mpsc::unbounded_channel();
    let (reconcile_tx, reconcile_rx) = tokio::sync::mpsc::unbounded_channel::<ObjectKey>();
    let (secondaries_tx, secondaries_rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(Context {
        secondaries: Some(secondaries_tx),
        secondaries_statuses: Mutex::new(HashMap::new()),
        fleet_problems: Mutex::new(HashMap::new()),
        fleet_views: Mutex::new(HashMap::new()),
        assemblies: Mutex::new(HashMap::new()),
        zone_statuses: Mutex::new(HashMap::new()),
        publish_notices: settings.fleet.as_ref().map(|_| notices_tx),
        zone_triggers: reconcile_tx,
        claims_seen: Mutex::new(HashMap::new()),
        client: client.clone(),
        publisher,
        metrics,
        recorder: Recorder::new(client, reporter.clone()),
        reporter,
        records: record_store.clone(),
        zones: zone_store.clone(),
        leading,
        record_index,
        published: Mutex::new(HashMap::new()),
        tallies: Mutex::new(HashMap::new()),
    });

    let checker = settings.fleet.clone().map(|fleet| {
        tokio::spawn(crate::fleet::run(
            ctx.client.clone(),
            ctx.clone(),
            ctx.metrics.clone(),
            fleet.nats,
            fleet.settings,
            notices_rx,
        ))
    });
    let notifier = tokio::spawn(crate::secondaries::run(
        ctx.clone(),
        ctx.metrics.clone(),
        ctx.leading.clone(),
        secondaries_rx,
    ));
    let fleet_triggers = tokio_stream_of(reconcile_rx).map(|key: ObjectKey| {
        ObjectRef::<DeserializeGuard<Zone>>::new(&key.name).within(&key.namespace)
    });
    let resync = futures::stream::unfold((), move |()| async move {
        tokio::time::sleep(settings.resync).await;
        Some(((), ()))
    });
    let zone_loop = Controller::for_stream(zone_changes, zone_store)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .watches_stream(record_zone_triggers, zone_of_record)
        .reconcile_on(fleet_triggers)
        .reconcile_all_on(resync)
        .run(zone::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "zone reconcile failed");
            }
        });
    let record_loop = Controller::for_stream(record_changes, record_store)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .run(record::reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "record reconcile failed");
            }
        });
    tokio::join!(zone_loop, record_loop);
    notifier.abort();
    if let Some(checker) = checker {
        checker.abort();
    }
}

/// A stream of what arrives on a channel.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Decides which Zone changes need a reconcile: new or deleted Zones, a new spec
/// (generation), finalizers added or removed, and deletion starting. Status writes (the
/// controller's own, or the fleet health checker's) do not.
#[derive(Default)]
struct ZoneFilter {
    seen: HashMap<ObjectKey, (Option<i64>, Vec<String>, bool)>,
}

impl ZoneFilter {
    fn wants(&mut self, event: &watcher::Event<DeserializeGuard<Zone>>) -> bool {
        match event {
            watcher::Event::Apply(zone) | watcher::Event::InitApply(zone) => {
                let meta = zone.meta();
                let state = (
                    meta.generation,
                    meta.finalizers.clone().unwrap_or_default(),
                    meta.deletion_timestamp.is_some(),
                );
                // A Zone that does not deserialize has no generation we can trust: always.
                zone.0.is_err() || self.seen.insert(key_of(zone), state.clone()) != Some(state)
            }
            watcher::Event::Delete(zone) => {
                self.seen.remove(&key_of(zone));
                true
            }
            watcher::Event::Init | watcher::Event::InitDone => false,
        }
    }
}

/// A change stream handed to a controller.
type Changes<K> = futures::channel::mpsc::UnboundedReceiver<Result<K, watcher::Error>>;

/// Keeps the [`index::RecordIndex`] in step with the Record watch; a relist builds a fresh
/// index and swaps it in when the list is complete. It also says whether a Record's Zone
/// needs a reconcile: only when the Record is new, deleted, or its spec changed (a new
/// generation), not for the status writes the Zone reconcile itself makes.
struct IndexFeeder {
    shared: Arc<std::sync::RwLock<index::RecordIndex>>,
    relisting: Option<index::RecordIndex>,
    generations: HashMap<ObjectKey, Option<i64>>,
}

impl IndexFeeder {
    /// Updates the index; returns [to the Record controller, to the Zone controller].
    fn feed(&mut self, event: &watcher::Event<DeserializeGuard<Record>>) -> [bool; 2] {
        let spec_changed = match event {
            watcher::Event::Apply(record) | watcher::Event::InitApply(record) => {
                let generation = record.meta().generation;
                self.generations.insert(key_of(record), generation) != Some(generation)
            }
            watcher::Event::Delete(record) => {
                self.generations.remove(&key_of(record));
                true
            }
            watcher::Event::Init | watcher::Event::InitDone => false,
        };
        self.index(event);
        [true, spec_changed]
    }

    fn index(&mut self, event: &watcher::Event<DeserializeGuard<Record>>) {
        match event {
            watcher::Event::Init => self.relisting = Some(index::RecordIndex::default()),
            watcher::Event::InitApply(record) => {
                if let Some(fresh) = &mut self.relisting {
                    fresh.apply(record);
                }
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = self.relisting.take() {
                    *self.write() = fresh;
                }
            }
            watcher::Event::Apply(record) => self.write().apply(record),
            watcher::Event::Delete(record) => self.write().delete(record),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, index::RecordIndex> {
        self.shared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Watches `api` from a task of its own: the store is updated first, then `hook` sees the
/// event and says which of the `N` streams the changed (or deleted) object goes to.
fn shared_watch<K, const N: usize>(
    api: Api<K>,
    mut hook: impl FnMut(&watcher::Event<K>) -> [bool; N] + Send + 'static,
) -> (Store<K>, [Changes<K>; N])
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let channels: [_; N] = std::array::from_fn(|_| futures::channel::mpsc::unbounded());
    let (senders, receivers): (Vec<_>, Vec<_>) = channels.into_iter().unzip();
    tokio::spawn(async move {
        let mut events = reflector(
            writer,
            // Cached objects drop what the operator never reads: managed fields and
            // kubectl's copy of the last applied manifest are often bigger than the spec.
            watcher(api, watcher::Config::default().any_semantic()).modify(|object| {
                object.managed_fields_mut().clear();
                object
                    .annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
            }),
        )
        .default_backoff()
        .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    let wanted = hook(&event);
                    let object = match event {
                        watcher::Event::Apply(o)
                        | watcher::Event::InitApply(o)
                        | watcher::Event::Delete(o) => o,
                        watcher::Event::Init | watcher::Event::InitDone => continue,
                    };
                    for (sender, wanted) in senders.iter().zip(wanted) {
                        if wanted {
                            let _ = sender.unbounded_send(Ok(object.clone()));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying")
                }
            }
        }
    });
    let receivers: [Changes<K>; N] = match receivers.try_into() {
        Ok(receivers) => receivers,
        Err(_) => unreachable!("one receiver per sender"),
    };
    (store, receivers)
}

/// The Zone a Record refers to.
pub fn zone_of_record(
    record: DeserializeGuard<Record>,
) -> Option<ObjectRef<DeserializeGuard<Zone>>> {
    let record = record.0.ok()?;
    let (namespace, name) = zone_key_of(&record)?;
    Some(ObjectRef::new(&name).within(&namespace))
}

/// The (namespace, name) of the Zone a Record refers to.
pub fn zone_key_of(record: &Record) -> Option<(String, String)> {
    let namespace = record
        .spec
        .zone_ref
        .namespace
        .clone()
        .or_else(|| record.meta().namespace.clone())?;
    Some((namespace, record.spec.zone_ref.name.clone()))
}

/// The identity of an object.
pub fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    ObjectKey::of(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(generation: i64, zone: &str) -> DeserializeGuard<Record> {
        serde_json::from_value(json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
            "metadata": {"name": "www", "namespace": "dns", "generation": generation},
            "spec": {"zoneRef": {"name": zone}, "name": "www", "type": "A", "values": ["192.0.2.1"]},
        }))
        .unwrap()
    }

    #[test]
    fn only_spec_changes_and_deletions_trigger_the_zone() {
        let shared = Arc::new(std::sync::RwLock::new(index::RecordIndex::default()));
        let mut feeder = IndexFeeder {
            shared: shared.clone(),
            relisting: None,
            generations: HashMap::new(),
        };
        assert_eq!(
            feeder.feed(&watcher::Event::Apply(record(1, "z"))),
            [true, true],
            "new"
        );
        assert_eq!(
            feeder.feed(&watcher::Event::Apply(record(1, "z"))),
            [true, false],
            "a status write"
        );
        assert_eq!(
            feeder.feed(&watcher::Event::Apply(record(2, "other"))),
            [true, true],
            "a spec change"
        );
        let zone = |name: &str| ObjectKey {
            namespace: "dns".into(),
            name: name.into(),
        };
        assert!(shared.read().unwrap().records_of(&zone("z")).is_empty());
        assert_eq!(shared.read().unwrap().records_of(&zone("other")).len(), 1);
        assert_eq!(
            feeder.feed(&watcher::Event::Delete(record(2, "other"))),
            [true, true],
            "a deletion"
        );
        assert!(shared.read().unwrap().records_of(&zone("other")).is_empty());
    }

    #[test]
    fn a_relist_swaps_in_a_fresh_index() {
        let shared = Arc::new(std::sync::RwLock::new(index::RecordIndex::default()));
        let mut feeder = IndexFeeder {
            shared: shared.clone(),
            relisting: None,
            generations: HashMap::new(),
        };
        feeder.feed(&watcher::Event::Apply(record(1, "gone")));
        feeder.feed(&watcher::Event::Init);
        feeder.feed(&watcher::Event::InitApply(record(3, "kept")));
        let zone = |name: &str| ObjectKey {
            namespace: "dns".into(),
            name: name.into(),
        };
        assert_eq!(
            shared.read().unwrap().records_of(&zone("gone")).len(),
            1,
            "the old index serves until the list is complete"
        );
        feeder.feed(&watcher::Event::InitDone);
        assert!(shared.read().unwrap().records_of(&zone("gone")).is_empty());
        assert_eq!(shared.read().unwrap().records_of(&zone("kept")).len(), 1);
    }
}
