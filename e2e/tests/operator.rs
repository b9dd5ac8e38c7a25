//! The Zone and Record API and the operator, against the local control plane.
//!
//! The operator watches every namespace, so these tests run one at a time, each with its
//! own operator process (and Lease) and its own namespace.

use std::{process::Command, time::Duration};

use anyhow::{Context, bail, ensure};
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use zonefleet_api::{Record, Zone};
use zonefleet_e2e::{
    harness::{
        ClusterEnv, TestNamespace, events_about, wait_for_object, wait_until, with_test_namespace,
    },
    operator::{OperatorProcess, apply, delete_zones, install_crds},
};

const TIMEOUT: Duration = Duration::from_secs(30);
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn zone_manifest(name: &str, domain: &str, extra: Value) -> Value {
    let mut zone = json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Zone",
        "metadata": {"name": name},
        "spec": {
            "domain": domain,
            "nameServers": [{"name": format!("ns1.{domain}"), "addresses": ["192.0.2.53"]},
                            {"name": "ns.provider.example.net"}],
        },
    });
    if let (Some(spec), Some(extra)) = (zone["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    zone
}

fn record_manifest(name: &str, zone: Value, owner: &str, kind: &str, values: &[&str]) -> Value {
    json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
        "metadata": {"name": name},
        "spec": {"zoneRef": zone, "name": owner, "type": kind, "values": values},
    })
}

fn condition<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == kind)
}

fn zone_ready(zone: &Zone) -> bool {
    zone.status
        .as_ref()
        .and_then(|s| condition(&s.conditions, "Ready"))
        .is_some_and(|c| c.status == "True" && c.observed_generation == zone.metadata.generation)
}

fn serial_of(zone: &Zone) -> Option<u32> {
    zone.status.as_ref().and_then(|s| s.serial)
}

fn accepted(record: &Record) -> Option<&Condition> {
    record
        .status
        .as_ref()
        .and_then(|s| condition(&s.conditions, "Accepted"))
}

async fn wait_for_zone(
    zones: &Api<Zone>,
    name: &str,
    what: &str,
    ok: impl Fn(&Zone) -> bool,
) -> anyhow::Result<Zone> {
    wait_for_object(zones, name, what, TIMEOUT, ok).await
}

async fn wait_for_record(
    records: &Api<Record>,
    name: &str,
    what: &str,
    ok: impl Fn(&Record) -> bool,
) -> anyhow::Result<Record> {
    wait_for_object(records, name, what, TIMEOUT, ok).await
}

/// The Zone and Record APIs of the test's namespace, once the Zone `example`
/// (`example.com`) is applied.
async fn example_zone(ns: &TestNamespace) -> anyhow::Result<(Api<Zone>, Api<Record>)> {
    let zones: Api<Zone> = ns.api();
    apply(&zones, &zone_manifest("example", "example.com", json!({}))).await?;
    Ok((zones, ns.api()))
}

/// Applies the Record `name`, `owner kind values`, of the Zone `example`.
async fn apply_example_record(
    records: &Api<Record>,
    name: &str,
    owner: &str,
    kind: &str,
    values: &[&str],
) -> kube::Result<Record> {
    let zone_ref = json!({"name": "example"});
    apply(
        records,
        &record_manifest(name, zone_ref, owner, kind, values),
    )
    .await
}

/// Runs a test with the CRDs installed and one operator running, in a namespace of its own.
async fn with_operator<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(TestNamespace) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let _turn = ONE_AT_A_TIME.lock().await;
    with_test_namespace(prefix, |ns| async move {
        install_crds(&ns.client).await?;
        let operator = OperatorProcess::start(&ns.env, &ns.name, "operator-0")?;
        let outcome = test(ns.clone()).await;
        let cleanup = delete_zones(&ns.client, &ns.name, TIMEOUT).await;
        drop(operator);
        outcome.and(cleanup)
    })
    .await;
}

fn kubectl(env: &ClusterEnv, args: &[&str]) -> anyhow::Result<String> {
    let kubectl = env
        .var("PATH")?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("kubectl"))
        .find(|p| p.exists())
        .context("kubectl among the cluster's tools")?;
    let output = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", env.var("KUBECONFIG")?)
        .output()?;
    ensure!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test]
