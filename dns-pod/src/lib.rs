//! The Zonefleet DNS pod: an authoritative DNS server on hickory-server that builds its
//! zones from NATS JetStream.
//!
//! - [`authority`]: the answer algorithm over an immutable zone index.
//!
//! Serving, distribution and the local snapshot are being built.

pub mod authority;
