//! One changed record in a large zone, followed by a real secondary: how big the IXFR is on
//! the wire, and how long until the secondary serves the change.
//!
//! The dns-pod's serving code runs in this process on 127.0.0.1 with a zone of `--records`
//! A records (version 1). Knot DNS (`/usr/sbin/knotd`, Debian package `knot`) is started as
//! its secondary and takes version 1 by AXFR. Then one record changes: the pod applies the
//! delta (version 2), this program asks the pod for the IXFR from version 1 as a secondary
//! would and counts its bytes, and `knotc zone-refresh` makes Knot fetch it; the time runs
//! until Knot answers with the new address.
//!
//! ```sh
//! cargo run --release -p zonefleet-bench --bin ixfr-large -- --records 1000000
//! ```

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RData, Record, RecordType, rdata::SOA},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zonefleet_dns_pod::{
    metrics::DnsMetrics,
    serve::{DnsListeners, QueryHandler, TcpLimits, TransferAcl},
    zones::{ServedZone, ZoneStore},
};
use zonefleet_wire::{Delta, Snapshot};

const ZONE: &str = "big.test.";
const KNOTD: &str = "/usr/sbin/knotd";
const KNOTC: &str = "/usr/sbin/knotc";

#[derive(Debug, Parser)]
struct Args {
    /// A records in the zone.
    #[arg(long, default_value_t = 1_000_000)]
    records: u32,
    /// How long Knot may take for the first full transfer, in seconds.
    #[arg(long, default_value_t = 600)]
    axfr_timeout: u64,
}

/// The zone at `serial`: `h<i>` A records, the address of `h0` changing with the serial.
fn version(records: u32, serial: u32) -> anyhow::Result<Snapshot> {
    let origin = Name::from_ascii(ZONE)?;
    let soa_name = Name::from_ascii("ns1.big.test.")?;
    let mut all = Vec::with_capacity(records as usize + 2);
    all.push(Record::from_rdata(
        origin.clone(),
        3600,
        RData::SOA(SOA::new(
            soa_name.clone(),
            Name::from_ascii("hostmaster.big.test.")?,
            serial,
            3600,
            600,
            86_400,
            300,
        )),
    ));
    all.push(Record::from_rdata(
        origin.clone(),
        3600,
        RData::NS(hickory_proto::rr::rdata::NS(soa_name)),
    ));
    for i in 0..records {
        let address = if i == 0 {
            std::net::Ipv4Addr::new(192, 0, 2, u8::try_from(serial % 250).unwrap_or(0))
        } else {
            std::net::Ipv4Addr::from(0x0A00_0000 | i)
        };
        all.push(Record::from_rdata(
            Name::from_ascii(format!("h{i}.big.test."))?,
            3600,
            RData::A(address.into()),
        ));
    }
    Ok(Snapshot {
        digest: zonefleet_wire::zone_digest(&origin, &all).to_vec(),
        origin,
        serial,
        records: all,
    })
}

/// knotd as the secondary, stopped when dropped.
struct Knot {
    child: Child,
    dir: PathBuf,
    address: SocketAddr,
}

