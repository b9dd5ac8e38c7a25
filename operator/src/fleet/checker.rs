//! The checker: one task that keeps the list of ready DNS pods, checks (pod, zone) pairs
//! after each publish, on a full sweep, and when a pod appears, and re-syncs pods that lag.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use hickory_proto::rr::Name;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api,
    runtime::{WatchStreamExt, reflector, watcher},
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use zonefleet_nats::{RefusedVersion, ResyncReply, ResyncRequest};

use super::{
    FleetSettings, PublishNotice,
    endpoints::{DnsEndpoint, ready_endpoints},
    health::{self, Expected, Observed, Verdict},
    probe::{self, ProbeError, ServedVersions, SoaAnswer},
    report::Reporter,
};
use crate::{controller::Context, metrics::ZoneLabels, zone::ObjectKey};

/// A zone the pods should serve.
#[derive(Clone, Debug)]
struct Target {
    origin: Name,
    /// The lowercased apex, as `/zones` keys it.
    origin_key: String,
    expected: Expected,
}

impl Target {
    /// The target for a zone apex (as written in the Zone), or None if it is no name.
    fn new(domain: &str, expected: Expected) -> Option<Self> {
        let origin = apex(domain)?;
        Some(Self {
            origin_key: apex_key(&origin),
            origin,
            expected,
        })
    }
}

/// A Zone's apex as a fully qualified name, or None if it is no name.
fn apex(domain: &str) -> Option<Name> {
    let mut origin = Name::from_ascii(domain).ok()?;
    origin.set_fqdn(true);
    Some(origin)
}

/// How `/zones` keys an apex: lowercased, fully qualified.
fn apex_key(origin: &Name) -> String {
    origin.to_lowercase().to_ascii()
}

/// A re-sync in progress for one (pod, zone) pair.
#[derive(Clone, Debug)]
struct Repair {
    attempts: u32,
    next: Instant,
    reported: bool,
}

/// A publish whose propagation is being watched.
#[derive(Clone, Copy, Debug)]
struct Propagation {
    serial: u32,
    published: Instant,
    deadline: Instant,
}

type Pair = (String, ObjectKey);

struct Checker {
    ctx: Arc<Context>,
    nats: async_nats::Client,
    settings: FleetSettings,
    http: reqwest::Client,
    reporter: Reporter,
    endpoints: BTreeMap<String, DnsEndpoint>,
    targets: HashMap<ObjectKey, Target>,
    verdicts: HashMap<ObjectKey, BTreeMap<String, Verdict>>,
    repairs: HashMap<Pair, Repair>,
    propagations: HashMap<ObjectKey, Propagation>,
    /// Zones a pod serves that are no longer published (apex, per pod).
    stale: HashMap<String, HashSet<String>>,
    /// Set when verdicts or endpoints changed since the last report.
    dirty: bool,
    /// Where finished re-sync requests report: pod, zones, result.
    resync_done: mpsc::UnboundedSender<(String, Vec<ObjectKey>, ResyncOutcome)>,
    /// Versions the pods refused (they could not decode or build them), by (pod,
    /// lowercased apex), from their re-sync replies: the status says why a pod lags.
    refusals: HashMap<(String, String), RefusedVersion>,
}

/// Runs the checker until the task is dropped. `reconcile` asks the Zone controller to
/// reconcile a Zone again (its Degraded condition includes the fleet's problems).
pub async fn run(
    ctx: Arc<Context>,
    nats: async_nats::Client,
    settings: FleetSettings,
    mut notices: mpsc::UnboundedReceiver<PublishNotice>,
    reconcile: mpsc::UnboundedSender<ObjectKey>,
) {
    let (endpoints_tx, mut endpoints_rx) = watch::channel(BTreeMap::new());
    tokio::spawn(watch_endpoints(ctx.clone(), settings.clone(), endpoints_tx));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let (resync_done, mut resyncs) = mpsc::unbounded_channel();
    let mut checker = Checker {
        reporter: Reporter::new(ctx.clone(), reconcile, settings.service_namespace.clone()),
        ctx,
        nats,
        http,
        endpoints: BTreeMap::new(),
        targets: HashMap::new(),
        verdicts: HashMap::new(),
        repairs: HashMap::new(),
        propagations: HashMap::new(),
        stale: HashMap::new(),
        dirty: false,
        resync_done,
        refusals: HashMap::new(),
        settings,
    };
    info!(service = %format!("{}/{}", checker.settings.service_namespace, checker.settings.service_name),
        sweep = ?checker.settings.sweep, "fleet health checker started");
    let mut sweep = tokio::time::interval(checker.settings.sweep);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = endpoints_rx.changed() => {
                if changed.is_err() {
                    warn!("the EndpointSlice watch ended; the checker stops");
                    return;
                }
                let endpoints = endpoints_rx.borrow_and_update().clone();
                checker.on_endpoints(endpoints).await;
            }
            Some(notice) = notices.recv() => {
                // Publishes queue up while a check runs (1,000 new Zones are 1,000
                // notices): take all that wait and check them together.
                let mut batch = vec![notice];
                while let Ok(more) = notices.try_recv() {
                    batch.push(more);
                }
                checker.on_publishes(batch).await;
            }
            Some((pod, keys, result)) = resyncs.recv() => {
                checker.on_resync_done(pod, keys, result).await;
            }
            _ = sweep.tick() => checker.sweep().await,
            _ = tick.tick() => checker.follow_up().await,
        }
        checker.report();
    }
}

