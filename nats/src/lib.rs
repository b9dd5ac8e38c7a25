//! How Zonefleet uses NATS JetStream, shared by the operator (which publishes) and the DNS
//! pods (which follow).
//!
//! - [`NatsArgs`]: the connection flags (URL, credentials, TLS, subject prefix) and
//!   [`NatsArgs::connect`], which retries the first connection and reconnects forever;
//! - [`Layout`]: the names of everything under the prefix: the snapshot object store, the
//!   event stream and its per-zone subjects, and each pod's re-sync subject;
//! - [`ResyncRequest`] / [`ResyncReply`]: the targeted re-sync protocol, and
//!   [`RefusedVersion`], a zone version a pod could not serve;
//! - [`MessageKey`]: optional HMAC signatures on events and snapshots;
//! - [`ZoneAccess`]: a zone's transfer rules and TSIG keys, secrets sealed.

mod access;
mod layout;
mod options;
mod resync;
mod signing;

pub use access::{ACCESS_DIGEST, AccessError, AccessKey, AccessRule, ZoneAccess};
pub use layout::{
    EventHeaders, Layout, LayoutError, META_DIGEST, META_PUBLISHED_AT, META_SERIAL, unix_millis,
};
pub use options::{ConnectError, NatsArgs};
pub use resync::{RefusedVersion, ResyncReply, ResyncRequest, ServedVersion};
pub use signing::{KeyError, MessageKey, SIGNATURE, SignatureError};
