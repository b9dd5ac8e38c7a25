//! Propagation: from a Record's apply (server-side, as `kubectl apply --server-side`) until
//! every one of 3 dns-pods serves it. The goal: p50 < 200 ms and p99 < 1 s over 200 changes,
//! with only the measured zone present and with 1,000 other zones present.
//!
//! On the local control plane, in a namespace of its own, it starts a NATS server, the
//! operator and three dns-pods (Pods the process kubelet runs, behind the `dns` Service), as
//! `e2e/tests/fleet.rs` does. Each change applies a new Record (`<run>-<i>` A `10.r.x.y`,
//! unique per change) to the measured zone: `t0` is taken just before the apply request, then
//! every pod is asked over UDP from this process (one query in flight per pod, `--poll-ms`
//! between them) until it answers the new address. A pod's latency is the end of its first right answer
//! minus `t0`; the change's latency is the slowest pod's. The next change starts only once
//! the last one is served everywhere, or after `--timeout-seconds` (a failure).
//!
//! The runs, in order, are given by `--zones-present` (default `0,1000`): before a run, Zones
//! (each with one Record) are added until that many others exist, and the run waits until
//! the operator has given every Zone a serial and every pod serves them all.
//!
//! The figures are upper bounds by up to one query round trip, which the report shows (the
//! first version spawned `dig`, whose process start alone took 54 ms on average). Mean
//! operator and pod timings from their
//! `/metrics` (before and after each run) show where the time goes.
//!
//! Run it with release builds (the process kubelet runs the dns-pod binary of the cluster's
//! cargo profile, the operator comes from `target/$ZONEFLEET_OPERATOR_PROFILE`):
//!
//! ```sh
//! ZONEFLEET_CARGO_PROFILE=release e2e/cluster.sh up   # builds the workspace's binaries
//! cargo build --release -p zonefleet-bench -p zonefleet-operator -p zonefleet-dns-pod
//! ZONEFLEET_OPERATOR_PROFILE=release target/release/propagation
//! e2e/cluster.sh down
//! ```
//!
//! It prints Markdown tables and writes every latency to `--out` (JSON). At the end it deletes
//! its Zones (while the operator runs, which removes their finalizers), its Pods and its
//! namespace, and stops the operator and NATS server it started.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, anyhow, ensure};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use hickory_proto::{
    op::ResponseCode,
    rr::{RData, RecordType},
};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServiceAccount};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};
use serde_json::{Value, json};
use tokio::time::Instant;
use zonefleet_api::{Record, Zone};
use zonefleet_bench::{count_zones_with_serial, create};
use zonefleet_e2e::{
    dns::{self, Attempts, Transport},
    dns_fleet::{self, ADMIN_PORT, DNS_PORT},
    harness::{ClusterEnv, TestNamespace, wait_until},
    http,
    nats::NatsServer,
    operator::{OperatorProcess, apply, install_crds, record_manifest},
};

/// The measured Zone (object name) and its domain.
const ZONE: &str = "propagation";
const DOMAIN: &str = "propagation.bench.example";
/// The dns-pods.
const PODS: [&str; 3] = ["dns-a", "dns-b", "dns-c"];
/// How long setting up (pods ready, zones served) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the operator and pods may take for the extra zones.
const EXTRA_TIMEOUT: Duration = Duration::from_secs(900);

/// Measures the propagation of Record changes to every dns-pod.
#[derive(Debug, Parser)]
struct Args {
    /// Changes per run.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Other Zones present during each run, in order (non-decreasing; comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1000])]
    zones_present: Vec<usize>,
    /// The namespace to use; it must not exist (it is created, and deleted at the end).
    #[arg(long, default_value = "bench-propagation")]
    namespace: String,
    /// Milliseconds between two queries to the same pod.
    #[arg(long, default_value_t = 2)]
    poll_ms: u64,
    /// A change not served by every pod within this many seconds is a failure.
    #[arg(long, default_value_t = 30)]
    timeout_seconds: u64,
    /// Concurrent create requests for the extra zones.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Where to write every latency (JSON).
    #[arg(long, default_value = "/tmp/propagation.json")]
    out: PathBuf,
}

