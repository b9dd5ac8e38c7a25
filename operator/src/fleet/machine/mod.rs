//! The checker's decisions, as a pure state machine: [`Event`]s in, [`Command`]s out.
//!
//! The [`Machine`] knows the ready DNS pods, the version each zone should be served at, the
//! verdict on every (pod, zone) pair, the publishes whose propagation it follows, the
//! re-syncs in progress and their backoff, the zones pods serve that are no longer
//! published, and the versions pods refused. It decides which pairs to probe, which pods to
//! re-sync and when, which views, problems and Events to report, and which metrics to set.
//! It does no I/O and reads no clock: time comes in with each event, so tests drive it with
//! made-up instants. The [`checker`](super::checker) carries its commands out.
//!
//! The contract with whoever drives it: feed the results of every [`Command::Probe`] back
//! as [`Event::Probed`] before any other event (a check is one step, as it was when the
//! checker awaited it inline), and the outcome of every [`Command::Resync`] as
//! [`Event::ResyncDone`] with the same pod and zones, whenever it ends.

#[cfg(test)]
mod tests;
mod text;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

use hickory_proto::rr::Name;
use tracing::{debug, info, warn};
use zonefleet_nats::RefusedVersion;

use super::{
    FleetSettings, PublishNotice,
    endpoints::DnsEndpoint,
    health::{self, Backoff, Expected, Observed, Verdict},
    probe::{ServedVersions, SoaAnswer},
    report::{EventKind, FleetEvent, FleetReport, FleetView, KnownZone},
};
use crate::zone::ObjectKey;

/// Above this many zones, a re-sync request asks for every zone at once.
const RESYNC_ALL_ABOVE: usize = 64;

/// How the machine decides.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long after a publish every pod should serve it: until then a pod that lags is
    /// checked again, not re-synced.
    pub publish_deadline: Duration,
    /// Re-sync pacing.
    pub backoff: Backoff,
    /// How long a re-sync request may take: a pair is not due again before its answer (or
    /// this timeout) is in.
    pub resync_timeout: Duration,
    /// The namespace of the DNS pods, for the Events that name them.
    pub pod_namespace: String,
}

impl Settings {
    /// The machine's part of the checker's settings: a re-sync request may take five DNS
    /// query timeouts.
    pub fn of(settings: &FleetSettings) -> Self {
        Self {
            publish_deadline: settings.publish_deadline,
            backoff: settings.backoff,
            resync_timeout: settings.query_timeout * 5,
            pod_namespace: settings.service_namespace.clone(),
        }
    }
}

/// What happens to the checker.
#[derive(Clone, Debug)]
pub enum Event {
    /// The ready DNS pods changed: every ready endpoint, by pod name, and the Zones in the
    /// store (read when pods were added, to check every zone on them).
    Endpoints {
        /// Every ready endpoint.
        endpoints: BTreeMap<String, DnsEndpoint>,
        /// The Zones in the store.
        zones: Vec<KnownZone>,
    },
    /// Versions were just published, in the order they were: every ready pod is checked
    /// for each zone, once per zone.
    Published(Vec<PublishNotice>),
    /// Time for a full sweep: every zone on every ready pod, against the Zones in the store.
    Sweep {
        /// The Zones in the store.
        zones: Vec<KnownZone>,
    },
    /// Time passed: publishes still propagating are checked again, and the re-syncs that
    /// are due are sent.
    Tick,
    /// The answers to the last [`Command::Probe`].
    Probed(ProbeResults),
    /// A re-sync request ended.
    ResyncDone {
        /// The pod asked.
        pod: String,
        /// The zones its repairs were for (as in the [`Resync`] command).
        keys: Vec<ObjectKey>,
        /// How it ended.
        outcome: ResyncOutcome,
    },
}

/// What the checker should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Ask pods what they serve; the answers come back as [`Event::Probed`].
    Probe(ProbeRequest),
    /// Ask a pod to re-sync zones over NATS; the outcome comes back as
    /// [`Event::ResyncDone`].
    Resync(Resync),
    /// Tell the Zone controller.
    Report(FleetReport),
    /// Set a metric.
    Metric(Metric),
}

