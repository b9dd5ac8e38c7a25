//! Zone distribution end to end: the operator publishes to a real NATS JetStream, and two
//! dns-pods run by the process kubelet build their zones from it and answer DNS queries.
//!
//! The test owns its NATS server, so it can stop and start it; its operator watches every
//! namespace, so the tests of this file run one at a time.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, ensure};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use zonefleet_api::{Record, Zone};
use zonefleet_e2e::{
    dns,
    dns_fleet::{self, ADMIN_PORT, DNS_PORT},
    harness::{TestNamespace, wait_for_object, wait_until, with_test_namespace},
    http,
    nats::NatsServer,
    operator::{OperatorProcess, apply, install_crds, record_manifest},
};

const TIMEOUT: Duration = Duration::from_secs(60);
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn record(name: &str, owner: &str, kind: &str, values: &[&str]) -> Value {
    record_manifest("shop", name, owner, kind, values)
}

/// A dns-pod following `nats`, with its local snapshot in a directory of the test's.
fn dns_pod(ns: &TestNamespace, name: &str, nats: &NatsServer, prefix: &str) -> anyhow::Result<Pod> {
    let snapshot_dir = ns.env.dir()?.join("snapshots").join(&ns.name).join(name);
    dns_fleet::dns_pod(
        ns.env.var("ZONEFLEET_POD_LABEL")?,
        name,
        "dns",
        &nats.client_env(prefix),
        &snapshot_dir,
        1,
    )
}

fn ready_ip(pod: &Pod) -> Option<std::net::IpAddr> {
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready
        .then(|| status.pod_ip.as_deref()?.parse().ok())
        .flatten()
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .map_or(0, |c| c.restart_count)
}

/// The serial a pod's `/zones` shows for `zone`.
async fn served_serial(ip: std::net::IpAddr, zone: &str) -> anyhow::Result<Option<u32>> {
    let response = http::request(
        "GET",
        SocketAddr::new(ip, ADMIN_PORT),
        "/zones",
        Duration::from_secs(2),
    )
    .await?;
    let zones: Vec<Value> = serde_json::from_str(&response.body)?;
    Ok(zones
        .iter()
        .find(|z| z["zone"] == zone)
        .and_then(|z| z["serial"].as_u64())
        .and_then(|s| u32::try_from(s).ok()))
}

