//! The Zone reconcile pipeline: fetch → validate and assemble → decide the serial →
//! publish → status.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Instant,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{api::core::v1::Namespace, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{
        controller::Action,
        events::EventType,
        finalizer::{Event as FinalizerEvent, finalizer},
        reflector::ObjectRef,
    },
};
use serde_json::json;
use zonefleet_api::{NamespaceSelection, Record, RecordStatus, Zone, ZoneStatus};

use super::{Context, FIELD_MANAGER, PublishedVersion, ZONE_FINALIZER, guarded, key_of, status};
use crate::{
    error::{Error, Result},
    publish::ZoneVersion,
    zone::{self, Assembly, ObjectKey, RecordInput, Verdict},
};

/// Reconciles one Zone.
pub async fn reconcile(guard: Arc<DeserializeGuard<Zone>>, ctx: Arc<Context>) -> Result<Action> {
    guarded("zone", &guard, &ctx, |zone| {
        reconcile_zone(Arc::new(zone.clone()), &ctx)
    })
    .await
}

async fn reconcile_zone(zone: Arc<Zone>, ctx: &Context) -> Result<Action> {
    ctx.ensure_leading()?;
    let api: Api<Zone> = Api::namespaced(ctx.client.clone(), &zone.namespace().unwrap_or_default());
    finalizer(&api, ZONE_FINALIZER, zone, |event| async {
        match event {
            FinalizerEvent::Apply(zone) => apply(&zone, ctx).await,
            FinalizerEvent::Cleanup(zone) => cleanup(&zone, ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    })
}

/// The Records that reference a Zone, through the index, from the shared store.
pub(crate) fn records_of(ctx: &Context, zone: &ObjectKey) -> Vec<Arc<DeserializeGuard<Record>>> {
    let keys = ctx
        .record_index
        .read()
        .map(|index| index.records_of(zone))
        .unwrap_or_default();
    keys.iter()
        .filter_map(|key| {
            ctx.records
                .get(&ObjectRef::new(&key.name).within(&key.namespace))
        })
        .collect()
}

async fn apply(zone: &Zone, ctx: &Context) -> Result<Action> {
    // 1. Fetch. The Records come from the store, which `controller::run` saw complete its
    //    first list before any reconcile, so a restart never assembles from a partial list.
    let key = key_of(zone);
    let records: Vec<Arc<Record>> = records_of(ctx, &key)
        .into_iter()
        .filter_map(|guard| guard.0.as_ref().ok().map(|r| Arc::new(r.clone())))
        .collect();
    let labels = namespace_labels(ctx, zone, &records).await?;
    let inputs: Vec<RecordInput> = records
        .iter()
        .map(|r| RecordInput {
            key: key_of(r.as_ref()),
            created: r.meta().creation_timestamp.as_ref().map(|t| t.0),
            spec: r.spec.clone(),
            namespace_labels: labels.get(&r.namespace().unwrap_or_default()).cloned(),
        })
        .collect();

    // 2–4. Validate, assemble, digest.
    let now = Timestamp::now();
    let generation = zone.meta().generation;
    let assembly = match zone::assemble(&key.namespace, &zone.spec, &inputs) {
        Ok(assembly) => assembly,
        Err(e) => {
            let failed =
                status::zone_failed_status(zone.status.as_ref(), generation, &e.to_string(), now);
            write_zone_status(ctx, zone, &failed, false).await?;
            ctx.event(zone, EventType::Warning, "InvalidSpec", e.to_string())
                .await;
            return Err(e.into());
        }
    };

    let digest = assembly.zone.digest_hex();
    tracing::debug!(zone = %key, records = records.len(), %digest,
        current = ?zone.status.as_ref().and_then(|s| s.serial), "assembled");

    // 5. The serial.
    let known = ctx.published.lock().ok().and_then(|p| p.get(&key).cloned());
    let decision = status::decide_version(
        zone.status.as_ref(),
        known.as_ref(),
        &digest,
        zone.spec.serial_policy,
        now,
    );

    // 6. Publish a new version.
    if decision.publish {
        ctx.ensure_leading()?;
        let version = ZoneVersion {
            zone: key.clone(),
            serial: decision.serial,
            previous_serial: decision.previous,
            content: Arc::new(assembly.zone.clone()),
        };
        let started = Instant::now();
        ctx.publisher.publish(&version).await?;
        ctx.metrics
            .publish_duration
            .observe(started.elapsed().as_secs_f64());
        ctx.metrics.published_versions.inc();
        if let Some(notices) = &ctx.publish_notices {
            let _ = notices.send(crate::fleet::PublishNotice {
                zone: key.clone(),
                origin: assembly.zone.origin.to_string(),
                serial: decision.serial,
                digest: digest.clone(),
                at: std::time::Instant::now(),
            });
        }
        if let Ok(mut published) = ctx.published.lock() {
            let version = PublishedVersion {
                serial: decision.serial,
                digest: digest.clone(),
            };
            published.insert(key.clone(), version);
        }
        tracing::info!(zone = %key, serial = decision.serial, previous = ?decision.previous,
            records = assembly.zone.record_count, %digest, "published zone version");
        ctx.event(
            zone,
            EventType::Normal,
            "Published",
            format!(
                "serial {} with {} records",
                decision.serial, assembly.zone.record_count
            ),
        )
        .await;
    } else {
        // Unchanged: make sure the distribution still holds this version (NATS may have
        // lost it, or this process never published it).
        ctx.ensure_leading()?;
        let version = ZoneVersion {
            zone: key.clone(),
            serial: decision.serial,
            previous_serial: None,
            content: Arc::new(assembly.zone.clone()),
        };
        ctx.publisher.ensure(&version).await?;
    }

    // 7. Status: the Zone's, then each Record's.
    let fleet_problem = crate::fleet::report::problems_of(ctx, &key);
    let zone_status = status::zone_status(
        zone.status.as_ref(),
        generation,
        &assembly,
        decision.serial,
        fleet_problem.as_deref(),
        now,
    );
    if !status::zone_status_unchanged(zone.status.as_ref(), &zone_status) {
        write_zone_status(ctx, zone, &zone_status, decision.publish).await?;
    }
    write_record_statuses(ctx, &records, &assembly, decision.serial, now).await?;
    ctx.tally(&key, Some(tally(&assembly)));
    Ok(Action::await_change())
}

fn tally(assembly: &Assembly) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for verdict in assembly.verdicts.values() {
        let reason = match verdict {
            Verdict::Accepted => "Accepted",
            Verdict::Rejected { reason, .. } => reason.as_str(),
        };
        *counts.entry(reason).or_default() += 1;
    }
    counts
}

/// Labels of the other namespaces Records come from, when the Zone admits them by selector.
async fn namespace_labels(
    ctx: &Context,
    zone: &Zone,
    records: &[Arc<Record>],
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut labels = BTreeMap::new();
    if zone.spec.record_namespaces.from != NamespaceSelection::Selector {
        return Ok(labels);
    }
    let own = zone.namespace().unwrap_or_default();
    let others: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.namespace())
        .filter(|ns| *ns != own)
        .collect();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    for name in others {
        if let Some(namespace) = api.get_opt(&name).await? {
            labels.insert(name, namespace.metadata.labels.unwrap_or_default());
        }
    }
    Ok(labels)
}

