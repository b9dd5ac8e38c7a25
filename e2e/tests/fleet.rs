//! Fleet health end to end: three dns-pods behind a Service, found by the operator through
//! the EndpointSlices the real EndpointSlice controller writes; a pod frozen while changes
//! are published, a pod fed a tampered snapshot, scaling, and a leader that dies.
//!
//! Each test owns a fleet (the fixture `zonefleet_e2e::dns_fleet::Fleet`): a NATS server, an
//! operator, three dns-pods and a Zone they serve. The operators watch every namespace, so the
//! tests of this file run one at a time.

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, ensure};
use async_nats::jetstream::object_store::ObjectMetadata;
use hickory_proto::rr::RecordType;
use kube::api::DeleteParams;
use nix::sys::signal::{Signal, kill};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, sync::Mutex, time::Instant};
use zonefleet_api::Zone;
use zonefleet_e2e::{
    dns,
    dns_fleet::{self, DNS_PORT, Fleet, FleetSpec},
    harness::{events_about, wait_for_object, wait_until},
    operator::{apply, record_manifest},
    tools::kubectl,
};
use zonefleet_nats::{Layout, META_DIGEST, META_PUBLISHED_AT, META_SERIAL, ResyncReply};
use zonefleet_wire::Message;

const TIMEOUT: Duration = Duration::from_secs(60);
const PODS: [&str; 3] = ["dns-a", "dns-b", "dns-c"];
/// The identity of the operator every fleet starts with.
const LEADER: &str = "fleet-a";
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const FLEET: FleetSpec = FleetSpec {
    pods: &PODS,
    operator: LEADER,
    timeout: TIMEOUT,
};

fn record(name: &str, owner: &str, kind: &str, values: &[&str]) -> Value {
    record_manifest("fleet", name, owner, kind, values)
}

/// Runs `test` on a fleet of its own (see [`FleetSpec`]: three dns-pods, the operator
/// [`LEADER`]) once every pod serves the Zone `fleet` (`fleet.example`) with the Records
/// `www` (A) and `txt` (TXT at `info`): Synced 3/3.
async fn with_fleet<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(TestFleet) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    dns_fleet::with_fleet(&ONE_AT_A_TIME, prefix, FLEET, |fleet| async move {
        apply(&fleet.zones, &json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
            "metadata": {"name": "fleet"},
            "spec": {"domain": "fleet.example",
                     "nameServers": [{"name": "ns1.fleet.example", "addresses": ["192.0.2.53"]}]},
        }))
        .await?;
        apply(&fleet.records, &record("www", "www", "A", &["192.0.2.10"])).await?;
        apply(&fleet.records, &record("txt", "info", "TXT", &["\"one\""])).await?;
        let fleet = TestFleet(fleet);
        fleet.wait_synced("3/3").await?;
        test(fleet).await
    })
    .await;
}

/// A test's [`Fleet`], with what the tests of this file ask of its Zone `fleet`.
struct TestFleet(Arc<Fleet>);

impl std::ops::Deref for TestFleet {
    type Target = Fleet;

    fn deref(&self) -> &Fleet {
        &self.0
    }
}

impl TestFleet {
    /// Waits for the Zone's `servers` and `Synced` to show `summary` at the current serial.
    async fn wait_synced(&self, summary: &str) -> anyhow::Result<Zone> {
        wait_for_object(
            &self.zones,
            "fleet",
            &format!("Synced {summary}"),
            TIMEOUT,
            |zone| {
                let Some(status) = &zone.status else {
                    return false;
                };
                let servers_ok = status
                    .servers
                    .as_ref()
                    .is_some_and(|s| s.summary == summary);
                let serial = status.serial.unwrap_or_default();
                let synced = status.conditions.iter().any(|c| {
                    c.type_ == "Synced"
                        && c.status == "True"
                        && c.message.contains(&format!("serve serial {serial}"))
                });
                servers_ok && synced
            },
        )
        .await
    }

    /// The Zone's serial.
    async fn serial(&self) -> anyhow::Result<u32> {
        Ok(self
            .zones
            .get("fleet")
            .await?
            .status
            .and_then(|s| s.serial)
            .unwrap_or_default())
    }

    /// Waits for a serial other than `serial`, and returns it.
    async fn wait_serial_after(&self, serial: u32) -> anyhow::Result<u32> {
        let zone = wait_for_object(&self.zones, "fleet", "a newer serial", TIMEOUT, |z| {
            z.status
                .as_ref()
                .and_then(|s| s.serial)
                .is_some_and(|s| s != serial)
        })
        .await?;
        Ok(zone.status.and_then(|s| s.serial).unwrap_or_default())
    }

