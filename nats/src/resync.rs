//! The targeted re-sync protocol: a request to one pod's subject, a reply with what it
//! serves afterwards. Both are JSON.

use serde::{Deserialize, Serialize};

/// Asks a pod to fetch zones again from the snapshot store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncRequest {
    /// The zones to fetch (apex names); empty for every zone.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// What the pod serves after a re-sync.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncReply {
    /// The requested zones it serves (every zone, for a full re-sync).
    pub zones: Vec<ServedVersion>,
    /// Zones that could not be fetched, with the reason.
    #[serde(default)]
    pub errors: Vec<String>,
}

/// One zone version a pod serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedVersion {
    /// The apex, with a trailing dot.
    pub zone: String,
    /// The SOA serial.
    pub serial: u32,
    /// The content digest, in hex.
    pub digest: String,
    /// The number of records.
    pub records: usize,
}
