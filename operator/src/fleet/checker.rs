//! The checker: one task that feeds what happens (the ready DNS pods change, versions are
//! published, time passes, probes and re-syncs end) to the [`Machine`], and carries out what
//! it decides: probes the pods ([`probe`]), re-syncs them over NATS, hands views, problems
//! and Events to the Zone controller ([`FleetHost`]) and sets the metrics.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use hickory_proto::rr::Name;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use zonefleet_nats::{ResyncReply, ResyncRequest};

use super::{
    FleetSettings, PublishNotice,
    endpoints::{DnsEndpoint, ready_endpoints},
    machine::{
        self, Command, Event, Machine, Metric, ProbeRequest, ProbeResults, Resync, ResyncOutcome,
        ResyncResult,
    },
    probe::{self, ProbeError, ServedVersions, SoaAnswer},
    report::FleetHost,
};
use crate::{
    metrics::{ErrorKindLabels, Metrics, ResultLabels, ZoneLabels},
    zone::ObjectKey,
};

/// How often time passes for the machine: propagations are re-checked and due re-syncs
/// sent at this pace.
const TICK: Duration = Duration::from_millis(100);

/// A re-sync request that ended: pod, zones, outcome.
type ResyncDone = (String, Vec<ObjectKey>, ResyncOutcome);

/// What carries out the machine's commands.
struct Shell {
    host: Arc<dyn FleetHost>,
    metrics: Arc<Metrics>,
    nats: async_nats::Client,
    settings: FleetSettings,
    http: reqwest::Client,
    /// Where finished re-sync requests report.
    resync_done: mpsc::UnboundedSender<ResyncDone>,
}

/// Runs the checker until the task is dropped. It watches the EndpointSlices of the DNS
/// Service with `client`, reads the Zones from `host` and tells it what it finds (the Zone
/// controller writes the statuses); `notices` announce publishes.
pub async fn run(
    client: Client,
    host: Arc<dyn FleetHost>,
    metrics: Arc<Metrics>,
    nats: async_nats::Client,
    settings: FleetSettings,
    mut notices: mpsc::UnboundedReceiver<PublishNotice>,
) {
    let (endpoints_tx, mut endpoints_rx) = watch::channel(BTreeMap::new());
    tokio::spawn(watch_endpoints(client, settings.clone(), endpoints_tx));
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let (resync_done, mut resyncs) = mpsc::unbounded_channel();
    let mut machine = Machine::new(machine::Settings::of(&settings));
    let shell = Shell {
        host,
        metrics,
        nats,
        http,
        resync_done,
        settings,
    };
    info!(service = %format!("{}/{}", shell.settings.service_namespace, shell.settings.service_name),
        sweep = ?shell.settings.sweep, "fleet health checker started");
    let mut sweep = tokio::time::interval(shell.settings.sweep);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = endpoints_rx.changed() => {
                if changed.is_err() {
                    warn!("the EndpointSlice watch ended; the checker stops");
                    return;
                }
                let endpoints = endpoints_rx.borrow_and_update().clone();
                let zones = shell.host.zones();
                shell.feed(&mut machine, Event::Endpoints { endpoints, zones }).await;
            }
            Some(notice) = notices.recv() => {
                // Publishes queue up while a check runs (1,000 new Zones are 1,000
                // notices): take all that wait and check them together.
                let mut batch = vec![notice];
                while let Ok(more) = notices.try_recv() {
                    batch.push(more);
                }
                shell.feed(&mut machine, Event::Published(batch)).await;
            }
            Some((pod, keys, outcome)) = resyncs.recv() => {
                shell.metrics.fleet.resyncs
                    .get_or_create(&ResultLabels { result: outcome.result.label() })
                    .inc();
                shell.feed(&mut machine, Event::ResyncDone { pod, keys, outcome }).await;
            }
            _ = sweep.tick() => {
                let started = Instant::now();
                let zones = shell.host.zones();
                let pairs = shell.feed(&mut machine, Event::Sweep { zones }).await;
                let took = started.elapsed();
                shell.metrics.fleet.sweep_duration.observe(took.as_secs_f64());
                debug!(pairs, ?took, "sweep done");
            }
            _ = tick.tick() => {
                shell.feed(&mut machine, Event::Tick).await;
            }
        }
    }
}

