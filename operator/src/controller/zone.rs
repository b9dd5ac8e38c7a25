//! The Zone reconcile pipeline: fetch → validate and assemble → access (transfer rules and
//! TSIG keys, with their Secrets) → decide the serial → publish → status.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::core::v1::{Namespace, Secret},
    jiff::Timestamp,
};
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
use zonefleet_nats::ZoneAccess;

use super::{
    Context, FIELD_MANAGER, Note, PublishedVersion, ZONE_FINALIZER, guarded, key_of,
    status::{self, Fleet, NextVersion, ZoneOutcome},
};
use crate::{
    domains,
    error::{Error, Result},
    publish::ZoneVersion,
    zone::{
        self, Assembly, ObjectKey, RecordInput, Verdict,
        access::{self, AccessSpecError, SecretData},
    },
};

/// How often a Zone with TSIG keys is reconciled even without a change: Secrets are not
/// watched, so a rotated key reaches the DNS pods within this time.
pub const SECRET_REFRESH: Duration = Duration::from_secs(300);

/// Reconciles one Zone.
pub async fn reconcile(guard: Arc<DeserializeGuard<Zone>>, ctx: Arc<Context>) -> Result<Action> {
    guarded("zone", &guard, &ctx, |zone| {
        reconcile_zone(Arc::new(zone.clone()), &ctx)
    })
    .await
}

