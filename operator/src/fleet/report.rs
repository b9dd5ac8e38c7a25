//! What the checker tells: the Zone's `servers` and `Synced` condition, each Record's
//! `Programmed` condition, Events naming pods, and the fleet problems the Zone controller
//! folds into `Degraded`.
//!
//! Statuses are written with server-side apply under their own field manager, so they never
//! contend with the Zone controller's fields (the condition lists are keyed by type).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use futures::{StreamExt, stream};
use k8s_openapi::{api::core::v1::ObjectReference, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        events::{Event, EventType},
        reflector::ObjectRef,
    },
};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;
use zonefleet_api::{Condition, Record, ServerSummary, Zone};

use super::health::{Expected, Verdict};
use crate::{
    controller::{
        Context,
        status::{Desired, condition},
    },
    zone::ObjectKey,
};

/// The field manager of what the checker writes.
pub const FIELD_MANAGER: &str = "zonefleet-fleet-health";
/// The Zone condition: every ready DNS pod serves the latest version.
pub const SYNCED: &str = "Synced";
/// The Record condition: every ready DNS pod serves a version that includes it.
pub const PROGRAMMED: &str = "Programmed";

/// What one zone's check says, for the status.
pub type ZoneReport = (ObjectKey, Expected, ServerSummary, Option<u32>, String);

/// Writes statuses and Events, and keeps the fleet problems.
#[allow(missing_debug_implementations)]
pub struct Reporter {
    ctx: Arc<Context>,
    reconcile: mpsc::UnboundedSender<ObjectKey>,
    pod_namespace: String,
    written: HashMap<ObjectKey, (ServerSummary, String, String)>,
}

impl Reporter {
    /// A reporter; `reconcile` asks the Zone controller to reconcile a Zone; the DNS pods
    /// live in `pod_namespace`.
    pub fn new(
        ctx: Arc<Context>,
        reconcile: mpsc::UnboundedSender<ObjectKey>,
        pod_namespace: String,
    ) -> Self {
        Self {
            ctx,
            reconcile,
            pod_namespace,
            written: HashMap::new(),
        }
    }

    fn zone(&self, key: &ObjectKey) -> Option<Arc<Zone>> {
        let guard = self
            .ctx
            .zones
            .get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        guard.0.as_ref().ok().map(|zone| Arc::new(zone.clone()))
    }

    /// A re-sync was requested for a pod (its first attempt).
    pub fn resyncing(
        &self,
        key: &ObjectKey,
        pod: &str,
        seen: Option<&Verdict>,
        expected: Option<u32>,
    ) {
        let note = format!(
            "re-sync requested for pod {pod}: {}, expected serial {}",
            describe(seen),
            expected.map_or("?".into(), |s| s.to_string())
        );
        self.event(key, pod, EventType::Normal, "Resync", note);
    }

    /// A pod is still wrong after the allowed attempts: an Event, and `Degraded`.
    pub fn degraded(
        &self,
        key: &ObjectKey,
        pod: &str,
        attempts: u32,
        seen: Option<&Verdict>,
        expected: Option<u32>,
    ) {
        let note = format!(
            "pod {pod} still {} (expected serial {}) after {attempts} re-syncs; retrying slowly",
            describe(seen),
            expected.map_or("?".into(), |s| s.to_string())
        );
        warn!(zone = %key, %pod, attempts, "{note}");
        self.event(key, pod, EventType::Warning, "ResyncFailed", note.clone());
        if let Ok(mut problems) = self.ctx.fleet_problems.lock() {
            problems
                .entry(key.clone())
                .or_default()
                .insert(pod.to_owned(), note);
        }
        let _ = self.reconcile.send(key.clone());
    }

    /// A reported pod serves the zone again.
    pub fn recovered(&self, key: &ObjectKey, pod: &str) {
        let mut changed = false;
        if let Ok(mut problems) = self.ctx.fleet_problems.lock()
            && let Some(pods) = problems.get_mut(key)
        {
            changed = pods.remove(pod).is_some();
            if pods.is_empty() {
                problems.remove(key);
            }
        }
        if changed {
            self.event(
                key,
                pod,
                EventType::Normal,
                "Resynced",
                format!("pod {pod} serves the latest version again"),
            );
            let _ = self.reconcile.send(key.clone());
        }
    }

    /// An Event about the Zone, related to the pod (so the Events of different pods are
    /// not folded into one).
    fn event(
        &self,
        key: &ObjectKey,
        pod: &str,
        kind: EventType,
        reason: &'static str,
        note: String,
    ) {
        let Some(zone) = self.zone(key) else { return };
        let related = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(self.pod_namespace.clone()),
            name: Some(pod.to_owned()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: kind,
            reason: reason.into(),
            note: Some(note),
            action: "CheckServers".into(),
            secondary: Some(related),
        };
        let recorder = self.ctx.recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &zone.object_ref(&())).await {
                warn!(error = %e, reason, "could not publish an event");
            }
        });
    }

    /// Writes the Zone statuses that changed, and the `Programmed` conditions of the
    /// Records of those zones and of `records_due` (zones just published, or all after a
    /// sweep) where they differ.
    pub async fn write(
        &mut self,
        reports: Vec<ZoneReport>,
        records_due: &std::collections::HashSet<ObjectKey>,
    ) {
        let now = Timestamp::now();
        let mut writes = Vec::new();
        for (key, expected, summary, lowest, text) in reports {
            let synced = synced_condition(&summary, &expected, &text);
            let state = (
                summary.clone(),
                synced.status.to_owned(),
                synced.message.clone(),
            );
            let zone_changed = self.written.get(&key) != Some(&state);
            if !zone_changed && !records_due.contains(&key) {
                continue;
            }
            let Some(zone) = self.zone(&key) else {
                continue;
            };
            let condition = zone_changed.then(|| {
                let existing = zone
                    .status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default();
                condition(&existing, synced, zone.metadata.generation, now)
            });
            if zone_changed {
                self.written.insert(key.clone(), state);
            }
            writes.push((key, zone, summary, condition, lowest));
        }
        let ctx = self.ctx.clone();
        let failed: Vec<ObjectKey> = stream::iter(writes)
            .map(|(key, zone, summary, condition, lowest)| {
                let ctx = ctx.clone();
                async move {
                    let zone_ok = match &condition {
                        Some(condition) => write_zone(&ctx, &zone, &summary, condition).await,
                        None => true,
                    };
                    let records_ok = write_records(&ctx, &key, &summary, lowest, now).await;
                    (!(zone_ok && records_ok)).then_some(key)
                }
            })
            .buffer_unordered(16)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        // Written again on the next round.
        for key in failed {
            self.written.remove(&key);
        }
    }
}

