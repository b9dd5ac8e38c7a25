//! Fleet health: find the DNS pods through the EndpointSlices of the DNS Service, compare
//! the SOA serial (over DNS) and the content digest (from `/zones`) each pod serves with
//! the published version, and re-sync the pods that lag over NATS.
//!
//! It runs on the leader only, next to the controllers. The pure decisions live in
//! [`health`] and [`endpoints`]; [`probe`] asks the pods; [`checker`] schedules checks and
//! repairs; [`report`] writes the Zone and Record statuses and Events.

pub mod checker;
pub mod endpoints;
pub mod health;
pub mod probe;
pub mod report;

use std::time::{Duration, Instant};

use zonefleet_nats::Layout;

use crate::zone::ObjectKey;
pub use checker::run;
pub use endpoints::PortNames;
pub use health::Backoff;

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