/// Writes a Zone's status with server-side apply. A status that carries a new serial is
/// written only if the Zone's serial and spec are unchanged since it was read, so a replica
/// acting on stale state cannot record a serial over a newer one. Writes by others that
/// change neither (the fleet health checker's `servers`) only make it try again with the
/// fresh resourceVersion.
async fn write_zone_status(
    ctx: &Context,
    zone: &Zone,
    status: &ZoneStatus,
    fenced: bool,
) -> Result<()> {
    const ATTEMPTS: usize = 5;
    let api: Api<Zone> = Api::namespaced(ctx.client.clone(), &zone.namespace().unwrap_or_default());
    let base_serial = zone.status.as_ref().and_then(|s| s.serial);
    let mut resource_version = zone.resource_version();
    for attempt in 1..=ATTEMPTS {
        ctx.ensure_leading()?;
        let mut patch = json!({
            "apiVersion": Zone::api_version(&()),
            "kind": Zone::kind(&()),
            "status": status,
        });
        if fenced {
            patch["metadata"] = json!({"resourceVersion": resource_version});
        }
        let written = api
            .patch_status(
                &zone.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await;
        match written {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if fenced && e.code == 409 && attempt < ATTEMPTS => {
                let current = api.get_status(&zone.name_any()).await?;
                let same_base = current.status.as_ref().and_then(|s| s.serial) == base_serial
                    && current.metadata.generation == zone.metadata.generation;
                if !same_base {
                    return Err(kube::Error::Api(e).into());
                }
                resource_version = current.resource_version();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes the status of each Record whose status changes (a few at a time), and an Event
/// for each newly rejected one.
async fn write_record_statuses(
    ctx: &Context,
    records: &[Arc<Record>],
    assembly: &Assembly,
    serial: u32,
    now: Timestamp,
) -> Result<()> {
    const CONCURRENT_WRITES: usize = 8;
    let changes: Vec<(Arc<Record>, Verdict, RecordStatus)> = records
        .iter()
        .filter_map(|record| {
            let verdict = assembly.verdicts.get(&key_of(record.as_ref()))?;
            let desired = status::record_status(
                record.status.as_ref(),
                record.meta().generation,
                verdict,
                serial,
                &record.spec.values,
                now,
            );
            (!status::record_status_unchanged(record.status.as_ref(), &desired))
                .then(|| (record.clone(), verdict.clone(), desired))
        })
        .collect();
    futures::stream::iter(changes)
        .map(|(record, verdict, desired)| async move {
            write_record_status(ctx, &record, &desired).await?;
            if let Verdict::Rejected { reason, message } = &verdict {
                let before = record.status.as_ref().and_then(|s| {
                    s.conditions
                        .iter()
                        .find(|c| c.type_ == status::kinds::ACCEPTED)
                });
                if before.is_none_or(|c| c.reason != reason.as_str()) {
                    ctx.event(
                        record.as_ref(),
                        EventType::Warning,
                        reason.as_str(),
                        message.clone(),
                    )
                    .await;
                }
            }
            Ok::<_, Error>(())
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Writes one Record's status with server-side apply.
pub async fn write_record_status(
    ctx: &Context,
    record: &Record,
    status: &RecordStatus,
) -> Result<()> {
    ctx.ensure_leading()?;
    let api: Api<Record> =
        Api::namespaced(ctx.client.clone(), &record.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": Record::api_version(&()),
        "kind": Record::kind(&()),
        "status": status,
    });
    match api
        .patch_status(
            &record.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Deleted since it was listed: nothing to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A Zone is going: retract it, and tell its Records.
async fn cleanup(zone: &Zone, ctx: &Context) -> Result<Action> {
    ctx.ensure_leading()?;
    let key = key_of(zone);
    ctx.publisher.retract(&key, &zone.spec.domain).await?;
    tracing::info!(zone = %key, domain = %zone.spec.domain, "retracted zone");
    ctx.event(
        zone,
        EventType::Normal,
        "Retracted",
        format!("zone {} retracted", zone.spec.domain),
    )
    .await;
    let now = Timestamp::now();
    for guard in records_of(ctx, &key) {
        let Ok(record) = &guard.0 else { continue };
        let desired = status::record_zone_missing(
            record.status.as_ref(),
            record.meta().generation,
            &key,
            &record.spec.values,
            now,
        );
        if !status::record_status_unchanged(record.status.as_ref(), &desired) {
            write_record_status(ctx, record, &desired).await?;
        }
    }
    ctx.tally(&key, None);
    if let Ok(mut published) = ctx.published.lock() {
        published.remove(&key);
    }
    Ok(Action::await_change())
}