impl Knot {
    fn start(primary: SocketAddr) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("zonefleet-ixfr-large-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db"))?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = format!(
            "server:\n  rundir: \"{dir}\"\n  listen: 127.0.0.1@{port}\n\
             database:\n  storage: \"{dir}/db\"\n\
             log:\n  - target: stderr\n    any: info\n\
             remote:\n  - id: primary\n    address: {ip}@{primary_port}\n\
             template:\n  - id: default\n    storage: \"{dir}\"\n    zonefile-sync: -1\n\
             zone:\n  - domain: \"{ZONE}\"\n    master: primary\n",
            dir = dir.display(),
            ip = primary.ip(),
            primary_port = primary.port(),
        );
        std::fs::write(dir.join("knot.conf"), config)?;
        let log = std::fs::File::create(dir.join("knot.log"))?;
        let child = Command::new(KNOTD)
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {KNOTD} (Debian package knot)"))?;
        Ok(Self {
            child,
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knot.log")).unwrap_or_default()
    }

    fn refresh(&self) -> anyhow::Result<()> {
        let status = Command::new(KNOTC)
            .arg("-s")
            .arg(self.dir.join("knot.sock"))
            .args(["zone-refresh", ZONE])
            .status()?;
        ensure!(status.success(), "knotc zone-refresh failed");
        Ok(())
    }

    /// Waits until Knot answers `h0` with `address`; returns how long that took.
    async fn wait_for(&self, address: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if answer_of(self.address, "h0.big.test.").await.as_deref() == Some(address) {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!(
            "Knot did not serve {address} in {timeout:?}:\n{}",
            tail(&self.log())
        )
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The first answer's data for `name` A, over UDP.
async fn answer_of(server: SocketAddr, name: &str) -> Option<String> {
    let mut message = Message::new(1, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(&message.to_vec().ok()?, server).await.ok()?;
    let mut buffer = vec![0; 4096];
    let len = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buffer))
        .await
        .ok()?
        .ok()?;
    let reply = Message::from_vec(&buffer[..len]).ok()?;
    Some(reply.answers.first()?.data.to_string())
}

/// The IXFR from `serial` as a secondary asks it: the bytes of every response message and
/// the records they hold.
async fn ixfr(server: SocketAddr, serial: u32) -> anyhow::Result<(usize, usize)> {
    let apex = Name::from_ascii(ZONE)?;
    let mut message = Message::new(7, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(apex.clone(), RecordType::IXFR));
    let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
    message.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    let query = message.to_vec()?;
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.len())?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(&query).await?;
    let (mut bytes, mut records, mut soas) = (0, 0, 0);
    loop {
        let len = stream.read_u16().await?;
        let mut response = vec![0; usize::from(len)];
        stream.read_exact(&mut response).await?;
        bytes += 2 + response.len();
        let response = Message::from_vec(&response)?;
        records += response.answers.len();
        soas += response
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        // One delta: current SOA, old SOA, new SOA, current SOA.
        if soas >= 4 || response.answers.is_empty() {
            return Ok((bytes, records));
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let v1 = version(args.records, 1)?;
    let v2 = version(args.records, 2)?;
    let delta = Delta::between(&v1, &v2);
    let served = ServedZone::from_snapshot(v1)?;
    println!(
        "zone {ZONE}: {} records indexed in {:.2?}",
        served.index.record_count(),
        started.elapsed()
    );
    let zones = Arc::new(ZoneStore::new());
    let applying = Instant::now();
    let next = served.apply(&delta)?;
    let applied = applying.elapsed();
    zones.insert(served);

    let metrics = Arc::new(DnsMetrics::register(&mut Default::default()));
    let acl = TransferAcl::new(vec!["127.0.0.0/8".parse()?]);
    let handler = QueryHandler::new(
        Arc::clone(&zones),
        Default::default(),
        acl,
        Arc::clone(&metrics),
    );
    let listeners = DnsListeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1).await?;
    let primary = listeners.local_addr()?;
    let limits = TcpLimits {
        max_connections: 64,
        idle_timeout: Duration::from_secs(30),
    };
    tokio::spawn(listeners.serve(handler, limits, metrics));

    let knot = Knot::start(primary)?;
    let axfr = knot
        .wait_for("192.0.2.1", Duration::from_secs(args.axfr_timeout))
        .await?;
    println!("Knot took version 1 by AXFR in {axfr:.2?}");

    zones.insert(next);
    println!("the pod applied the one-record delta in {applied:.2?}");
    let (bytes, records) = ixfr(primary, 1).await?;
    println!(
        "IXFR from serial 1: {bytes} bytes on the wire (TCP length prefixes included), {records} records"
    );
    let refreshing = Instant::now();
    knot.refresh()?;
    let followed = knot.wait_for("192.0.2.2", Duration::from_secs(30)).await?;
    println!(
        "Knot served the change {followed:.2?} after `knotc zone-refresh` ({:.2?} including the command)",
        refreshing.elapsed()
    );
    let log = knot.log();
    let ixfr_lines: Vec<&str> = log.lines().filter(|l| l.contains("IXFR")).collect();
    for line in log.lines().filter(|l| l.contains("AXFR")) {
        println!("knot: {line}");
    }
    ensure!(
        ixfr_lines.iter().any(|l| l.contains("finished")),
        "Knot did not take an IXFR:\n{}",
        tail(&log)
    );
    for line in ixfr_lines {
        println!("knot: {line}");
    }
    Ok(())
}
