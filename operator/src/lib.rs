//! The Zonefleet operator: reconciles `Zone` and `Record` objects (`dns.zonefleet.io`) into
//! versioned zones and publishes them.
//!
//! - [`zone`]: pure zone assembly: validation, conflicts, zone cuts, canonical form, digest;
//! - [`serial`]: SOA serial policies under RFC 1982;
//! - [`domains`]: which Zone owns a domain, and which child zones a parent delegates;
//! - [`controller`]: the Zone and Record controllers and their pure status computation;
//! - [`fleet`]: fleet health: a pure state machine decides which DNS pods to check and
//!   re-sync, a thin task carries it out, and the Zone controller gets typed views;
//! - [`publish`]: where zone versions go;
//! - [`secondaries`]: NOTIFY to external secondaries and the serials they serve;
//! - [`leader`]: leader election with a Lease;
//! - [`server`]: `/metrics`, `/healthz` and `/readyz`;
//! - [`metrics`], [`error`], [`config`].

pub mod config;
pub mod controller;
pub mod domains;
pub mod error;
pub mod fleet;
pub mod leader;
pub mod metrics;
pub mod publish;
pub mod secondaries;
pub mod serial;
pub mod server;
pub mod zone;
