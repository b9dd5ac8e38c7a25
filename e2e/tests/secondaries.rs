//! An external secondary follows the fleet: Knot DNS, configured with the Zone's TSIG key,
//! takes the zone from a DNS pod by a signed AXFR, then each change by a signed IXFR as soon
//! as the operator's NOTIFY tells it, with `status.secondaries` showing it in sync.
//!
//! Runs a fleet of its own (NATS, an operator, two dns-pods on the process kubelet).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::{Context as _, ensure};
use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use tokio::{sync::Mutex, time::Instant};
use zonefleet_api::Zone;
use zonefleet_e2e::{
    dns::ask,
    dns_fleet::{self, Fleet, FleetSpec},
    harness::{wait_for_object, wait_until},
    knot::{KnotKey, KnotSecondary},
    operator::apply,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const FLEET: FleetSpec = FleetSpec {
    pods: &["dns-0", "dns-1"],
    operator: "op-0",
    timeout: Duration::from_secs(90),
};
const TIMEOUT: Duration = Duration::from_secs(60);
const DOMAIN: &str = "secondary.example";
const KEY_NAME: &str = "transfer.secondary.example.";
/// A hmac-sha256 key as `tsig-keygen` prints it.
const SECRET: &str = "kZ1ffx0Y7dB0jFz2Vn3n1mXz8tR6Lw5aQp4s9c2uE0Y=";
/// Changes made one after another.
const CHANGES: u32 = 50;

fn zone(knot_port: u16) -> serde_json::Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
        "metadata": {"name": "secondary"},
        "spec": {
            "domain": DOMAIN,
            "nameServers": [{"name": format!("ns1.{DOMAIN}"), "addresses": ["192.0.2.53"]}],
            "tsigKeys": [{"name": KEY_NAME, "secretRef": {"name": "transfer-key"}}],
            "transfer": {
                "allow": [{"tsigKey": KEY_NAME}],
                "secondaries": [{"address": "127.0.0.1", "port": knot_port, "tsigKey": KEY_NAME}],
            },
        },
    })
}

fn txt(value: u32) -> serde_json::Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
        "metadata": {"name": "change"},
        "spec": {"zoneRef": {"name": "secondary"}, "name": "change", "type": "TXT",
                 "values": [format!("\"change {value}\"")]},
    })
}

/// The serial `at` serves for the zone, if it answers.
async fn serial_at(at: std::net::SocketAddr) -> Option<u32> {
    ask(at, DOMAIN, RecordType::SOA).await.ok()?.soa_serial()
}

