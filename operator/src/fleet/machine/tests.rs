//! The machine against a simulated fleet: pods that serve what the test says, a Zone store,
//! and a clock that only moves when the test moves it.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::{IpAddr, Ipv4Addr},
};

use super::*;

const TICK: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(5);
const RESYNC_TIMEOUT: Duration = Duration::from_millis(500);

fn settings() -> Settings {
    Settings {
        publish_deadline: DEADLINE,
        backoff: Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(4),
            attempts_before_degraded: 3,
        },
        resync_timeout: RESYNC_TIMEOUT,
        pod_namespace: "dns".into(),
    }
}

fn key(name: &str) -> ObjectKey {
    ObjectKey {
        namespace: "ns".into(),
        name: name.into(),
    }
}

/// The apex of zone `name`, as `/zones` lists it.
fn apex_of(name: &str) -> String {
    format!("{name}.example.")
}

fn digest(serial: u32) -> String {
    format!("d{serial}")
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// What one simulated pod does.
#[derive(Clone, Debug, Default)]
struct Pod {
    /// apex → (serial, digest).
    zones: BTreeMap<String, (u32, String)>,
    /// It answers nothing.
    down: bool,
}

/// A machine, the fleet it checks, and a log of what it decided.
struct Fleet {
    machine: Machine,
    start: Instant,
    /// Time since `start`.
    now: Duration,
    pods: BTreeMap<String, Pod>,
    ready: BTreeSet<String>,
    store: BTreeMap<String, KnownZone>,
    /// Every probe, with its time.
    probes: Vec<(Duration, ProbeRequest)>,
    /// Every other command, with its time.
    log: Vec<(Duration, Command)>,
    /// Re-sync requests are answered at once: the pod re-synced, and still serves what it
    /// served.
    auto_reply: bool,
}

impl Fleet {
    /// A fleet of ready pods that serve nothing yet, and no Zones.
    fn new(pods: &[&str]) -> Self {
        let mut fleet = Self {
            machine: Machine::new(settings()),
            start: Instant::now(),
            now: Duration::ZERO,
            pods: BTreeMap::new(),
            ready: BTreeSet::new(),
            store: BTreeMap::new(),
            probes: Vec::new(),
            log: Vec::new(),
            auto_reply: false,
        };
        for pod in pods {
            fleet.pods.insert((*pod).into(), Pod::default());
            fleet.ready.insert((*pod).into());
        }
        fleet.endpoints_changed();
        fleet
    }

    fn endpoints(&self) -> BTreeMap<String, DnsEndpoint> {
        self.ready
            .iter()
            .map(|pod| {
                let index = self.pods.keys().position(|p| p == pod).unwrap_or(0);
                let endpoint = DnsEndpoint {
                    pod: pod.clone(),
                    address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2 + index as u8)),
                    dns_port: 5353,
                    admin_port: Some(8080),
                };
                (pod.clone(), endpoint)
            })
            .collect()
    }

    fn zones(&self) -> Vec<KnownZone> {
        self.store.values().cloned().collect()
    }

    fn endpoints_changed(&mut self) -> Vec<Command> {
        let event = Event::Endpoints {
            endpoints: self.endpoints(),
            zones: self.zones(),
        };
        self.feed(event)
    }

    /// A ready pod joins (serving `zones` at `serial`).
    fn add_pod(&mut self, pod: &str, zones: &[&str], serial: u32) -> Vec<Command> {
        self.pods.insert(pod.into(), Pod::default());
        for zone in zones {
            self.serve(pod, zone, serial);
        }
        self.ready.insert(pod.into());
        self.endpoints_changed()
    }

    fn remove_pod(&mut self, pod: &str) -> Vec<Command> {
        self.ready.remove(pod);
        self.endpoints_changed()
    }

    fn serve(&mut self, pod: &str, zone: &str, serial: u32) {
        self.pods
            .get_mut(pod)
            .unwrap()
            .zones
            .insert(apex_of(zone), (serial, digest(serial)));
    }

    fn serve_everywhere(&mut self, zone: &str, serial: u32) {
        let pods: Vec<String> = self.pods.keys().cloned().collect();
        for pod in pods {
            self.serve(&pod, zone, serial);
        }
    }

    /// The operator publishes `serial` of `zone`: the store has it, and a notice goes out.
    fn publish(&mut self, zone: &str, serial: u32) -> Vec<Command> {
        let version = Expected {
            serial,
            digest: digest(serial),
        };
        self.store.insert(
            zone.into(),
            KnownZone {
                key: key(zone),
                domain: format!("{zone}.example"),
                recorded: None,
                published: Some(version),
            },
        );
        let notice = PublishNotice {
            zone: key(zone),
            origin: apex_of(zone),
            serial,
            digest: digest(serial),
            at: self.start + self.now,
        };
        self.feed(Event::Published(vec![notice]))
    }

    /// Feeds an event now, answers its probes (and re-syncs, with `auto_reply`) the way
    /// the checker does, and returns the other commands.
    fn feed(&mut self, event: Event) -> Vec<Command> {
        let now = self.start + self.now;
        let mut pending: VecDeque<Command> = self.machine.handle(event, now).into();
        let mut done = Vec::new();
        while let Some(command) = pending.pop_front() {
            let next = match command {
                Command::Probe(request) => {
                    let results = self.answer(&request);
                    self.probes.push((self.now, request));
                    self.machine.handle(Event::Probed(results), now)
                }
                Command::Resync(resync) if self.auto_reply => {
                    let event = Event::ResyncDone {
                        pod: resync.pod.clone(),
                        keys: resync.keys.clone(),
                        outcome: ResyncOutcome {
                            result: ResyncResult::Ok,
                            refused: Some(Vec::new()),
                        },
                    };
                    done.push(Command::Resync(resync));
                    self.machine.handle(event, now)
                }
                other => {
                    done.push(other);
                    Vec::new()
                }
            };
            for command in next.into_iter().rev() {
                pending.push_front(command);
            }
        }
        self.log
            .extend(done.iter().map(|command| (self.now, command.clone())));
        done
    }

    /// What the simulated pods answer.
    fn answer(&self, request: &ProbeRequest) -> ProbeResults {
        let listings: HashMap<String, ServedVersions> = request
            .listings
            .iter()
            .filter(|(pod, _)| !self.pods[pod].down)
            .map(|(pod, _)| {
                (
                    pod.clone(),
                    self.pods[pod].zones.clone().into_iter().collect(),
                )
            })
            .collect();
        let answers = request
            .queries
            .iter()
            .map(|(pod, key, origin, _)| {
                let served = &self.pods[pod];
                let answer = if served.down {
                    Err("timed out".to_owned())
                } else {
                    Ok(match served.zones.get(&origin.to_ascii()) {
                        Some((serial, _)) => SoaAnswer::Serial(*serial),
                        None => SoaAnswer::Refused,
                    })
                };
                (pod.clone(), key.clone(), answer)
            })
            .collect();
        let apexes_in_store = self
            .machine
            .needs_zone_apexes(&listings)
            .then(|| apex_keys(&self.zones()));
        ProbeResults {
            listings,
            answers,
            apexes_in_store,
        }
    }

    /// Ticks for `span`, as the checker does every 100 ms; returns what was done, with when.
    fn run_for(&mut self, span: Duration) -> Vec<(Duration, Command)> {
        let end = self.now + span;
        let mut done = Vec::new();
        while self.now + TICK <= end {
            self.now += TICK;
            let now = self.now;
            done.extend(self.feed(Event::Tick).into_iter().map(|c| (now, c)));
        }
        done
    }

    fn sweep(&mut self) -> Vec<Command> {
        let zones = self.zones();
        self.feed(Event::Sweep { zones })
    }

    /// The last view reported of a zone.
    fn view(&self, zone: &str) -> FleetView {
        self.log
            .iter()
            .rev()
            .find_map(|(_, command)| match command {
                Command::Report(FleetReport::View { zone: z, view }) if *z == key(zone) => {
                    Some(view.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no view of {zone}"))
    }

    /// Marks the probes made so far, for [`Fleet::probed_since`].
    fn mark(&self) -> usize {
        self.probes.len()
    }

    /// The pods asked about `zone` in the probes since `mark`.
    fn probed_since(&self, mark: usize, zone: &str) -> Vec<String> {
        self.probes[mark..]
            .iter()
            .flat_map(|(_, request)| &request.queries)
            .filter(|(_, k, _, _)| *k == key(zone))
            .map(|(pod, _, _, _)| pod.clone())
            .collect()
    }
}

fn views(commands: &[Command]) -> Vec<(ObjectKey, FleetView)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Report(FleetReport::View { zone, view }) => Some((zone.clone(), view.clone())),
            _ => None,
        })
        .collect()
}

