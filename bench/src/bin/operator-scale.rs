//! The operator at scale: N Zones and M Records on the local control plane.
//!
//! Measures, with a real kube-apiserver and the operator binary:
//! 1. the first full reconcile of a fresh operator, which publishes every zone and writes
//!    every status;
//! 2. the first full reconcile after a restart, when nothing changed (no zone may get a new
//!    serial).
//!
//! It also reports the operator's resident and peak memory after each.
//!
//! Run it on a cluster of its own (`e2e/cluster.sh up`), and `e2e/cluster.sh down` after:
//! it leaves its objects behind.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::{Context, ensure};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use serde_json::json;
use tokio::time::Instant;
use zonefleet_api::{Record, Zone};
use zonefleet_bench::{count_zones_with_serial, create};
use zonefleet_e2e::{
    harness::ClusterEnv,
    http,
    operator::{OperatorProcess, install_crds},
};

/// Measures the operator with many Zones and Records.
#[derive(Debug, Parser)]
struct Args {
    /// Zones to create.
    #[arg(long, default_value_t = 10_000)]
    zones: usize,
    /// Records per zone.
    #[arg(long, default_value_t = 10)]
    records_per_zone: usize,
    /// Concurrent create requests.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The namespace to use (created, and left behind).
    #[arg(long, default_value = "bench-scale")]
    namespace: String,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = ClusterEnv::load()?;
    let client = env.admin_client().await?;
    install_crds(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(&args.namespace).await?.is_none() {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(args.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let timeout = Duration::from_secs(args.timeout_seconds);

    let started = Instant::now();
    let created = create_objects(&client, &args).await?;
    let create_time = started.elapsed();
    println!(
        "created {} zones and {} records in {create_time:.1?}",
        created.0, created.1
    );

    // 1. A fresh operator: publishes every zone and writes every status.
    let mut operator = OperatorProcess::start(&env, &args.namespace, "bench-operator")?;
    let started = Instant::now();
    let first = wait_for_reconciles(operator.metrics, args.zones, timeout).await?;
    let first_time = started.elapsed();
    let first_memory = memory_of(&operator)?;
    let zones: Api<Zone> = Api::namespaced(client.clone(), &args.namespace);
    let served = count_zones_with_serial(&zones, 1000).await?;
    println!(
        "first reconcile: {first_time:.1?}, {} zone reconciles, {} versions published, {served}/{} zones with a serial; RSS {} MiB, peak {} MiB",
        first.zone_reconciles,
        first.published,
        args.zones,
        first_memory.0 / 1024,
        first_memory.1 / 1024
    );

    // Let the status writes of the first run settle, then restart.
    tokio::time::sleep(Duration::from_secs(5)).await;
    operator.terminate().await?;
    let mut operator = OperatorProcess::start(&env, &args.namespace, "bench-operator")?;
    let started = Instant::now();
    let restart = wait_for_reconciles(operator.metrics, args.zones, timeout).await?;
    let restart_time = started.elapsed();
    let restart_memory = memory_of(&operator)?;
    println!(
        "after a restart: {restart_time:.1?}, {} zone reconciles, {} versions published; RSS {} MiB, peak {} MiB",
        restart.zone_reconciles,
        restart.published,
        restart_memory.0 / 1024,
        restart_memory.1 / 1024
    );
    ensure!(
        restart.published == 0,
        "a restart without changes published {} versions",
        restart.published
    );
    operator.terminate().await?;

    println!();
    println!("| measurement | value |");
    println!("|---|---|");
    println!("| objects | {} Zones, {} Records |", created.0, created.1);
    println!(
        "| creating them (client, {} concurrent) | {create_time:.1?} |",
        args.concurrency
    );
    println!(
        "| first full reconcile, fresh operator (publish + all statuses) | {first_time:.1?} |"
    );
    println!(
        "| operator memory after it (RSS / peak) | {} / {} MiB |",
        first_memory.0 / 1024,
        first_memory.1 / 1024
    );
    println!("| first full reconcile after a restart | {restart_time:.1?} |");
    println!(
        "| operator memory after it (RSS / peak) | {} / {} MiB |",
        restart_memory.0 / 1024,
        restart_memory.1 / 1024
    );
    println!(
        "| versions published by the restart | {} |",
        restart.published
    );
    Ok(())
}

/// Creates the zones and records (skipping any that exist).
async fn create_objects(client: &Client, args: &Args) -> anyhow::Result<(usize, usize)> {
    let zones: Api<Zone> = Api::namespaced(client.clone(), &args.namespace);
    let records: Api<Record> = Api::namespaced(client.clone(), &args.namespace);
    let zone_jobs = (0..args.zones).map(|i| {
        let zones = zones.clone();
        async move {
            let zone: Zone = serde_json::from_value(json!({
                "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
                "metadata": {"name": format!("zone-{i}")},
                "spec": {"domain": format!("zone-{i}.example"),
                         "nameServers": [{"name": "ns1.provider.example.net"}, {"name": "ns2.provider.example.net"}]},
            }))?;
            create(&zones, &zone).await
        }
    });
    let zone_count = futures::stream::iter(zone_jobs)
        .buffer_unordered(args.concurrency)
        .try_fold(0, |n, ()| async move { Ok(n + 1) })
        .await?;
    let record_jobs = (0..args.zones)
        .flat_map(|z| (0..args.records_per_zone).map(move |r| (z, r)))
        .map(|(z, r)| {
            let records = records.clone();
            async move {
                let record: Record = serde_json::from_value(json!({
                    "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
                    "metadata": {"name": format!("zone-{z}-host-{r}")},
                    "spec": {"zoneRef": {"name": format!("zone-{z}")}, "name": format!("host-{r}"),
                             "type": "A", "values": [format!("192.0.2.{}", r % 250 + 1)]},
                }))?;
                create(&records, &record).await
            }
        });
    let record_count = futures::stream::iter(record_jobs)
        .buffer_unordered(args.concurrency)
        .try_fold(0, |n, ()| async move { Ok(n + 1) })
        .await?;
    Ok((zone_count, record_count))
}

struct Progress {
    zone_reconciles: u64,
    published: u64,
}

/// Polls the operator's metrics until every zone has been reconciled (assembled, published
/// if needed, and its status and its Records' statuses written): the `zones` gauge counts
/// the zones a reconcile has completed for since the operator started.
async fn wait_for_reconciles(
    metrics: SocketAddr,
    zones: usize,
    timeout: Duration,
) -> anyhow::Result<Progress> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) =
            http::request("GET", metrics, "/metrics", Duration::from_secs(5)).await
        {
            let values = parse_metrics(&response.body);
            let zone_reconciles = values
                .get("zonefleet_operator_reconciles_total{kind=\"zone\",result=\"success\"}")
                .copied()
                .unwrap_or(0);
            let published = values
                .get("zonefleet_operator_published_versions_total")
                .copied()
                .unwrap_or(0);
            let done = values.get("zonefleet_operator_zones").copied().unwrap_or(0);
            if done >= zones as u64 {
                return Ok(Progress {
                    zone_reconciles,
                    published,
                });
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the operator did not reconcile {zones} zones within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn parse_metrics(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(name, value)| {
            value
                .parse::<f64>()
                .ok()
                .map(|v| (name.to_owned(), v as u64))
        })
        .collect()
}

/// (VmRSS, VmHWM) in KiB.
fn memory_of(operator: &OperatorProcess) -> anyhow::Result<(u64, u64)> {
    let pid = operator.pid().context("the operator runs")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}