/// The zone as `kdig` transfers it from `server` (with the key if given): its records, one
/// line each, sorted, each once.
fn transferred(server: std::net::SocketAddr, key: bool) -> anyhow::Result<Vec<String>> {
    let mut command = std::process::Command::new("kdig");
    command.args([
        "-p",
        &server.port().to_string(),
        &format!("@{}", server.ip()),
    ]);
    if key {
        command.args(["-y", &format!("hmac-sha256:{KEY_NAME}:{SECRET}")]);
    }
    let output = command
        .args(["AXFR", DOMAIN, "+noall", "+answer"])
        .output()
        .context("kdig (Debian knot-dnsutils)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines.dedup();
    ensure!(
        lines.len() > 2,
        "kdig transferred nothing from {server}:\n{text}"
    );
    Ok(lines)
}

/// The serial the Zone's status says every ready pod serves.
fn served_serial(zone: &Zone) -> Option<u32> {
    let status = zone.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready.then_some(status.serial?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_every_change_by_notify_and_ixfr() {
    dns_fleet::with_fleet(&ONE_AT_A_TIME, "secondaries", FLEET, |fleet: Arc<Fleet>| async move {
        let secrets = fleet.api::<Secret>();
        secrets
            .create(
                &PostParams::default(),
                &Secret {
                    metadata: ObjectMeta {
                        name: Some("transfer-key".into()),
                        ..ObjectMeta::default()
                    },
                    string_data: Some(BTreeMap::from([("secret".into(), SECRET.into())])),
                    ..Secret::default()
                },
            )
            .await?;
        let primary = fleet.pod_address("dns-0").await?;
        let knot = KnotSecondary::start(
            fleet.ns.env.dir()?.join(format!("knot-{}", fleet.ns.name)),
            &format!("{DOMAIN}."),
            primary,
            [127, 0, 0, 1].into(),
            &KnotKey {
                name: KEY_NAME.into(),
                algorithm: "hmac-sha256".into(),
                secret: SECRET.into(),
            },
        )
        .await?;
        apply(&fleet.zones, &zone(knot.address.port())).await?;
        apply(&fleet.records, &txt(0)).await?;

        // The first version: Knot takes it by AXFR, and the status shows it in sync.
        let first = wait_for_object(&fleet.zones, "secondary", "served", TIMEOUT, |z| {
            served_serial(z).is_some()
        })
        .await?;
        let first = served_serial(&first).context("served")?;
        wait_until("Knot serves the first version", TIMEOUT, || async {
            Ok((serial_at(knot.address).await >= Some(first)).then_some(()))
        })
        .await
        .with_context(|| knot.log())?;
        wait_for_object(&fleet.zones, "secondary", "secondaries 1/1", TIMEOUT, |z| {
            z.status
                .as_ref()
                .and_then(|s| s.secondaries.as_ref())
                .is_some_and(|s| s.summary == "1/1")
        })
        .await?;

        // Each change: from the moment the status says every pod serves it to the moment
        // Knot serves it.
        let mut lags = Vec::new();
        let mut serial = first;
        for change in 1..=CHANGES {
            apply(&fleet.records, &txt(change)).await?;
            let served = wait_for_object(&fleet.zones, "secondary", "the next serial", TIMEOUT, |z| {
                served_serial(z).is_some_and(|s| s != serial)
            })
            .await?;
            serial = served_serial(&served).context("served")?;
            let from = Instant::now();
            wait_until(&format!("Knot serves serial {serial}"), TIMEOUT, || async {
                Ok((serial_at(knot.address).await == Some(serial)).then_some(()))
            })
            .await
            .with_context(|| knot.log())?;
            lags.push(from.elapsed());
        }
        lags.sort();
        let median = lags[lags.len() / 2];
        let p90 = lags[lags.len() * 9 / 10];
        let worst = lags[lags.len() - 1];
        eprintln!(
            "Knot served each of {CHANGES} changes after the pods: median {median:?}, p90 {p90:?}, worst {worst:?}"
        );
        // The target is 1 s; a loaded CI machine gets 3 s for its slowest change.
        ensure!(
            p90 < Duration::from_secs(1) && worst < Duration::from_secs(3),
            "NOTIFY brings each change within 1 s: median {median:?}, p90 {p90:?}, worst {worst:?}"
        );

        let log = knot.log();
        let ixfrs = log
            .lines()
            .filter(|l| l.contains("IXFR, incoming") && l.contains("finished"))
            .count();
        let axfrs = log
            .lines()
            .filter(|l| l.contains("AXFR, incoming") && l.contains("finished"))
            .count();
        let notifies = log
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("notify, incoming"))
            .count();
        ensure!(
            ixfrs >= CHANGES as usize && axfrs == 1,
            "Knot took one AXFR and {CHANGES} IXFRs (saw {axfrs} and {ixfrs}):\n{log}"
        );
        ensure!(
            notifies >= CHANGES as usize,
            "Knot got a NOTIFY per change (saw {notifies}):\n{log}"
        );
        // Before the Zone's access document reached the pods, Knot's first refresh could
        // meet a pod that did not know the key yet; from the first transfer on, none fails.
        let after_first = log
            .split_once("AXFR, incoming")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        ensure!(
            !after_first.contains("failed") && !after_first.contains("denied"),
            "every NOTIFY and transfer was signed and allowed:\n{log}"
        );
        // Knot's copy equals the pods', record for record.
        let pods = transferred(primary, true)?;
        let knots = transferred(knot.address, false)?;
        ensure!(pods == knots, "the pods' zone:\n{pods:#?}\nKnot's:\n{knots:#?}");
        Ok(())
    })
    .await;
}
