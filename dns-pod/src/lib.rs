//! The Zonefleet DNS pod: an authoritative DNS server on hickory-server that builds its
//! zones from NATS JetStream.
//!
//! - [`authority`]: the answer algorithm over an immutable zone index;
//! - [`zones`]: the served zones, swapped atomically on update;
//! - [`serve`]: UDP and TCP serving through one request handler;
//! - [`zone_files`]: static mode, zones from master files;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz` and `/zones`;
//! - [`metrics`]: the Prometheus metrics;
//! - [`config`]: the command line.

pub mod admin;
pub mod authority;
pub mod config;
pub mod metrics;
pub mod run;
pub mod serve;
pub mod zone_files;
pub mod zones;
