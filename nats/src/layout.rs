//! The names of everything Zonefleet keeps in NATS, under one prefix `P` (default
//! `zonefleet`):
//!
//! | what | name |
//! |---|---|
//! | object store of zone snapshots, one object per zone | bucket `P-zones`, object `<apex>` (lowercase, trailing dot) |
//! | stream of change events | `P-events` (dots in `P` become `-`), subjects `P.events.<zone token>` |
//! | a pod's re-sync requests | `P.pod.<pod name>.resync` |
//! | stream of access documents (transfer rules, TSIG keys), the last per zone | `P-access`, subjects `P.access.<zone token>` |
//!
//! A zone token is the lowercased apex without its trailing dot, with `.` written as `~`
//! and every byte outside `[a-z0-9_-]` as `%XX`, so any DNS name makes one valid token.

use std::time::{SystemTime, UNIX_EPOCH};

/// Object metadata: the snapshot's serial.
pub const META_SERIAL: &str = "serial";
/// Object metadata: the snapshot's content digest, in hex.
pub const META_DIGEST: &str = "digest";
/// Object metadata and event header: when the operator published, in Unix milliseconds.
pub const META_PUBLISHED_AT: &str = "published-at";

/// Event headers.
#[derive(Clone, Copy, Debug)]
pub struct EventHeaders;

impl EventHeaders {
    /// When the operator published the event, in Unix milliseconds.
    pub const PUBLISHED_AT: &'static str = "Zonefleet-Published-At";
}

/// A prefix that cannot name subjects.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid NATS prefix {0:?}: use letters, digits, '-' and '_', in dot-separated tokens")]
pub struct LayoutError(pub String);

/// The names under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// The layout under `prefix` (dot-separated tokens of letters, digits, `-` and `_`).
    pub fn new(prefix: &str) -> Result<Self, LayoutError> {
        let valid = !prefix.is_empty()
            && prefix.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(LayoutError(prefix.to_owned()))
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object store bucket of zone snapshots.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}-zones", self.prefix.replace('.', "-"))
    }

    /// The object name of a zone's snapshot.
    pub fn object_name(&self, origin: &str) -> String {
        let mut name = origin.to_ascii_lowercase();
        if !name.ends_with('.') {
            name.push('.');
        }
        name
    }

    /// The stream of change events.
    pub fn event_stream(&self) -> String {
        format!("{}-events", self.prefix.replace('.', "-"))
    }

    /// The subject of a zone's change events.
    pub fn event_subject(&self, origin: &str) -> String {
        format!("{}.events.{}", self.prefix, zone_token(origin))
    }

    /// Every zone's events.
    pub fn event_subjects(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// The stream of access documents.
    pub fn access_stream(&self) -> String {
        format!("{}-access", self.prefix.replace('.', "-"))
    }

    /// The subject of a zone's access document.
    pub fn access_subject(&self, origin: &str) -> String {
        format!("{}.access.{}", self.prefix, zone_token(origin))
    }

    /// Every zone's access documents.
    pub fn access_subjects(&self) -> String {
        format!("{}.access.>", self.prefix)
    }

    /// A pod's re-sync request subject.
    pub fn resync_subject(&self, pod: &str) -> String {
        format!("{}.pod.{}.resync", self.prefix, zone_token(pod))
    }
}

/// A name as one subject token (see the module docs).
fn zone_token(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let mut token = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'.' => token.push('~'),
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => token.push(char::from(byte)),
            other => token.push_str(&format!("%{other:02X}")),
        }
    }
    if token.is_empty() {
        token.push('~');
    }
    token
}

/// Now, in Unix milliseconds.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_a_prefix() {
        let layout = Layout::new("zonefleet").unwrap();
        assert_eq!(layout.snapshot_bucket(), "zonefleet-zones");
        assert_eq!(layout.event_stream(), "zonefleet-events");
        assert_eq!(layout.object_name("Example.COM"), "example.com.");
        assert_eq!(
            layout.event_subject("Example.com."),
            "zonefleet.events.example~com"
        );
        assert_eq!(
            layout.resync_subject("dns-7d9f-abc"),
            "zonefleet.pod.dns-7d9f-abc.resync"
        );
        let dotted = Layout::new("team-a.dns").unwrap();
        assert_eq!(dotted.event_stream(), "team-a-dns-events");
        assert_eq!(dotted.event_subjects(), "team-a.dns.events.>");
    }

    #[test]
    fn every_name_makes_one_safe_token() {
        assert_eq!(zone_token("_tcp.a.b."), "_tcp~a~b");
        assert_eq!(zone_token("a*b >.c"), "a%2Ab%20%3E~c");
        assert_eq!(zone_token("."), "~");
        // Distinct names never share a token.
        assert_ne!(zone_token("a_b.c"), zone_token("a.b_c"));
        assert_ne!(zone_token("a.b"), zone_token("a~b"));
    }

    #[test]
    fn a_prefix_must_make_subject_tokens() {
        for bad in ["", "a..b", "a b", "a.*", ">", "a.", ".a"] {
            assert!(Layout::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