async fn reconcile_zone(zone: Arc<Zone>, ctx: &Context) -> Result<Action> {
    ctx.ensure_leading()?;
    let zone = with_latest_status(ctx, zone);
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

/// The Zone with the status this replica last wrote, while the cache does not show that
/// write yet. Status writes do not trigger reconciles, and the fleet checker's views trigger
/// them in quick succession: a reconcile that compared with a stale cached status could skip
/// a write the object needs and never be asked again.
fn with_latest_status(ctx: &Context, zone: Arc<Zone>) -> Arc<Zone> {
    let key = key_of(zone.as_ref());
    let Ok(mut written) = ctx.zone_statuses.lock() else {
        return zone;
    };
    match written.get(&key) {
        Some((version, _)) if zone.metadata.resource_version.as_ref() == Some(version) => {
            written.remove(&key);
            zone
        }
        Some((_, status)) => {
            let mut fresher = (*zone).clone();
            fresher.status = Some(status.clone());
            Arc::new(fresher)
        }
        None => zone,
    }
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
    let key = key_of(zone);
    let now = Timestamp::now();
    // 1. Fetch. The Records come from the store, which `controller::run` saw complete its
    //    first list before any reconcile, so a restart never assembles from a partial list.
    let records: Vec<Arc<Record>> = records_of(ctx, &key)
        .into_iter()
        .filter_map(|guard| guard.0.as_ref().ok().map(|r| Arc::new(r.clone())))
        .collect();
    let claims = claims(ctx);
    let me = domains::Claim::of(zone);
    ctx.announce_claim(zone, me.as_ref(), &claims);

    // 2. Ownership: a Zone that does not own its domain publishes nothing.
    let child_zones = match me.as_ref().map(|me| (me, domains::standing(me, &claims))) {
        Some((me, domains::Standing::Conflict(conflict))) => {
            return domain_conflict(zone, ctx, &records, &conflict, &conflict.message(me), now)
                .await;
        }
        Some((_, domains::Standing::Owner { child_zones })) => child_zones,
        None => Vec::new(),
    };

    // 3. Assemble.
    let inputs = record_inputs(ctx, zone, &records).await?;
    let generation = zone.meta().generation;
    let assembly = match assemble(ctx, zone, &key, &records, &inputs, &child_zones) {
        Ok(assembly) => assembly,
        Err(e) => {
            invalid_spec(ctx, zone, &key, e.to_string(), now).await?;
            return Err(e.into());
        }
    };
    let digest = assembly.zone.digest_hex();
    tracing::debug!(zone = %key, records = records.len(), %digest,
        current = ?zone.status.as_ref().and_then(|s| s.serial), "assembled");

    // 3b. Access: the transfer rules and TSIG keys, with the keys' Secrets. A Secret that
    //     is missing or wrong is an invalid spec, retried until it is fixed.
    let access = match access_of(ctx, zone, &assembly.zone.origin.to_ascii()).await? {
        Ok(access) => access,
        Err(e) => {
            invalid_spec(ctx, zone, &key, e.to_string(), now).await?;
            return Err(e.into());
        }
    };

    // 4. Decide the serial.
    let decision = decide(ctx, zone, &key, &digest).await?;

    // 5. Publish (or make sure the distribution still holds the current version). A new
    //    version is announced in the status first: until the pods serve it, the Zone is
    //    not Ready, also while the publish itself hangs.
    let fleet = ctx.fleet_of(&key);
    let mut written: Option<Zone> = None;
    if decision.publish {
        let publishing = status::zone_status(
            zone.status.as_ref(),
            generation,
            ZoneOutcome::Assembled {
                assembly: &assembly,
                serial: decision.previous.unwrap_or(decision.serial),
                next: Some(NextVersion::Publishing(decision.serial)),
            },
            fleet.as_fleet(),
            now,
        );
        if !status::status_unchanged(zone.status.as_ref(), &publishing) {
            written = Some(write_zone_status(ctx, zone, &publishing, true).await?);
        }
    }
    let published = publish(ctx, zone, &key, &assembly, &access, decision).await;
    let failed = published
        .as_ref()
        .err()
        .map(|e| (decision.serial, e.to_string()));

    // 6. Status: the Zone's, then each Record's.
    let serial = match failed {
        Some(_) => decision.previous.unwrap_or(decision.serial),
        None => decision.serial,
    };
    // The status just written (if any) is the current one: conditions that went False for
    // the publish and come back True get a new transition time.
    let base = written.as_ref().unwrap_or(zone);
    // Read again: the checker may have seen the pods serve the version meanwhile.
    let fleet = ctx.fleet_of(&key);
    let mut zone_status = status::zone_status(
        base.status.as_ref(),
        generation,
        ZoneOutcome::Assembled {
            assembly: &assembly,
            serial,
            next: failed
                .as_ref()
                .map(|(s, e)| NextVersion::Failed(*s, e.as_str())),
        },
        fleet.as_fleet(),
        now,
    );
    // 7. External secondaries: told of the serial once every ready pod serves it.
    zone_status.secondaries = ctx.track_secondaries(
        zone,
        &key,
        &assembly.zone.origin,
        &access,
        served_everywhere(fleet.as_fleet(), serial),
    );
    if !status::status_unchanged(base.status.as_ref(), &zone_status) {
        write_zone_status(
            ctx,
            base,
            &zone_status,
            decision.publish && failed.is_none(),
        )
        .await?;
    }
    if let Err(e) = published {
        if !has_ready_reason(zone, status::reasons::PUBLISH_FAILED) {
            ctx.event(
                zone,
                EventType::Warning,
                "PublishFailed",
                failed.map(|f| f.1).unwrap_or_default(),
            )
            .await;
        }
        return Err(e);
    }
    write_record_statuses(
        ctx,
        &records,
        &assembly.verdicts,
        decision.serial,
        fleet.as_fleet(),
        now,
    )
    .await?;
    ctx.tally(&key, Some(tally(&assembly)));
    if zone.spec.tsig_keys.is_empty() {
        Ok(Action::await_change())
    } else {
        Ok(Action::requeue(SECRET_REFRESH))
    }
}

/// `serial`, if every ready DNS pod serves it (as far as anyone can tell: without fleet
/// health checking, once it is published).
fn served_everywhere(fleet: status::Fleet<'_>, serial: u32) -> Option<u32> {
    match fleet {
        status::Fleet::Off => Some(serial),
        status::Fleet::Unseen => None,
        status::Fleet::Seen(view) => (view.serial == serial
            && view.servers.total > 0
            && view.servers.synced == view.servers.total)
            .then_some(serial),
    }
}

/// A Zone whose spec cannot be published: `Ready=False` with reason `InvalidSpec` and
/// `message`, and a Warning Event when it becomes so. Nothing is published.
async fn invalid_spec(
    ctx: &Context,
    zone: &Zone,
    key: &ObjectKey,
    message: String,
    now: Timestamp,
) -> Result<()> {
    let status = status::zone_status(
        zone.status.as_ref(),
        zone.meta().generation,
        ZoneOutcome::InvalidSpec(&message),
        ctx.fleet_of(key).as_fleet(),
        now,
    );
    if !status::status_unchanged(zone.status.as_ref(), &status) {
        write_zone_status(ctx, zone, &status, false).await?;
    }
    if !has_ready_reason(zone, status::reasons::INVALID_SPEC) {
        ctx.event(zone, EventType::Warning, "InvalidSpec", message)
            .await;
    }
    Ok(())
}

/// The Zone's access document (`origin` is its apex), with its keys' secrets read from the
/// Secrets of its namespace (`get` only: Secrets are not watched or listed).
async fn access_of(
    ctx: &Context,
    zone: &Zone,
    origin: &str,
) -> Result<std::result::Result<ZoneAccess, AccessSpecError>> {
    let namespace = zone.namespace().unwrap_or_default();
    let mut secrets = SecretData::new();
    let referenced = access::referenced_secrets(&zone.spec);
    if !referenced.is_empty() {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        for name in referenced {
            if let Some(secret) = api.get_opt(name).await? {
                let data = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, value)| (key, value.0))
                    .collect();
                secrets.insert(name.to_owned(), data);
            }
        }
    }
    Ok(access::zone_access(
        &namespace, origin, &zone.spec, &secrets,
    ))
}

