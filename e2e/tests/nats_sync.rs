//! The dns-pod against a real NATS server, fed by the operator's publisher in-process: a
//! zone larger than NATS' max_payload, small changes travelling as deltas, bad messages,
//! targeted re-sync, and a corrupt local snapshot.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, ensure};
use hickory_proto::rr::RecordType;
use serde_json::json;
use zonefleet_api::{RecordSpec, ZoneSpec};
use zonefleet_e2e::{
    dns,
    dns_pod::DnsPodProcess,
    harness::{ClusterEnv, wait_until},
    nats::NatsServer,
};
use zonefleet_nats::{Layout, MessageKey, ResyncReply, SIGNATURE};
use zonefleet_operator::{
    publish::{NatsPublisher, NatsSettings, ZonePublisher, ZoneVersion},
    zone::{self, AssembledZone, ObjectKey, RecordInput},
};

const TIMEOUT: Duration = Duration::from_secs(120);
/// 100,000 names with two addresses each, the apex NS and glue: over 200,000 records.
const NAMES: usize = 100_000;

fn big_zone(changed: &str) -> anyhow::Result<AssembledZone> {
    let mut records = Vec::with_capacity(NAMES + 1);
    for i in 0..NAMES {
        let spec: RecordSpec = serde_json::from_value(json!({
            "zoneRef": {"name": "big"}, "name": format!("host{i}"), "type": "A",
            "values": [format!("10.{}.{}.1", i / 256 % 256, i % 256),
                       format!("10.{}.{}.2", i / 256 % 256, i % 256)],
        }))?;
        records.push(record_input(i, spec));
    }
    let spec: RecordSpec = serde_json::from_value(json!({
        "zoneRef": {"name": "big"}, "name": "changing", "type": "TXT", "values": [changed],
    }))?;
    records.push(record_input(NAMES, spec));
    Ok(zone::assemble("test", &zone_spec()?, &records)?.zone)
}

fn zone_spec() -> anyhow::Result<ZoneSpec> {
    Ok(serde_json::from_value(json!({
        "domain": "big.example",
        "nameServers": [{"name": "ns1.big.example", "addresses": ["192.0.2.53"]}],
    }))?)
}

fn record_input(i: usize, spec: RecordSpec) -> RecordInput {
    RecordInput {
        key: ObjectKey {
            namespace: "test".into(),
            name: format!("r{i}"),
        },
        created: None,
        spec,
        namespace_labels: None::<BTreeMap<String, String>>,
    }
}

fn version(content: AssembledZone, serial: u32, previous: Option<u32>) -> ZoneVersion {
    ZoneVersion {
        zone: ObjectKey {
            namespace: "test".into(),
            name: "big".into(),
        },
        serial,
        previous_serial: previous,
        content: std::sync::Arc::new(content),
    }
}

async fn served(pod: &DnsPodProcess, zone: &str) -> Option<(u32, u64)> {
    let body = pod.admin_get("/zones").await.ok()?;
    let zones: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
    let entry = zones.iter().find(|z| z["zone"] == zone)?;
    Some((
        u32::try_from(entry["serial"].as_u64()?).ok()?,
        entry["records"].as_u64()?,
    ))
}

async fn wait_for_serial(pod: &DnsPodProcess, serial: u32) -> anyhow::Result<u64> {
    wait_until(
        &format!("big.example. at serial {serial}"),
        TIMEOUT,
        || async {
            Ok(served(pod, "big.example.")
                .await
                .filter(|(s, _)| *s == serial)
                .map(|(_, records)| records))
        },
    )
    .await
}

async fn txt(pod: &DnsPodProcess) -> anyhow::Result<Vec<String>> {
    Ok(dns::ask(pod.dns, "changing.big.example", RecordType::TXT)
        .await?
        .rdata())
}

