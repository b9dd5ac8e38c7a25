//! The Zonefleet operator: reconciles `Zone` and `Record` objects (`dns.zonefleet.io`) into
//! versioned zones and publishes them to NATS JetStream.
//!
//! The API types and the reconcile pipeline are being built; this crate holds the workspace
//! place for them.
