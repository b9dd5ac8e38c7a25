//! Pure status computation: what the Zone's and each Record's status should say.
//!
//! Conditions keep their `lastTransitionTime` while their status does not change.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use zonefleet_api::{RecordStatus, SerialPolicy, ZoneStatus};

use super::PublishedVersion;
use crate::{
    serial::{is_newer, next_serial},
    zone::{Assembly, ObjectKey, RejectReason, Verdict},
};

/// Condition types.
pub mod kinds {
    /// The Zone's latest version is assembled and published.
    pub const READY: &str = "Ready";
    /// The Zone needs attention.
    pub const DEGRADED: &str = "Degraded";
    /// The Record is part of its zone.
    pub const ACCEPTED: &str = "Accepted";
}

/// A condition to set, before times and generations are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The type.
    pub kind: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// A CamelCase reason.
    pub reason: String,
    /// A message for people.
    pub message: String,
}

impl Desired {
    /// A condition that is true.
    pub fn yes(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: "True",
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition that is false.
    pub fn no(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: "False",
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The full condition, keeping the transition time of an unchanged status.
pub fn condition(
    existing: &[Condition],
    desired: Desired,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let previous = existing.iter().find(|c| c.type_ == desired.kind);
    let transition = match previous {
        Some(p) if p.status == desired.status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: desired.kind.to_owned(),
        status: desired.status.to_owned(),
        reason: desired.reason,
        message: desired.message,
        observed_generation: generation,
        last_transition_time: transition,
    }
}

/// The serial of the zone's current content, and whether it is new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionDecision {
    /// The serial to serve.
    pub serial: u32,
    /// The serial before it, if there was one.
    pub previous: Option<u32>,
    /// True when the content changed (or was never published): publish this serial.
    pub publish: bool,
}

/// Decides the serial: unchanged content keeps its serial; changed content gets the next.
///
/// The current version is the newer (under RFC 1982) of the one in the Zone's status and the
/// one this replica last published (`known`), because the cached status may lag behind the
/// replica's own last write.
pub fn decide_version(
    status: Option<&ZoneStatus>,
    known: Option<&PublishedVersion>,
    digest: &str,
    policy: SerialPolicy,
    now: Timestamp,
) -> VersionDecision {
    let recorded = status.and_then(|s| Some((s.serial?, s.digest.as_deref().unwrap_or_default())));
    let known = known.map(|k| (k.serial, k.digest.as_str()));
    let current = match (recorded, known) {
        (Some(r), Some(k)) => Some(if is_newer(k.0, r.0) { k } else { r }),
        (r, k) => r.or(k),
    };
    match current {
        Some((serial, current_digest)) if current_digest == digest => VersionDecision {
            serial,
            previous: Some(serial),
            publish: false,
        },
        _ => {
            let previous = current.map(|(serial, _)| serial);
            VersionDecision {
                serial: next_serial(previous, policy, now),
                previous,
                publish: true,
            }
        }
    }
}

/// True if `current` already says what `desired` says, looking only at the fields the
/// Zone controller writes: the fleet health checker owns `servers` and the `Synced`
/// condition.
pub fn zone_status_unchanged(current: Option<&ZoneStatus>, desired: &ZoneStatus) -> bool {
    current.is_some_and(|current| {
        let mut own = current.clone();
        own.servers = desired.servers.clone();
        own.conditions = same_types(&current.conditions, &desired.conditions);
        own == *desired
    })
}

/// True if `current` already says what `desired` says, looking only at the fields the Zone
/// controller writes: the fleet health checker owns the `Programmed` condition.
pub fn record_status_unchanged(current: Option<&RecordStatus>, desired: &RecordStatus) -> bool {
    current.is_some_and(|current| {
        let mut own = current.clone();
        own.conditions = same_types(&current.conditions, &desired.conditions);
        own == *desired
    })
}

/// The conditions of `current` whose types `desired` has, in `desired`'s order.
fn same_types(current: &[Condition], desired: &[Condition]) -> Vec<Condition> {
    desired
        .iter()
        .filter_map(|d| current.iter().find(|c| c.type_ == d.type_).cloned())
        .collect()
}

/// The Zone's status after a successful reconcile.
pub fn zone_status(
    current: Option<&ZoneStatus>,
    generation: Option<i64>,
    assembly: &Assembly,
    serial: u32,
    fleet_problem: Option<&str>,
    now: Timestamp,
) -> ZoneStatus {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let rejected: Vec<String> = assembly
        .verdicts
        .iter()
        .filter_map(|(key, verdict)| match verdict {
            Verdict::Rejected { reason, .. } => Some(format!("{key} ({})", reason.as_str())),
            Verdict::Accepted => None,
        })
        .collect();
    let accepted = assembly.verdicts.len() - rejected.len();
    let ready = Desired::yes(
        kinds::READY,
        "Published",
        format!(
            "serial {serial} published: {} records from {accepted} accepted Records",
            assembly.zone.record_count
        ),
    );
    let degraded = if !rejected.is_empty() {
        Desired::yes(
            kinds::DEGRADED,
            "RecordsRejected",
            format!("{} Records rejected: {}", rejected.len(), list(&rejected)),
        )
    } else if let Some(problem) = fleet_problem {
        Desired::yes(kinds::DEGRADED, "ServersNotSynced", problem)
    } else if !assembly.warnings.is_empty() {
        Desired::yes(kinds::DEGRADED, "MissingGlue", assembly.warnings.join("; "))
    } else {
        Desired::no(kinds::DEGRADED, "AsExpected", "all Records accepted")
    };
    ZoneStatus {
        serial: Some(serial),
        digest: Some(assembly.zone.digest_hex()),
        record_count: Some(assembly.zone.record_count),
        observed_generation: generation,
        conditions: vec![
            condition(existing, ready, generation, now),
            condition(existing, degraded, generation, now),
        ],
        servers: None,
    }
}

/// The Zone's status when its spec cannot be assembled: the last good serial stays.
pub fn zone_failed_status(
    current: Option<&ZoneStatus>,
    generation: Option<i64>,
    error: &str,
    now: Timestamp,
) -> ZoneStatus {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    ZoneStatus {
        serial: current.and_then(|s| s.serial),
        digest: current.and_then(|s| s.digest.clone()),
        record_count: current.and_then(|s| s.record_count),
        observed_generation: generation,
        conditions: vec![
            condition(
                existing,
                Desired::no(kinds::READY, "InvalidSpec", error),
                generation,
                now,
            ),
            condition(
                existing,
                Desired::yes(kinds::DEGRADED, "InvalidSpec", error),
                generation,
                now,
            ),
        ],
        servers: None,
    }
}

/// A Record's status for its verdict in the zone version `zone_serial`.
pub fn record_status(
    current: Option<&RecordStatus>,
    generation: Option<i64>,
    verdict: &Verdict,
    zone_serial: u32,
    values: &[String],
    now: Timestamp,
) -> RecordStatus {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let (accepted, serial) = match verdict {
        Verdict::Accepted => {
            let was_accepted = existing
                .iter()
                .any(|c| c.type_ == kinds::ACCEPTED && c.status == "True");
            let unchanged = current.is_some_and(|s| s.observed_generation == generation);
            let first_serial = match current.and_then(|s| s.zone_serial) {
                Some(serial) if was_accepted && unchanged => serial,
                _ => zone_serial,
            };
            (
                Desired::yes(
                    kinds::ACCEPTED,
                    "Accepted",
                    format!("part of zone serial {first_serial}"),
                ),
                Some(first_serial),
            )
        }
        Verdict::Rejected { reason, message } => (
            Desired::no(kinds::ACCEPTED, reason.as_str(), message.clone()),
            None,
        ),
    };
    RecordStatus {
        conditions: vec![condition(existing, accepted, generation, now)],
        zone_serial: serial,
        observed_generation: generation,
        values: Some(abbreviate(values)),
    }
}

/// A Record's status when its Zone does not exist.
pub fn record_zone_missing(
    current: Option<&RecordStatus>,
    generation: Option<i64>,
    zone: &ObjectKey,
    values: &[String],
    now: Timestamp,
) -> RecordStatus {
    let verdict = Verdict::Rejected {
        reason: RejectReason::ZoneNotFound,
        message: format!("Zone {zone} does not exist"),
    };
    record_status(current, generation, &verdict, 0, values, now)
}

/// The values for `kubectl get records`: at most 48 characters, with a count of the rest.
pub fn abbreviate(values: &[String]) -> String {
    const MAX: usize = 48;
    let first = values.first().map(String::as_str).unwrap_or_default();
    let mut text: String = first.chars().take(MAX).collect();
    if first.chars().count() > MAX {
        text.push('…');
    }
    if values.len() > 1 {
        text.push_str(&format!(" (+{} more)", values.len() - 1));
    }
    text
}

fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::assemble;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn status_with(serial: u32, digest: &str) -> ZoneStatus {
        ZoneStatus {
            serial: Some(serial),
            digest: Some(digest.into()),
            ..ZoneStatus::default()
        }
    }

    #[test]
    fn unchanged_content_keeps_its_serial_and_publishes_nothing() {
        let decision = decide_version(
            Some(&status_with(7, "abc")),
            None,
            "abc",
            SerialPolicy::Increment,
            t(0),
        );
        assert_eq!(
            decision,
            VersionDecision {
                serial: 7,
                previous: Some(7),
                publish: false
            }
        );
    }

    #[test]
    fn changed_content_takes_the_next_serial() {
        let decision = decide_version(
            Some(&status_with(7, "abc")),
            None,
            "def",
            SerialPolicy::Increment,
            t(0),
        );
        assert_eq!(
            decision,
            VersionDecision {
                serial: 8,
                previous: Some(7),
                publish: true
            }
        );
        let first = decide_version(None, None, "def", SerialPolicy::Increment, t(0));
        assert_eq!(
            first,
            VersionDecision {
                serial: 1,
                previous: None,
                publish: true
            }
        );
    }

    #[test]
    fn a_version_published_but_not_yet_in_the_cache_is_never_decided_again() {
        // The cache still shows serial 7 while this replica already published 8.
        let known = PublishedVersion {
            serial: 8,
            digest: "def".into(),
        };
        let same = decide_version(
            Some(&status_with(7, "abc")),
            Some(&known),
            "def",
            SerialPolicy::Increment,
            t(0),
        );
        assert_eq!(
            same,
            VersionDecision {
                serial: 8,
                previous: Some(8),
                publish: false
            }
        );
        let changed = decide_version(
            Some(&status_with(7, "abc")),
            Some(&known),
            "ghi",
            SerialPolicy::Increment,
            t(0),
        );
        assert_eq!(
            changed,
            VersionDecision {
                serial: 9,
                previous: Some(8),
                publish: true
            }
        );
        // Once the cache catches up (or another replica moved on), the status wins.
        let newer = decide_version(
            Some(&status_with(12, "xyz")),
            Some(&known),
            "xyz",
            SerialPolicy::Increment,
            t(0),
        );
        assert_eq!(
            newer,
            VersionDecision {
                serial: 12,
                previous: Some(12),
                publish: false
            }
        );
    }

    #[test]
    fn transition_times_move_only_when_the_status_does() {
        let first = condition(
            &[],
            Desired::yes(kinds::READY, "Published", "serial 1"),
            Some(1),
            t(0),
        );
        let same = condition(
            std::slice::from_ref(&first),
            Desired::yes(kinds::READY, "Published", "serial 2"),
            Some(2),
            t(10),
        );
        assert_eq!(same.last_transition_time, Time(t(0)));
        assert_eq!(same.message, "serial 2");
        assert_eq!(same.observed_generation, Some(2));
        let flipped = condition(
            &[same],
            Desired::no(kinds::READY, "InvalidSpec", "bad"),
            Some(3),
            t(20),
        );
        assert_eq!(flipped.last_transition_time, Time(t(20)));
    }

    #[test]
    fn zone_status_reports_rejections_as_degraded() {
        let spec = serde_json::from_value(serde_json::json!({
            "domain": "example.com", "nameServers": [{"name": "ns.example.net"}],
        }))
        .unwrap();
        let record = |name: &str, age: i64| crate::zone::RecordInput {
            key: ObjectKey {
                namespace: "dns".into(),
                name: name.into(),
            },
            created: Some(t(age)),
            spec: serde_json::from_value(serde_json::json!({
                "zoneRef": {"name": "example"}, "name": "www", "type": "A", "values": ["192.0.2.1"],
            }))
            .unwrap(),
            namespace_labels: None,
        };
        let assembly = assemble("dns", &spec, &[record("first", 1), record("second", 2)]).unwrap();
        let status = zone_status(None, Some(4), &assembly, 9, None, t(0));
        assert_eq!(status.serial, Some(9));
        assert_eq!(status.observed_generation, Some(4));
        let degraded = status
            .conditions
            .iter()
            .find(|c| c.type_ == kinds::DEGRADED)
            .unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "RecordsRejected")
        );
        assert!(
            degraded.message.contains("dns/second (Conflict)"),
            "{}",
            degraded.message
        );
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == kinds::READY)
            .unwrap();
        assert_eq!(ready.status, "True");
    }

    #[test]
    fn a_record_keeps_the_serial_that_first_included_it() {
        let values = vec!["192.0.2.1".to_owned()];
        let first = record_status(None, Some(1), &Verdict::Accepted, 5, &values, t(0));
        assert_eq!(first.zone_serial, Some(5));
        let later = record_status(Some(&first), Some(1), &Verdict::Accepted, 9, &values, t(10));
        assert_eq!(
            later.zone_serial,
            Some(5),
            "other changes to the zone do not move it"
        );
        let edited = record_status(
            Some(&later),
            Some(2),
            &Verdict::Accepted,
            10,
            &values,
            t(20),
        );
        assert_eq!(
            edited.zone_serial,
            Some(10),
            "a new generation is included anew"
        );
        let rejected = Verdict::Rejected {
            reason: RejectReason::Conflict,
            message: "clash".into(),
        };
        let lost = record_status(Some(&edited), Some(2), &rejected, 11, &values, t(30));
        assert_eq!(lost.zone_serial, None);
        assert_eq!(lost.conditions[0].reason, "Conflict");
    }

    #[test]
    fn values_are_abbreviated() {
        assert_eq!(abbreviate(&["192.0.2.1".into()]), "192.0.2.1");
        assert_eq!(
            abbreviate(&["a".into(), "b".into(), "c".into()]),
            "a (+2 more)"
        );
        let long = "x".repeat(60);
        assert_eq!(abbreviate(&[long]).chars().count(), 49);
    }

    #[test]
    fn the_fleet_checkers_fields_do_not_count_as_a_change() {
        let spec = serde_json::from_value(serde_json::json!({
            "domain": "example.com", "nameServers": [{"name": "ns.example.net"}],
        }))
        .unwrap();
        let assembly = assemble("dns", &spec, &[]).unwrap();
        let desired = zone_status(None, Some(1), &assembly, 3, None, t(0));
        let mut current = desired.clone();
        current.servers = Some(zonefleet_api::ServerSummary {
            total: 3,
            synced: 2,
            lagging: vec!["dns-b".into()],
            summary: "2/3".into(),
        });
        current.conditions.push(condition(
            &[],
            Desired::no("Synced", "ServersLagging", "dns-b serves serial 2"),
            Some(1),
            t(0),
        ));
        assert!(zone_status_unchanged(Some(&current), &desired));
        let mut newer = desired.clone();
        newer.serial = Some(4);
        assert!(!zone_status_unchanged(Some(&current), &newer));
        assert!(!zone_status_unchanged(None, &desired));
    }

    #[test]
    fn fleet_problems_make_the_zone_degraded() {
        let spec = serde_json::from_value(serde_json::json!({
            "domain": "example.com", "nameServers": [{"name": "ns.example.net"}],
        }))
        .unwrap();
        let assembly = assemble("dns", &spec, &[]).unwrap();
        let status = zone_status(
            None,
            Some(1),
            &assembly,
            3,
            Some("pod dns-b still lags"),
            t(0),
        );
        let degraded = status
            .conditions
            .iter()
            .find(|c| c.type_ == kinds::DEGRADED)
            .unwrap();
        assert_eq!(
            (
                degraded.status.as_str(),
                degraded.reason.as_str(),
                degraded.message.as_str()
            ),
            ("True", "ServersNotSynced", "pod dns-b still lags")
        );
    }
}