    /// Waits for an Event about the Zone with `reason` whose note names `pod`.
    async fn wait_event(&self, reason: &str, pod: &str) -> anyhow::Result<String> {
        let prefix = format!("{reason}: ");
        wait_until(
            &format!("a {reason} Event naming {pod}"),
            TIMEOUT,
            || async {
                Ok(events_about(&self.ns.client, &self.ns.name, "Zone", None)
                    .await?
                    .into_iter()
                    .find(|e| e.starts_with(&prefix) && e.contains(pod)))
            },
        )
        .await
    }
}

/// A Zone and Records: Synced 3/3 in `kubectl get zones`, every Record Programmed.
#[tokio::test]
async fn a_zone_served_by_every_pod_is_synced_and_its_records_programmed() {
    with_fleet("fleet-synced", |fleet| async move {
        let kubectl = kubectl(&fleet.ns)?
            .args(["get", "zones", "-n", &fleet.ns.name])
            .output()?;
        let table = String::from_utf8_lossy(&kubectl.stdout);
        ensure!(
            table
                .lines()
                .any(|l| l.starts_with("fleet ") && l.contains(" 3/3 ")),
            "kubectl get zones:\n{table}"
        );
        for name in ["www", "txt"] {
            wait_for_object(&fleet.records, name, "Programmed", TIMEOUT, |r| {
                r.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Programmed" && c.status == "True")
                })
            })
            .await?;
        }
        Ok(())
    })
    .await;
}

/// A frozen pod misses two changes: it is counted as lagging and re-synced (an Event names
/// it); after the allowed attempts the Zone is Degraded, naming it; once it thaws the zone
/// returns to 3/3 and is no longer Degraded.
#[tokio::test]
async fn a_frozen_pod_is_resynced_degrades_the_zone_and_recovers() {
    with_fleet("fleet-frozen", |fleet| async move {
        let frozen = fleet.pid_of("dns-b")?;
        kill(frozen, Signal::SIGSTOP)?;
        let before = fleet.serial().await?;
        apply(&fleet.records, &record("txt", "info", "TXT", &["\"two\""])).await?;
        let middle = fleet.wait_serial_after(before).await?;
        apply(
            &fleet.records,
            &record("txt", "info", "TXT", &["\"three\""]),
        )
        .await?;
        let last = fleet.wait_serial_after(middle).await?;
        let lagging = wait_for_object(&fleet.zones, "fleet", "dns-b lagging", TIMEOUT, |z| {
            z.status
                .as_ref()
                .and_then(|s| s.servers.as_ref())
                .is_some_and(|s| s.lagging == ["dns-b"] && s.summary == "2/3")
        })
        .await;
        let event = fleet.wait_event("Resync", "dns-b").await;
        // Still wrong after the allowed attempts (3 here): a Warning naming it, and Degraded.
        let failed = fleet.wait_event("ResyncFailed", "dns-b").await;
        let was_degraded = wait_for_object(&fleet.zones, "fleet", "Degraded", TIMEOUT, |z| {
            degraded(z)
                .is_some_and(|(status, reason)| status == "True" && reason == "ServersNotSynced")
        })
        .await;
        kill(frozen, Signal::SIGCONT)?;
        lagging?;
        event?;
        failed?;
        was_degraded?;
        fleet.wait_synced("3/3").await?;
        wait_for_object(&fleet.zones, "fleet", "no longer Degraded", TIMEOUT, |z| {
            degraded(z).is_some_and(|(status, _)| status == "False")
        })
        .await?;
        fleet.wait_event("Resynced", "dns-b").await?;
        let ip = fleet.pod_ip("dns-b").await?;
        let answer = dns::ask(
            SocketAddr::new(ip, DNS_PORT),
            "info.fleet.example",
            RecordType::TXT,
        )
        .await?;
        ensure!(
            answer.rdata() == ["\"three\""],
            "dns-b after thawing: {answer:?}"
        );
        ensure!(fleet.serial().await? == last);
        Ok(())
    })
    .await;
}