/// Assembles the zone, or takes the assembly of the same inputs from the last reconcile: a
/// Zone is reconciled again whenever the fleet checker's view of it changes, and a large
/// zone's assembly takes seconds.
fn assemble(
    ctx: &Context,
    zone: &Zone,
    key: &ObjectKey,
    records: &[Arc<Record>],
    inputs: &[RecordInput],
    child_zones: &[(hickory_proto::rr::Name, ObjectKey)],
) -> std::result::Result<Arc<Assembly>, zone::ZoneSpecError> {
    let fingerprint = inputs_fingerprint(zone, records, inputs, child_zones);
    let cached = ctx
        .assemblies
        .lock()
        .ok()
        .and_then(|cache| cache.get(key).cloned());
    if let Some((known, assembly)) = cached
        && known == fingerprint
    {
        return Ok(assembly);
    }
    let assembly = Arc::new(zone::assemble_with_children(
        &key.namespace,
        &zone.spec,
        inputs,
        child_zones,
    )?);
    if let Ok(mut cache) = ctx.assemblies.lock() {
        cache.insert(key.clone(), (fingerprint, assembly.clone()));
    }
    Ok(assembly)
}

/// What assembly depends on: the Zone's identity and spec generation, the child zones, and
/// each Record's identity, spec generation, creation time and namespace labels.
fn inputs_fingerprint(
    zone: &Zone,
    records: &[Arc<Record>],
    inputs: &[RecordInput],
    child_zones: &[(hickory_proto::rr::Name, ObjectKey)],
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&zone.metadata.uid, zone.metadata.generation).hash(&mut hasher);
    for (apex, child) in child_zones {
        (apex.to_ascii(), child).hash(&mut hasher);
    }
    for (record, input) in records.iter().zip(inputs) {
        (
            &input.key,
            &record.metadata.uid,
            record.metadata.generation,
            input.created.map(|t| t.as_nanosecond()),
            &input.namespace_labels,
        )
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// Every Zone in the store, as ownership claims.
fn claims(ctx: &Context) -> Vec<domains::Claim> {
    ctx.zones
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok().and_then(domains::Claim::of))
        .collect()
}

/// True if the Zone's `Ready` condition already has `reason` (so its Event was sent).
fn has_ready_reason(zone: &Zone, reason: &str) -> bool {
    zone.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == status::kinds::READY && c.reason == reason)
    })
}

/// The Records as assembly needs them, with their namespaces' labels where the Zone admits
/// namespaces by selector.
async fn record_inputs(
    ctx: &Context,
    zone: &Zone,
    records: &[Arc<Record>],
) -> Result<Vec<RecordInput>> {
    let labels = namespace_labels(ctx, zone, records).await?;
    Ok(records
        .iter()
        .map(|r| RecordInput {
            key: key_of(r.as_ref()),
            created: r.meta().creation_timestamp.as_ref().map(|t| t.0),
            spec: r.spec.clone(),
            namespace_labels: labels.get(&r.namespace().unwrap_or_default()).cloned(),
        })
        .collect())
}

