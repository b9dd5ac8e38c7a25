//! The targeted re-sync protocol: a request to one pod's subject, a reply with what it
//! serves afterwards and the versions it refused. Both are JSON.

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
    /// The last version of each requested zone (every zone, for a full re-sync) that the
    /// pod refused and has not served a version as new since. Absent from the replies of
    /// pods that predate it.
    #[serde(default)]
    pub refused: Vec<RefusedVersion>,
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

/// A zone version a pod could not decode or build into a served zone: it keeps serving the
/// version it had. A pod remembers the last one per zone (its `/refused` lists them) until it
/// serves that zone at that serial or a newer one, or the zone is retracted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedVersion {
    /// The apex, with a trailing dot.
    pub zone: String,
    /// The serial of the refused version, when the message was readable that far.
    pub serial: Option<u32>,
    /// A short category, e.g. `malformed`, `invalid_zone`, `digest` (the `reason` label
    /// of the pod's rejected-message counter).
    pub reason: String,
    /// The error, as the pod logged it.
    pub error: String,
    /// When it was refused, in Unix milliseconds.
    pub at_millis: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_without_refusals_still_parses() {
        let old = r#"{"zones": [{"zone": "example.com.", "serial": 4, "digest": "ab", "records": 3}], "errors": ["x"]}"#;
        let reply: ResyncReply = serde_json::from_str(old).unwrap();
        assert_eq!(reply.zones.len(), 1);
        assert_eq!(reply.errors, ["x"]);
        assert!(reply.refused.is_empty());
    }

    #[test]
    fn a_refusal_round_trips_in_camel_case() {
        let refused = RefusedVersion {
            zone: "example.com.".into(),
            serial: Some(7),
            reason: "malformed".into(),
            error: "malformed DNS data: incorrect rdata length".into(),
            at_millis: 1_700_000_000_000,
        };
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(json["atMillis"], 1_700_000_000_000_u64);
        assert_eq!(json["serial"], 7);
        let back: RefusedVersion = serde_json::from_value(json).unwrap();
        assert_eq!(back, refused);
        let unknown: RefusedVersion = serde_json::from_str(
            r#"{"zone": "example.com.", "serial": null, "reason": "malformed", "error": "e", "atMillis": 1}"#,
        )
        .unwrap();
        assert_eq!(unknown.serial, None);
    }
}