#[tokio::test]
async fn big_zones_small_deltas_bad_messages_resync_and_a_corrupt_local_snapshot() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let env = ClusterEnv::load().expect("the local cluster's environment");
    let run = async {
        let name = format!("sync-{}", std::process::id());
        let mut nats = NatsServer::start(&env, &name).await?;
        let prefix = format!("e2e-{name}");
        let layout = Layout::new(&prefix)?;
        let dir = env.dir()?.join(&name);
        std::fs::create_dir_all(&dir)?;
        let key_file = dir.join("message.key");
        std::fs::write(&key_file, "0123456789abcdef0123456789abcdef-e2e\n")?;
        let key = MessageKey::from_file(&key_file)?;
        let client = async_nats::ConnectOptions::new()
            .user_and_password(nats.user.clone(), nats.password.clone())
            .connect(nats.url())
            .await?;
        let publisher = NatsPublisher::open(
            client.clone(),
            layout.clone(),
            NatsSettings {
                key: Some(key.clone()),
                ..NatsSettings::default()
            },
        )
        .await?;

        // A zone far larger than max_payload (1 MB) goes through the object store.
        let v1 = big_zone("\"one\"")?;
        ensure!(v1.record_count > 200_000, "{} records", v1.record_count);
        let size = v1.snapshot(1).encode()?.len();
        ensure!(size > 1024 * 1024, "the snapshot is only {size} bytes");
        eprintln!("snapshot of {} records: {size} bytes", v1.record_count);
        publisher.publish(&version(v1, 1, None)).await?;

        let snapshot_dir = dir.join("snapshot");
        let mut pod_env = nats.client_env(&prefix);
        pod_env.push((
            "ZONEFLEET_MESSAGE_KEY_FILE".into(),
            key_file.display().to_string(),
        ));
        pod_env.push(("POD_NAME".into(), "solo".into()));
        let args = vec![
            "--snapshot-dir".to_owned(),
            snapshot_dir.display().to_string(),
        ];
        let mut pod = DnsPodProcess::start(&args, &pod_env, &dir.join("dns-pod.log"))?;
        let records = wait_for_serial(&pod, 1).await?;
        ensure!(records > 200_000, "the pod serves {records} records");
        let answer = dns::ask(pod.dns, "host99999.big.example", RecordType::A).await?;
        ensure!(answer.rdata().len() == 2, "{answer:?}");
        ensure!(txt(&pod).await? == ["\"one\""]);

        // A one-record change travels as a small delta, not as the zone.
        publisher
            .publish(&version(big_zone("\"two\"")?, 2, Some(1)))
            .await?;
        wait_for_serial(&pod, 2).await?;
        ensure!(txt(&pod).await? == ["\"two\""]);
        ensure!(
            pod.metric("zonefleet_dns_updates_applied_total{kind=\"delta\"}")
                .await?
                == 1.0,
            "the change was not applied as a delta"
        );
        let js = async_nats::jetstream::new(client.clone());
        let stream = js.get_stream(layout.event_stream()).await?;
        let last = stream
            .get_last_raw_message_by_subject(&layout.event_subject("big.example."))
            .await?;
        eprintln!(
            "a one-record change: a {}-byte delta event",
            last.payload.len()
        );
        ensure!(
            last.payload.len() < 1024,
            "the delta event is {} bytes",
            last.payload.len()
        );

        // Bad messages are counted and change nothing.
        let subject = layout.event_subject("big.example.");
        let wrong = zonefleet_wire::Marker {
            origin: "big.example.".parse()?,
            serial: 0,
            digest: Vec::new(),
        }
        .encode_retract()?;
        // Unsigned: a retraction anyone with publish rights could send.
        client
            .publish(subject.clone(), wrong.clone().into())
            .await?;
        // Signed, but garbage.
        let garbage = b"ZFW\x01\x02garbage".to_vec();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SIGNATURE, key.sign(&subject, &garbage).as_str());
        client
            .publish_with_headers(subject.clone(), headers, garbage.into())
            .await?;
        // Signed, valid, but on another zone's subject.
        let other = layout.event_subject("other.example.");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SIGNATURE, key.sign(&other, &wrong).as_str());
        client
            .publish_with_headers(other, headers, wrong.into())
            .await?;
        client.flush().await?;
        for reason in ["unauthenticated", "malformed", "wrong_subject"] {
            let metric =
                format!("zonefleet_dns_sync_rejected_messages_total{{reason=\"{reason}\"}}");
            wait_until(&format!("{reason} counted"), TIMEOUT, || async {
                Ok((pod.metric(&metric).await? >= 1.0).then_some(()))
            })
            .await?;
        }
        ensure!(served(&pod, "big.example.").await.map(|(s, _)| s) == Some(2));
        ensure!(txt(&pod).await? == ["\"two\""]);

        // A targeted re-sync answers with what the pod serves.
        let reply = client
            .request(
                layout.resync_subject("solo"),
                serde_json::to_vec(&json!({"zones": ["big.example."]}))?.into(),
            )
            .await?;
        let reply: ResyncReply = serde_json::from_slice(&reply.payload)?;
        ensure!(reply.errors.is_empty(), "{:?}", reply.errors);
        ensure!(
            reply.zones.len() == 1 && reply.zones[0].serial == 2,
            "{reply:?}"
        );

        // A corrupt local snapshot is discarded, and the pod rebuilds from NATS.
        pod.stop().await?;
        let file = snapshot_dir.join("big.example.zfw");
        let mut bytes = std::fs::read(&file).context("the local snapshot")?;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(&file, bytes)?;
        let mut pod = DnsPodProcess::start(&args, &pod_env, &dir.join("dns-pod.log"))?;
        wait_for_serial(&pod, 2).await?;
        ensure!(txt(&pod).await? == ["\"two\""]);
        let log = std::fs::read_to_string(&pod.log)?;
        ensure!(
            log.contains("discarding a corrupt local snapshot"),
            "no log line about the corrupt snapshot"
        );

        // With NATS down, a restarted pod serves its (rewritten) local snapshot at once.
        wait_until("the local snapshot rewritten", TIMEOUT, || async {
            Ok(std::fs::read(&file)
                .ok()
                .and_then(|b| zonefleet_wire::decode(&b).ok())
                .filter(|m| m.serial() == 2)
                .map(|_| ()))
        })
        .await?;
        pod.stop().await?;
        nats.stop().await?;
        let mut pod = DnsPodProcess::start(&args, &pod_env, &dir.join("dns-pod.log"))?;
        wait_for_serial(&pod, 2).await?;
        let ready = pod.admin_get("/readyz").await;
        ensure!(
            ready.is_ok(),
            "not ready from its local snapshot: {ready:?}"
        );
        pod.stop().await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok::<_, anyhow::Error>(())
    };
    run.await.expect("the NATS sync scenario");
}