async fn the_api_server_rejects_invalid_manifests_with_clear_messages() {
    let _turn = ONE_AT_A_TIME.lock().await;
    with_test_namespace("invalid", |ns| async move {
        install_crds(&ns.client).await?;
        let zones: Api<Zone> = ns.api();
        let records: Api<Record> = ns.api();
        let rejected = |result: kube::Result<_>, expect: &[&str]| -> anyhow::Result<()> {
            match result {
                Err(kube::Error::Api(status)) => {
                    ensure!(status.code == 422, "expected 422 Invalid, got {status:?}");
                    for text in expect {
                        ensure!(status.message.contains(text), "{:?} lacks {text:?}", status.message);
                    }
                    Ok(())
                }
                Ok(_) => bail!("the API server accepted an invalid manifest"),
                Err(e) => bail!("unexpected error {e}"),
            }
        };
        // 1. A domain that is not a DNS name.
        rejected(apply(&zones, &zone_manifest("bad-domain", "exa mple.com", json!({}))).await.map(drop), &["spec.domain", "should match"])?;
        // 2. A record type that does not exist, and a CNAME with two targets.
        let bad_type = record_manifest("bad-type", json!({"name": "z"}), "www", "AXFR", &["x"]);
        rejected(apply(&records, &bad_type).await.map(drop), &["spec.type", "Unsupported value: \"AXFR\""])?;
        let two_targets = record_manifest("two", json!({"name": "z"}), "www", "CNAME", &["a.example.", "b.example."]);
        rejected(apply(&records, &two_targets).await.map(drop), &["a CNAME record has exactly one value"])?;
        // 3. Changing an immutable field.
        apply(&zones, &zone_manifest("fixed", "fixed.example", json!({}))).await?;
        rejected(apply(&zones, &zone_manifest("fixed", "other.example", json!({}))).await.map(drop), &["domain is immutable"])?;
        // And a few more the schema catches: a negative TTL, glue that is no address.
        let negative = json!({"apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record", "metadata": {"name": "neg"},
            "spec": {"zoneRef": {"name": "z"}, "name": "www", "type": "A", "ttl": -1, "values": ["192.0.2.1"]}});
        rejected(apply(&records, &negative).await.map(drop), &["spec.ttl"])?;
        let glue = zone_manifest("glue", "glue.example", json!({"nameServers": [{"name": "ns1.glue.example", "addresses": ["300.1.1.1"]}]}));
        rejected(apply(&zones, &glue).await.map(drop), &["addresses must be IPv4 or IPv6 addresses"])?;
        zones.delete("fixed", &DeleteParams::default()).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_zone_is_assembled_versioned_and_reported() {
    with_operator("zone", |ns| async move {
        let (zones, records) = example_zone(&ns).await?;
        apply_example_record(&records, "www", "www", "A", &["192.0.2.10", "192.0.2.11"]).await?;
        apply_example_record(&records, "mx", "@", "MX", &["10 mail"]).await?;
        apply_example_record(&records, "spf", "@", "TXT", &["\"v=spf1 mx -all\""]).await?;

        // SOA, 2 NS, 1 glue, 2 A, 1 MX, 1 TXT.
        let zone = wait_for_zone(&zones, "example", "ready with 8 records", |z| {
            zone_ready(z) && z.status.as_ref().and_then(|s| s.record_count) == Some(8)
        })
        .await?;
        let serial = serial_of(&zone).context("a serial")?;
        let status = zone.status.as_ref().context("status")?;
        ensure!(
            status.digest.as_ref().is_some_and(|d| d.len() == 64),
            "a SHA-256 digest"
        );
        let degraded = condition(&status.conditions, "Degraded").context("Degraded")?;
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("False", "AsExpected")
        );
        ensure!(
            zone.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "dns.zonefleet.io/retract"),
            "the finalizer is set"
        );
        for name in ["www", "mx", "spf"] {
            let record = wait_for_record(&records, name, "accepted", |r| {
                accepted(r).is_some_and(|c| c.status == "True")
            })
            .await?;
            let status = record.status.context("status")?;
            ensure!(
                status.zone_serial.is_some(),
                "{name} records the serial that included it"
            );
            assert_eq!(status.observed_generation, record.metadata.generation);
        }

        // Printer columns.
        let table = kubectl(&ns.env, &["get", "zones", "-n", &ns.name])?;
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME", "DOMAIN", "SERIAL", "RECORDS", "SYNCED", "READY", "AGE"
            ]
        );
        let row: Vec<&str> = table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            &row[..4],
            ["example", "example.com", &serial.to_string(), "8"]
        );
        let table = kubectl(&ns.env, &["get", "records", "-n", &ns.name, "www"])?;
        assert!(
            table.contains("192.0.2.10 (+1 more)") && table.contains("True"),
            "{table}"
        );

        // Events.
        let events = events_about(&ns.client, &ns.name, "Zone", Some("example")).await?;
        ensure!(
            events.iter().any(|e| e.starts_with("Published")),
            "a Published event, got {events:?}"
        );

        // One changed Record moves the serial exactly one step.
        apply_example_record(&records, "www", "www", "A", &["192.0.2.12"]).await?;
        let zone = wait_for_zone(&zones, "example", "the next serial", |z| {
            serial_of(z) != Some(serial)
        })
        .await?;
        assert_eq!(serial_of(&zone), Some(serial + 1));
        assert_eq!(zone.status.as_ref().and_then(|s| s.record_count), Some(7));

        // Re-applying the same manifests, and a reconcile forced by a metadata change, change nothing.
        apply_example_record(&records, "www", "www", "A", &["192.0.2.12"]).await?;
        apply(&zones, &zone_manifest("example", "example.com", json!({}))).await?;
        let annotate = json!({"metadata": {"annotations": {"e2e/poke": "1"}}});
        zones
            .patch("example", &PatchParams::default(), &Patch::Merge(&annotate))
            .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let zone = zones.get("example").await?;
        assert_eq!(
            serial_of(&zone),
            Some(serial + 1),
            "no new serial without a content change"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn conflicts_and_bad_rdata_are_reported_on_the_right_record() {
    with_operator("conflict", |ns| async move {
        let (zones, records) = example_zone(&ns).await?;
        apply_example_record(&records, "first", "www", "A", &["192.0.2.1"]).await?;
        wait_for_record(&records, "first", "accepted", |r| {
            accepted(r).is_some_and(|c| c.status == "True")
        })
        .await?;
        apply_example_record(
            &records,
            "second",
            "www",
            "CNAME",
            &["elsewhere.example.org."],
        )
        .await?;
        apply_example_record(&records, "broken", "mail", "MX", &["mail.example.com."]).await?;

        let second = wait_for_record(&records, "second", "rejected", |r| {
            accepted(r).is_some_and(|c| c.status == "False")
        })
        .await?;
        let condition = accepted(&second).context("Accepted")?;
        assert_eq!(condition.reason, "Conflict");
        assert!(
            condition.message.contains(&format!("{}/first", ns.name)),
            "{}",
            condition.message
        );
        let first = records.get("first").await?;
        assert_eq!(
            accepted(&first).map(|c| c.status.as_str()),
            Some("True"),
            "the older record keeps its place"
        );

        let broken = wait_for_record(&records, "broken", "rejected", |r| {
            accepted(r).is_some_and(|c| c.status == "False")
        })
        .await?;
        let condition = accepted(&broken).context("Accepted")?;
        assert_eq!(condition.reason, "InvalidRData");
        assert!(
            condition.message.contains("mail.example.com."),
            "{}",
            condition.message
        );

        let zone = wait_for_zone(&zones, "example", "degraded", |z| {
            z.status
                .as_ref()
                .and_then(|s| condition_status(&s.conditions, "Degraded"))
                == Some("True")
        })
        .await?;
        let degraded = zone
            .status
            .as_ref()
            .and_then(|s| self::condition(&s.conditions, "Degraded"))
            .context("Degraded")?;
        assert_eq!(degraded.reason, "RecordsRejected");
        wait_until(
            "Warning events on the rejected records",
            TIMEOUT,
            || async {
                let second = events_about(&ns.client, &ns.name, "Record", Some("second")).await?;
                let broken = events_about(&ns.client, &ns.name, "Record", Some("broken")).await?;
                let first = events_about(&ns.client, &ns.name, "Record", Some("first")).await?;
                ensure!(
                    first.is_empty(),
                    "no event on the accepted record: {first:?}"
                );
                Ok((second.iter().any(|e| e.starts_with("Conflict:"))
                    && broken.iter().any(|e| e.starts_with("InvalidRData:")))
                .then_some(()))
            },
        )
        .await?;
        Ok(())
    })
    .await;
}

fn condition_status<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a str> {
    condition(conditions, kind).map(|c| c.status.as_str())
}

#[tokio::test]
async fn records_from_another_namespace_are_rejected_unless_the_zone_admits_them() {
    with_operator("tenant", |ns| async move {
        let (zones, _) = example_zone(&ns).await?;
        let namespaces: Api<Namespace> = Api::all(ns.client.clone());
        let other = namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        generate_name: Some("e2e-other-".into()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await?;
        let other_name = other.metadata.name.clone().context("a name")?;
        let outcome = async {
            let foreign: Api<Record> = Api::namespaced(ns.client.clone(), &other_name);
            let zone_ref = json!({"name": "example", "namespace": ns.name});
            apply(
                &foreign,
                &record_manifest("hijack", zone_ref, "www", "A", &["203.0.113.66"]),
            )
            .await?;
            let record = wait_for_record(&foreign, "hijack", "rejected", |r| {
                accepted(r).is_some_and(|c| c.status == "False")
            })
            .await?;
            assert_eq!(
                accepted(&record).map(|c| c.reason.as_str()),
                Some("NamespaceNotAllowed")
            );
            let zone = zones.get("example").await?;
            assert_eq!(
                zone.status.and_then(|s| s.record_count),
                Some(4),
                "nothing of it is in the zone"
            );

            apply(
                &zones,
                &zone_manifest(
                    "example",
                    "example.com",
                    json!({"recordNamespaces": {"from": "All"}}),
                ),
            )
            .await?;
            wait_for_record(&foreign, "hijack", "accepted once admitted", |r| {
                accepted(r).is_some_and(|c| c.status == "True")
            })
            .await?;
            anyhow::Ok(())
        }
        .await;
        namespaces
            .delete(&other_name, &DeleteParams::default())
            .await?;
        outcome
    })
    .await;
}

#[tokio::test]
async fn deleting_a_zone_completes_and_orphans_its_records() {
    with_operator("delete", |ns| async move {
        let (zones, records) = example_zone(&ns).await?;
        apply_example_record(&records, "www", "www", "A", &["192.0.2.1"]).await?;
        wait_for_record(&records, "www", "accepted", |r| {
            accepted(r).is_some_and(|c| c.status == "True")
        })
        .await?;

        zones.delete("example", &DeleteParams::default()).await?;
        wait_until("the zone to be gone", TIMEOUT, || async {
            Ok(zones.get_opt("example").await?.is_none().then_some(()))
        })
        .await?;
        let record = wait_for_record(&records, "www", "orphaned", |r| {
            accepted(r).is_some_and(|c| c.reason == "ZoneNotFound")
        })
        .await?;
        assert_eq!(accepted(&record).map(|c| c.status.as_str()), Some("False"));
        let events = events_about(&ns.client, &ns.name, "Zone", Some("example")).await?;
        ensure!(
            events.iter().any(|e| e.starts_with("Retracted")),
            "a Retracted event, got {events:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn killing_the_leader_hands_over_to_the_standby() {
    let _turn = ONE_AT_A_TIME.lock().await;
    with_test_namespace("leader", |ns| async move {
        install_crds(&ns.client).await?;
        let leases: Api<Lease> = ns.api();
        let holder = || async {
            let lease = leases.get_opt("zonefleet-operator").await?;
            anyhow::Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
        };
        let mut first = OperatorProcess::start(&ns.env, &ns.name, "operator-a")?;
        wait_until("operator-a to lead", TIMEOUT, || async {
            Ok(holder().await?.filter(|h| h == "operator-a"))
        })
        .await?;
        let mut second = OperatorProcess::start(&ns.env, &ns.name, "operator-b")?;

        let (zones, records) = example_zone(&ns).await?;
        let zone = wait_for_zone(&zones, "example", "ready", zone_ready).await?;
        let serial = serial_of(&zone).context("a serial")?;
        assert_eq!(
            holder().await?.as_deref(),
            Some("operator-a"),
            "the standby waits"
        );

        first.kill().await?;
        let killed = tokio::time::Instant::now();
        apply_example_record(&records, "www", "www", "A", &["192.0.2.1"]).await?;
        wait_until(
            "operator-b to take over",
            Duration::from_secs(40),
            || async { Ok(holder().await?.filter(|h| h == "operator-b")) },
        )
        .await?;
        let zone = wait_for_zone(
            &zones,
            "example",
            "the next serial from the new leader",
            |z| serial_of(z) == Some(serial + 1),
        )
        .await?;
        let took = killed.elapsed();
        eprintln!(
            "handover: the standby published serial {} {took:?} after the leader was killed",
            serial + 1
        );
        ensure!(took < Duration::from_secs(30), "handover took {took:?}");
        ensure!(second.is_running(), "the new leader runs");
        assert_eq!(zone.status.and_then(|s| s.record_count), Some(5));
        delete_zones(&ns.client, &ns.name, TIMEOUT).await?;
        drop(second);
        Ok(())
    })
    .await;
}