/// What the benchmark talks to.
struct Bench {
    env: ClusterEnv,
    client: Client,
    namespace: String,
    zones: Api<Zone>,
    records: Api<Record>,
    pods: Api<Pod>,
}

/// One dns-pod's addresses.
struct Target {
    name: String,
    dns: SocketAddr,
    admin: SocketAddr,
}

/// One change: what was applied and when each pod served it.
struct Change {
    owner: String,
    value: String,
    /// The apply request's round trip.
    apply: Duration,
    /// Per pod (in the order of [`PODS`]): `t0` to the end of its first right answer.
    pods: Vec<Option<Duration>>,
    error: Option<String>,
    queries: u64,
    query_time: Duration,
}

impl Change {
    /// The slowest pod's latency, if every pod served the change.
    fn all(&self) -> Option<Duration> {
        if self.error.is_some() {
            return None;
        }
        self.pods
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// The fastest pod's latency, if every pod served the change.
    fn first(&self) -> Option<Duration> {
        self.all()?;
        self.pods.iter().flatten().copied().min()
    }
}

/// Latency statistics in milliseconds (nearest-rank percentiles).
struct Stats {
    count: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(values: impl IntoIterator<Item = Duration>) -> Option<Self> {
        let mut ms: Vec<f64> = values.into_iter().map(|d| d.as_secs_f64() * 1e3).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[index.clamp(1, ms.len()) - 1]
        };
        Some(Self {
            count: ms.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: ms[ms.len() - 1],
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
        })
    }

    fn json(&self) -> Value {
        json!({"count": self.count, "p50_ms": self.p50, "p90_ms": self.p90,
               "p99_ms": self.p99, "max_ms": self.max, "mean_ms": self.mean})
    }
}

/// One run's results.
struct Run {
    zones_present: usize,
    changes: Vec<Change>,
    /// Mean timings from the operator's and the pods' metrics over the run, in ms.
    breakdown: BTreeMap<String, Option<f64>>,
}

impl Run {
    fn failures(&self) -> usize {
        self.changes.iter().filter(|c| c.all().is_none()).count()
    }