/// The serial of the assembled content: the newest of the Zone's status, what this replica
/// last published, and — for a Zone that has published nothing yet, such as one taking over
/// a domain — what the distribution holds for the domain.
async fn decide(
    ctx: &Context,
    zone: &Zone,
    key: &ObjectKey,
    digest: &str,
) -> Result<status::VersionDecision> {
    let mut known: Vec<PublishedVersion> = ctx
        .published
        .lock()
        .ok()
        .and_then(|p| p.get(key).cloned())
        .into_iter()
        .collect();
    let recorded = zone.status.as_ref().and_then(|s| s.serial);
    if recorded.is_none() && known.is_empty() {
        ctx.ensure_leading()?;
        if let Some((serial, digest)) = ctx.publisher.current(&zone.spec.domain).await? {
            tracing::info!(zone = %key, serial, "continuing the serial the distribution holds for the domain");
            known.push(PublishedVersion { serial, digest });
        }
    }
    Ok(status::decide_version(
        zone.status.as_ref(),
        &known,
        digest,
        zone.spec.serial_policy,
        Timestamp::now(),
    ))
}

/// Publishes a new version, or makes sure the distribution still holds the current one
/// (NATS may have lost it, or this process never published it); then the zone's access
/// document, if it changed.
async fn publish(
    ctx: &Context,
    zone: &Zone,
    key: &ObjectKey,
    assembly: &Assembly,
    access: &ZoneAccess,
    decision: status::VersionDecision,
) -> Result<()> {
    ctx.ensure_leading()?;
    let version = ZoneVersion {
        zone: key.clone(),
        serial: decision.serial,
        previous_serial: decision.previous.filter(|_| decision.publish),
        content: Arc::new(assembly.zone.clone()),
    };
    if !decision.publish {
        ctx.publisher.ensure(&version).await?;
        ctx.publisher.publish_access(access).await?;
        return Ok(());
    }
    let started = Instant::now();
    ctx.publisher.publish(&version).await?;
    ctx.metrics
        .publish_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics.published_versions.inc();
    let digest = assembly.zone.digest_hex();
    if let Some(notices) = &ctx.publish_notices {
        let _ = notices.send(crate::fleet::PublishNotice {
            zone: key.clone(),
            origin: assembly.zone.origin.to_string(),
            serial: decision.serial,
            digest: digest.clone(),
            at: Instant::now(),
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
    let note = format!(
        "serial {} with {} records",
        decision.serial, assembly.zone.record_count
    );
    ctx.event(zone, EventType::Normal, "Published", Note::News(note))
        .await;
    ctx.ensure_leading()?;
    ctx.publisher.publish_access(access).await?;
    Ok(())
}

/// A Zone that does not own its domain: `DomainConflict` on it and its Records, and
/// nothing published.
async fn domain_conflict(
    zone: &Zone,
    ctx: &Context,
    records: &[Arc<Record>],
    conflict: &domains::Conflict,
    message: &str,
    now: Timestamp,
) -> Result<Action> {
    let key = key_of(zone);
    // A child zone whose parent withdrew the delegation stops being served. (A Zone that
    // lost a domain to an older one retracts nothing: the owner's version replaces it.)
    let served_before = zone.status.as_ref().is_some_and(|s| s.serial.is_some());
    if served_before && matches!(conflict, domains::Conflict::NotDelegated { .. }) {
        ctx.ensure_leading()?;
        ctx.publisher.retract(&key, &zone.spec.domain).await?;
        tracing::info!(zone = %key, domain = %zone.spec.domain, "retracted: no longer delegated");
        ctx.event(
            zone,
            EventType::Normal,
            "Retracted",
            format!("zone {} retracted: {message}", zone.spec.domain),
        )
        .await;
    }
    if let Ok(mut published) = ctx.published.lock() {
        published.remove(&key);
    }
    let status = status::zone_status(
        zone.status.as_ref(),
        zone.meta().generation,
        ZoneOutcome::DomainConflict(message),
        ctx.fleet_of(&key).as_fleet(),
        now,
    );
    if !status::status_unchanged(zone.status.as_ref(), &status) {
        write_zone_status(ctx, zone, &status, false).await?;
    }
    if !has_ready_reason(zone, status::reasons::DOMAIN_CONFLICT) {
        tracing::warn!(zone = %key, message, "domain conflict");
        ctx.event(
            zone,
            EventType::Warning,
            "DomainConflict",
            message.to_owned(),
        )
        .await;
    }
    let verdict = Verdict::Rejected {
        reason: zone::RejectReason::DomainConflict,
        message: format!("Zone {key} does not serve its domain: {message}"),
    };
    let verdicts = records
        .iter()
        .map(|r| (key_of(r.as_ref()), verdict.clone()))
        .collect();
    write_record_statuses(ctx, records, &verdicts, 0, Fleet::Off, now).await?;
    ctx.tally(&key, None);
    Ok(Action::await_change())
}

fn tally(assembly: &Assembly) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for verdict in assembly.verdicts.values() {
        let reason = match verdict {
            Verdict::Accepted => status::reasons::ACCEPTED,
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
) -> Result<Zone> {
    const ATTEMPTS: usize = 5;
    let api: Api<Zone> = Api::namespaced(ctx.client.clone(), &zone.namespace().unwrap_or_default());
    let base_serial = zone.status.as_ref().and_then(|s| s.serial);
    let mut resource_version = zone.resource_version();
    let mut attempt = 0;
    loop {
        attempt += 1;
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
            Ok(written) => {
                if let (Some(version), Some(status), Ok(mut statuses)) = (
                    written.metadata.resource_version.clone(),
                    written.status.clone(),
                    ctx.zone_statuses.lock(),
                ) {
                    statuses.insert(key_of(zone), (version, status));
                }
                return Ok(written);
            }
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
}

/// Writes the status of each Record whose status changes (a few at a time), and an Event
/// for each newly rejected one.
async fn write_record_statuses(
    ctx: &Context,
    records: &[Arc<Record>],
    verdicts: &BTreeMap<ObjectKey, Verdict>,
    serial: u32,
    fleet: Fleet<'_>,
    now: Timestamp,
) -> Result<()> {
    const CONCURRENT_WRITES: usize = 8;
    let changes: Vec<(Arc<Record>, Verdict, RecordStatus)> = records
        .iter()
        .filter_map(|record| {
            let verdict = verdicts.get(&key_of(record.as_ref()))?;
            let desired = status::record_status(
                record.status.as_ref(),
                record.meta().generation,
                verdict,
                serial,
                &record.spec.values,
                fleet,
                now,
            );
            (!status::status_unchanged(record.status.as_ref(), &desired))
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

/// A Zone is going: retract its domain unless another Zone takes it over, and tell its
/// Records.
async fn cleanup(zone: &Zone, ctx: &Context) -> Result<Action> {
    ctx.ensure_leading()?;
    let key = key_of(zone);
    let claims = claims(ctx);
    let me = domains::Claim::of(zone);
    ctx.announce_claim(zone, me.as_ref(), &claims);
    let successor = me
        .as_ref()
        .and_then(|me| domains::successor(me, &claims).map(|s| s.key.clone()));
    match successor {
        Some(successor) => {
            // The distribution keeps serving the domain; the successor publishes its own
            // version over it, continuing the serial.
            tracing::info!(zone = %key, %successor, domain = %zone.spec.domain,
                "zone deleted; its domain stays with another Zone");
        }
        None => {
            ctx.publisher.retract(&key, &zone.spec.domain).await?;
            tracing::info!(zone = %key, domain = %zone.spec.domain, "retracted zone");
            ctx.event(
                zone,
                EventType::Normal,
                "Retracted",
                format!("zone {} retracted", zone.spec.domain),
            )
            .await;
        }
    }
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
        if !status::status_unchanged(record.status.as_ref(), &desired) {
            write_record_status(ctx, record, &desired).await?;
        }
    }
    ctx.forget_zone(&key);
    Ok(Action::await_change())
}
