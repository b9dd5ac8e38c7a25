//! Fleet health: find the DNS pods through the EndpointSlices of the DNS Service, compare
//! the SOA serial (over DNS) and the content digest (from `/zones`) each pod serves with
//! the published version, and re-sync the pods that lag over NATS.
//!
//! It runs on the leader only, next to the controllers. The decisions are pure: [`machine`]
//! is the checker's state machine (events in, commands out: what to probe, whom to
//! re-sync and when, what to report), on top of [`health`] (what one answer means) and
//! [`endpoints`] (which pods are ready). [`probe`] asks the pods; [`checker`] is the task
//! that feeds the machine and carries out its commands; [`report`] is what the checker and
//! the Zone controller tell each other. The fleet module does not know the controller: the
//! controller implements [`FleetHost`] and reads the [`FleetView`]s it is given.

pub mod checker;
pub mod endpoints;
pub mod health;
pub mod machine;
pub mod probe;
pub mod report;

use std::time::{Duration, Instant};

use zonefleet_nats::Layout;

use crate::zone::ObjectKey;
pub use checker::run;
pub use endpoints::PortNames;
pub use health::Backoff;
pub use report::{EventKind, FleetEvent, FleetHost, FleetReport, FleetView, KnownZone};

/// How the checker runs.
#[derive(Clone, Debug)]
pub struct FleetSettings {
    /// The namespace of the DNS Service.
    pub service_namespace: String,
    /// The DNS Service, whose EndpointSlices list the pods.
    pub service_name: String,
    /// The Service's port names.
    pub ports: PortNames,
    /// Time between full sweeps.
    pub sweep: Duration,
    /// How long after a publish every pod should serve it.
    pub publish_deadline: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// How long to wait for one pod's answer.
    pub query_timeout: Duration,
    /// Re-sync pacing.
    pub backoff: Backoff,
    /// The NATS names (for the pods' re-sync subjects).
    pub layout: Layout,
}

/// A zone version just published, so its propagation is checked at once.
#[derive(Clone, Debug)]
pub struct PublishNotice {
    /// The Zone.
    pub zone: ObjectKey,
    /// Its apex.
    pub origin: String,
    /// The serial published.
    pub serial: u32,
    /// The digest, hex.
    pub digest: String,
    /// When it was published.
    pub at: Instant,
}
