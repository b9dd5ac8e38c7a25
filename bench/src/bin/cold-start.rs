//! Cold start: how long a fresh dns-pod takes to serve a zone of 1,000,000 records, from a
//! local snapshot (goal: under 5 s) and from NATS alone (goal: under 10 s).
//!
//! No Kubernetes: it runs its own `nats-server` (JetStream, `max_payload: 1MB`, one user,
//! on 127.0.0.1, from `e2e/tools.sh path nats-server`) and the release dns-pod as plain
//! processes. Each round:
//!
//! 1. starts nats-server on an empty store and publishes the zone with the operator's
//!    `NatsPublisher` (signed with a message key), timing the publish. The zone is assembled
//!    once, before the rounds, with the operator's `zone::assemble`: `--names` names
//!    `h<i>.cold.example` with `--per-name` A records each, plus the SOA, the apex NS and
//!    its glue (by default 1,000,000 + 3 records);
//! 2. **from NATS**: spawns the dns-pod with an empty `--snapshot-dir`, and times spawn →
//!    both the SOA with the published serial and the last name (`h<names-1>`) answered
//!    over UDP on its `--listen` address (a query of each every `--poll-ms`); reads its peak
//!    RSS (VmHWM) then, waits until it has written its local snapshot, and stops it
//!    (SIGTERM);
//! 3. **from the local snapshot**: stops nats-server, spawns the dns-pod again with the
//!    same snapshot directory and the same (now dead) NATS URL, and times the same thing.
//!
//! It prints each round and the medians as Markdown tables and writes them, with the
//! dns-pod's log lines of each start, to `--out` (JSON).
//!
//! Between the two starts, the pod started from NATS takes an update: once its memory has
//! settled (steady RSS), its peak RSS is reset (`/proc/<pid>/clear_refs`) and a version with
//! one name changed is published after the first (so as a delta); it reports the time until
//! the change is served and the peak RSS meanwhile. The start from the snapshot then serves
//! that updated version. It stops every process it started
//! and deletes its temporary directory.
//!
//! ```sh
//! cargo build --release -p zonefleet-dns-pod -p zonefleet-bench
//! target/release/cold-start --rounds 3
//! ```
//!
//! `--pod-cpus 0` runs the dns-pod under `taskset -c 0`.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{Name, RData, RecordType},
};
use serde::Serialize;
use serde_json::json;
use tokio::{
    net::UdpSocket,
    process::{Child, Command},
    time::Instant,
};
use zonefleet_api::{RecordSpec, ZoneSpec};
use zonefleet_e2e::{
    dns,
    harness::{free_port, terminate},
    operator::{repo_dir, target_dir},
};
use zonefleet_nats::{Layout, MessageKey};
use zonefleet_operator::{
    publish::{NatsPublisher, NatsSettings, ZonePublisher, ZoneVersion},
    zone::{self, AssembledZone, ObjectKey, RecordInput},
};

const DOMAIN: &str = "cold.example";
const PREFIX: &str = "bench-cold";
const USER: &str = "zonefleet";

/// Measures a dns-pod's cold start from NATS and from its local snapshot.
#[derive(Debug, Parser)]
struct Args {
    /// Names in the zone.
    #[arg(long, default_value_t = 1_000_000)]
    names: usize,
    /// A records per name.
    #[arg(long, default_value_t = 1)]
    per_name: usize,
    /// Rounds (each: publish, start from NATS, start from the snapshot).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Milliseconds between two queries of the same kind while waiting.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Run the dns-pod under `taskset -c <CPUS>`.
    #[arg(long, value_name = "CPUS")]
    pod_cpus: Option<String>,
    /// The dns-pod binary (default: `target/release/zonefleet-dns-pod`).
    #[arg(long)]
    dns_pod: Option<PathBuf>,
    /// Give up on a start after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
    /// Where to write the results (JSON).
    #[arg(long, default_value = "/tmp/cold-start.json")]
    out: PathBuf,
}

