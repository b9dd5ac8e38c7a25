//! The Zonefleet DNS pod: an authoritative DNS server on hickory-server that builds its
//! zones from NATS JetStream.
//!
//! The server is being built; this crate holds the workspace place for it.