/// Feeds the ready endpoints of the DNS Service into `tx` on every change.
async fn watch_endpoints(
    ctx: Arc<Context>,
    settings: FleetSettings,
    tx: watch::Sender<BTreeMap<String, DnsEndpoint>>,
) {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &settings.service_namespace);
    let config = watcher::Config::default().labels(&format!(
        "kubernetes.io/service-name={}",
        settings.service_name
    ));
    let (store, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api, config))
        .default_backoff()
        .boxed();
    loop {
        // Every event, InitDone included: the store holds a relist only once it is done.
        match events.next().await {
            Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => continue,
            Some(Ok(_)) => {}
            None => return,
            Some(Err(error)) => {
                warn!(%error, "watching the DNS Service's EndpointSlices");
                continue;
            }
        }
        let slices: Vec<EndpointSlice> = store.state().iter().map(|s| (**s).clone()).collect();
        let endpoints = ready_endpoints(&slices, &settings.ports);
        tx.send_if_modified(|current| {
            let changed = *current != endpoints;
            *current = endpoints;
            changed
        });
    }
}

impl Checker {
    /// The zones from the Zone store: the newer of the status and what this replica just
    /// published.
    fn refresh_targets(&mut self) {
        let published = self
            .ctx
            .published
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let mut targets = HashMap::new();
        for guard in self.ctx.zones.state() {
            let Ok(zone) = &guard.0 else { continue };
            if zone.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let key = crate::controller::key_of(zone);
            let status = zone.status.as_ref();
            let from_status = status.and_then(|s| Some((s.serial?, s.digest.clone()?)));
            let mine = published.get(&key).map(|p| (p.serial, p.digest.clone()));
            let (serial, digest) = match (from_status, mine) {
                (Some(a), Some(b)) => {
                    if crate::serial::is_newer(b.0, a.0) {
                        b
                    } else {
                        a
                    }
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => continue,
            };
            let Some(target) = Target::new(&zone.spec.domain, Expected { serial, digest }) else {
                continue;
            };
            targets.insert(key, target);
        }
        // A notice may be newer than both.
        for (key, target) in &self.targets {
            if let Some(current) = targets.get_mut(key)
                && crate::serial::is_newer(target.expected.serial, current.expected.serial)
            {
                current.expected = target.expected.clone();
            }
        }
        self.dirty |= targets.len() != self.targets.len()
            || targets
                .iter()
                .any(|(key, t)| self.targets.get(key).map(|c| &c.expected) != Some(&t.expected));
        self.verdicts.retain(|key, _| targets.contains_key(key));
        self.repairs.retain(|(_, key), _| targets.contains_key(key));
        self.propagations.retain(|key, _| targets.contains_key(key));
        self.targets = targets;
    }

    async fn on_endpoints(&mut self, endpoints: BTreeMap<String, DnsEndpoint>) {
        let added: Vec<String> = endpoints
            .keys()
            .filter(|pod| !self.endpoints.contains_key(*pod))
            .cloned()
            .collect();
        let removed: Vec<String> = self
            .endpoints
            .keys()
            .filter(|pod| !endpoints.contains_key(*pod))
            .cloned()
            .collect();
        for pod in &removed {
            info!(%pod, "DNS pod left: no longer counted");
            for verdicts in self.verdicts.values_mut() {
                verdicts.remove(pod);
            }
            self.repairs.retain(|(p, _), _| p != pod);
            self.refusals.retain(|(p, _), _| p != pod);
            self.stale.remove(pod);
        }
        self.endpoints = endpoints;
        self.dirty = true;
        self.ctx
            .metrics
            .fleet
            .pods
            .set(i64::try_from(self.endpoints.len()).unwrap_or(i64::MAX));
        if !added.is_empty() {
            info!(pods = ?added, "DNS pods ready: checking every zone on them");
            self.refresh_targets();
            let pairs = self.pairs_of(&added, None);
            self.check(pairs).await;
        }
    }

    /// Takes publishes in the order they were made, and checks every ready pod for each zone
    /// published, once per zone.
    async fn on_publishes(&mut self, notices: Vec<PublishNotice>) {
        let zones = zones_published(&notices);
        for notice in notices {
            let expected = Expected {
                serial: notice.serial,
                digest: notice.digest.clone(),
            };
            let Some(target) = Target::new(&notice.origin, expected) else {
                continue;
            };
            self.targets.insert(notice.zone.clone(), target);
            self.propagations.insert(
                notice.zone.clone(),
                Propagation {
                    serial: notice.serial,
                    published: notice.at,
                    deadline: notice.at + self.settings.publish_deadline,
                },
            );
        }
        // New expectations: the views change even where no pod's verdict does (a pod that
        // served the last serial and now serves this one is synced before and after).
        self.dirty = true;
        let pods: Vec<String> = self.endpoints.keys().cloned().collect();
        let pairs = self.pairs_of(&pods, Some(&zones));
        self.check(pairs).await;
    }

    async fn sweep(&mut self) {
        let started = Instant::now();
        self.refresh_targets();
        let pods: Vec<String> = self.endpoints.keys().cloned().collect();
        let pairs = self.pairs_of(&pods, None);
        let count = pairs.len();
        self.check(pairs).await;
        let took = started.elapsed();
        self.ctx
            .metrics
            .fleet
            .sweep_duration
            .observe(took.as_secs_f64());
        debug!(pairs = count, ?took, "sweep done");
    }

    /// Re-checks publishes still propagating, and sends the re-syncs that are due.
    async fn follow_up(&mut self) {
        let now = Instant::now();
        let mut recheck = Vec::new();
        for (key, propagation) in &self.propagations {
            for pod in self.endpoints.keys() {
                let synced = self
                    .verdicts
                    .get(key)
                    .and_then(|v| v.get(pod))
                    .is_some_and(|v| *v == Verdict::Synced);
                if !synced && now < propagation.deadline {
                    recheck.push((pod.clone(), key.clone()));
                }
            }
        }
        self.propagations.retain(|_, p| now < p.deadline);
        if !recheck.is_empty() {
            self.check(recheck).await;
        }
        self.resync_due().await;
    }

    /// Every (pod, zone) pair of `pods` and `zones` (all known zones if `None`).
    fn pairs_of(&self, pods: &[String], zones: Option<&[ObjectKey]>) -> Vec<Pair> {
        let zones: Vec<&ObjectKey> = match zones {
            Some(zones) => zones
                .iter()
                .filter(|zone| self.targets.contains_key(*zone))
                .collect(),
            None => self.targets.keys().collect(),
        };
        pods.iter()
            .flat_map(|pod| zones.iter().map(move |zone| (pod.clone(), (*zone).clone())))
            .collect()
    }

    /// Asks the pods about the pairs (concurrently, bounded) and records the verdicts.
    async fn check(&mut self, pairs: Vec<Pair>) {
        if pairs.is_empty() {
            return;
        }
        let wait = self.settings.query_timeout;
        // One `/zones` per pod, for the digests and for zones no longer published.
        let pods: HashSet<String> = pairs.iter().map(|(pod, _)| pod.clone()).collect();
        let admins: Vec<(String, SocketAddr)> = pods
            .into_iter()
            .filter_map(|pod| {
                let endpoint = self.endpoints.get(&pod)?;
                let admin = SocketAddr::new(endpoint.address, endpoint.admin_port?);
                Some((pod, admin))
            })
            .collect();
        let listings = list_zones(self.http.clone(), admins, wait, self.settings.concurrency).await;
        let queries: Vec<(String, ObjectKey, Name, SocketAddr)> = pairs
            .into_iter()
            .filter_map(|(pod, key)| {
                let endpoint = self.endpoints.get(&pod)?;
                let target = self.targets.get(&key)?;
                let server = SocketAddr::new(endpoint.address, endpoint.dns_port);
                Some((pod, key, target.origin.clone(), server))
            })
            .collect();
        let answers = ask_soa(queries, wait, self.settings.concurrency).await;
        for (pod, key, answer) in answers {
            let Some(target) = self.targets.get(&key) else {
                continue;
            };
            let listing = listings.get(&pod).and_then(|l| l.as_ref().ok());
            let observed = match answer {
                Ok(SoaAnswer::Refused) => Observed::Missing,
                Ok(SoaAnswer::Serial(serial)) => Observed::Serving {
                    serial,
                    digest: listing
                        .and_then(|l| l.get(&target.origin_key))
                        .filter(|(listed, _)| *listed == serial)
                        .map(|(_, digest)| digest.clone()),
                },
                Err(error) => {
                    self.count_error(&error);
                    Observed::Unreachable(error.to_string())
                }
            };
            let verdict = health::verdict(&target.expected, &observed);
            let previous = self
                .verdicts
                .entry(key.clone())
                .or_default()
                .insert(pod.clone(), verdict.clone());
            if previous.as_ref() != Some(&verdict) {
                self.dirty = true;
                let level_info = verdict != Verdict::Synced || previous.is_some();
                if level_info {
                    info!(%pod, zone = %key, expected = target.expected.serial, seen = ?observed,
                        verdict = verdict.label(), "check");
                } else {
                    debug!(%pod, zone = %key, serial = target.expected.serial, "check: synced");
                }
            }
            self.after_verdict(&pod, &key, &verdict);
        }
        // A zone served but not checked is stale unless a Zone in the store has its apex: a
        // pod can serve a new zone before its publish notice reaches the checker. The store
        // is only read when some pod serves such a zone.
        let checked: HashSet<&str> = self
            .targets
            .values()
            .map(|t| t.origin_key.as_str())
            .collect();
        let mut in_store: Option<HashSet<String>> = None;
        let mut stale_by_pod = Vec::new();
        for (pod, listing) in &listings {
            match listing {
                Ok(listing) => {
                    let stale: HashSet<String> = listing
                        .keys()
                        .filter(|zone| !checked.contains(zone.as_str()))
                        .filter(|zone| {
                            !in_store
                                .get_or_insert_with(|| self.apexes_in_store())
                                .contains(zone.as_str())
                        })
                        .cloned()
                        .collect();
                    if !stale.is_empty() {
                        info!(%pod, zones = ?stale, "the pod serves zones that are no longer published");
                    }
                    stale_by_pod.push((pod.clone(), stale));
                }
                Err(error) => {
                    self.count_error(error);
                    debug!(%pod, %error, "cannot read /zones");
                }
            }
        }
        self.stale.extend(stale_by_pod);
        self.finish_propagations();
    }

    /// The lowercased apexes of the Zones in the store that are not being deleted.
    fn apexes_in_store(&self) -> HashSet<String> {
        self.ctx
            .zones
            .state()
            .iter()
            .filter_map(|guard| {
                let zone = guard.0.as_ref().ok()?;
                if zone.metadata.deletion_timestamp.is_some() {
                    return None;
                }
                apex(&zone.spec.domain).map(|origin| apex_key(&origin))
            })
            .collect()
    }

    fn count_error(&self, error: &ProbeError) {
        self.ctx
            .metrics
            .fleet
            .check_errors
            .get_or_create(&crate::metrics::ErrorKindLabels { kind: error.kind() })
            .inc();
    }

    /// Starts, continues or ends the repair of a pair after a verdict.
    fn after_verdict(&mut self, pod: &str, key: &ObjectKey, verdict: &Verdict) {
        let pair = (pod.to_owned(), key.clone());
        if *verdict == Verdict::Synced {
            if let Some(repair) = self.repairs.remove(&pair) {
                info!(%pod, zone = %key, attempts = repair.attempts, "the pod serves the zone's version again");
                if repair.reported {
                    self.reporter.recovered(key, pod);
                }
            }
            return;
        }
        // A fresh publish may still be on its way: its deadline decides.
        let propagating = self
            .propagations
            .get(key)
            .is_some_and(|p| Instant::now() < p.deadline);
        if verdict.needs_resync() && !propagating {
            self.repairs.entry(pair).or_insert_with(|| Repair {
                attempts: 0,
                next: Instant::now(),
                reported: false,
            });
        }
    }

    /// Publishes whose every ready pod now serves them: observe the propagation time.
    fn finish_propagations(&mut self) {
        let done: Vec<ObjectKey> = self
            .propagations
            .iter()
            .filter(|(key, propagation)| {
                let Some(verdicts) = self.verdicts.get(*key) else {
                    return false;
                };
                let target_serial = self.targets.get(*key).map(|t| t.expected.serial);
                !self.endpoints.is_empty()
                    && target_serial == Some(propagation.serial)
                    && self
                        .endpoints
                        .keys()
                        .all(|pod| verdicts.get(pod) == Some(&Verdict::Synced))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in done {
            if let Some(propagation) = self.propagations.remove(&key) {
                let took = propagation.published.elapsed();
                self.ctx
                    .metrics
                    .fleet
                    .propagation
                    .observe(took.as_secs_f64());
                debug!(zone = %key, serial = propagation.serial, ?took, "every pod serves the new version");
            }
        }
    }

    /// Sends the re-syncs that are due, one request per pod, and checks the pairs again.
    async fn resync_due(&mut self) {
        let now = Instant::now();
        let mut due: BTreeMap<String, Vec<ObjectKey>> = BTreeMap::new();
        for ((pod, key), repair) in &self.repairs {
            if repair.next <= now {
                due.entry(pod.clone()).or_default().push(key.clone());
            }
        }
        let stale: Vec<(String, Vec<String>)> = self
            .stale
            .iter_mut()
            .filter(|(_, zones)| !zones.is_empty())
            .map(|(pod, zones)| (pod.clone(), std::mem::take(zones).into_iter().collect()))
            .collect();
        for (pod, zones) in &stale {
            due.entry(pod.clone()).or_default();
            info!(%pod, ?zones, "re-sync: the pod still serves deleted zones");
        }
        if due.is_empty() {
            return;
        }
        for (pod, keys) in due {
            let mut zones: Vec<String> = keys
                .iter()
                .filter_map(|key| self.targets.get(key).map(|t| t.origin_key.clone()))
                .collect();
            if let Some((_, extra)) = stale.iter().find(|(p, _)| *p == pod) {
                zones.extend(extra.iter().cloned());
            }
            let mut sent = Vec::new();
            let resync_timeout = self.resync_timeout();
            for key in &keys {
                let Some(repair) = self.repairs.get_mut(&(pod.clone(), key.clone())) else {
                    continue;
                };
                repair.attempts += 1;
                // Not due again before this request's answer (or timeout) is in.
                repair.next = now + self.settings.backoff.delay(repair.attempts) + resync_timeout;
                let verdict = self.verdicts.get(key).and_then(|v| v.get(&pod)).cloned();
                let expected = self.targets.get(key).map(|t| t.expected.serial);
                info!(%pod, zone = %key, ?expected, seen = ?verdict, attempt = repair.attempts,
                    "re-sync requested");
                let exhausted = self.settings.backoff.exhausted(repair.attempts);
                let first = repair.attempts == 1;
                if exhausted && !repair.reported {
                    repair.reported = true;
                    self.reporter
                        .degraded(key, &pod, repair.attempts, verdict.as_ref(), expected);
                } else if first {
                    self.reporter
                        .resyncing(key, &pod, verdict.as_ref(), expected);
                }
                sent.push(key.clone());
            }
            // The request runs on its own: a pod that does not answer must not hold up the
            // checks of the others.
            let nats = self.nats.clone();
            let subject = self.settings.layout.resync_subject(&pod);
            let wait = self.resync_timeout();
            let done = self.resync_done.clone();
            tokio::spawn(async move {
                let result = resync(&nats, subject, &pod, zones, wait).await;
                let _ = done.send((pod, sent, result));
            });
        }
    }

    /// How long a re-sync request may take.
    fn resync_timeout(&self) -> Duration {
        self.settings.query_timeout * 5
    }

    /// A re-sync request came back: count it, and check its pairs again.
    async fn on_resync_done(&mut self, pod: String, keys: Vec<ObjectKey>, outcome: ResyncOutcome) {
        self.ctx
            .metrics
            .fleet
            .resyncs
            .get_or_create(&crate::metrics::ResultLabels {
                result: outcome.result.label(),
            })
            .inc();
        if let Some(refused) = outcome.refused {
            for key in &keys {
                if let Some(target) = self.targets.get(key) {
                    self.refusals
                        .remove(&(pod.clone(), target.origin_key.clone()));
                }
            }
            for refusal in refused {
                let apex = refusal.zone.to_ascii_lowercase();
                warn!(%pod, zone = %apex, serial = ?refusal.serial, reason = %refusal.reason,
                    error = %refusal.error, "the pod refused a zone version");
                self.refusals.insert((pod.clone(), apex), refusal);
            }
            self.dirty = true;
        }
        let now = Instant::now();
        for key in &keys {
            if let Some(repair) = self.repairs.get_mut(&(pod.clone(), key.clone())) {
                repair.next = now + self.settings.backoff.delay(repair.attempts);
            }
        }
        let pairs = keys.into_iter().map(|key| (pod.clone(), key)).collect();
        self.check(pairs).await;
    }

    /// Reports what changed to the Zone controller (which writes the statuses), and sets
    /// the gauges.
    fn report(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let mut total_out = 0i64;
        let mut summaries = Vec::new();
        for (key, target) in &self.targets {
            let verdicts = self.verdicts.get(key);
            let pairs: Vec<(&str, &Verdict)> = self
                .endpoints
                .keys()
                .filter_map(|pod| Some((pod.as_str(), verdicts?.get(pod)?)))
                .collect();
            // Not every ready pod checked yet: nothing to say.
            if pairs.len() < self.endpoints.len() {
                continue;
            }
            let summary = health::summary(pairs.iter().copied());
            let out = i64::from(summary.total - summary.synced);
            total_out += out;
            self.ctx
                .metrics
                .fleet
                .out_of_sync
                .get_or_create(&ZoneLabels {
                    zone: key.to_string(),
                })
                .set(out);
            let lowest_served = lowest_served(&self.endpoints, verdicts, &target.expected);
            summaries.push((
                key.clone(),
                target.expected.clone(),
                summary,
                lowest_served,
                pairs_text(&pairs, target, &self.refusals),
            ));
        }
        self.ctx.metrics.fleet.out_of_sync_pairs.set(total_out);
        self.reporter.update(summaries);
    }
}

/// The zones of a batch of publishes, each once, in the order first published.
fn zones_published(notices: &[PublishNotice]) -> Vec<ObjectKey> {
    let mut seen = HashSet::new();
    notices
        .iter()
        .filter(|notice| seen.insert(&notice.zone))
        .map(|notice| notice.zone.clone())
        .collect()
}

/// Reads every pod's `/zones`, a bounded number at once (the first half of a check).
pub async fn list_zones(
    http: reqwest::Client,
    admins: Vec<(String, SocketAddr)>,
    wait: Duration,
    concurrency: usize,
) -> HashMap<String, Result<ServedVersions, ProbeError>> {
    stream::iter(admins)
        .map(move |(pod, admin)| {
            let http = http.clone();
            async move {
                let listing = probe::served_versions(&http, admin, wait).await;
                (pod, listing)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// Asks every (pod, zone) for the zone's SOA, a bounded number at once (the second half of a
/// check).
pub async fn ask_soa(
    queries: Vec<(String, ObjectKey, Name, SocketAddr)>,
    wait: Duration,
    concurrency: usize,
) -> Vec<(String, ObjectKey, Result<SoaAnswer, ProbeError>)> {
    stream::iter(queries)
        .map(move |(pod, key, origin, server)| async move {
            let answer = probe::soa(server, &origin, wait).await;
            (pod, key, answer)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// Sends one re-sync request; returns the result label.
/// How a re-sync request ended.
#[derive(Debug)]
struct ResyncOutcome {
    /// How it ended.
    result: ResyncResult,
    /// The versions the pod refused, of the zones asked about, when it replied.
    refused: Option<Vec<RefusedVersion>>,
}

/// How a re-sync request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResyncResult {
    /// The pod re-synced every zone asked about.
    Ok,
    /// The request failed, the reply was malformed, or some zones could not be re-synced.
    Error,
    /// No reply in time.
    Timeout,
}

impl ResyncResult {
    /// The metric label.
    fn label(self) -> &'static str {
        match self {
            ResyncResult::Ok => "ok",
            ResyncResult::Error => "error",
            ResyncResult::Timeout => "timeout",
        }
    }
}

async fn resync(
    nats: &async_nats::Client,
    subject: String,
    pod: &str,
    zones: Vec<String>,
    wait: Duration,
) -> ResyncOutcome {
    let failed = |result| ResyncOutcome {
        result,
        refused: None,
    };
    // Many zones: ask for everything at once.
    let request = if zones.len() > 64 {
        ResyncRequest::default()
    } else {
        ResyncRequest { zones }
    };
    let body = match serde_json::to_vec(&request) {
        Ok(body) => body,
        Err(_) => return failed(ResyncResult::Error),
    };
    let reply = tokio::time::timeout(wait, nats.request(subject, body.into())).await;
    match reply {
        Err(_) => {
            warn!(%pod, "re-sync request timed out");
            failed(ResyncResult::Timeout)
        }
        Ok(Err(error)) => {
            warn!(%pod, %error, "re-sync request failed");
            failed(ResyncResult::Error)
        }
        Ok(Ok(message)) => match serde_json::from_slice::<ResyncReply>(&message.payload) {
            Ok(reply) => {
                if !reply.errors.is_empty() {
                    warn!(%pod, errors = ?reply.errors, "the pod could not re-sync everything");
                }
                ResyncOutcome {
                    result: if reply.errors.is_empty() {
                        ResyncResult::Ok
                    } else {
                        ResyncResult::Error
                    },
                    refused: Some(reply.refused),
                }
            }
            Err(error) => {
                warn!(%pod, %error, "malformed re-sync reply");
                failed(ResyncResult::Error)
            }
        },
    }
}

/// The lowest serial every ready pod serves (None if some pod serves none).
fn lowest_served(
    endpoints: &BTreeMap<String, DnsEndpoint>,
    verdicts: Option<&BTreeMap<String, Verdict>>,
    expected: &Expected,
) -> Option<u32> {
    let verdicts = verdicts?;
    let mut lowest: Option<u32> = None;
    for pod in endpoints.keys() {
        let serial = match verdicts.get(pod)? {
            Verdict::Synced | Verdict::WrongContent { .. } => expected.serial,
            Verdict::Lagging { seen } | Verdict::Ahead { seen } => *seen,
            Verdict::Missing | Verdict::Unreachable(_) => return None,
        };
        lowest = Some(match lowest {
            Some(current) if crate::serial::is_newer(serial, current) => current,
            _ => serial,
        });
    }
    lowest
}

/// "dns-b serves 3", for condition messages.
fn pairs_text(
    pairs: &[(&str, &Verdict)],
    target: &Target,
    refusals: &HashMap<(String, String), RefusedVersion>,
) -> String {
    let expected = &target.expected;
    let lagging: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| **v != Verdict::Synced)
        .map(|(pod, verdict)| {
            let refused = refusals
                .get(&((*pod).to_owned(), target.origin_key.clone()))
                .map(|r| {
                    format!(
                        " (it refused serial {}: {})",
                        r.serial.map_or("?".into(), |s| s.to_string()),
                        r.error
                    )
                })
                .unwrap_or_default();
            format!("{}{refused}", lagging_text(pod, verdict, expected))
        })
        .collect();
    lagging.join("; ")
}

/// What one lagging pod does, for people.
fn lagging_text(pod: &str, verdict: &Verdict, expected: &Expected) -> String {
    match verdict {
        Verdict::Lagging { seen } => format!("{pod} serves serial {seen}"),
        Verdict::Ahead { seen } => format!("{pod} serves serial {seen}"),
        Verdict::WrongContent { .. } => {
            format!("{pod} serves serial {} with other content", expected.serial)
        }
        Verdict::Missing => format!("{pod} does not serve the zone"),
        Verdict::Unreachable(why) => format!("{pod} does not answer ({why})"),
        Verdict::Synced => String::new(),
    }
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("pods", &self.endpoints.len())
            .field("zones", &self.targets.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn notice(zone: &str, serial: u32) -> PublishNotice {
        PublishNotice {
            zone: key(zone),
            origin: format!("{zone}.example."),
            serial,
            digest: String::new(),
            at: Instant::now(),
        }
    }

    #[test]
    fn a_batch_of_publishes_checks_each_zone_once() {
        let batch = [
            notice("a", 1),
            notice("b", 1),
            notice("a", 2),
            notice("c", 1),
            notice("a", 3),
        ];
        assert_eq!(zones_published(&batch), [key("a"), key("b"), key("c")]);
    }
}
