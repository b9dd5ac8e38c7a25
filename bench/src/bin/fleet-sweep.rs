//! A fleet health sweep at scale: Z zones on P dns-pods, checked with the operator's own
//! check path (every pod's `/zones`, then the SOA of every (pod, zone) over DNS, a bounded
//! number at once, then the verdicts).
//!
//! The pods run in static mode on loopback, each serving the same Z zone files; no
//! Kubernetes is involved, so this measures the checks, not the status writes.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, ensure};
use clap::Parser;
use hickory_proto::rr::Name;
use tokio::{process::Command, time::Instant};
use zonefleet_e2e::{http, operator::target_dir};
use zonefleet_operator::{
    fleet::{
        checker::{ask_soa, list_zones},
        health::{self, Expected, Observed, Verdict},
        probe::SoaAnswer,
    },
    zone::ObjectKey,
};

/// Measures fleet health sweeps.
#[derive(Debug, Parser)]
struct Args {
    /// Zones on every pod.
    #[arg(long, default_value_t = 10_000)]
    zones: usize,
    /// DNS pods.
    #[arg(long, default_value_t = 10)]
    pods: usize,
    /// Checks in flight at once (the operator's `--check-concurrency`).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Sweeps to time.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The cargo profile of the dns-pod binary.
    #[arg(long, default_value = "release")]
    profile: String,
}

/// A pod process, killed on drop.
struct Pod {
    _child: tokio::process::Child,
    dns: SocketAddr,
    admin: SocketAddr,
}

fn write_zones(dir: &Path, zones: usize) -> anyhow::Result<Vec<Name>> {
    std::fs::create_dir_all(dir)?;
    let mut origins = Vec::with_capacity(zones);
    for i in 0..zones {
        let origin = format!("zone{i}.bench.example.");
        let path = dir.join(format!("{origin}zone"));
        if !path.exists() {
            std::fs::write(
                &path,
                format!(
                    "$ORIGIN {origin}\n$TTL 3600\n@ SOA ns1 hostmaster 7 3600 600 1209600 300\n\
                     @ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.{}\n",
                    i % 250 + 1
                ),
            )?;
        }
        origins.push(Name::from_ascii(&origin)?);
    }
    Ok(origins)
}

async fn start_pod(binary: &Path, zones: &Path, index: usize) -> anyhow::Result<Pod> {
    let dns = SocketAddr::from(([127, 0, 0, 1], 25300 + u16::try_from(index)?));
    let admin = SocketAddr::from(([127, 0, 0, 1], 25400 + u16::try_from(index)?));
    let child = Command::new(binary)
        .arg("--zones-dir")
        .arg(zones)
        .arg("--listen")
        .arg(dns.to_string())
        .arg("--admin-address")
        .arg(admin.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Pod {
        _child: child,
        dns,
        admin,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = target_dir().join(&args.profile).join("zonefleet-dns-pod");
    ensure!(
        binary.exists(),
        "{} is missing: cargo build --profile {} -p zonefleet-dns-pod",
        binary.display(),
        args.profile
    );
    let dir: PathBuf = target_dir()
        .join("bench-fleet")
        .join(format!("zones-{}", args.zones));
    let origins = write_zones(&dir, args.zones)?;
    // Every zone file makes the same digest on every pod: take it from the parser the pods use.
    let mut expected = Vec::with_capacity(origins.len());
    for origin in &origins {
        let text = std::fs::read_to_string(dir.join(format!("{origin}zone")))?;
        let snapshot = zonefleet_dns_pod::zone_files::parse(&text, origin.clone(), None)
            .map_err(anyhow::Error::msg)?;
        expected.push(Expected {
            serial: snapshot.serial,
            digest: zonefleet_wire::hex(&snapshot.digest),
        });
    }

    let started = Instant::now();
    let mut pods = Vec::new();
    for index in 0..args.pods {
        pods.push(start_pod(&binary, &dir, index).await?);
    }
    for pod in &pods {
        let deadline = Instant::now() + Duration::from_secs(120);
        while http::request("GET", pod.admin, "/readyz", Duration::from_secs(1))
            .await
            .map(|r| r.status)
            .unwrap_or(0)
            != 200
        {
            ensure!(Instant::now() < deadline, "a pod did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "{} pods serving {} zones each, ready in {:.1} s",
        args.pods,
        args.zones,
        started.elapsed().as_secs_f64()
    );

    let http = reqwest_client()?;
    let wait = Duration::from_secs(2);
    for round in 1..=args.rounds {
        let started = Instant::now();
        let admins: Vec<(String, SocketAddr)> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| (format!("pod-{i}"), pod.admin))
            .collect();
        let listings = list_zones(http.clone(), admins, wait, args.concurrency).await;
        let listed = started.elapsed();
        let queries: Vec<(String, ObjectKey, Name, SocketAddr)> = pods
            .iter()
            .enumerate()
            .flat_map(|(i, pod)| {
                origins.iter().enumerate().map(move |(z, origin)| {
                    let key = ObjectKey {
                        namespace: "bench".into(),
                        name: z.to_string(),
                    };
                    (format!("pod-{i}"), key, origin.clone(), pod.dns)
                })
            })
            .collect();
        let pairs = queries.len();
        let answers = ask_soa(queries, wait, args.concurrency).await;
        let mut synced = 0;
        let mut other = std::collections::BTreeMap::<&str, usize>::new();
        for (pod, key, answer) in answers {
            let index: usize = key.name.parse()?;
            let origin_key = origins[index].to_lowercase().to_ascii();
            let listing = listings.get(&pod).and_then(|l| l.as_ref().ok());
            let observed = match answer {
                Ok(SoaAnswer::Serial(serial)) => Observed::Serving {
                    serial,
                    digest: listing
                        .and_then(|l| l.get(&origin_key))
                        .map(|(_, digest)| digest.clone()),
                },
                Ok(SoaAnswer::Refused) => Observed::Missing,
                Err(e) => Observed::Unreachable(e.to_string()),
            };
            match health::verdict(&expected[index], &observed) {
                Verdict::Synced => synced += 1,
                verdict => *other.entry(verdict.label()).or_default() += 1,
            }
        }
        let took = started.elapsed();
        println!(
            "sweep {round}: {pairs} (pod, zone) checks in {:.2} s ({:.0} checks/s; /zones of every pod in {:.2} s); {synced} synced, others {other:?}",
            took.as_secs_f64(),
            pairs as f64 / took.as_secs_f64(),
            listed.as_secs_f64(),
        );
        ensure!(synced == pairs, "not every check came back synced");
    }
    Ok(())
}

fn reqwest_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}