/// One cold start.
#[derive(Clone, Debug, Serialize)]
struct Start {
    /// Spawn → the SOA with the serial and the last name answered.
    served_ms: f64,
    /// VmHWM when served, KiB.
    peak_rss_kib_served: u64,
    /// VmHWM just before the stop, KiB (after the local snapshot was written, when from NATS).
    peak_rss_kib_stop: u64,
    /// What the dns-pod logged (up to 50 lines), for where the time went.
    log: Vec<String>,
}

/// One update of the served zone: a version with one record changed, published as a delta.
#[derive(Clone, Debug, Serialize)]
struct Update {
    /// VmRSS once the first version is served and settled, KiB.
    steady_rss_kib: u64,
    /// The operator's publish call, ms.
    publish_ms: f64,
    /// Publish start → the SOA with the new serial and the changed name answered.
    served_ms: f64,
    /// VmHWM from the publish (reset just before it) until served, KiB.
    peak_rss_kib: u64,
}

#[derive(Clone, Debug, Serialize)]
struct Round {
    publish_ms: f64,
    from_nats: Start,
    update: Update,
    from_snapshot: Start,
}

#[derive(Debug, Serialize)]
struct Report {
    names: usize,
    per_name: usize,
    record_count: u32,
    snapshot_bytes: usize,
    assemble_ms: f64,
    pod_cpus: Option<String>,
    rounds: Vec<Round>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.names > 0 && args.rounds > 0 && (1..=200).contains(&args.per_name),
        "--names and --rounds must be positive, --per-name between 1 and 200"
    );
    let binary = args
        .dns_pod
        .clone()
        .unwrap_or_else(|| target_dir().join("release").join("zonefleet-dns-pod"));
    ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --release -p zonefleet-dns-pod`",
        binary.display()
    );
    let dir = std::env::temp_dir().join(format!("zonefleet-cold-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&args, &binary, &dir).await;
    if result.is_err() {
        for log in ["nats.log", "dns-pod.log"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(log)) {
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- the last lines of {log}:");
                for line in &lines[lines.len().saturating_sub(20)..] {
                    eprintln!("{line}");
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    print_report(&report);
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}

async fn run(args: &Args, binary: &Path, dir: &Path) -> anyhow::Result<Report> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    let started = Instant::now();
    let content = Arc::new(big_zone(args.names, args.per_name, None)?);
    let assemble_ms = millis(started.elapsed());
    let changed_address = Ipv4Addr::new(192, 0, 2, 200);
    let changed = Arc::new(big_zone(args.names, args.per_name, Some(changed_address))?);
    let first_name = Name::from_ascii(format!("h0.{DOMAIN}."))?;
    let snapshot_bytes = content.snapshot(1).encode()?.len();
    eprintln!(
        "zone {DOMAIN}: {} records, a {snapshot_bytes}-byte snapshot, assembled in {assemble_ms:.0} ms",
        content.record_count
    );

    let key_file = dir.join("message.key");
    std::fs::write(&key_file, "0123456789abcdef0123456789abcdef-bench\n")?;
    let key = MessageKey::from_file(&key_file)?;
    let last = args.names - 1;
    let last_name = Name::from_ascii(format!("h{last}.{DOMAIN}."))?;
    let last_address = address(last, 0);
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        let serial = u32::try_from(round)?;
        let mut nats = NatsServer::start(dir).await?;
        let outcome = async {
            let publish_ms = publish(&nats, &key, &content, serial, None).await?;
            eprintln!("round {round}: published in {publish_ms:.0} ms");
            let snapshot_dir = dir.join("snapshot");
            let _ = std::fs::remove_dir_all(&snapshot_dir);
            std::fs::create_dir_all(&snapshot_dir)?;
            let pod_args = PodArgs {
                binary,
                cpus: args.pod_cpus.as_deref(),
                snapshot_dir: &snapshot_dir,
                nats_url: nats.url(),
                nats_password: nats.password.clone(),
                key_file: &key_file,
                log: &dir.join("dns-pod.log"),
            };
            let want = Wanted {
                serial,
                name: &last_name,
                address: last_address,
                poll: Duration::from_millis(args.poll_ms),
                timeout,
            };

            // From NATS alone.
            let mut pod = pod_args.spawn()?;
            let served = pod.wait_served(&want).await?;
            let peak_served = pod.peak_rss_kib()?;
            let file = snapshot_dir.join(format!("{DOMAIN}.zfw"));
            let deadline = Instant::now() + timeout;
            while !file.exists() {
                ensure!(
                    Instant::now() < deadline,
                    "no local snapshot {} after {timeout:?}",
                    file.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let peak_stop = pod.peak_rss_kib()?;

            // An update: h0 changes, published as a delta from this version.
            let steady_rss_kib = pod.settled_rss_kib().await?;
            pod.reset_peak()?;
            pod.started = Instant::now();
            let update_publish_ms =
                publish(&nats, &key, &changed, serial + 1, Some(serial)).await?;
            let update_served = pod
                .wait_served(&Wanted {
                    serial: serial + 1,
                    name: &first_name,
                    address: changed_address,
                    ..want
                })
                .await?;
            let update = Update {
                steady_rss_kib,
                publish_ms: update_publish_ms,
                served_ms: millis(update_served),
                peak_rss_kib: pod.peak_rss_kib()?,
            };
            eprintln!("round {round}: update {update:#?}");
            // The local copy follows.
            let deadline = Instant::now() + timeout;
            while file_serial(&file) != Some(serial + 1) {
                ensure!(
                    Instant::now() < deadline,
                    "the local snapshot was not updated"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let from_nats = pod.stop_with_start(served, peak_served, peak_stop).await?;
            eprintln!("round {round}: from NATS {from_nats:#?}");

            // From the local snapshot (the updated version), NATS down.
            nats.stop().await?;
            let mut pod = pod_args.spawn()?;
            let served = pod
                .wait_served(&Wanted {
                    serial: serial + 1,
                    ..want
                })
                .await?;
            let peak_served = pod.peak_rss_kib()?;
            let peak_stop = pod.peak_rss_kib()?;
            let from_snapshot = pod.stop_with_start(served, peak_served, peak_stop).await?;
            eprintln!("round {round}: from the snapshot {from_snapshot:#?}");
            Ok::<_, anyhow::Error>(Round {
                publish_ms,
                from_nats,
                update,
                from_snapshot,
            })
        }
        .await;
        nats.stop().await?;
        rounds.push(outcome?);
    }
    Ok(Report {
        names: args.names,
        per_name: args.per_name,
        record_count: content.record_count,
        snapshot_bytes,
        assemble_ms,
        pod_cpus: args.pod_cpus.clone(),
        rounds,
    })
}

/// The `j`th address of name `i`: `10.<i>.<j>`, with `i` in the middle two octets' range
/// and beyond.
fn address(i: usize, j: usize) -> Ipv4Addr {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    let j = u8::try_from(j).unwrap_or(u8::MAX);
    let [_, a, b, c] = i.to_be_bytes();
    Ipv4Addr::new(10 + j, a, b, c)
}

/// The serial in a snapshot file's header, if it has one.
fn file_serial(path: &Path) -> Option<u32> {
    let bytes = std::fs::read(path).ok()?;
    Some(zonefleet_wire::SnapshotReader::new(&bytes).ok()?.serial)
}

/// The zone, assembled as the operator does; with `changed`, `h0` has that address instead.
fn big_zone(
    names: usize,
    per_name: usize,
    changed: Option<Ipv4Addr>,
) -> anyhow::Result<AssembledZone> {
    let spec: ZoneSpec = serde_json::from_value(json!({
        "domain": DOMAIN,
        "nameServers": [{"name": format!("ns1.{DOMAIN}"), "addresses": ["192.0.2.53"]}],
    }))?;
    let mut records = Vec::with_capacity(names);
    for i in 0..names {
        let values: Vec<String> = match changed {
            Some(address) if i == 0 => vec![address.to_string()],
            _ => (0..per_name).map(|j| address(i, j).to_string()).collect(),
        };
        let spec: RecordSpec = serde_json::from_value(json!({
            "zoneRef": {"name": "cold"}, "name": format!("h{i}"), "type": "A", "values": values,
        }))?;
        records.push(RecordInput {
            key: ObjectKey {
                namespace: "bench".into(),
                name: format!("r{i}"),
            },
            created: None,
            spec,
            namespace_labels: None::<BTreeMap<String, String>>,
        });
    }
    let assembly = zone::assemble("bench", &spec, &records)?;
    ensure!(
        assembly.warnings.is_empty(),
        "assembly warnings: {:?}",
        assembly.warnings
    );
    Ok(assembly.zone)
}

/// Publishes `content` as serial `serial`: after `previous`, as a delta; without, as a new
/// zone (the whole snapshot). Returns the milliseconds `publish` took.
async fn publish(
    nats: &NatsServer,
    key: &MessageKey,
    content: &Arc<AssembledZone>,
    serial: u32,
    previous: Option<u32>,
) -> anyhow::Result<f64> {
    let client = async_nats::ConnectOptions::new()
        .user_and_password(USER.into(), nats.password.clone())
        .connect(nats.url())
        .await?;
    let publisher = NatsPublisher::open(
        client.clone(),
        Layout::new(PREFIX)?,
        NatsSettings {
            key: Some(key.clone()),
            ..NatsSettings::default()
        },
    )
    .await?;
    let version = ZoneVersion {
        zone: ObjectKey {
            namespace: "bench".into(),
            name: "cold".into(),
        },
        serial,
        previous_serial: previous,
        content: Arc::clone(content),
    };
    let started = Instant::now();
    publisher.publish(&version).await?;
    let took = millis(started.elapsed());
    client.flush().await?;
    drop(publisher);
    drop(client);
    Ok(took)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A nats-server of this run's own, on loopback, with its store in `<dir>/nats`.
struct NatsServer {
    child: Option<Child>,
    address: SocketAddr,
    password: String,
}

impl NatsServer {
    /// Starts a server on an empty store and waits until JetStream answers.
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let output = std::process::Command::new("bash")
            .arg(repo_dir().join("e2e/tools.sh"))
            .args(["path", "nats-server"])
            .output()
            .context("locating nats-server")?;
        ensure!(
            output.status.success(),
            "e2e/tools.sh path nats-server failed"
        );
        let binary = PathBuf::from(String::from_utf8(output.stdout)?.trim());
        ensure!(
            binary.exists(),
            "{} is missing: run `e2e/tools.sh install`",
            binary.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let store = dir.join("nats");
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store)?;
        let password = format!("pw-cold-{}", std::process::id());
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"{address}\"\nserver_name: bench_cold\nmax_payload: 1MB\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 4GB\n}}\n\
                 authorization {{\n  users = [ {{ user: \"{USER}\", password: \"{password}\" }} ]\n}}\n",
                store = store.display(),
            ),
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("nats.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = Self {
            child: Some(child),
            address,
            password,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = async_nats::ConnectOptions::new()
                .user_and_password(USER.into(), server.password.clone())
                .connect(server.url())
                .await
                && async_nats::jetstream::new(client)
                    .query_account()
                    .await
                    .is_ok()
            {
                return Ok(server);
            }
            ensure!(
                Instant::now() < deadline,
                "nats-server with JetStream did not answer on {address}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self) -> String {
        format!("nats://{}", self.address)
    }

    /// Stops it (SIGTERM, then SIGKILL) and waits; does nothing if it is stopped.
    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10)).await?;
        }
        Ok(())
    }
}

/// How to start the dns-pod.
struct PodArgs<'a> {
    binary: &'a Path,
    cpus: Option<&'a str>,
    snapshot_dir: &'a Path,
    nats_url: String,
    nats_password: String,
    key_file: &'a Path,
    log: &'a Path,
}

/// What a served zone answers.
struct Wanted<'a> {
    serial: u32,
    name: &'a Name,
    address: Ipv4Addr,
    poll: Duration,
    timeout: Duration,
}

impl PodArgs<'_> {
    /// Spawns the dns-pod; the clock starts just before the spawn.
    fn spawn(&self) -> anyhow::Result<Pod> {
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log)?;
        let log_offset = out.metadata()?.len();
        let mut command = match self.cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus]).arg(self.binary);
                command
            }
            None => Command::new(self.binary),
        };
        command
            .arg("--listen")
            .arg(dns.to_string())
            .arg("--admin-address")
            .arg(admin.to_string())
            .arg("--snapshot-dir")
            .arg(self.snapshot_dir)
            .arg("--pod-name")
            .arg("cold")
            .env("NATS_URL", &self.nats_url)
            .env("NATS_USER", USER)
            .env("NATS_PASSWORD", &self.nats_password)
            .env("ZONEFLEET_NATS_PREFIX", PREFIX)
            .env("ZONEFLEET_MESSAGE_KEY_FILE", self.key_file)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        Ok(Pod {
            child,
            started,
            dns,
            log: self.log.to_owned(),
            log_offset,
        })
    }
}

/// A running dns-pod.
struct Pod {
    child: Child,
    started: Instant,
    dns: SocketAddr,
    log: PathBuf,
    log_offset: u64,
}

impl Pod {
    /// Stops it and reports its start: served `served` after the spawn, with VmHWM
    /// `peak_served` when served and `peak_stop` just before the stop (KiB).
    async fn stop_with_start(
        &mut self,
        served: Duration,
        peak_served: u64,
        peak_stop: u64,
    ) -> anyhow::Result<Start> {
        self.stop().await?;
        Ok(Start {
            served_ms: millis(served),
            peak_rss_kib_served: peak_served,
            peak_rss_kib_stop: peak_stop,
            log: self.log()?,
        })
    }

    /// Queries the SOA and the last name every `poll` until both are answered as wanted;
    /// returns the time from the spawn to the later of the two right answers.
    async fn wait_served(&mut self, want: &Wanted<'_>) -> anyhow::Result<Duration> {
        let apex = Name::from_ascii(format!("{DOMAIN}."))?;
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(self.dns).await?;
        let deadline = self.started + want.timeout;
        let mut soa_at = None;
        let mut name_at = None;
        let mut id: u16 = 0;
        let mut buffer = vec![0_u8; 65_535];
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the dns-pod exited with {status} before serving");
            }
            if Instant::now() >= deadline {
                bail!(
                    "not served after {:?} (SOA: {soa_at:?}, last name: {name_at:?})",
                    want.timeout
                );
            }
            // Even ids ask for the SOA, odd ones for the last name.
            for (qname, qtype) in [(&apex, RecordType::SOA), (want.name, RecordType::A)] {
                let message = dns::query(id, &qname.to_ascii(), qtype)?;
                // Before the pod binds, the port refuses: that is only "not yet".
                let _ = socket.send(&message.to_vec()?).await;
                id = id.wrapping_add(1);
            }
            let tick = Instant::now() + want.poll;
            while let Ok(received) = tokio::time::timeout_at(tick, socket.recv(&mut buffer)).await {
                let Ok(len) = received else { continue };
                let at = self.started.elapsed();
                let Ok(reply) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                if reply.metadata.response_code != ResponseCode::NoError {
                    continue;
                }
                let is_soa = reply.metadata.id % 2 == 0;
                let right = reply.answers.iter().any(|record| match &record.data {
                    RData::SOA(soa) => is_soa && soa.serial == want.serial,
                    RData::A(a) => !is_soa && a.0 == want.address,
                    _ => false,
                });
                if right {
                    let slot = if is_soa { &mut soa_at } else { &mut name_at };
                    slot.get_or_insert(at);
                }
                if let (Some(soa), Some(name)) = (soa_at, name_at) {
                    return Ok(soa.max(name));
                }
            }
        }
    }

    /// VmHWM, KiB.
    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// A `/proc/<pid>/status` field in KiB.
    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the dns-pod has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {field}"))
    }

    /// VmRSS once it has settled (answers precomputed, memory returned): four readings
    /// 500 ms apart within 1 % of each other, or whatever it is after 60 s.
    async fn settled_rss_kib(&self) -> anyhow::Result<u64> {
        let mut readings = Vec::new();
        for _ in 0..120 {
            readings.push(self.status_kib("VmRSS:")?);
            if let [.., a, b, c, d] = readings[..] {
                let (low, high) = (a.min(b).min(c).min(d), a.max(b).max(c).max(d));
                if high - low <= high / 100 {
                    return Ok(d);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        readings.last().copied().context("no VmRSS")
    }

    /// Resets VmHWM to the current RSS (`/proc/<pid>/clear_refs`, 5).
    fn reset_peak(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the dns-pod has exited")?;
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .context("resetting the peak RSS (needs the same user as the pod)")
    }

    /// The first 50 lines this pod logged.
    fn log(&self) -> anyhow::Result<Vec<String>> {
        let bytes = std::fs::read(&self.log)?;
        let start = usize::try_from(self.log_offset)?.min(bytes.len());
        Ok(String::from_utf8_lossy(&bytes[start..])
            .lines()
            .take(50)
            .map(str::to_owned)
            .collect())
    }

    /// SIGTERM, then SIGKILL after 10 s; waits.
    async fn stop(&mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, Duration::from_secs(10)).await
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_report(report: &Report) {
    println!();
    println!(
        "zone: {} names × {} A = {} records (SOA, apex NS and glue included), snapshot {:.1} MiB, assembled in {:.0} ms; dns-pod CPUs: {}",
        report.names,
        report.per_name,
        report.record_count,
        report.snapshot_bytes as f64 / 1024.0 / 1024.0,
        report.assemble_ms,
        report.pod_cpus.as_deref().unwrap_or("any"),
    );
    println!();
    println!(
        "| round | publish | from NATS | peak RSS (served / stop) | from snapshot | peak RSS (served / stop) |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, r) in report.rounds.iter().enumerate() {
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} / {:.0} MiB | {:.0} ms | {:.0} / {:.0} MiB |",
            i + 1,
            r.publish_ms,
            r.from_nats.served_ms,
            mib(r.from_nats.peak_rss_kib_served),
            mib(r.from_nats.peak_rss_kib_stop),
            r.from_snapshot.served_ms,
            mib(r.from_snapshot.peak_rss_kib_served),
            mib(r.from_snapshot.peak_rss_kib_stop),
        );
    }
    let of = |f: fn(&Round) -> f64| median(report.rounds.iter().map(f).collect());
    println!(
        "| **median** | {:.0} ms | {:.0} ms | {:.0} / {:.0} MiB | {:.0} ms | {:.0} / {:.0} MiB |",
        of(|r| r.publish_ms),
        of(|r| r.from_nats.served_ms),
        of(|r| mib(r.from_nats.peak_rss_kib_served)),
        of(|r| mib(r.from_nats.peak_rss_kib_stop)),
        of(|r| r.from_snapshot.served_ms),
        of(|r| mib(r.from_snapshot.peak_rss_kib_served)),
        of(|r| mib(r.from_snapshot.peak_rss_kib_stop)),
    );
    println!();
    println!(
        "| round | steady RSS | update publish | update served | peak RSS during the update | peak ÷ steady |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, r) in report.rounds.iter().enumerate() {
        let u = &r.update;
        println!(
            "| {} | {:.0} MiB | {:.0} ms | {:.0} ms | {:.0} MiB | {:.2} |",
            i + 1,
            mib(u.steady_rss_kib),
            u.publish_ms,
            u.served_ms,
            mib(u.peak_rss_kib),
            u.peak_rss_kib as f64 / u.steady_rss_kib.max(1) as f64,
        );
    }
    println!();
    println!("| goal | median | met |");
    println!("|---|---|---|");
    let nats = of(|r| r.from_nats.served_ms);
    let snapshot = of(|r| r.from_snapshot.served_ms);
    println!(
        "| from the local snapshot < 5 s | {:.2} s | {} |",
        snapshot / 1000.0,
        if snapshot < 5000.0 { "yes" } else { "no" }
    );
    println!(
        "| from NATS alone < 10 s | {:.2} s | {} |",
        nats / 1000.0,
        if nats < 10_000.0 { "yes" } else { "no" }
    );
    let ratio = of(|r| r.update.peak_rss_kib as f64 / r.update.steady_rss_kib.max(1) as f64);
    println!(
        "| peak during an update ≤ 2 × steady | {ratio:.2} × | {} |",
        if ratio <= 2.0 { "yes" } else { "no" }
    );
    let per_record =
        of(|r| r.update.steady_rss_kib as f64 * 1024.0) / f64::from(report.record_count);
    println!("| steady bytes per record | {per_record:.0} B | (NSD: see docs/benchmarks.md) |");
}
