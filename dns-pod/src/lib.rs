//! The Zonefleet DNS pod: an authoritative DNS server on hickory-server that builds its
//! zones from NATS JetStream.
//!
//! - [`authority`]: the answer algorithm over an immutable zone index;
//! - [`zones`]: the served zones, swapped atomically on update;
//! - [`zone_handler`]: each zone as a hickory-server `ZoneHandler`;
//! - [`serve`]: UDP and TCP serving through one request handler;
//! - [`sync`]: following NATS (snapshot store, change events, re-sync requests);
//! - [`local_snapshot`]: the served zones on disk, for restarts without NATS;
//! - [`zone_files`]: static mode, zones from master files;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`, `/zones` and `/refused`;
//! - [`metrics`]: the Prometheus metrics;
//! - [`config`]: the command line.

pub mod admin;
pub mod authority;
pub mod config;
pub mod local_snapshot;
pub mod metrics;
pub mod run;
pub mod serve;
pub mod sync;
pub mod zone_files;
pub mod zone_handler;
pub mod zones;
