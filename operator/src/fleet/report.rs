//! What the checker tells: each zone's fleet view (how many ready pods serve which
//! serial), which the Zone controller turns into `servers`, `Synced`, `Ready` and the
//! Records' `Programmed`; Events naming pods; and the fleet problems the Zone controller
//! folds into `Degraded` and `Ready`. The checker writes no status itself.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::{
    events::{Event, EventType},
    reflector::ObjectRef,
};
use tokio::sync::mpsc;
use tracing::warn;
use zonefleet_api::{ServerSummary, Zone};

use super::health::{Expected, Verdict};
use crate::{
    controller::{Context, FleetView},
    zone::ObjectKey,
};

/// What one zone's check says, for the status.
pub type ZoneReport = (ObjectKey, Expected, ServerSummary, Option<u32>, String);

/// Writes statuses and Events, and keeps the fleet problems.
#[allow(missing_debug_implementations)]
pub struct Reporter {
    ctx: Arc<Context>,
    reconcile: mpsc::UnboundedSender<ObjectKey>,
    pod_namespace: String,
    written: HashMap<ObjectKey, FleetView>,
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
        if self.ctx.ensure_leading().is_err() {
            return;
        }
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

    /// Hands the zones' views to the Zone controller: those that changed are stored in the
    /// context and their Zones reconciled, which writes `servers`, `Synced`, `Ready` and
    /// the Records' `Programmed`.
    pub fn update(&mut self, reports: Vec<ZoneReport>) {
        for (key, expected, servers, lowest, detail) in reports {
            let view = FleetView {
                serial: expected.serial,
                servers,
                lowest,
                detail,
                problems: None,
            };
            if self.written.get(&key) == Some(&view) {
                continue;
            }
            if let Ok(mut views) = self.ctx.fleet_views.lock() {
                views.insert(key.clone(), view.clone());
            }
            self.written.insert(key.clone(), view);
            let _ = self.reconcile.send(key);
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

/// The fleet problems of a zone, for its `Degraded` condition.
pub fn problems_of(ctx: &Context, zone: &ObjectKey) -> Option<String> {
    let problems = ctx.fleet_problems.lock().ok()?;
    let pods: &BTreeMap<String, String> = problems.get(zone)?;
    (!pods.is_empty()).then(|| pods.values().cloned().collect::<Vec<_>>().join("; "))
}
