//! The Zone controller's side of fleet health: it shows the checker the Zones
//! ([`FleetHost::zones`]) and takes what the checker found ([`FleetHost::report`]): views
//! and problems are kept in the [`Context`] for the Zone's next reconcile, which is asked
//! for at once, and Events are published about the Zone.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Resource,
    runtime::{
        events::{Event, EventType},
        reflector::ObjectRef,
    },
};
use tracing::warn;
use zonefleet_api::Zone;

use super::{Context, key_of};
use crate::{
    fleet::{EventKind, FleetEvent, FleetHost, FleetReport, KnownZone, health::Expected},
    zone::ObjectKey,
};

impl FleetHost for Context {
    fn zones(&self) -> Vec<KnownZone> {
        let published = self.published.lock().map(|p| p.clone()).unwrap_or_default();
        self.zones
            .state()
            .iter()
            .filter_map(|guard| {
                let zone = guard.0.as_ref().ok()?;
                if zone.metadata.deletion_timestamp.is_some() {
                    return None;
                }
                let key = key_of(zone);
                let status = zone.status.as_ref();
                let recorded = status.and_then(|s| {
                    Some(Expected {
                        serial: s.serial?,
                        digest: s.digest.clone()?,
                    })
                });
                let published = published.get(&key).map(|p| Expected {
                    serial: p.serial,
                    digest: p.digest.clone(),
                });
                Some(KnownZone {
                    key,
                    domain: zone.spec.domain.clone(),
                    recorded,
                    published,
                })
            })
            .collect()
    }

    fn report(&self, report: FleetReport) {
        match report {
            FleetReport::View { zone, view } => {
                if let Ok(mut views) = self.fleet_views.lock() {
                    views.insert(zone.clone(), view);
                }
                let _ = self.zone_triggers.send(zone);
            }
            FleetReport::Problems { zone, problems } => {
                if let Ok(mut known) = self.fleet_problems.lock() {
                    match problems {
                        Some(problems) => known.insert(zone.clone(), problems),
                        None => known.remove(&zone),
                    };
                }
                let _ = self.zone_triggers.send(zone);
            }
            FleetReport::Event(event) => self.fleet_event(event),
        }
    }
}

impl Context {
    /// The Zone in the store, if it is there and deserializes.
    pub(super) fn zone_in_store(&self, key: &ObjectKey) -> Option<Arc<Zone>> {
        let guard = self
            .zones
            .get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        guard.0.as_ref().ok().map(|zone| Arc::new(zone.clone()))
    }

    /// Publishes an Event of the checker about a Zone, related to the pod (so the Events of
    /// different pods are not folded into one). It runs on its own; failures are logged.
    fn fleet_event(&self, event: FleetEvent) {
        if self.ensure_leading().is_err() {
            return;
        }
        let Some(zone) = self.zone_in_store(&event.zone) else {
            return;
        };
        let related = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(event.pod_namespace),
            name: Some(event.pod),
            ..ObjectReference::default()
        };
        let reason = event.reason;
        let event = Event {
            type_: match event.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: reason.into(),
            note: Some(event.note),
            action: "CheckServers".into(),
            secondary: Some(related),
        };
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &zone.object_ref(&())).await {
                warn!(error = %e, reason, "could not publish an event");
            }
        });
    }
}