/// Pods to ask, and what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeRequest {
    /// Pods whose `/zones` to read (for the digests, and for zones no longer published),
    /// with their admin address.
    pub listings: Vec<(String, SocketAddr)>,
    /// (pod, zone, apex, DNS address): whom to ask for which zone's SOA.
    pub queries: Vec<(String, ObjectKey, Name, SocketAddr)>,
}

/// What the pods answered to a [`ProbeRequest`].
#[derive(Clone, Debug, Default)]
pub struct ProbeResults {
    /// The `/zones` of each pod that could be read.
    pub listings: HashMap<String, ServedVersions>,
    /// Each query's SOA answer, or why there was none.
    pub answers: Vec<(String, ObjectKey, Result<SoaAnswer, String>)>,
    /// The lowercased apexes of every Zone in the store, looked up when
    /// [`Machine::needs_zone_apexes`] says so: a pod can serve a new zone before its publish
    /// notice arrives, so only zones no Zone has are stale. `None`: nothing is stale.
    pub apexes_in_store: Option<HashSet<String>>,
}

/// A re-sync request for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resync {
    /// The pod.
    pub pod: String,
    /// The apexes to re-sync; empty for every zone.
    pub zones: Vec<String>,
    /// The zones whose repairs the request is for.
    pub keys: Vec<ObjectKey>,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

/// A metric to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Ready DNS pods.
    Pods(usize),
    /// Ready pods that do not serve a zone's latest version.
    OutOfSync {
        /// The zone.
        zone: ObjectKey,
        /// How many.
        pods: i64,
    },
    /// (pod, zone) pairs out of sync, over every zone.
    OutOfSyncPairs(i64),
    /// Every ready pod serves a publish this long after it was made.
    Propagated(Duration),
}

/// How a re-sync request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResyncOutcome {
    /// How it ended.
    pub result: ResyncResult,
    /// The versions the pod refused, of the zones asked about, when it replied.
    pub refused: Option<Vec<RefusedVersion>>,
}

/// How a re-sync request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncResult {
    /// The pod re-synced every zone asked about.
    Ok,
    /// The request failed, the reply was malformed, or some zones could not be re-synced.
    Error,
    /// No reply in time.
    Timeout,
}

impl ResyncResult {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ResyncResult::Ok => "ok",
            ResyncResult::Error => "error",
            ResyncResult::Timeout => "timeout",
        }
    }
}

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

/// The lowercased apexes of `zones`, as [`ProbeResults::apexes_in_store`] wants them.
pub fn apex_keys(zones: &[KnownZone]) -> HashSet<String> {
    zones
        .iter()
        .filter_map(|zone| apex(&zone.domain).map(|origin| apex_key(&origin)))
        .collect()
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

/// The checker's state and decisions.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    endpoints: BTreeMap<String, DnsEndpoint>,
    targets: HashMap<ObjectKey, Target>,
    verdicts: HashMap<ObjectKey, BTreeMap<String, Verdict>>,
    repairs: HashMap<Pair, Repair>,
    propagations: HashMap<ObjectKey, Propagation>,
    /// Zones a pod serves that are no longer published (apex, per pod).
    stale: HashMap<String, HashSet<String>>,
    /// Versions the pods refused (they could not decode or build them), by (pod,
    /// lowercased apex), from their re-sync replies: the status says why a pod lags.
    refusals: HashMap<(String, String), RefusedVersion>,
    /// Pods the checker could not repair, per zone: pod → what is wrong.
    problems: HashMap<ObjectKey, BTreeMap<String, String>>,
    /// The last view reported of each zone.
    reported: HashMap<ObjectKey, FleetView>,
    /// Set when verdicts or endpoints changed since the last report.
    dirty: bool,
    /// A [`Command::Probe`] is out: nothing is reported until its answers are in.
    probing: bool,
    /// The re-syncs that are due go out once the probe that is out is answered.
    resync_after_probe: bool,
}