/// Feeds the ready endpoints of the DNS Service into `tx` on every change.
async fn watch_endpoints(
    client: Client,
    settings: FleetSettings,
    tx: watch::Sender<BTreeMap<String, DnsEndpoint>>,
) {
    let api: Api<EndpointSlice> = Api::namespaced(client, &settings.service_namespace);
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

impl Shell {
    /// Feeds one event to the machine and carries out its commands, in order; a probe's
    /// answers are fed back at once, and what they lead to is done before the rest. Returns
    /// the number of (pod, zone) pairs probed.
    async fn feed(&self, machine: &mut Machine, event: Event) -> usize {
        let mut pending: VecDeque<Command> = machine.handle(event, Instant::now()).into();
        let mut probed = 0;
        while let Some(command) = pending.pop_front() {
            match command {
                Command::Probe(request) => {
                    probed += request.queries.len();
                    let results = self.probe(machine, request).await;
                    let next = machine.handle(Event::Probed(results), Instant::now());
                    for command in next.into_iter().rev() {
                        pending.push_front(command);
                    }
                }
                Command::Resync(resync) => self.resync(resync),
                Command::Report(report) => self.host.report(report),
                Command::Metric(metric) => self.set(metric),
            }
        }
        probed
    }

    /// Asks the pods (concurrently, bounded): every `/zones` first, then every SOA.
    async fn probe(&self, machine: &Machine, request: ProbeRequest) -> ProbeResults {
        let wait = self.settings.query_timeout;
        let concurrency = self.settings.concurrency;
        let listings = list_zones(self.http.clone(), request.listings, wait, concurrency).await;
        let answers = ask_soa(request.queries, wait, concurrency).await;
        let answers = answers
            .into_iter()
            .map(|(pod, key, answer)| {
                let answer = answer.map_err(|error| {
                    self.count_error(&error);
                    error.to_string()
                });
                (pod, key, answer)
            })
            .collect();
        let mut read = HashMap::new();
        for (pod, listing) in listings {
            match listing {
                Ok(listing) => {
                    read.insert(pod, listing);
                }
                Err(error) => {
                    self.count_error(&error);
                    debug!(%pod, %error, "cannot read /zones");
                }
            }
        }
        // The store is only read when some pod serves a zone not being checked.
        let apexes_in_store = machine
            .needs_zone_apexes(&read)
            .then(|| machine::apex_keys(&self.host.zones()));
        ProbeResults {
            listings: read,
            answers,
            apexes_in_store,
        }
    }

    /// Sends a re-sync request. It runs on its own: a pod that does not answer must not hold
    /// up the checks of the others; its outcome comes back through `resync_done`.
    fn resync(&self, resync: Resync) {
        let Resync {
            pod,
            zones,
            keys,
            timeout,
        } = resync;
        let nats = self.nats.clone();
        let subject = self.settings.layout.resync_subject(&pod);
        let done = self.resync_done.clone();
        tokio::spawn(async move {
            let outcome = request_resync(&nats, subject, &pod, zones, timeout).await;
            let _ = done.send((pod, keys, outcome));
        });
    }

    fn set(&self, metric: Metric) {
        let fleet = &self.metrics.fleet;
        match metric {
            Metric::Pods(pods) => {
                fleet.pods.set(i64::try_from(pods).unwrap_or(i64::MAX));
            }
            Metric::OutOfSync { zone, pods } => {
                fleet
                    .out_of_sync
                    .get_or_create(&ZoneLabels {
                        zone: zone.to_string(),
                    })
                    .set(pods);
            }
            Metric::OutOfSyncPairs(pairs) => {
                fleet.out_of_sync_pairs.set(pairs);
            }
            Metric::Propagated(took) => {
                fleet.propagation.observe(took.as_secs_f64());
            }
        }
    }

    fn count_error(&self, error: &ProbeError) {
        self.metrics
            .fleet
            .check_errors
            .get_or_create(&ErrorKindLabels { kind: error.kind() })
            .inc();
    }
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
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

/// Sends one re-sync request for `zones` (empty for every zone) and waits up to `wait` for
/// the reply.
async fn request_resync(
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
    let body = match serde_json::to_vec(&ResyncRequest { zones }) {
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