fn resyncs<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Vec<Resync> {
    commands
        .into_iter()
        .filter_map(|command| match command {
            Command::Resync(resync) => Some(resync.clone()),
            _ => None,
        })
        .collect()
}

fn events<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Vec<FleetEvent> {
    commands
        .into_iter()
        .filter_map(|command| match command {
            Command::Report(FleetReport::Event(event)) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn problems<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Vec<Option<String>> {
    commands
        .into_iter()
        .filter_map(|command| match command {
            Command::Report(FleetReport::Problems { problems, .. }) => Some(problems.clone()),
            _ => None,
        })
        .collect()
}

fn timed(done: &[(Duration, Command)]) -> impl Iterator<Item = &Command> {
    done.iter().map(|(_, command)| command)
}

/// A fleet whose pods all serve `zone` at `serial`, after the publish has propagated.
fn settled(pods: &[&str], zone: &str, serial: u32) -> Fleet {
    let mut fleet = Fleet::new(pods);
    fleet.serve_everywhere(zone, serial);
    fleet.publish(zone, serial);
    assert_eq!(
        fleet.view(zone).servers.summary,
        format!("{0}/{0}", pods.len())
    );
    fleet
}

/// A fleet where `lagging` still serves serial 1 of zone `z` after serial 2 was published
/// and its deadline passed, and a sweep found it: its repair is due.
fn lagging_after_deadline(pods: &[&str], lagging: &str) -> Fleet {
    let mut fleet = settled(pods, "z", 1);
    for pod in pods.iter().filter(|p| **p != lagging) {
        fleet.serve(pod, "z", 2);
    }
    fleet.publish("z", 2);
    let during = fleet.run_for(DEADLINE + secs(1.0));
    assert!(
        resyncs(timed(&during)).is_empty(),
        "no re-sync while the publish may still be on its way"
    );
    fleet.sweep();
    fleet
}

#[test]
fn a_batch_of_publishes_checks_each_zone_once() {
    let notice = |zone: &str, serial| PublishNotice {
        zone: key(zone),
        origin: apex_of(zone),
        serial,
        digest: String::new(),
        at: Instant::now(),
    };
    let batch = [
        notice("a", 1),
        notice("b", 1),
        notice("a", 2),
        notice("c", 1),
        notice("a", 3),
    ];
    assert_eq!(zones_published(&batch), [key("a"), key("b"), key("c")]);
}

#[test]
fn a_new_serial_is_probed_until_every_ready_pod_serves_it() {
    let mut fleet = settled(&["dns-a", "dns-b", "dns-c"], "z", 1);
    assert_eq!(fleet.view("z").lowest, Some(1));

    // Serial 2: two pods have it at once, dns-c not yet.
    fleet.serve("dns-a", "z", 2);
    fleet.serve("dns-b", "z", 2);
    let published_at = fleet.now;
    let mark = fleet.mark();
    let done = fleet.publish("z", 2);
    assert_eq!(
        fleet.probed_since(mark, "z"),
        ["dns-a", "dns-b", "dns-c"],
        "every ready pod is asked"
    );
    // One view, from the answers: never the old verdicts against the new serial.
    let reported = views(&done);
    assert_eq!(reported.len(), 1, "{reported:?}");
    let view = &reported[0].1;
    assert_eq!(view.serial, 2);
    assert_eq!(view.servers.summary, "2/3");
    assert_eq!(view.servers.lagging, ["dns-c"]);
    assert_eq!(view.lowest, Some(1));
    assert_eq!(view.detail, "dns-c serves serial 1");

    // Until its deadline, only the pod that lags is asked again, and nobody is re-synced.
    let mark = fleet.mark();
    let done = fleet.run_for(secs(1.0));
    assert_eq!(fleet.probed_since(mark, "z"), vec!["dns-c"; 10]);
    assert!(resyncs(timed(&done)).is_empty());

    // dns-c catches up: the next tick sees it, the view says served, and the propagation
    // time is observed.
    fleet.serve("dns-c", "z", 2);
    let done = fleet.run_for(TICK);
    let view = fleet.view("z");
    assert_eq!(view.servers.summary, "3/3");
    assert!(view.servers.lagging.is_empty());
    assert_eq!(view.lowest, Some(2));
    assert_eq!(view.detail, "");
    let took = fleet.now - published_at;
    assert!(
        timed(&done).any(|c| *c == Command::Metric(Metric::Propagated(took))),
        "{done:?}"
    );
    assert!(timed(&done).any(|c| *c == Command::Metric(Metric::OutOfSyncPairs(0))));

    // Done: no more probes between sweeps.
    let mark = fleet.mark();
    fleet.run_for(secs(2.0));
    assert!(fleet.probed_since(mark, "z").is_empty());
}

#[test]
fn a_pod_still_on_an_old_serial_after_the_deadline_is_resynced() {
    let mut fleet = lagging_after_deadline(&["dns-a", "dns-b"], "dns-b");
    assert_eq!(fleet.view("z").detail, "dns-b serves serial 1");
    let done = fleet.run_for(TICK);
    assert_eq!(
        resyncs(timed(&done)),
        [Resync {
            pod: "dns-b".into(),
            zones: vec![apex_of("z")],
            keys: vec![key("z")],
            timeout: RESYNC_TIMEOUT,
        }]
    );
    assert_eq!(
        events(timed(&done)),
        [FleetEvent {
            zone: key("z"),
            pod: "dns-b".into(),
            pod_namespace: "dns".into(),
            kind: EventKind::Normal,
            reason: "Resync",
            note: "re-sync requested for pod dns-b: serves serial 1, expected serial 2".into(),
        }]
    );
    // The re-sync works: its answer's check sees the pod synced, and the zone served.
    fleet.serve("dns-b", "z", 2);
    let done = fleet.feed(Event::ResyncDone {
        pod: "dns-b".into(),
        keys: vec![key("z")],
        outcome: ResyncOutcome {
            result: ResyncResult::Ok,
            refused: Some(Vec::new()),
        },
    });
    assert_eq!(views(&done)[0].1.servers.summary, "2/2");
    assert!(
        events(&done).is_empty(),
        "a pod that was not reported needs no Resynced Event"
    );
    assert!(resyncs(timed(&fleet.run_for(secs(10.0)))).is_empty());
}

#[test]
fn repeated_resyncs_back_off_up_to_the_cap_and_start_over_after_a_success() {
    let mut fleet = lagging_after_deadline(&["dns-a", "dns-b"], "dns-b");
    fleet.auto_reply = true;
    let start = fleet.now;
    let done = fleet.run_for(secs(20.0));
    let at: Vec<Duration> = done
        .iter()
        .filter(|(_, c)| matches!(c, Command::Resync(_)))
        .map(|(at, _)| *at - start)
        .collect();
    let gaps: Vec<f64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    // Doubling from 1 s, capped at 4 s.
    assert_eq!(gaps, [1.0, 2.0, 4.0, 4.0, 4.0, 4.0], "re-syncs at {at:?}");
    // The first attempt is announced; the third, the last allowed, is a warning and a
    // problem for Degraded; the others are quiet.
    let failed =
        "pod dns-b still serves serial 1 (expected serial 2) after 3 re-syncs; retrying slowly";
    let told: Vec<(&str, EventKind, String)> = events(timed(&done))
        .into_iter()
        .map(|e| (e.reason, e.kind, e.note))
        .collect();
    assert_eq!(
        told,
        [
            (
                "Resync",
                EventKind::Normal,
                "re-sync requested for pod dns-b: serves serial 1, expected serial 2".into()
            ),
            ("ResyncFailed", EventKind::Warning, failed.into()),
        ]
    );
    assert_eq!(problems(timed(&done)), [Some(failed.to_owned())]);

    // The pod recovers: the answer to the next re-sync shows it, the problem goes, and an
    // Event says so.
    fleet.serve("dns-b", "z", 2);
    let done = fleet.run_for(secs(5.0));
    assert_eq!(resyncs(timed(&done)).len(), 1);
    let told: Vec<(&str, String)> = events(timed(&done))
        .into_iter()
        .map(|e| (e.reason, e.note))
        .collect();
    assert_eq!(
        told,
        [(
            "Resynced",
            "pod dns-b serves the latest version again".into()
        )]
    );
    assert_eq!(problems(timed(&done)), [None]);
    assert_eq!(fleet.view("z").servers.summary, "2/2");
    assert!(resyncs(timed(&fleet.run_for(secs(10.0)))).is_empty());

    // It falls behind again: the backoff starts over.
    fleet.serve("dns-b", "z", 1);
    fleet.sweep();
    let start = fleet.now;
    let done = fleet.run_for(secs(4.0));
    let at: Vec<Duration> = done
        .iter()
        .filter(|(_, c)| matches!(c, Command::Resync(_)))
        .map(|(at, _)| *at - start)
        .collect();
    assert_eq!(at, [secs(0.1), secs(1.1), secs(3.1)]);
    assert_eq!(events(timed(&done))[0].reason, "Resync");
}

#[test]
fn a_zone_gone_from_the_store_is_no_longer_checked_and_pods_drop_it() {
    let mut fleet = settled(&["dns-a", "dns-b"], "z", 1);
    fleet.serve_everywhere("gone", 1);
    fleet.publish("gone", 1);
    assert_eq!(fleet.view("gone").servers.summary, "2/2");
    // dns-b loses the zone: a repair starts.
    fleet
        .pods
        .get_mut("dns-b")
        .unwrap()
        .zones
        .remove(&apex_of("gone"));
    fleet.run_for(DEADLINE);
    fleet.sweep();
    assert_eq!(fleet.view("gone").detail, "dns-b does not serve the zone");
    // A new Zone that has published nothing yet, which a pod already serves, is not stale.
    fleet.store.insert(
        "fresh".into(),
        KnownZone {
            key: key("fresh"),
            domain: "fresh.example".into(),
            recorded: None,
            published: None,
        },
    );
    fleet.serve("dns-a", "fresh", 1);

    // The Zone is deleted before the repair is due.
    fleet.store.remove("gone");
    let mark = fleet.mark();
    let done = fleet.sweep();
    assert_eq!(fleet.probed_since(mark, "z"), ["dns-a", "dns-b"]);
    assert!(fleet.probed_since(mark, "gone").is_empty());
    assert!(views(&done).iter().all(|(zone, _)| *zone != key("gone")));

    // dns-a still serves it: it is asked to re-sync that apex (which drops it); the repair
    // of dns-b is gone with the zone.
    let done = fleet.run_for(TICK);
    assert_eq!(
        resyncs(timed(&done)),
        [Resync {
            pod: "dns-a".into(),
            zones: vec![apex_of("gone")],
            keys: Vec::new(),
            timeout: RESYNC_TIMEOUT,
        }]
    );
    assert!(events(timed(&done)).is_empty());
    fleet
        .pods
        .get_mut("dns-a")
        .unwrap()
        .zones
        .remove(&apex_of("gone"));
    fleet.auto_reply = true;
    fleet.sweep();
    assert!(resyncs(timed(&fleet.run_for(secs(20.0)))).is_empty());
}

#[test]
fn pods_that_come_are_probed_and_pods_that_go_leave_the_counts() {
    let mut fleet = settled(&["dns-a", "dns-b"], "z", 1);
    fleet.serve_everywhere("y", 1);
    fleet.publish("y", 1);
    fleet.run_for(secs(1.0));

    // A third pod, with both zones: only it is asked, about every zone.
    let mark = fleet.mark();
    let done = fleet.add_pod("dns-c", &["z", "y"], 1);
    assert!(done.contains(&Command::Metric(Metric::Pods(3))));
    assert_eq!(fleet.probed_since(mark, "z"), ["dns-c"]);
    assert_eq!(fleet.probed_since(mark, "y"), ["dns-c"]);
    assert_eq!(fleet.view("z").servers.summary, "3/3");
    assert_eq!(fleet.view("y").servers.summary, "3/3");

    // A fourth that serves nothing: counted as lagging, then re-synced.
    fleet.add_pod("dns-d", &[], 1);
    let view = fleet.view("z");
    assert_eq!(view.servers.summary, "3/4");
    assert_eq!(view.servers.lagging, ["dns-d"]);
    assert_eq!(view.lowest, None);
    assert_eq!(view.detail, "dns-d does not serve the zone");
    fleet.auto_reply = true;
    let done = fleet.run_for(secs(4.0));
    assert_eq!(resyncs(timed(&done))[0].pod, "dns-d");
    let failed = "pod dns-d still does not serve the zone (expected serial 1) after 3 re-syncs; retrying slowly";
    assert_eq!(
        problems(timed(&done)),
        [Some(failed.to_owned()), Some(failed.to_owned())],
        "one problem for each of its zones"
    );

    // It goes: without asking anyone, the views count three pods again, it is no zone's
    // problem any more, and its repairs stop.
    let mark = fleet.mark();
    let done = fleet.remove_pod("dns-d");
    assert_eq!(fleet.mark(), mark, "nobody is asked");
    assert!(done.contains(&Command::Metric(Metric::Pods(3))));
    assert_eq!(problems(&done), [None, None]);
    let reported = views(&done);
    assert_eq!(reported.len(), 2, "{reported:?}");
    for (_, view) in reported {
        assert_eq!(view.servers.summary, "3/3");
        assert_eq!(view.lowest, Some(1));
        assert_eq!(view.detail, "");
    }
    assert!(resyncs(timed(&fleet.run_for(secs(20.0)))).is_empty());
}

#[test]
fn versions_a_pod_refused_show_in_the_view() {
    let mut fleet = lagging_after_deadline(&["dns-a", "dns-b"], "dns-b");
    let done = fleet.run_for(TICK);
    let resync = resyncs(timed(&done)).remove(0);
    let refusal = RefusedVersion {
        zone: "Z.Example.".into(),
        serial: Some(2),
        reason: "invalid_zone".into(),
        error: "CAA: unknown tag".into(),
        at_millis: 0,
    };
    let reply = |refused| Event::ResyncDone {
        pod: resync.pod.clone(),
        keys: resync.keys.clone(),
        outcome: ResyncOutcome {
            result: ResyncResult::Ok,
            refused,
        },
    };
    let refused_detail = "dns-b serves serial 1 (it refused serial 2: CAA: unknown tag)";
    fleet.feed(reply(Some(vec![refusal])));
    assert_eq!(fleet.view("z").detail, refused_detail);
    assert_eq!(fleet.view("z").servers.summary, "1/2");

    // No reply (a timeout) says nothing new: the refusal stays.
    let done = fleet.feed(Event::ResyncDone {
        pod: resync.pod.clone(),
        keys: resync.keys.clone(),
        outcome: ResyncOutcome {
            result: ResyncResult::Timeout,
            refused: None,
        },
    });
    assert!(views(&done).is_empty());
    assert_eq!(fleet.view("z").detail, refused_detail);

    // A reply without it: the pod no longer refuses that version.
    fleet.feed(reply(Some(Vec::new())));
    assert_eq!(fleet.view("z").detail, "dns-b serves serial 1");
}

#[test]
fn a_zone_made_again_under_the_same_name_is_reported_afresh() {
    let mut fleet = settled(&["dns-a", "dns-b"], "z", 1);
    let served = fleet.view("z");
    fleet.store.remove("z");
    fleet.sweep();
    // The Zone controller forgot the deleted Zone's view; the new one needs its own, even
    // though the pods serve the same version.
    let done = fleet.publish("z", 1);
    assert_eq!(views(&done), [(key("z"), served)]);
}
