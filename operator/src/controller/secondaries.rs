//! The Zone controller's side of the secondaries tracker: each reconcile tells it the
//! zone's secondaries and the serial every ready pod serves
//! ([`Context::track_secondaries`]); it reports their status, kept here for the Zone's next
//! reconcile (asked for at once), and Events about the Zone.

use hickory_proto::rr::Name;
use kube::{
    Resource,
    runtime::events::{Event, EventType},
};
use tracing::warn;
use zonefleet_api::{SecondariesStatus, Zone};
use zonefleet_nats::ZoneAccess;

use super::Context;
use crate::{
    metrics::ZoneLabels,
    secondaries::{Report, SecondariesHost, Update, ZoneSecondaries, targets},
    zone::ObjectKey,
};

impl SecondariesHost for Context {
    fn report(&self, report: Report) {
        match report {
            Report::Status { zone, status } => {
                let lagging = status.items.iter().filter(|item| !item.synced).count();
                self.metrics
                    .secondaries_out_of_sync
                    .get_or_create(&ZoneLabels {
                        zone: zone.to_string(),
                    })
                    .set(i64::try_from(lagging).unwrap_or(i64::MAX));
                if let Ok(mut statuses) = self.secondaries_statuses.lock() {
                    statuses.insert(zone.clone(), status);
                }
                let _ = self.zone_triggers.send(zone);
            }
            Report::Event {
                zone,
                warning,
                reason,
                note,
            } => self.secondaries_event(&zone, warning, reason, note),
        }
    }
}

impl Context {
    /// Tells the tracker `zone`'s secondaries (from its spec and access document) and the
    /// serial every ready pod serves, if they do; returns their status as last reported,
    /// `None` when the Zone lists none.
    pub fn track_secondaries(
        &self,
        zone: &Zone,
        key: &ObjectKey,
        origin: &Name,
        access: &ZoneAccess,
        target: Option<u32>,
    ) -> Option<SecondariesStatus> {
        let secondaries = targets(&zone.spec, access);
        let listed = !secondaries.is_empty();
        if let Some(updates) = &self.secondaries {
            let _ = updates.send(Update::Set(ZoneSecondaries {
                zone: key.clone(),
                origin: origin.clone(),
                secondaries,
                target,
            }));
        }
        if !listed {
            if let Ok(mut statuses) = self.secondaries_statuses.lock() {
                statuses.remove(key);
            }
            return None;
        }
        self.secondaries_statuses
            .lock()
            .ok()
            .and_then(|statuses| statuses.get(key).cloned())
    }

    /// Stops tracking a deleted Zone's secondaries.
    pub fn forget_secondaries(&self, key: &ObjectKey) {
        if let Some(updates) = &self.secondaries {
            let _ = updates.send(Update::Remove(key.clone()));
        }
        if let Ok(mut statuses) = self.secondaries_statuses.lock() {
            statuses.remove(key);
        }
    }

    fn secondaries_event(
        &self,
        key: &ObjectKey,
        warning: bool,
        reason: &'static str,
        note: String,
    ) {
        if self.ensure_leading().is_err() {
            return;
        }
        let Some(zone) = self.zone_in_store(key) else {
            return;
        };
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "NotifySecondaries".into(),
            secondary: None,
        };
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &zone.object_ref(&())).await {
                warn!(error = %e, reason, "could not publish an event");
            }
        });
    }
}