impl Machine {
    /// A machine that knows no pods and no zones yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            endpoints: BTreeMap::new(),
            targets: HashMap::new(),
            verdicts: HashMap::new(),
            repairs: HashMap::new(),
            propagations: HashMap::new(),
            stale: HashMap::new(),
            refusals: HashMap::new(),
            problems: HashMap::new(),
            reported: HashMap::new(),
            dirty: false,
            probing: false,
            resync_after_probe: false,
        }
    }

    /// The ready DNS pods, by name.
    pub fn endpoints(&self) -> &BTreeMap<String, DnsEndpoint> {
        &self.endpoints
    }

    /// The number of zones the pods should serve.
    pub fn zone_count(&self) -> usize {
        self.targets.len()
    }

    /// Whether [`ProbeResults::apexes_in_store`] is needed for these listings: some pod
    /// serves a zone that is not being checked.
    pub fn needs_zone_apexes(&self, listings: &HashMap<String, ServedVersions>) -> bool {
        let checked = self.checked_apexes();
        listings
            .values()
            .flat_map(|listing| listing.keys())
            .any(|zone| !checked.contains(zone.as_str()))
    }

    /// Takes one event at `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Endpoints { endpoints, zones } => {
                self.on_endpoints(endpoints, zones, now, &mut out);
            }
            Event::Published(notices) => self.on_publishes(notices, now, &mut out),
            Event::Sweep { zones } => {
                self.refresh_targets(zones, &mut out);
                let pods: Vec<String> = self.endpoints.keys().cloned().collect();
                let pairs = self.pairs_of(&pods, None);
                self.check(pairs, now, &mut out);
            }
            Event::Tick => self.on_tick(now, &mut out),
            Event::Probed(results) => {
                self.probing = false;
                self.on_probed(results, now, &mut out);
                if std::mem::take(&mut self.resync_after_probe) {
                    self.resync_due(now, &mut out);
                }
            }
            Event::ResyncDone { pod, keys, outcome } => {
                self.on_resync_done(pod, keys, outcome, now, &mut out);
            }
        }
        if !self.probing {
            self.report(&mut out);
        }
        out
    }

    /// The zones from the Zone store: the newer of the status and what this replica just
    /// published. A zone no longer in the store is no longer tracked: its verdicts, repairs
    /// and propagation go, and so do its problems and its last view (a Zone made again
    /// under the same name gets its view reported afresh).
    fn refresh_targets(&mut self, zones: Vec<KnownZone>, out: &mut Vec<Command>) {
        let mut targets = HashMap::new();
        for zone in zones {
            let expected = match (zone.recorded, zone.published) {
                (Some(recorded), Some(published)) => {
                    if crate::serial::is_newer(published.serial, recorded.serial) {
                        published
                    } else {
                        recorded
                    }
                }
                (Some(recorded), None) => recorded,
                (None, Some(published)) => published,
                (None, None) => continue,
            };
            let Some(target) = Target::new(&zone.domain, expected) else {
                continue;
            };
            targets.insert(zone.key, target);
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
        self.reported.retain(|key, _| targets.contains_key(key));
        let untracked: Vec<ObjectKey> = self
            .problems
            .keys()
            .filter(|key| !targets.contains_key(*key))
            .cloned()
            .collect();
        for key in untracked {
            self.problems.remove(&key);
            out.push(self.problems_report(&key));
        }
        self.targets = targets;
    }

    fn on_endpoints(
        &mut self,
        endpoints: BTreeMap<String, DnsEndpoint>,
        zones: Vec<KnownZone>,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
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
            // A pod that is gone is no problem of any zone any more.
            let mut relieved: Vec<ObjectKey> = self
                .problems
                .iter_mut()
                .filter_map(|(key, pods)| pods.remove(pod).map(|_| key.clone()))
                .collect();
            relieved.sort();
            self.problems.retain(|_, pods| !pods.is_empty());
            for key in relieved {
                out.push(self.problems_report(&key));
            }
        }
        self.endpoints = endpoints;
        self.dirty = true;
        out.push(Command::Metric(Metric::Pods(self.endpoints.len())));
        if !added.is_empty() {
            info!(pods = ?added, "DNS pods ready: checking every zone on them");
            self.refresh_targets(zones, out);
            let pairs = self.pairs_of(&added, None);
            self.check(pairs, now, out);
        }
    }

    /// Takes publishes in the order they were made, and checks every ready pod for each zone
    /// published, once per zone.
    fn on_publishes(&mut self, notices: Vec<PublishNotice>, now: Instant, out: &mut Vec<Command>) {
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
        self.check(pairs, now, out);
    }

    /// Re-checks publishes still propagating, then sends the re-syncs that are due.
    fn on_tick(&mut self, now: Instant, out: &mut Vec<Command>) {
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
        self.check(recheck, now, out);
        if self.probing {
            self.resync_after_probe = true;
        } else {
            self.resync_due(now, out);
        }
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

    /// Asks the pods about the pairs: a probe of the ready ones, whose answers record the
    /// verdicts.
    fn check(&mut self, pairs: Vec<Pair>, now: Instant, out: &mut Vec<Command>) {
        if pairs.is_empty() {
            return;
        }
        // One `/zones` per pod, for the digests and for zones no longer published.
        let pods: HashSet<&String> = pairs.iter().map(|(pod, _)| pod).collect();
        let mut listings: Vec<(String, SocketAddr)> = pods
            .into_iter()
            .filter_map(|pod| {
                let endpoint = self.endpoints.get(pod)?;
                let admin = SocketAddr::new(endpoint.address, endpoint.admin_port?);
                Some((pod.clone(), admin))
            })
            .collect();
        listings.sort();
        let queries: Vec<(String, ObjectKey, Name, SocketAddr)> = pairs
            .into_iter()
            .filter_map(|(pod, key)| {
                let endpoint = self.endpoints.get(&pod)?;
                let target = self.targets.get(&key)?;
                let server = SocketAddr::new(endpoint.address, endpoint.dns_port);
                Some((pod, key, target.origin.clone(), server))
            })
            .collect();
        if listings.is_empty() && queries.is_empty() {
            // Nobody to ask: the check is over at once.
            self.on_probed(ProbeResults::default(), now, out);
            return;
        }
        self.probing = true;
        out.push(Command::Probe(ProbeRequest { listings, queries }));
    }

    /// The lowercased apexes of the zones being checked.
    fn checked_apexes(&self) -> HashSet<&str> {
        self.targets
            .values()
            .map(|t| t.origin_key.as_str())
            .collect()
    }

    /// Records the verdicts of a probe, starts or ends repairs, notes the zones pods serve
    /// that are no longer published, and ends the propagations every pod now serves.
    fn on_probed(&mut self, results: ProbeResults, now: Instant, out: &mut Vec<Command>) {
        let ProbeResults {
            listings,
            answers,
            apexes_in_store,
        } = results;
        for (pod, key, answer) in answers {
            let Some(target) = self.targets.get(&key) else {
                continue;
            };
            let listing = listings.get(&pod);
            let observed = match answer {
                Ok(SoaAnswer::Refused) => Observed::Missing,
                Ok(SoaAnswer::Serial(serial)) => Observed::Serving {
                    serial,
                    digest: listing
                        .and_then(|l| l.get(&target.origin_key))
                        .filter(|(listed, _)| *listed == serial)
                        .map(|(_, digest)| digest.clone()),
                },
                Err(error) => Observed::Unreachable(error),
            };
            let verdict = health::verdict(&target.expected, &observed);
            let expected_serial = target.expected.serial;
            let previous = self
                .verdicts
                .entry(key.clone())
                .or_default()
                .insert(pod.clone(), verdict.clone());
            if previous.as_ref() != Some(&verdict) {
                self.dirty = true;
                let level_info = verdict != Verdict::Synced || previous.is_some();
                if level_info {
                    info!(%pod, zone = %key, expected = expected_serial, seen = ?observed,
                        verdict = verdict.label(), "check");
                } else {
                    debug!(%pod, zone = %key, serial = expected_serial, "check: synced");
                }
            }
            self.after_verdict(&pod, &key, &verdict, now, out);
        }
        // A zone served but not checked is stale unless a Zone in the store has its apex: a
        // pod can serve a new zone before its publish notice reaches the checker.
        let checked = self.checked_apexes();
        let mut stale_by_pod = Vec::new();
        for (pod, listing) in &listings {
            let stale: HashSet<String> = listing
                .keys()
                .filter(|zone| !checked.contains(zone.as_str()))
                .filter(|zone| {
                    apexes_in_store
                        .as_ref()
                        .is_some_and(|in_store| !in_store.contains(zone.as_str()))
                })
                .cloned()
                .collect();
            if !stale.is_empty() {
                info!(%pod, zones = ?stale, "the pod serves zones that are no longer published");
            }
            stale_by_pod.push((pod.clone(), stale));
        }
        self.stale.extend(stale_by_pod);
        self.finish_propagations(now, out);
    }

    /// Starts, continues or ends the repair of a pair after a verdict.
    fn after_verdict(
        &mut self,
        pod: &str,
        key: &ObjectKey,
        verdict: &Verdict,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let pair = (pod.to_owned(), key.clone());
        if *verdict == Verdict::Synced {
            if let Some(repair) = self.repairs.remove(&pair) {
                info!(%pod, zone = %key, attempts = repair.attempts, "the pod serves the zone's version again");
                if repair.reported {
                    self.recovered(key, pod, out);
                }
            }
            return;
        }
        // A fresh publish may still be on its way: its deadline decides.
        let propagating = self.propagations.get(key).is_some_and(|p| now < p.deadline);
        if verdict.needs_resync() && !propagating {
            self.repairs.entry(pair).or_insert_with(|| Repair {
                attempts: 0,
                next: now,
                reported: false,
            });
        }
    }

    /// Publishes whose every ready pod now serves them: the propagation time.
    fn finish_propagations(&mut self, now: Instant, out: &mut Vec<Command>) {
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
                let took = now.saturating_duration_since(propagation.published);
                out.push(Command::Metric(Metric::Propagated(took)));
                debug!(zone = %key, serial = propagation.serial, ?took, "every pod serves the new version");
            }
        }
    }

    /// Sends the re-syncs that are due, one request per pod.
    fn resync_due(&mut self, now: Instant, out: &mut Vec<Command>) {
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
            .map(|(pod, zones)| {
                let mut zones: Vec<String> = std::mem::take(zones).into_iter().collect();
                zones.sort();
                (pod.clone(), zones)
            })
            .collect();
        for (pod, zones) in &stale {
            due.entry(pod.clone()).or_default();
            info!(%pod, ?zones, "re-sync: the pod still serves deleted zones");
        }
        for (pod, mut keys) in due {
            keys.sort();
            let mut zones: Vec<String> = keys
                .iter()
                .filter_map(|key| self.targets.get(key).map(|t| t.origin_key.clone()))
                .collect();
            if let Some((_, extra)) = stale.iter().find(|(p, _)| *p == pod) {
                zones.extend(extra.iter().cloned());
            }
            let mut sent = Vec::new();
            for key in &keys {
                let Some(repair) = self.repairs.get_mut(&(pod.clone(), key.clone())) else {
                    continue;
                };
                repair.attempts += 1;
                // Not due again before this request's answer (or timeout) is in.
                repair.next = now
                    + self.settings.backoff.delay(repair.attempts)
                    + self.settings.resync_timeout;
                let attempts = repair.attempts;
                let report = self.settings.backoff.exhausted(attempts) && !repair.reported;
                repair.reported |= report;
                let verdict = self.verdicts.get(key).and_then(|v| v.get(&pod)).cloned();
                let expected = self.targets.get(key).map(|t| t.expected.serial);
                info!(%pod, zone = %key, ?expected, seen = ?verdict, attempt = attempts,
                    "re-sync requested");
                if report {
                    self.degraded(key, &pod, attempts, verdict.as_ref(), expected, out);
                } else if attempts == 1 {
                    let note = text::resyncing(&pod, verdict.as_ref(), expected);
                    out.push(self.event(key, &pod, EventKind::Normal, "Resync", note));
                }
                sent.push(key.clone());
            }
            // Many zones: ask for everything at once.
            if zones.len() > RESYNC_ALL_ABOVE {
                zones.clear();
            }
            out.push(Command::Resync(Resync {
                pod,
                zones,
                keys: sent,
                timeout: self.settings.resync_timeout,
            }));
        }
    }

    /// A re-sync request came back: note the versions the pod refused, pace the next
    /// attempts from now, and check its pairs again.
    fn on_resync_done(
        &mut self,
        pod: String,
        keys: Vec<ObjectKey>,
        outcome: ResyncOutcome,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
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
        for key in &keys {
            if let Some(repair) = self.repairs.get_mut(&(pod.clone(), key.clone())) {
                repair.next = now + self.settings.backoff.delay(repair.attempts);
            }
        }
        let pairs = keys.into_iter().map(|key| (pod.clone(), key)).collect();
        self.check(pairs, now, out);
    }

    /// A pod is still wrong after the allowed attempts: an Event, and a problem for
    /// `Degraded`.
    fn degraded(
        &mut self,
        key: &ObjectKey,
        pod: &str,
        attempts: u32,
        seen: Option<&Verdict>,
        expected: Option<u32>,
        out: &mut Vec<Command>,
    ) {
        let note = text::degraded(pod, attempts, seen, expected);
        warn!(zone = %key, %pod, attempts, "{note}");
        out.push(self.event(key, pod, EventKind::Warning, "ResyncFailed", note.clone()));
        self.problems
            .entry(key.clone())
            .or_default()
            .insert(pod.to_owned(), note);
        out.push(self.problems_report(key));
    }

    /// A reported pod serves the zone again: an Event, and one problem fewer.
    fn recovered(&mut self, key: &ObjectKey, pod: &str, out: &mut Vec<Command>) {
        let mut changed = false;
        if let Some(pods) = self.problems.get_mut(key) {
            changed = pods.remove(pod).is_some();
            if pods.is_empty() {
                self.problems.remove(key);
            }
        }
        if changed {
            let note = text::recovered(pod);
            out.push(self.event(key, pod, EventKind::Normal, "Resynced", note));
            out.push(self.problems_report(key));
        }
    }

    /// The problems of a zone, as the Zone controller keeps them.
    fn problems_report(&self, key: &ObjectKey) -> Command {
        let problems = self
            .problems
            .get(key)
            .filter(|pods| !pods.is_empty())
            .map(|pods| pods.values().cloned().collect::<Vec<_>>().join("; "));
        Command::Report(FleetReport::Problems {
            zone: key.clone(),
            problems,
        })
    }

    /// An Event about a zone, naming a pod.
    fn event(
        &self,
        key: &ObjectKey,
        pod: &str,
        kind: EventKind,
        reason: &'static str,
        note: String,
    ) -> Command {
        Command::Report(FleetReport::Event(FleetEvent {
            zone: key.clone(),
            pod: pod.to_owned(),
            pod_namespace: self.settings.pod_namespace.clone(),
            kind,
            reason,
            note,
        }))
    }

    /// Reports the views that changed to the Zone controller (which writes the statuses),
    /// and sets the gauges. A zone not checked on every ready pod yet has no view.
    fn report(&mut self, out: &mut Vec<Command>) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let mut total_out = 0i64;
        let mut views = Vec::new();
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
            let pods_out = i64::from(summary.total - summary.synced);
            total_out += pods_out;
            out.push(Command::Metric(Metric::OutOfSync {
                zone: key.clone(),
                pods: pods_out,
            }));
            let view = FleetView {
                serial: target.expected.serial,
                servers: summary,
                lowest: lowest_served(&self.endpoints, verdicts, &target.expected),
                detail: text::lagging_pods(&pairs, target, &self.refusals),
                problems: None,
            };
            views.push((key.clone(), view));
        }
        out.push(Command::Metric(Metric::OutOfSyncPairs(total_out)));
        for (key, view) in views {
            if self.reported.get(&key) == Some(&view) {
                continue;
            }
            self.reported.insert(key.clone(), view.clone());
            out.push(Command::Report(FleetReport::View { zone: key, view }));
        }
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
