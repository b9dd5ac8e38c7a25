//! The Zonefleet DNS pod: an authoritative DNS server on hickory-server that builds its
//! zones from NATS JetStream.
//!
//! The answer path is four layers, each using only those above it:
//! - [`authority`]: what to answer — the answer algorithm over an immutable zone index;
//! - [`encode`]: how it is written — one encoder from the index's packed records to wire
//!   form, and the answers precomputed with it per zone version;
//! - [`zones`] and [`route`]: the served zones (swapped atomically on update), and who
//!   answers a question;
//! - [`serve`]: UDP (with a fast path over the precomputed answers) and TCP through one
//!   request handler.
//!
//! Around them:
//! - [`zone_handler`]: each zone as a hickory-server `ZoneHandler`;
//! - [`access`]: each zone's transfer rules and TSIG keys, as served;
//! - [`sync`]: following NATS (snapshot store, change events, re-sync requests, access
//!   documents);
//! - [`local_snapshot`]: the served zones on disk, for restarts without NATS;
//! - [`zone_files`]: static mode, zones from master files;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`, `/zones` and `/refused`;
//! - [`metrics`]: the Prometheus metrics;
//! - [`config`]: the command line.

pub mod access;
pub mod admin;
pub mod authority;
pub mod config;
pub mod encode;
pub mod local_snapshot;
pub mod metrics;
pub mod route;
pub mod run;
pub mod serve;
pub mod sync;
pub mod zone_files;
pub mod zone_handler;
pub mod zones;
