//! The health decisions, as pure functions: what a pod's answer means for a zone, when to
//! retry a re-sync, and what the Zone's status says.

use std::time::Duration;

use hickory_proto::rr::SerialNumber;
use zonefleet_api::ServerSummary;

/// The version a zone should be served at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The serial.
    pub serial: u32,
    /// The content digest, hex.
    pub digest: String,
}

/// What a pod says about a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The SOA serial it answers with over DNS, and the digest its `/zones` shows for it
    /// (None if `/zones` could not be read or lists another serial).
    Serving {
        /// The SOA serial.
        serial: u32,
        /// The content digest at that serial.
        digest: Option<String>,
    },
    /// It answers REFUSED: it does not serve the zone.
    Missing,
    /// No usable answer: the text of the probe's error. The checker counts the typed
    /// [`ProbeError`](super::probe::ProbeError) by kind before it gets here; from here on it
    /// is data that verdicts clone, compare and put in the Zone's status.
    Unreachable(String),
}

/// The verdict on one (pod, zone) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The expected serial and content.
    Synced,
    /// An older serial.
    Lagging {
        /// The serial it serves.
        seen: u32,
    },
    /// The expected serial with other content.
    WrongContent {
        /// The digest it shows.
        seen: String,
    },
    /// It does not serve the zone.
    Missing,
    /// A newer serial than expected: the expectation is stale; check again later.
    Ahead {
        /// The serial it serves.
        seen: u32,
    },
    /// It could not be asked.
    Unreachable(String),
}

impl Verdict {
    /// True if the pod gets a re-sync request: it lags, misses the zone, serves other
    /// content, or (while its endpoint is ready) does not answer. The last cannot always be
    /// cured by a re-sync, but asking is cheap, and the attempts count towards `Degraded`.
    pub fn needs_resync(&self) -> bool {
        !matches!(self, Self::Synced | Self::Ahead { .. })
    }

    /// The label of the verdict in logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Lagging { .. } => "lagging",
            Self::WrongContent { .. } => "wrong_content",
            Self::Missing => "missing",
            Self::Ahead { .. } => "ahead",
            Self::Unreachable(_) => "unreachable",
        }
    }
}

/// Compares what a pod serves with what it should (RFC 1982 for serials).
pub fn verdict(expected: &Expected, observed: &Observed) -> Verdict {
    match observed {
        Observed::Missing => Verdict::Missing,
        Observed::Unreachable(why) => Verdict::Unreachable(why.clone()),
        Observed::Serving { serial, digest } => {
            if *serial == expected.serial {
                match digest {
                    Some(seen) if !seen.eq_ignore_ascii_case(&expected.digest) => {
                        Verdict::WrongContent { seen: seen.clone() }
                    }
                    _ => Verdict::Synced,
                }
            } else if SerialNumber::new(*serial) < SerialNumber::new(expected.serial) {
                Verdict::Lagging { seen: *serial }
            } else {
                Verdict::Ahead { seen: *serial }
            }
        }
    }
}

/// How re-syncs are paced.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The wait after the first attempt.
    pub first: Duration,
    /// The longest wait: the slow pace once a pod is reported.
    pub max: Duration,
    /// Attempts before the zone is reported Degraded.
    pub attempts_before_degraded: u32,
}

impl Backoff {
    /// The wait after `attempts` failed attempts: doubling from `first`, capped at `max`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }

    /// True once `attempts` re-syncs have not helped.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.attempts_before_degraded
    }
}

/// The `servers` status of a zone, from the verdicts of every ready pod (sorted by pod).
pub fn summary<'a>(verdicts: impl IntoIterator<Item = (&'a str, &'a Verdict)>) -> ServerSummary {
    let mut total = 0;
    let mut synced = 0;
    let mut lagging = Vec::new();
    for (pod, verdict) in verdicts {
        total += 1;
        if *verdict == Verdict::Synced {
            synced += 1;
        } else {
            lagging.push(pod.to_owned());
        }
    }
    lagging.sort();
    ServerSummary {
        total,
        synced,
        lagging,
        summary: format!("{synced}/{total}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        Expected {
            serial: 10,
            digest: "ab".into(),
        }
    }

    fn serving(serial: u32, digest: Option<&str>) -> Observed {
        Observed::Serving {
            serial,
            digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn verdicts_compare_serial_then_content() {
        assert_eq!(
            verdict(&expected(), &serving(10, Some("AB"))),
            Verdict::Synced
        );
        assert_eq!(verdict(&expected(), &serving(10, None)), Verdict::Synced);
        assert_eq!(
            verdict(&expected(), &serving(10, Some("cd"))),
            Verdict::WrongContent { seen: "cd".into() }
        );
        assert_eq!(
            verdict(&expected(), &serving(9, None)),
            Verdict::Lagging { seen: 9 }
        );
        assert_eq!(
            verdict(&expected(), &serving(11, None)),
            Verdict::Ahead { seen: 11 }
        );
        assert_eq!(verdict(&expected(), &Observed::Missing), Verdict::Missing);
    }

    #[test]
    fn serials_compare_under_rfc_1982() {
        let wrapped = Expected {
            serial: 2,
            digest: String::new(),
        };
        assert_eq!(
            verdict(&wrapped, &serving(u32::MAX, None)),
            Verdict::Lagging { seen: u32::MAX }
        );
    }

    #[test]
    fn everything_but_synced_and_ahead_is_resynced() {
        assert!(Verdict::Lagging { seen: 1 }.needs_resync());
        assert!(Verdict::Missing.needs_resync());
        assert!(Verdict::WrongContent { seen: "x".into() }.needs_resync());
        assert!(Verdict::Unreachable("timeout".into()).needs_resync());
        assert!(!Verdict::Synced.needs_resync());
        assert!(!Verdict::Ahead { seen: 1 }.needs_resync());
    }

    #[test]
    fn backoff_doubles_to_a_slow_pace() {
        let backoff = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            attempts_before_degraded: 3,
        };
        let delays: Vec<_> = (1..=9).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert!(!backoff.exhausted(2));
        assert!(backoff.exhausted(3));
    }

    #[test]
    fn the_summary_counts_and_names_pods() {
        let lag = Verdict::Lagging { seen: 1 };
        let summary = summary([
            ("dns-b", &Verdict::Synced),
            ("dns-c", &lag),
            ("dns-a", &Verdict::Missing),
        ]);
        assert_eq!(summary.total, 3);
        assert_eq!(summary.synced, 1);
        assert_eq!(summary.lagging, ["dns-a", "dns-c"]);
        assert_eq!(summary.summary, "1/3");
    }
}
