//! What the checker and the Zone controller tell each other, as plain data.
//!
//! The checker reads the Zones through [`FleetHost::zones`] and tells what it found through
//! [`FleetHost::report`]: each zone's [`FleetView`] (how many ready pods serve which serial),
//! which the Zone controller turns into `servers`, `Synced`, `Ready` and the Records'
//! `Programmed`; the pods it could not repair, which the Zone controller folds into
//! `Degraded` and `Ready`; and Events naming pods. The checker writes no status itself, and
//! the fleet module knows nothing of the controller: the controller implements
//! [`FleetHost`].

use zonefleet_api::ServerSummary;

use super::health::Expected;
use crate::zone::ObjectKey;

/// What the fleet health checker last saw of a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetView {
    /// The serial the pods were checked against.
    pub serial: u32,
    /// How many ready pods serve it.
    pub servers: ServerSummary,
    /// The lowest serial any ready pod serves, when every ready pod serves some version.
    pub lowest: Option<u32>,
    /// What the lagging pods serve, for people.
    pub detail: String,
    /// Pods the checker could not repair, and why. The checker leaves it `None` in the
    /// views it reports (it reports problems apart, see [`FleetReport::Problems`]); the
    /// Zone controller fills it in when it reads a zone's view.
    pub problems: Option<String>,
}

/// Whether an Event is news or a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Something went as it should (a re-sync was asked for, a pod recovered).
    Normal,
    /// A pod could not be repaired.
    Warning,
}

/// An Event about a Zone, related to one DNS pod (so the Events of different pods are not
/// folded into one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEvent {
    /// The Zone the Event is about.
    pub zone: ObjectKey,
    /// The DNS pod's name.
    pub pod: String,
    /// The DNS pod's namespace.
    pub pod_namespace: String,
    /// Normal or Warning.
    pub kind: EventKind,
    /// The CamelCase reason: `Resync`, `ResyncFailed` or `Resynced`.
    pub reason: &'static str,
    /// What happened, for people.
    pub note: String,
}

/// What the checker tells the Zone controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetReport {
    /// A zone's view changed: keep it and reconcile the Zone.
    View {
        /// The Zone.
        zone: ObjectKey,
        /// What the ready pods serve.
        view: FleetView,
    },
    /// The pods the checker could not repair for a zone changed: keep them (for
    /// `Degraded`) and reconcile the Zone.
    Problems {
        /// The Zone.
        zone: ObjectKey,
        /// What is wrong with each such pod, joined with `; ` in pod order; `None` when no
        /// pod is wrong any more.
        problems: Option<String>,
    },
    /// An Event to publish about a Zone.
    Event(FleetEvent),
}

/// A Zone as the checker needs it: where it lives and which version the pods should serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownZone {
    /// The Zone.
    pub key: ObjectKey,
    /// Its domain, as written in its spec.
    pub domain: String,
    /// The version its status records (serial and digest), if both are set.
    pub recorded: Option<Expected>,
    /// The version this replica last published for it, if any: the Zone cache may not show
    /// that status write yet.
    pub published: Option<Expected>,
}

/// The Zone controller's side of the checker.
pub trait FleetHost: Send + Sync + 'static {
    /// Every Zone that is not being deleted.
    fn zones(&self) -> Vec<KnownZone>;

    /// Takes what the checker found. Called from the checker's task; it must not block.
    fn report(&self, report: FleetReport);
}
