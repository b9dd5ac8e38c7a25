//! The words of the checker: Event notes, `Degraded` problems and the lagging pods of a
//! view. (The e2e tests match on the Events' reasons, not on these notes.)

use std::collections::HashMap;

use zonefleet_nats::RefusedVersion;

use super::Target;
use crate::fleet::health::{Expected, Verdict};

/// The note of the `Resync` Event: a re-sync was requested for a pod (its first attempt).
pub(super) fn resyncing(pod: &str, seen: Option<&Verdict>, expected: Option<u32>) -> String {
    format!(
        "re-sync requested for pod {pod}: {}, expected serial {}",
        describe(seen),
        serial_text(expected)
    )
}

/// The note of the `ResyncFailed` Event, and the pod's problem in `Degraded`: a pod is
/// still wrong after the allowed attempts.
pub(super) fn degraded(
    pod: &str,
    attempts: u32,
    seen: Option<&Verdict>,
    expected: Option<u32>,
) -> String {
    format!(
        "pod {pod} still {} (expected serial {}) after {attempts} re-syncs; retrying slowly",
        describe(seen),
        serial_text(expected)
    )
}

/// The note of the `Resynced` Event: a reported pod serves the zone again.
pub(super) fn recovered(pod: &str) -> String {
    format!("pod {pod} serves the latest version again")
}

fn serial_text(serial: Option<u32>) -> String {
    serial.map_or("?".into(), |s| s.to_string())
}

/// What a pod does, after "pod X" in a note.
fn describe(seen: Option<&Verdict>) -> String {
    match seen {
        Some(Verdict::Lagging { seen }) => format!("serves serial {seen}"),
        Some(Verdict::WrongContent { .. }) => "serves other content at the same serial".into(),
        Some(Verdict::Missing) => "does not serve the zone".into(),
        Some(Verdict::Unreachable(why)) => format!("does not answer ({why})"),
        Some(Verdict::Ahead { seen }) => format!("serves serial {seen}"),
        Some(Verdict::Synced) => "serves the zone".into(),
        None => "serves zones that were deleted".into(),
    }
}

/// "dns-b serves serial 3; dns-c does not serve the zone", for condition messages: every
/// pod of `pairs` that is not synced, with the version it refused, if it did.
pub(super) fn lagging_pods(
    pairs: &[(&str, &Verdict)],
    target: &Target,
    refusals: &HashMap<(String, String), RefusedVersion>,
) -> String {
    let expected = &target.expected;
    let lagging: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| **v != Verdict::Synced)
        .map(|(pod, verdict)| {
            let refused = refusals
                .get(&((*pod).to_owned(), target.origin_key.clone()))
                .map(|r| {
                    format!(
                        " (it refused serial {}: {})",
                        r.serial.map_or("?".into(), |s| s.to_string()),
                        r.error
                    )
                })
                .unwrap_or_default();
            format!("{}{refused}", lagging_pod(pod, verdict, expected))
        })
        .collect();
    lagging.join("; ")
}

/// What one lagging pod does, for people.
fn lagging_pod(pod: &str, verdict: &Verdict, expected: &Expected) -> String {
    match verdict {
        Verdict::Lagging { seen } => format!("{pod} serves serial {seen}"),
        Verdict::Ahead { seen } => format!("{pod} serves serial {seen}"),
        Verdict::WrongContent { .. } => {
            format!("{pod} serves serial {} with other content", expected.serial)
        }
        Verdict::Missing => format!("{pod} does not serve the zone"),
        Verdict::Unreachable(why) => format!("{pod} does not answer ({why})"),
        Verdict::Synced => String::new(),
    }
}