fn describe(seen: Option<&Verdict>) -> String {
    match seen {
        Some(Verdict::Lagging { seen }) => format!("serves serial {seen}"),
        Some(Verdict::WrongContent { .. }) => "serves other content at the same serial".into(),
        Some(Verdict::Missing) => "does not serve the zone".into(),
        Some(Verdict::Unreachable(why)) => format!("does not answer ({why})"),
        Some(Verdict::Ahead { seen }) => format!("serves serial {seen}"),
        Some(Verdict::Synced) => "serves the zone".into(),
        None => "serves zones that were deleted".into(),
    }
}

/// The `Synced` condition for a summary.
fn synced_condition(summary: &ServerSummary, expected: &Expected, lagging: &str) -> Desired {
    if summary.total == 0 {
        Desired::no(SYNCED, "NoServers", "no ready DNS pods")
    } else if summary.synced == summary.total {
        Desired::yes(
            SYNCED,
            "AllServersSynced",
            format!(
                "{}/{} ready DNS pods serve serial {}",
                summary.synced, summary.total, expected.serial
            ),
        )
    } else {
        Desired::no(
            SYNCED,
            "ServersLagging",
            format!(
                "{}/{} ready DNS pods serve serial {}; {lagging}",
                summary.synced, summary.total, expected.serial
            ),
        )
    }
}

async fn write_zone(
    ctx: &Context,
    zone: &Zone,
    summary: &ServerSummary,
    synced: &Condition,
) -> bool {
    let api: Api<Zone> = Api::namespaced(ctx.client.clone(), &zone.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": Zone::api_version(&()),
        "kind": Zone::kind(&()),
        "status": {"servers": summary, "conditions": [synced]},
    });
    match api
        .patch_status(
            &zone.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => true,
        Err(error) => {
            warn!(zone = %zone.name_any(), %error, "cannot write the Zone's servers");
            false
        }
    }
}

/// Sets `Programmed` on the zone's accepted Records: true when every ready pod serves a
/// version at least as new as the Record's `zoneSerial`.
async fn write_records(
    ctx: &Context,
    zone: &ObjectKey,
    summary: &ServerSummary,
    lowest: Option<u32>,
    now: Timestamp,
) -> bool {
    let mut ok = true;
    for guard in crate::controller::zone::records_of(ctx, zone) {
        let Ok(record) = &guard.0 else { continue };
        let Some(status) = &record.status else {
            continue;
        };
        let accepted = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Accepted" && c.status == "True");
        let Some(since) = status.zone_serial.filter(|_| accepted) else {
            continue;
        };
        let served =
            summary.total > 0 && lowest.is_some_and(|low| !crate::serial::is_newer(since, low));
        let desired = if served {
            Desired::yes(
                PROGRAMMED,
                "Served",
                format!(
                    "every ready DNS pod ({}) serves serial {since} or newer",
                    summary.total
                ),
            )
        } else if summary.total == 0 {
            Desired::no(PROGRAMMED, "NoServers", "no ready DNS pods")
        } else {
            Desired::no(
                PROGRAMMED,
                "NotServed",
                format!("not every ready DNS pod serves serial {since} yet"),
            )
        };
        let current = status.conditions.iter().find(|c| c.type_ == PROGRAMMED);
        if current.is_some_and(|c| c.status == desired.status && c.reason == desired.reason) {
            continue;
        }
        let programmed = condition(&status.conditions, desired, record.metadata.generation, now);
        let api: Api<Record> =
            Api::namespaced(ctx.client.clone(), &record.namespace().unwrap_or_default());
        let patch = json!({
            "apiVersion": Record::api_version(&()),
            "kind": Record::kind(&()),
            "status": {"conditions": [programmed]},
        });
        match api
            .patch_status(
                &record.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(error) => {
                warn!(record = %record.name_any(), %error, "cannot write Programmed");
                ok = false;
            }
        }
    }
    ok
}

/// The fleet problems of a zone, for its `Degraded` condition.
pub fn problems_of(ctx: &Context, zone: &ObjectKey) -> Option<String> {
    let problems = ctx.fleet_problems.lock().ok()?;
    let pods: &BTreeMap<String, String> = problems.get(zone)?;
    (!pods.is_empty()).then(|| pods.values().cloned().collect::<Vec<_>>().join("; "))
}
