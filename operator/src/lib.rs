//! The Zonefleet operator: reconciles `Zone` and `Record` objects (`dns.zonefleet.io`) into
//! versioned zones and publishes them to NATS JetStream.
//!
//! - [`zone`]: pure zone assembly: validation, conflicts, zone cuts, canonical form, digest;
//! - [`serial`]: SOA serial policies under RFC 1982.

pub mod serial;
pub mod zone;