/// One pod fed a tampered snapshot at the same serial: caught by its digest, and repaired.
#[tokio::test]
async fn a_tampered_snapshot_is_caught_by_its_digest_and_repaired() {
    with_fleet("fleet-tampered", |fleet| async move {
        let expected_digest = fleet
            .zones
            .get("fleet")
            .await?
            .status
            .and_then(|s| s.digest)
            .context("a digest")?;
        tamper(&fleet, "dns-c").await?;
        fleet.wait_event("Resync", "dns-c").await?;
        let ip = fleet.pod_ip("dns-c").await?;
        wait_until("dns-c repaired", TIMEOUT, || {
            let expected_digest = expected_digest.clone();
            async move {
                let body = zonefleet_e2e::http::request(
                    "GET",
                    SocketAddr::new(ip, dns_fleet::ADMIN_PORT),
                    "/zones",
                    Duration::from_secs(2),
                )
                .await?
                .body;
                Ok(body.contains(&expected_digest).then_some(()))
            }
        })
        .await?;
        fleet.wait_synced("3/3").await?;
        Ok(())
    })
    .await;
}

/// Scaling: a fourth pod is checked and counted; removed, it leaves the counts.
#[tokio::test]
async fn pods_added_and_removed_are_counted() {
    with_fleet("fleet-scaling", |fleet| async move {
        fleet.add_pod("dns-d").await?;
        fleet.wait_synced("4/4").await?;
        fleet.pods.delete("dns-d", &DeleteParams::default()).await?;
        fleet.wait_synced("3/3").await?;
        Ok(())
    })
    .await;
}

/// The leader dies: the standby takes the Lease and checks the fleet again.
#[tokio::test]
async fn a_standby_checks_the_fleet_when_the_leader_dies() {
    with_fleet("fleet-failover", |fleet| async move {
        fleet.start_operator("fleet-b").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        fleet.kill_operator(LEADER).await?;
        let killed = Instant::now();
        let before = fleet.serial().await?;
        apply(&fleet.records, &record("txt", "info", "TXT", &["\"four\""])).await?;
        fleet.wait_serial_after(before).await?;
        fleet.wait_synced("3/3").await?;
        let took = killed.elapsed();
        eprintln!("the standby checked the fleet {took:?} after the leader died");
        ensure!(took < Duration::from_secs(40), "the standby took {took:?}");
        Ok(())
    })
    .await;
}

/// The Zone's `Degraded` condition: status and reason.
fn degraded(zone: &Zone) -> Option<(String, String)> {
    zone.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Feeds `pod` a tampered version of the zone at the same serial: puts it in the snapshot
/// store, asks only that pod to re-sync, and puts the real snapshot back.
async fn tamper(fleet: &Fleet, pod: &str) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .user_and_password(fleet.nats.user.clone(), fleet.nats.password.clone())
        .connect(fleet.nats.url())
        .await?;
    let layout = Layout::new(&fleet.prefix)?;
    let store = async_nats::jetstream::new(client.clone())
        .get_object_store(layout.snapshot_bucket())
        .await?;
    let name = layout.object_name("fleet.example.");
    let mut object = store.get(&name).await?;
    let original_info = object.info().clone();
    let mut original = Vec::new();
    object.read_to_end(&mut original).await?;
    let Message::Snapshot(mut snapshot) = zonefleet_wire::decode(&original)? else {
        anyhow::bail!("the stored object is not a snapshot");
    };
    for record in &mut snapshot.records {
        if let hickory_proto::rr::RData::A(address) = &mut record.data {
            address.0 = std::net::Ipv4Addr::new(203, 0, 113, 66);
        }
    }
    snapshot.digest = zonefleet_wire::zone_digest(&snapshot.origin, &snapshot.records).to_vec();
    let tampered = snapshot.encode()?;
    let put = |bytes: Vec<u8>, metadata: HashMap<String, String>| {
        let store = store.clone();
        let name = name.clone();
        async move {
            let meta = ObjectMetadata {
                name,
                metadata,
                ..Default::default()
            };
            store.put(meta, &mut bytes.as_slice()).await?;
            anyhow::Ok(())
        }
    };
    let mut metadata = original_info.metadata.clone();
    metadata.insert(META_DIGEST.into(), zonefleet_wire::hex(&snapshot.digest));
    put(tampered, metadata).await?;
    let reply = client
        .request(
            layout.resync_subject(pod),
            serde_json::to_vec(&json!({"zones": ["fleet.example."]}))?.into(),
        )
        .await?;
    let reply: ResyncReply = serde_json::from_slice(&reply.payload)?;
    ensure!(
        reply
            .zones
            .first()
            .is_some_and(|z| z.digest == zonefleet_wire::hex(&snapshot.digest)),
        "{pod} did not take the tampered snapshot: {reply:?}"
    );
    let metadata = original_info.metadata;
    for key in [META_SERIAL, META_DIGEST, META_PUBLISHED_AT] {
        ensure!(metadata.contains_key(key), "the object has no {key}");
    }
    put(original, metadata).await?;
    Ok(())
}