/// Waits until `dig` at every pod gives `expected` for `name A`.
async fn wait_for_answer(
    pods: &[std::net::IpAddr],
    name: &str,
    expected: &[&str],
) -> anyhow::Result<()> {
    for ip in pods {
        let server = SocketAddr::new(*ip, DNS_PORT);
        wait_until(
            &format!("{name} A = {expected:?} at {ip}"),
            TIMEOUT,
            || async move {
                let answer = dns::ask(server, name, RecordType::A).await?;
                let mut answers = answer.rdata();
                answers.sort();
                Ok((answer.rcode() == ResponseCode::NoError
                    && answer.authoritative()
                    && answers == expected)
                    .then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

async fn zone_serial(zones: &Api<Zone>, after: Option<u32>) -> anyhow::Result<u32> {
    let zone = wait_for_object(zones, "shop", "a newer serial", TIMEOUT, |z| {
        let serial = z.status.as_ref().and_then(|s| s.serial);
        serial.is_some() && serial != after
    })
    .await?;
    Ok(zone.status.and_then(|s| s.serial).unwrap_or_default())
}

async fn wait_for_serial(pods: &[std::net::IpAddr], zone: &str, serial: u32) -> anyhow::Result<()> {
    for ip in pods {
        wait_until(
            &format!("{ip} serving {zone} at {serial}"),
            TIMEOUT,
            || async move {
                Ok((served_serial(*ip, zone).await.ok().flatten() == Some(serial)).then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

async fn ready_pods(pods: &Api<Pod>, names: &[&str]) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let mut ips = Vec::new();
    for name in names {
        let pod = wait_for_object(pods, name, "Ready", TIMEOUT, |p| ready_ip(p).is_some()).await?;
        ips.extend(ready_ip(&pod));
    }
    Ok(ips)
}

/// The six steps of the distribution story: publish, change, NATS down, restart without
/// NATS, NATS back, delete.
#[tokio::test]
async fn dns_pods_serve_what_the_operator_publishes_and_survive_nats_outages() {
    let _one = ONE_AT_A_TIME.lock().await;
    with_test_namespace("dist", |ns| async move {
        install_crds(&ns.client).await?;
        let prefix = format!("e2e-{}", ns.name);
        let mut nats = NatsServer::start(&ns.env, &ns.name).await?;
        let mut operator = OperatorProcess::start_with(
            &ns.env,
            &ns.name,
            "dist-operator",
            &nats.client_env(&prefix),
        )?;
        let zones: Api<Zone> = Api::namespaced(ns.client.clone(), &ns.name);
        let records: Api<Record> = Api::namespaced(ns.client.clone(), &ns.name);
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);

        // 1. A Zone with Records; two dns-pods answer, and show the operator's serial.
        apply(&zones, &json!({
            "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
            "metadata": {"name": "shop"},
            "spec": {"domain": "shop.example",
                     "nameServers": [{"name": "ns1.shop.example", "addresses": ["192.0.2.53"]}]},
        }))
        .await?;
        apply(
            &records,
            &record("www", "www", "A", &["192.0.2.10", "192.0.2.11"]),
        )
        .await?;
        apply(&records, &record("api", "api", "A", &["192.0.2.20"])).await?;
        for name in ["dns-a", "dns-b"] {
            pods.create(&PostParams::default(), &dns_pod(&ns, name, &nats, &prefix)?)
                .await?;
        }
        let ips = ready_pods(&pods, &["dns-a", "dns-b"]).await?;
        wait_for_answer(&ips, "www.shop.example", &["192.0.2.10", "192.0.2.11"]).await?;
        wait_for_answer(&ips, "api.shop.example", &["192.0.2.20"]).await?;
        let first = zone_serial(&zones, None).await?;
        wait_for_serial(&ips, "shop.example.", first).await?;

        // 2. A changed Record: both pods serve the new serial.
        apply(&records, &record("api", "api", "A", &["192.0.2.21"])).await?;
        let second = zone_serial(&zones, Some(first)).await?;
        wait_for_serial(&ips, "shop.example.", second).await?;
        wait_for_answer(&ips, "api.shop.example", &["192.0.2.21"]).await?;

        // 3. NATS stops; nothing changes; the pods keep answering.
        nats.stop().await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for ip in &ips {
            let answer = dns::ask(
                SocketAddr::new(*ip, DNS_PORT),
                "api.shop.example",
                RecordType::A,
            )
            .await?;
            ensure!(
                answer.rdata() == ["192.0.2.21"],
                "{ip} without NATS: {answer:?}"
            );
        }

        // 4. A pod restarts while NATS is down: it serves its local snapshot.
        let before = pods.get("dns-a").await?;
        let pid = i32::try_from(ns.container_pid("dns-a", "dns")?)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        let restarted = wait_for_object(&pods, "dns-a", "restarted and Ready", TIMEOUT, |p| {
            restarts(p) > restarts(&before) && ready_ip(p).is_some()
        })
        .await?;
        let restarted_ip = ready_ip(&restarted).context("an address")?;
        let answer = dns::ask(
            SocketAddr::new(restarted_ip, DNS_PORT),
            "api.shop.example",
            RecordType::A,
        )
        .await?;
        ensure!(
            answer.rdata() == ["192.0.2.21"] && answer.authoritative(),
            "the restarted pod without NATS answered {answer:?}"
        );
        ensure!(served_serial(restarted_ip, "shop.example.").await? == Some(second));

        // 5. NATS is back and a Record changes: the pods converge.
        nats.resume().await?;
        apply(&records, &record("api", "api", "A", &["192.0.2.22"])).await?;
        let third = zone_serial(&zones, Some(second)).await?;
        let ips = ready_pods(&pods, &["dns-a", "dns-b"]).await?;
        wait_for_serial(&ips, "shop.example.", third).await?;
        wait_for_answer(&ips, "api.shop.example", &["192.0.2.22"]).await?;

        // 6. The Zone is deleted: the pods answer REFUSED for it.
        zones.delete("shop", &DeleteParams::default()).await?;
        for ip in &ips {
            let server = SocketAddr::new(*ip, DNS_PORT);
            wait_until(&format!("REFUSED at {ip}"), TIMEOUT, || async move {
                let answer = dns::ask(server, "www.shop.example", RecordType::A).await?;
                Ok((answer.rcode() == ResponseCode::Refused).then_some(()))
            })
            .await?;
        }
        operator.terminate().await?;
        nats.stop().await?;
        Ok(())
    })
    .await;
}