    fn json(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                let pods: serde_json::Map<String, Value> = PODS
                    .iter()
                    .zip(&c.pods)
                    .map(|(name, d)| ((*name).to_owned(), json!(d.map(ms))))
                    .collect();
                json!({"owner": c.owner, "value": c.value, "apply_ms": ms(c.apply),
                       "all_pods_ms": c.all().map(ms), "pods_ms": pods, "error": c.error,
                       "queries": c.queries, "query_ms_total": ms(c.query_time)})
            })
            .collect();
        let per_pod: serde_json::Map<String, Value> = PODS
            .iter()
            .enumerate()
            .map(|(p, name)| {
                let stats = Stats::of(self.changes.iter().filter_map(|c| c.pods[p]));
                ((*name).to_owned(), json!(stats.map(|s| s.json())))
            })
            .collect();
        json!({
            "zones_present": self.zones_present,
            "zones_total": self.zones_present + 1,
            "failures": self.failures(),
            "all_pods": Stats::of(self.changes.iter().filter_map(Change::all)).map(|s| s.json()),
            "first_pod": Stats::of(self.changes.iter().filter_map(Change::first)).map(|s| s.json()),
            "apply_request": Stats::of(self.changes.iter().map(|c| c.apply)).map(|s| s.json()),
            "per_pod": per_pod,
            "breakdown_mean_ms": self.breakdown,
            "changes": changes,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(!args.zones_present.is_empty(), "no runs given");
    ensure!(
        args.zones_present.windows(2).all(|w| w[0] <= w[1]),
        "--zones-present must not decrease: zones are only added"
    );
    ensure!(
        args.zones_present.len() <= 256 && args.changes <= 65_536,
        "at most 256 runs of 65,536 changes (the addresses are 10.run.x.y)"
    );
    let env = ClusterEnv::load()?;
    let client = env.admin_client().await?;
    install_crds(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    ensure!(
        namespaces.get_opt(&args.namespace).await?.is_none(),
        "namespace {} exists (left by an earlier run?): delete it, or pass --namespace",
        args.namespace
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(args.namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &args.namespace);
    wait_until("the default ServiceAccount", SETUP_TIMEOUT, || async {
        Ok(accounts.get_opt("default").await?)
    })
    .await?;

    // A fresh NATS store and fresh local snapshots: nothing from an earlier run.
    let state = env.dir()?;
    for dir in [
        state.join(format!("nats-{}", args.namespace)),
        state.join("snapshots").join(&args.namespace),
    ] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let mut nats = NatsServer::start(&env, &args.namespace).await?;
    let bench = Bench {
        zones: Api::namespaced(client.clone(), &args.namespace),
        records: Api::namespaced(client.clone(), &args.namespace),
        pods: Api::namespaced(client.clone(), &args.namespace),
        namespace: args.namespace.clone(),
        client,
        env,
    };

    let mut operator = None;
    let outcome = tokio::select! {
        outcome = run(&bench, &args, &nats, &mut operator) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let cleaned = clean_up(&bench, &mut operator, &mut nats).await;
    let runs = outcome?;
    cleaned?;
    print_report(&runs, &args);
    Ok(())
}

/// Sets up the fleet and measures every run; the operator goes into `operator` so that the
/// caller can stop it whatever happens.
async fn run(
    bench: &Bench,
    args: &Args,
    nats: &NatsServer,
    operator: &mut Option<OperatorProcess>,
) -> anyhow::Result<Vec<Run>> {
    let services: Api<Service> = Api::namespaced(bench.client.clone(), &bench.namespace);
    services
        .create(
            &PostParams::default(),
            &dns_fleet::dns_service("dns", "dns")?,
        )
        .await?;
    let mut operator_env = nats.client_env(&bench.namespace);
    operator_env.push(("ZONEFLEET_DNS_SERVICE".into(), "dns".into()));
    let operator = operator.insert(OperatorProcess::start_with(
        &bench.env,
        &bench.namespace,
        "bench-propagation",
        &operator_env,
    )?);
    let operator_metrics = operator.metrics;
    let operator_binary = operator
        .pid()
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());

    apply(
        &bench.zones,
        &json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
            "metadata": {"name": ZONE},
            "spec": {"domain": DOMAIN,
                     "nameServers": [{"name": format!("ns1.{DOMAIN}"), "addresses": ["192.0.2.53"]}]},
        }),
    )
    .await?;
    let snapshots = bench.env.dir()?.join("snapshots").join(&bench.namespace);
    for name in PODS {
        let pod = dns_fleet::dns_pod(
            bench.env.var("ZONEFLEET_POD_LABEL")?,
            name,
            "dns",
            &nats.client_env(&bench.namespace),
            &snapshots.join(name),
            3,
        )?;
        bench.pods.create(&PostParams::default(), &pod).await?;
    }
    let targets = wait_for_pods(bench).await?;
    for target in &targets {
        wait_until(
            &format!("{} to serve {DOMAIN}", target.name),
            SETUP_TIMEOUT,
            || async {
                let answer = dns::ask(target.dns, DOMAIN, RecordType::SOA).await?;
                Ok(
                    (answer.rcode() == ResponseCode::NoError && !answer.rdata().is_empty())
                        .then_some(()),
                )
            },
        )
        .await?;
    }
    let test_namespace = TestNamespace {
        name: bench.namespace.clone(),
        client: bench.client.clone(),
        env: bench.env.clone(),
    };
    let pod_binary = test_namespace
        .container_pid(PODS[0], "dns")
        .ok()
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    eprintln!(
        "operator: {}; dns-pods: {}",
        operator_binary.map_or_else(|| "?".into(), |p| p.display().to_string()),
        pod_binary.map_or_else(|| "?".into(), |p| p.display().to_string()),
    );

    let mut runs = Vec::new();
    let mut extra = 0;
    for (index, &present) in args.zones_present.iter().enumerate() {
        if present > extra {
            let started = Instant::now();
            create_extra_zones(bench, extra..present, args.concurrency).await?;
            extra = present;
            eprintln!(
                "created zones up to {present} others in {:.1?}",
                started.elapsed()
            );
            wait_for_serials(bench, present + 1).await?;
            eprintln!(
                "the operator gave every zone a serial after {:.1?}",
                started.elapsed()
            );
            wait_for_pod_zones(&targets, present + 1).await?;
            eprintln!(
                "every pod serves {} zones after {:.1?}",
                present + 1,
                started.elapsed()
            );
            // Let the status writes and the first fleet checks settle.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let run = measure_run(bench, args, &targets, operator_metrics, index, present).await?;
        let all = Stats::of(run.changes.iter().filter_map(Change::all));
        eprintln!(
            "run with {present} other zones: {} failures; {}",
            run.failures(),
            all.map_or_else(
                || "no change served".into(),
                |s| format!("p50 {:.1} ms, p99 {:.1} ms", s.p50, s.p99)
            )
        );
        runs.push(run);
        write_json(&args.out, args, &runs)?;
    }
    Ok(runs)
}

/// Waits until every pod is ready with an address.
async fn wait_for_pods(bench: &Bench) -> anyhow::Result<Vec<Target>> {
    wait_until("the dns-pods to be ready", SETUP_TIMEOUT, || async {
        let mut targets = Vec::new();
        for name in PODS {
            let Some(pod) = bench.pods.get_opt(name).await? else {
                return Ok(None);
            };
            let Some(status) = pod.status else {
                return Ok(None);
            };
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let Some(ip) = status.pod_ip.filter(|_| ready) else {
                return Ok(None);
            };
            let ip: IpAddr = ip.parse()?;
            targets.push(Target {
                name: name.to_owned(),
                dns: SocketAddr::new(ip, DNS_PORT),
                admin: SocketAddr::new(ip, ADMIN_PORT),
            });
        }
        Ok(Some(targets))
    })
    .await
}

/// Creates Zones `extra-<i>` for `range`, each with one Record (existing ones are kept).
async fn create_extra_zones(
    bench: &Bench,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let jobs = range.map(|i| async move {
        let zone: Zone = serde_json::from_value(json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
            "metadata": {"name": format!("extra-{i}")},
            "spec": {"domain": format!("extra-{i}.bench.example"),
                     "nameServers": [{"name": "ns1.provider.example.net"},
                                     {"name": "ns2.provider.example.net"}]},
        }))?;
        create(&bench.zones, &zone).await?;
        let record: Record = serde_json::from_value(record_manifest(
            &format!("extra-{i}"),
            &format!("extra-{i}-www"),
            "www",
            "A",
            &[&format!("192.0.2.{}", i % 250 + 1)],
        ))?;
        create(&bench.records, &record).await
    });
    futures::stream::iter(jobs)
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Waits until `total` Zones have a serial in their status.
async fn wait_for_serials(bench: &Bench, total: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + EXTRA_TIMEOUT;
    loop {
        let count = count_zones_with_serial(&bench.zones, 500).await?;
        if count >= total {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "only {count} of {total} zones have a serial after {EXTRA_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until every pod's `zonefleet_dns_zones` gauge shows `total` zones.
async fn wait_for_pod_zones(targets: &[Target], total: usize) -> anyhow::Result<()> {
    for target in targets {
        wait_until(
            &format!("{} to serve {total} zones", target.name),
            EXTRA_TIMEOUT,
            || async {
                let metrics = scrape(target.admin).await?;
                let zones = metrics.get("zonefleet_dns_zones").copied().unwrap_or(0.0);
                Ok((zones >= total as f64).then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Measures `args.changes` changes, one after the other.
async fn measure_run(
    bench: &Bench,
    args: &Args,
    targets: &[Target],
    operator_metrics: SocketAddr,
    index: usize,
    present: usize,
) -> anyhow::Result<Run> {
    let poll = Duration::from_millis(args.poll_ms);
    let timeout = Duration::from_secs(args.timeout_seconds);
    let before = scrape_everything(operator_metrics, targets).await?;
    let mut changes = Vec::with_capacity(args.changes);
    for i in 0..args.changes {
        let owner = format!("z{present}-{i}");
        let value = format!("10.{index}.{}.{}", i / 256, i % 256);
        let change = measure_change(bench, targets, owner, value, poll, timeout).await;
        if let Some(error) = &change.error {
            eprintln!("change {i}: {error}");
        }
        changes.push(change);
        if (i + 1) % 50 == 0 {
            eprintln!("  {} of {} changes", i + 1, args.changes);
        }
    }
    let after = scrape_everything(operator_metrics, targets).await?;
    let mut breakdown = BTreeMap::new();
    let mean = |series: &str, labels: &str, of: &BTreeMap<String, f64>| {
        of.get(&format!("{series}_sum{labels}")).copied().zip(
            of.get(&format!("{series}_count{labels}"))
                .copied()
                .filter(|c| *c > 0.0),
        )
    };
    let delta_mean = |source: &str, series: &str, labels: &str| {
        let (sum1, count1) = mean(series, labels, &after[source])?;
        let (sum0, count0) = mean(series, labels, &before[source]).unwrap_or((0.0, 0.0));
        (count1 > count0).then(|| (sum1 - sum0) / (count1 - count0) * 1e3)
    };
    breakdown.insert(
        "operator publish (snapshot put + event)".to_owned(),
        delta_mean(
            "operator",
            "zonefleet_operator_publish_duration_seconds",
            "",
        ),
    );
    breakdown.insert(
        "operator zone reconcile (assemble, publish, statuses)".to_owned(),
        delta_mean(
            "operator",
            "zonefleet_operator_reconcile_duration_seconds",
            "{kind=\"zone\"}",
        ),
    );
    breakdown.insert(
        "operator fleet check: publish to pods serving".to_owned(),
        delta_mean("operator", "zonefleet_operator_propagation_seconds", ""),
    );
    let published = after["operator"]
        .get("zonefleet_operator_published_versions_total")
        .copied()
        .unwrap_or(0.0)
        - before["operator"]
            .get("zonefleet_operator_published_versions_total")
            .copied()
            .unwrap_or(0.0);
    breakdown.insert("versions published (count)".to_owned(), Some(published));
    for target in targets {
        breakdown.insert(
            format!("{}: sync lag, publish to serving", target.name),
            delta_mean(&target.name, "zonefleet_dns_sync_lag_seconds", ""),
        );
        breakdown.insert(
            format!("{}: building and swapping in a version", target.name),
            delta_mean(&target.name, "zonefleet_dns_apply_duration_seconds", ""),
        );
    }
    let queries: u64 = changes.iter().map(|c| c.queries).sum();
    let query_time: Duration = changes.iter().map(|c| c.query_time).sum();
    breakdown.insert(
        "query round trip".to_owned(),
        (queries > 0).then(|| ms(query_time) / queries as f64),
    );
    Ok(Run {
        zones_present: present,
        changes,
        breakdown,
    })
}

/// Applies one Record and waits until every pod answers its address.
async fn measure_change(
    bench: &Bench,
    targets: &[Target],
    owner: String,
    value: String,
    poll: Duration,
    timeout: Duration,
) -> Change {
    let fqdn = format!("{owner}.{DOMAIN}");
    let manifest = record_manifest(ZONE, &owner, &owner, "A", &[&value]);
    let t0 = Instant::now();
    let applied = apply(&bench.records, &manifest).await;
    let apply_time = t0.elapsed();
    if let Err(e) = applied {
        return Change {
            owner,
            value,
            apply: apply_time,
            pods: vec![None; targets.len()],
            error: Some(format!("apply failed: {e}")),
            queries: 0,
            query_time: Duration::ZERO,
        };
    }
    let deadline = t0 + timeout;
    let answers = futures::future::join_all(
        targets
            .iter()
            .map(|t| first_served(t.dns, &fqdn, &value, t0, deadline, poll)),
    )
    .await;
    let late: Vec<&str> = targets
        .iter()
        .zip(&answers)
        .filter(|(_, a)| a.0.is_none())
        .map(|(t, _)| t.name.as_str())
        .collect();
    Change {
        error: (!late.is_empty()).then(|| {
            format!(
                "{fqdn} A {value} not served by {} within {timeout:?}",
                late.join(", ")
            )
        }),
        pods: answers.iter().map(|a| a.0).collect(),
        queries: answers.iter().map(|a| a.1).sum(),
        query_time: answers.iter().map(|a| a.2).sum(),
        owner,
        value,
        apply: apply_time,
    }
}

/// Asks one pod until it answers `value` for `name`: (latency from `t0`, queries, time in
/// queries).
async fn first_served(
    dns: SocketAddr,
    name: &str,
    value: &str,
    t0: Instant,
    deadline: Instant,
    poll: Duration,
) -> (Option<Duration>, u64, Duration) {
    let mut queries = 0;
    let mut spent = Duration::ZERO;
    loop {
        let started = Instant::now();
        let answer = ask_a(dns, name).await;
        let done = Instant::now();
        queries += 1;
        spent += done - started;
        if answer.is_ok_and(|addresses| addresses == [value]) {
            return (Some(done - t0), queries, spent);
        }
        if done >= deadline {
            return (None, queries, spent);
        }
        tokio::time::sleep(poll).await;
    }
}

/// One A query over UDP from this process (no recursion wanted, 500 ms to answer); the
/// addresses in the answer section.
async fn ask_a(server: SocketAddr, name: &str) -> anyhow::Result<Vec<String>> {
    let once = Attempts {
        transport: Transport::Udp,
        timeout: Duration::from_millis(500),
        attempts: 1,
    };
    let answer = dns::ask_with(server, name, RecordType::A, once).await?;
    Ok(answer
        .message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(address) => Some(address.to_string()),
            _ => None,
        })
        .collect())
}

/// The operator's metrics (key `operator`) and every pod's (key: the pod's name).
async fn scrape_everything(
    operator: SocketAddr,
    targets: &[Target],
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let mut all = BTreeMap::new();
    all.insert("operator".to_owned(), scrape(operator).await?);
    for target in targets {
        all.insert(target.name.clone(), scrape(target.admin).await?);
    }
    Ok(all)
}

/// `/metrics` as series (with labels) to values.
async fn scrape(address: SocketAddr) -> anyhow::Result<BTreeMap<String, f64>> {
    let response = http::request("GET", address, "/metrics", Duration::from_secs(5))
        .await
        .with_context(|| format!("GET http://{address}/metrics"))?;
    ensure!(
        response.status == 200,
        "GET http://{address}/metrics: {}",
        response.status
    );
    Ok(response
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
        .collect())
}

/// Deletes the Zones (the operator removes their finalizers), the Pods and the namespace, and
/// stops the operator and the NATS server. Every step is tried; the first failure is returned.
async fn clean_up(
    bench: &Bench,
    operator: &mut Option<OperatorProcess>,
    nats: &mut NatsServer,
) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    eprintln!("cleaning up namespace {}", bench.namespace);
    let zones_gone = async {
        bench
            .zones
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
        wait_until("the Zones to be deleted", EXTRA_TIMEOUT, || async {
            let left = bench.zones.list(&ListParams::default().limit(1)).await?;
            Ok(left.items.is_empty().then_some(()))
        })
        .await
    }
    .await;
    if let Err(e) = &zones_gone {
        failures.push(anyhow!("deleting the Zones: {e:#}"));
    }
    let pods_gone = async {
        bench
            .pods
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
        wait_until("the Pods to be deleted", SETUP_TIMEOUT, || async {
            let left = bench.pods.list(&ListParams::default()).await?;
            Ok(left.items.is_empty().then_some(()))
        })
        .await
    }
    .await;
    if let Err(e) = pods_gone {
        failures.push(anyhow!("deleting the Pods: {e:#}"));
    }
    if let Some(operator) = operator.as_mut()
        && let Err(e) = operator.terminate().await
    {
        failures.push(anyhow!("stopping the operator: {e:#}"));
    }
    if let Err(e) = nats.stop().await {
        failures.push(anyhow!("stopping the NATS server: {e:#}"));
    }
    if zones_gone.is_ok() {
        let namespaces: Api<Namespace> = Api::all(bench.client.clone());
        if let Err(e) = namespaces
            .delete(&bench.namespace, &DeleteParams::default())
            .await
        {
            failures.push(anyhow!("deleting namespace {}: {e}", bench.namespace));
        }
    } else {
        eprintln!(
            "namespace {} is left behind: Zones in it still hold the operator's finalizer \
             (`e2e/cluster.sh down` discards the whole cluster)",
            bench.namespace
        );
    }
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn write_json(path: &Path, args: &Args, runs: &[Run]) -> anyhow::Result<()> {
    let report = json!({
        "pods": PODS,
        "zone": DOMAIN,
        "changes_per_run": args.changes,
        "poll_ms": args.poll_ms,
        "timeout_seconds": args.timeout_seconds,
        "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn print_report(runs: &[Run], args: &Args) {
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
    println!();
    println!(
        "Propagation, `apply` to served by all {} pods (ms; goal p50 < 200, p99 < 1000):",
        PODS.len()
    );
    println!();
    println!(
        "| other zones | changes | failures | p50 | p90 | p99 | max | mean | first pod p50 | apply request p50 | goal met |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let all = Stats::of(run.changes.iter().filter_map(Change::all));
        let first = Stats::of(run.changes.iter().filter_map(Change::first));
        let apply = Stats::of(run.changes.iter().map(|c| c.apply));
        let met = all
            .as_ref()
            .is_some_and(|s| run.failures() == 0 && s.p50 < 200.0 && s.p99 < 1000.0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.zones_present,
            run.changes.len(),
            run.failures(),
            cell(all.as_ref().map(|s| s.p50)),
            cell(all.as_ref().map(|s| s.p90)),
            cell(all.as_ref().map(|s| s.p99)),
            cell(all.as_ref().map(|s| s.max)),
            cell(all.as_ref().map(|s| s.mean)),
            cell(first.as_ref().map(|s| s.p50)),
            cell(apply.as_ref().map(|s| s.p50)),
            if met { "yes" } else { "no" },
        );
    }
    println!();
    println!("Per pod (ms):");
    println!();
    println!("| other zones | pod | served | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for run in runs {
        for (p, name) in PODS.iter().enumerate() {
            let stats = Stats::of(run.changes.iter().filter_map(|c| c.pods[p]));
            println!(
                "| {} | {name} | {} | {} | {} | {} |",
                run.zones_present,
                stats.as_ref().map_or(0, |s| s.count),
                cell(stats.as_ref().map(|s| s.p50)),
                cell(stats.as_ref().map(|s| s.p99)),
                cell(stats.as_ref().map(|s| s.max)),
            );
        }
    }
    println!();
    println!("Where the time goes (means over each run, ms, from /metrics):");
    println!();
    let header: Vec<String> = runs
        .iter()
        .map(|r| format!("{} other zones", r.zones_present))
        .collect();
    println!("| | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(runs.len()));
    if let Some(first) = runs.first() {
        for key in first.breakdown.keys() {
            let values: Vec<String> = runs
                .iter()
                .map(|r| cell(r.breakdown.get(key).copied().flatten()))
                .collect();
            println!("| {key} | {} |", values.join(" | "));
        }
    }
    println!();
    println!("Every latency: {}", args.out.display());
}
