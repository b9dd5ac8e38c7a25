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

pub use zonefleet_api::conditions::{kinds, reasons};

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
    fn new(
        kind: &'static str,
        status: &'static str,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition that is true.
    pub fn yes(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(kind, "True", reason, message)
    }

    /// A condition that is false.
    pub fn no(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(kind, "False", reason, message)
    }

    /// A condition whose status is not known.
    pub fn unknown(kind: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(kind, "Unknown", reason, message)
    }

    /// True if the status is `True`.
    fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// The condition `kind` with this one's reason and message, true or not as `status` says.
    fn restated(&self, kind: &'static str, status: bool) -> Self {
        let status = if status { "True" } else { "False" };
        Self::new(kind, status, &self.reason, self.message.clone())
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

/// The full conditions for `desired`, in its order (see [`condition`]).
fn conditions(
    existing: &[Condition],
    desired: impl IntoIterator<Item = Desired>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|desired| condition(existing, desired, generation, now))
        .collect()
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
/// The current version is the newest (under RFC 1982) of the one in the Zone's status and
/// the `known` ones: what this replica last published (the cached status may lag behind its
/// own last write), and what the distribution holds for the domain (a Zone taking over a
/// domain continues its serial, so the serial never goes backwards).
pub fn decide_version(
    status: Option<&ZoneStatus>,
    known: &[PublishedVersion],
    digest: &str,
    policy: SerialPolicy,
    now: Timestamp,
) -> VersionDecision {
    let recorded = status.and_then(|s| Some((s.serial?, s.digest.as_deref().unwrap_or_default())));
    let current = known
        .iter()
        .map(|k| (k.serial, k.digest.as_str()))
        .chain(recorded)
        .reduce(|a, b| if is_newer(b.0, a.0) { b } else { a });
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

/// A status that carries conditions: a Zone's or a Record's.
pub trait WithConditions: Clone + PartialEq {
    /// Its conditions.
    fn conditions(&self) -> &[Condition];
    /// Its conditions, to replace.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

macro_rules! with_conditions {
    ($($status:ty),*) => {$(
        impl WithConditions for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
        }
    )*};
}

with_conditions!(ZoneStatus, RecordStatus);

/// True if `current` already says what `desired` says (conditions of other types that
/// `current` may still carry are not looked at).
pub fn status_unchanged<S: WithConditions>(current: Option<&S>, desired: &S) -> bool {
    current.is_some_and(|current| {
        let mut own = current.clone();
        *own.conditions_mut() = same_types(current.conditions(), desired.conditions());
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

pub use crate::fleet::FleetView;

/// Whether, and what, the fleet health checker saw of a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fleet<'a> {
    /// The checker does not run: serving is not verified.
    Off,
    /// It runs but has not checked the zone yet.
    Unseen,
    /// Its last view.
    Seen(&'a FleetView),
}

impl Fleet<'_> {
    /// Whether every ready pod serves `serial` (or a newer version), when that is known:
    /// `None` when nothing checks.
    fn serves(self, serial: u32) -> Option<Result<(), (&'static str, String)>> {
        let view = match self {
            Fleet::Off => return None,
            Fleet::Unseen => {
                return Some(Err((
                    reasons::PROGRESSING,
                    format!("serial {serial} published; waiting for the DNS pods to serve it"),
                )));
            }
            Fleet::Seen(view) => view,
        };
        let served = view.lowest.is_some_and(|low| !is_newer(serial, low));
        Some(if view.servers.total == 0 {
            Err((reasons::SERVERS_NOT_SYNCED, "no ready DNS pods".to_owned()))
        } else if served {
            Ok(())
        } else if let Some(problems) = &view.problems {
            Err((reasons::SERVERS_NOT_SYNCED, problems.clone()))
        } else {
            let message = if view.serial != serial {
                format!("serial {serial} published; checking the DNS pods")
            } else if view.detail.is_empty() {
                format!(
                    "serial {serial} published; {}/{} ready DNS pods serve it",
                    view.servers.synced, view.servers.total
                )
            } else {
                format!(
                    "serial {serial} published; {}/{} ready DNS pods serve it: {}",
                    view.servers.synced, view.servers.total, view.detail
                )
            };
            Err((reasons::PROGRESSING, message))
        })
    }
}

/// How a Zone's reconcile ended, for its status.
#[derive(Clone, Copy, Debug)]
pub enum ZoneOutcome<'a> {
    /// Another Zone owns the domain, or the parent does not delegate it.
    DomainConflict(&'a str),
    /// The spec cannot be assembled.
    InvalidSpec(&'a str),
    /// Assembled; `serial` is the published version, and `next` a newer one on its way.
    Assembled {
        /// The zone.
        assembly: &'a Assembly,
        /// The serial in the distribution.
        serial: u32,
        /// A newer version being published, or that could not be.
        next: Option<NextVersion<'a>>,
    },
}

/// A version newer than the one in the distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextVersion<'a> {
    /// Being published now.
    Publishing(u32),
    /// It could not be published, and why.
    Failed(u32, &'a str),
}

impl<'a> NextVersion<'a> {
    fn failed(self) -> Option<(u32, &'a str)> {
        match self {
            NextVersion::Failed(serial, error) => Some((serial, error)),
            NextVersion::Publishing(_) => None,
        }
    }
}

/// The Zone's status after a reconcile.
pub fn zone_status(
    current: Option<&ZoneStatus>,
    generation: Option<i64>,
    outcome: ZoneOutcome<'_>,
    fleet: Fleet<'_>,
    now: Timestamp,
) -> ZoneStatus {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut status = ZoneStatus {
        serial: current.and_then(|s| s.serial),
        digest: current.and_then(|s| s.digest.clone()),
        record_count: current.and_then(|s| s.record_count),
        observed_generation: generation,
        conditions: Vec::new(),
        servers: None,
        // The controller sets it from what the secondaries tracker saw.
        secondaries: current.and_then(|s| s.secondaries.clone()),
    };
    let (ready, synced, degraded) = match outcome {
        ZoneOutcome::DomainConflict(message) => {
            // It serves nothing: no serial, so nothing (the fleet checker included) takes
            // this Zone's last version for the domain's.
            status.serial = None;
            status.digest = None;
            status.record_count = None;
            (
                Desired::no(kinds::READY, reasons::DOMAIN_CONFLICT, message),
                Desired::no(kinds::SYNCED, reasons::DOMAIN_CONFLICT, "nothing published"),
                Desired::yes(kinds::DEGRADED, reasons::DOMAIN_CONFLICT, message),
            )
        }
        ZoneOutcome::InvalidSpec(message) => (
            Desired::no(kinds::READY, reasons::INVALID_SPEC, message),
            Desired::no(kinds::SYNCED, reasons::INVALID_SPEC, "nothing published"),
            Desired::yes(kinds::DEGRADED, reasons::INVALID_SPEC, message),
        ),
        ZoneOutcome::Assembled {
            assembly,
            serial,
            next,
        } => {
            let failed = next.and_then(NextVersion::failed);
            if next.is_none() {
                status.serial = Some(serial);
                status.digest = Some(assembly.zone.digest_hex());
                status.record_count = Some(assembly.zone.record_count);
            }
            if let Fleet::Seen(view) = fleet {
                status.servers = Some(view.servers.clone());
            } else {
                status.servers = current.and_then(|s| s.servers.clone());
            }
            // A checker that has not looked yet (this replica just took over) does not undo
            // what was verified for this very serial.
            let verified = current.and_then(|s| s.serial) == Some(serial)
                && was_served(existing, kinds::READY);
            let serving = match fleet {
                Fleet::Unseen if verified => Some(Ok(())),
                _ => fleet.serves(serial),
            };
            let synced = match &serving {
                None => Desired::unknown(
                    kinds::SYNCED,
                    reasons::NOT_CHECKED,
                    "the fleet health checker is off",
                ),
                Some(Ok(())) => Desired::yes(
                    kinds::SYNCED,
                    reasons::SERVED,
                    served_message(fleet, serial),
                ),
                Some(Err((reason, message))) => Desired::no(kinds::SYNCED, reason, message),
            };
            let ready = match (next, &serving) {
                (Some(NextVersion::Failed(attempted, error)), _) => Desired::no(
                    kinds::READY,
                    reasons::PUBLISH_FAILED,
                    publish_failed(attempted, error),
                ),
                (Some(NextVersion::Publishing(next)), _) => Desired::no(
                    kinds::READY,
                    reasons::PROGRESSING,
                    match status.serial {
                        Some(old) => format!(
                            "publishing serial {next}; the DNS pods serve serial {old} until then"
                        ),
                        None => format!("publishing serial {next}"),
                    },
                ),
                (None, None) => Desired::yes(
                    kinds::READY,
                    reasons::PUBLISHED,
                    format!(
                        "serial {serial} published ({} records); the fleet health checker is off, so serving is not verified",
                        assembly.zone.record_count
                    ),
                ),
                (None, Some(Ok(()))) => {
                    Desired::yes(kinds::READY, reasons::SERVED, served_message(fleet, serial))
                }
                (None, Some(Err((reason, message)))) => Desired::no(kinds::READY, reason, message),
            };
            (ready, synced, degraded_of(assembly, failed, fleet))
        }
    };
    let transient = [
        reasons::PROGRESSING,
        reasons::PUBLISH_FAILED,
        reasons::SERVERS_NOT_SYNCED,
    ];
    let stuck = [reasons::DOMAIN_CONFLICT, reasons::INVALID_SPEC];
    let reconciling = if !ready.is_true() && transient.contains(&ready.reason.as_str()) {
        ready.restated(kinds::RECONCILING, true)
    } else {
        Desired::no(
            kinds::RECONCILING,
            reasons::AS_EXPECTED,
            "nothing in progress",
        )
    };
    let stalled = if stuck.contains(&ready.reason.as_str()) {
        ready.restated(kinds::STALLED, true)
    } else {
        Desired::no(kinds::STALLED, reasons::AS_EXPECTED, "not stalled")
    };
    status.conditions = conditions(
        existing,
        [ready, synced, degraded, reconciling, stalled],
        generation,
        now,
    );
    status
}

/// True if the condition `kind` says the pods serve the version.
fn was_served(existing: &[Condition], kind: &str) -> bool {
    existing
        .iter()
        .any(|c| c.type_ == kind && c.status == "True" && c.reason == reasons::SERVED)
}

fn publish_failed(attempted: u32, error: &str) -> String {
    format!("serial {attempted} could not be published: {error}")
}

fn served_message(fleet: Fleet<'_>, serial: u32) -> String {
    match fleet {
        Fleet::Seen(view) => format!(
            "{}/{} ready DNS pods serve serial {serial}",
            view.servers.total, view.servers.total
        ),
        _ => format!("every ready DNS pod serves serial {serial}"),
    }
}

/// The Zone's `Degraded` condition: rejected Records, a failed publish, pods that cannot be
/// repaired, or missing glue.
fn degraded_of(assembly: &Assembly, failed: Option<(u32, &str)>, fleet: Fleet<'_>) -> Desired {
    let rejected: Vec<String> = assembly
        .verdicts
        .iter()
        .filter_map(|(key, verdict)| match verdict {
            Verdict::Rejected { reason, .. } => Some(format!("{key} ({})", reason.as_str())),
            Verdict::Accepted => None,
        })
        .collect();
    let problems = match fleet {
        Fleet::Seen(view) => view.problems.as_deref(),
        _ => None,
    };
    if let Some((attempted, error)) = failed {
        Desired::yes(
            kinds::DEGRADED,
            reasons::PUBLISH_FAILED,
            publish_failed(attempted, error),
        )
    } else if !rejected.is_empty() {
        Desired::yes(
            kinds::DEGRADED,
            reasons::RECORDS_REJECTED,
            format!("{} Records rejected: {}", rejected.len(), list(&rejected)),
        )
    } else if let Some(problem) = problems {
        Desired::yes(kinds::DEGRADED, reasons::SERVERS_NOT_SYNCED, problem)
    } else if !assembly.warnings.is_empty() {
        Desired::yes(
            kinds::DEGRADED,
            reasons::MISSING_GLUE,
            assembly.warnings.join("; "),
        )
    } else {
        Desired::no(
            kinds::DEGRADED,
            reasons::AS_EXPECTED,
            "all Records accepted",
        )
    }
}

/// A Record's status for its verdict, in a zone whose current version is `zone_serial`.
pub fn record_status(
    current: Option<&RecordStatus>,
    generation: Option<i64>,
    verdict: &Verdict,
    zone_serial: u32,
    values: &[String],
    fleet: Fleet<'_>,
    now: Timestamp,
) -> RecordStatus {
    let existing = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let (accepted, programmed, serial) = match verdict {
        Verdict::Accepted => {
            let was_accepted = existing
                .iter()
                .any(|c| c.type_ == kinds::ACCEPTED && c.status == "True");
            let unchanged = current.is_some_and(|s| s.observed_generation == generation);
            let first_serial = match current.and_then(|s| s.zone_serial) {
                Some(serial) if was_accepted && unchanged => serial,
                _ => zone_serial,
            };
            let verified = current.and_then(|s| s.zone_serial) == Some(first_serial)
                && was_served(existing, kinds::PROGRAMMED);
            let serving = match fleet {
                Fleet::Unseen if verified => Some(Ok(())),
                _ => fleet.serves(first_serial),
            };
            let programmed = match serving {
                None => Desired::yes(
                    kinds::PROGRAMMED,
                    reasons::PUBLISHED,
                    format!(
                        "published in zone serial {first_serial}; the fleet health checker is off, so serving is not verified"
                    ),
                ),
                Some(Ok(())) => Desired::yes(
                    kinds::PROGRAMMED,
                    reasons::SERVED,
                    format!("every ready DNS pod serves zone serial {first_serial} or newer"),
                ),
                Some(Err((reason, message))) => {
                    let reason = if reason == reasons::PROGRESSING {
                        reasons::NOT_SERVED
                    } else {
                        reason
                    };
                    Desired::no(kinds::PROGRAMMED, reason, message)
                }
            };
            (
                Desired::yes(
                    kinds::ACCEPTED,
                    reasons::ACCEPTED,
                    format!("part of zone serial {first_serial}"),
                ),
                programmed,
                Some(first_serial),
            )
        }
        Verdict::Rejected { reason, message } => (
            Desired::no(kinds::ACCEPTED, reason.as_str(), message.clone()),
            Desired::no(
                kinds::PROGRAMMED,
                reasons::NOT_ACCEPTED,
                format!("not part of the zone: {}", reason.as_str()),
            ),
            None,
        ),
    };
    // Ready says why the Record is not accepted, else what Programmed says.
    let cause = if accepted.is_true() {
        &programmed
    } else {
        &accepted
    };
    let ready = cause.restated(kinds::READY, cause.is_true());
    RecordStatus {
        conditions: conditions(existing, [ready, accepted, programmed], generation, now),
        zone_serial: serial,
        observed_generation: generation,
        values: Some(abbreviate(values)),
    }
}

/// A Record's status when its Zone does not exist (or is being deleted).
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
    record_status(current, generation, &verdict, 0, values, Fleet::Off, now)
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
    use zonefleet_api::ServerSummary;

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

    /// The decision for `digest`, under the increment policy.
    fn decide(
        status: Option<&ZoneStatus>,
        known: &[PublishedVersion],
        digest: &str,
    ) -> VersionDecision {
        decide_version(status, known, digest, SerialPolicy::Increment, t(0))
    }

    /// The decision to keep `serial`: nothing to publish.
    fn kept(serial: u32) -> VersionDecision {
        VersionDecision {
            serial,
            previous: Some(serial),
            publish: false,
        }
    }

    /// The decision to publish `serial`, after `previous`.
    fn publishes(serial: u32, previous: Option<u32>) -> VersionDecision {
        VersionDecision {
            serial,
            previous,
            publish: true,
        }
    }

    #[test]
    fn unchanged_content_keeps_its_serial_and_publishes_nothing() {
        assert_eq!(decide(Some(&status_with(7, "abc")), &[], "abc"), kept(7));
    }

    #[test]
    fn changed_content_takes_the_next_serial() {
        assert_eq!(
            decide(Some(&status_with(7, "abc")), &[], "def"),
            publishes(8, Some(7))
        );
        assert_eq!(decide(None, &[], "def"), publishes(1, None));
    }

    #[test]
    fn a_version_published_but_not_yet_in_the_cache_is_never_decided_again() {
        // The cache still shows serial 7 while this replica already published 8.
        let known = [PublishedVersion {
            serial: 8,
            digest: "def".into(),
        }];
        let cached = status_with(7, "abc");
        assert_eq!(decide(Some(&cached), &known, "def"), kept(8));
        assert_eq!(decide(Some(&cached), &known, "ghi"), publishes(9, Some(8)));
        // Once the cache catches up (or another replica moved on), the status wins.
        assert_eq!(
            decide(Some(&status_with(12, "xyz")), &known, "xyz"),
            kept(12)
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
        let assembly = assemble(
            "dns",
            &example_spec(),
            &[record("first", 1), record("second", 2)],
        )
        .unwrap();
        let status = zone_status(
            None,
            Some(4),
            ZoneOutcome::Assembled {
                assembly: &assembly,
                serial: 9,
                next: None,
            },
            Fleet::Off,
            t(0),
        );
        assert_eq!(status.serial, Some(9));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(
            find(&status.conditions, kinds::DEGRADED),
            ("True", "RecordsRejected")
        );
        let degraded = get(&status.conditions, kinds::DEGRADED);
        assert!(
            degraded.message.contains("dns/second (Conflict)"),
            "{}",
            degraded.message
        );
        assert_eq!(get(&status.conditions, kinds::READY).status, "True");
    }

    #[test]
    fn a_record_keeps_the_serial_that_first_included_it() {
        let values = vec!["192.0.2.1".to_owned()];
        let status = |current: Option<&RecordStatus>, generation, verdict, serial, at| {
            record_status(
                current,
                Some(generation),
                verdict,
                serial,
                &values,
                Fleet::Off,
                t(at),
            )
        };
        let first = status(None, 1, &Verdict::Accepted, 5, 0);
        assert_eq!(first.zone_serial, Some(5));
        let later = status(Some(&first), 1, &Verdict::Accepted, 9, 10);
        assert_eq!(
            later.zone_serial,
            Some(5),
            "other changes to the zone do not move it"
        );
        let edited = status(Some(&later), 2, &Verdict::Accepted, 10, 20);
        assert_eq!(
            edited.zone_serial,
            Some(10),
            "a new generation is included anew"
        );
        let rejected = Verdict::Rejected {
            reason: RejectReason::Conflict,
            message: "clash".into(),
        };
        let lost = status(Some(&edited), 2, &rejected, 11, 30);
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

    fn view(serial: u32, synced: i32, total: i32, lowest: Option<u32>) -> FleetView {
        FleetView {
            serial,
            servers: ServerSummary {
                total,
                synced,
                lagging: Vec::new(),
                summary: format!("{synced}/{total}"),
            },
            lowest,
            detail: String::new(),
            problems: None,
        }
    }

    /// A view in which both ready pods serve `serial`.
    fn all_serve(serial: u32) -> FleetView {
        view(serial, 2, 2, Some(serial))
    }

    fn example_spec() -> zonefleet_api::ZoneSpec {
        serde_json::from_value(serde_json::json!({
            "domain": "example.com", "nameServers": [{"name": "ns.example.net"}],
        }))
        .unwrap()
    }

    fn example_assembly() -> Assembly {
        assemble("dns", &example_spec(), &[]).unwrap()
    }

    fn get<'a>(conditions: &'a [Condition], kind: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    fn find<'a>(conditions: &'a [Condition], kind: &str) -> (&'a str, &'a str) {
        let c = get(conditions, kind);
        (c.status.as_str(), c.reason.as_str())
    }

    fn published(assembly: &Assembly, serial: u32) -> ZoneOutcome<'_> {
        ZoneOutcome::Assembled {
            assembly,
            serial,
            next: None,
        }
    }

    /// The status after the first reconcile of generation 1.
    fn first_status(outcome: ZoneOutcome<'_>, fleet: Fleet<'_>) -> ZoneStatus {
        zone_status(None, Some(1), outcome, fleet, t(0))
    }

    /// The status once serial 3 is published and both pods serve it.
    fn served(assembly: &Assembly) -> ZoneStatus {
        first_status(published(assembly, 3), Fleet::Seen(&all_serve(3)))
    }

    #[test]
    fn ready_means_every_ready_pod_serves_the_serial() {
        let assembly = example_assembly();
        let ready = |fleet: Fleet<'_>| {
            let status = first_status(published(&assembly, 3), fleet);
            let (s, r) = find(&status.conditions, kinds::READY);
            (s.to_owned(), r.to_owned())
        };
        let pair = |s: &str, r: &str| (s.to_owned(), r.to_owned());
        assert_eq!(ready(Fleet::Unseen), pair("False", reasons::PROGRESSING));
        assert_eq!(
            ready(Fleet::Seen(&view(2, 2, 2, Some(2)))),
            pair("False", reasons::PROGRESSING),
            "the pods serve an older serial"
        );
        assert_eq!(
            ready(Fleet::Seen(&view(3, 1, 2, Some(2)))),
            pair("False", reasons::PROGRESSING)
        );
        assert_eq!(
            ready(Fleet::Seen(&all_serve(3))),
            pair("True", reasons::SERVED)
        );
        assert_eq!(
            ready(Fleet::Seen(&view(3, 0, 0, None))),
            pair("False", reasons::SERVERS_NOT_SYNCED),
            "no ready pods serve nothing"
        );
        let mut stuck = view(3, 1, 2, Some(2));
        stuck.problems = Some("pod dns-b still serves serial 2".into());
        assert_eq!(
            ready(Fleet::Seen(&stuck)),
            pair("False", reasons::SERVERS_NOT_SYNCED)
        );
        assert_eq!(ready(Fleet::Off), pair("True", reasons::PUBLISHED));
        let status = first_status(
            published(&assembly, 3),
            Fleet::Seen(&view(3, 1, 2, Some(2))),
        );
        assert_eq!(
            find(&status.conditions, kinds::RECONCILING),
            ("True", reasons::PROGRESSING)
        );
        assert_eq!(
            find(&status.conditions, kinds::SYNCED),
            ("False", reasons::PROGRESSING)
        );
    }

    #[test]
    fn a_failed_publish_keeps_the_last_serial_and_says_why() {
        let assembly = example_assembly();
        let before = served(&assembly);
        let failed = zone_status(
            Some(&before),
            Some(2),
            ZoneOutcome::Assembled {
                assembly: &assembly,
                serial: 3,
                next: Some(NextVersion::Failed(4, "NATS: timed out")),
            },
            Fleet::Seen(&all_serve(3)),
            t(5),
        );
        assert_eq!(failed.serial, Some(3));
        assert_eq!(failed.observed_generation, Some(2));
        assert_eq!(
            find(&failed.conditions, kinds::READY),
            ("False", reasons::PUBLISH_FAILED)
        );
        let ready = get(&failed.conditions, kinds::READY);
        assert!(ready.message.contains("serial 4") && ready.message.contains("timed out"));
        assert!(
            failed
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2)),
            "every condition carries the generation"
        );
    }

    #[test]
    fn a_domain_conflict_stalls_the_zone() {
        let status = first_status(
            ZoneOutcome::DomainConflict("owned.test. belongs to Zone a/owner"),
            Fleet::Unseen,
        );
        assert_eq!(status.serial, None);
        assert_eq!(
            find(&status.conditions, kinds::READY),
            ("False", reasons::DOMAIN_CONFLICT)
        );
        assert_eq!(
            find(&status.conditions, kinds::STALLED),
            ("True", reasons::DOMAIN_CONFLICT)
        );
    }

    #[test]
    fn conditions_of_other_writers_do_not_count_as_a_change() {
        let assembly = example_assembly();
        let desired = first_status(published(&assembly, 3), Fleet::Off);
        let mut current = desired.clone();
        current.conditions.push(condition(
            &[],
            Desired::no("Other", "Something", "written by someone else"),
            Some(1),
            t(0),
        ));
        assert!(status_unchanged(Some(&current), &desired));
        let mut newer = desired.clone();
        newer.serial = Some(4);
        assert!(!status_unchanged(Some(&current), &newer));
        assert!(!status_unchanged(None, &desired));
    }

    #[test]
    fn fleet_problems_make_the_zone_degraded() {
        let assembly = example_assembly();
        let mut stuck = view(3, 1, 2, Some(2));
        stuck.problems = Some("pod dns-b still lags".into());
        let status = first_status(published(&assembly, 3), Fleet::Seen(&stuck));
        assert_eq!(
            find(&status.conditions, kinds::DEGRADED),
            ("True", reasons::SERVERS_NOT_SYNCED)
        );
    }

    #[test]
    fn a_record_is_ready_once_every_pod_serves_its_version() {
        let values = vec!["192.0.2.1".to_owned()];
        let accepted = Verdict::Accepted;
        let status =
            |fleet: Fleet<'_>| record_status(None, Some(3), &accepted, 7, &values, fleet, t(0));
        let lagging = status(Fleet::Seen(&view(7, 1, 2, Some(6))));
        assert_eq!(
            find(&lagging.conditions, kinds::PROGRAMMED),
            ("False", reasons::NOT_SERVED)
        );
        assert_eq!(
            find(&lagging.conditions, kinds::READY),
            ("False", reasons::NOT_SERVED)
        );
        let served = status(Fleet::Seen(&all_serve(8)));
        assert_eq!(
            find(&served.conditions, kinds::PROGRAMMED),
            ("True", reasons::SERVED)
        );
        assert_eq!(
            find(&served.conditions, kinds::READY),
            ("True", reasons::SERVED)
        );
        assert!(
            served
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
        let rejected = Verdict::Rejected {
            reason: RejectReason::InvalidRData,
            message: "bad".into(),
        };
        let bad = record_status(
            Some(&served),
            Some(4),
            &rejected,
            9,
            &values,
            Fleet::Seen(&all_serve(9)),
            t(1),
        );
        assert_eq!(
            find(&bad.conditions, kinds::READY),
            ("False", "InvalidRData")
        );
        assert_eq!(
            find(&bad.conditions, kinds::PROGRAMMED),
            ("False", reasons::NOT_ACCEPTED)
        );
        let gone = record_zone_missing(
            Some(&served),
            Some(3),
            &ObjectKey {
                namespace: "dns".into(),
                name: "example".into(),
            },
            &values,
            t(2),
        );
        assert_eq!(
            find(&gone.conditions, kinds::PROGRAMMED),
            ("False", reasons::NOT_ACCEPTED)
        );
        assert_eq!(
            find(&gone.conditions, kinds::READY),
            ("False", "ZoneNotFound")
        );
    }

    #[test]
    fn a_new_leader_keeps_what_was_verified_until_its_checker_looks() {
        let assembly = example_assembly();
        let served = served(&assembly);
        let after_failover = zone_status(
            Some(&served),
            Some(1),
            published(&assembly, 3),
            Fleet::Unseen,
            t(5),
        );
        assert_eq!(
            find(&after_failover.conditions, kinds::READY),
            ("True", reasons::SERVED)
        );
        assert_eq!(after_failover.servers, served.servers);
        let newer = zone_status(
            Some(&served),
            Some(1),
            published(&assembly, 4),
            Fleet::Unseen,
            t(5),
        );
        assert_eq!(
            find(&newer.conditions, kinds::READY),
            ("False", reasons::PROGRESSING),
            "a new serial is not verified by an old check"
        );
    }

    #[test]
    fn a_version_being_published_is_not_ready_yet() {
        let assembly = example_assembly();
        let served = served(&assembly);
        let publishing = zone_status(
            Some(&served),
            Some(1),
            ZoneOutcome::Assembled {
                assembly: &assembly,
                serial: 3,
                next: Some(NextVersion::Publishing(4)),
            },
            Fleet::Seen(&all_serve(3)),
            t(1),
        );
        assert_eq!(publishing.serial, Some(3));
        assert_eq!(
            find(&publishing.conditions, kinds::READY),
            ("False", reasons::PROGRESSING)
        );
        assert_eq!(
            find(&publishing.conditions, kinds::RECONCILING),
            ("True", reasons::PROGRESSING)
        );
    }
}
