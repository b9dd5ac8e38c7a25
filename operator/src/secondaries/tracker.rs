//! The secondaries tracker's decisions, as a pure state machine: what each zone's external
//! secondaries should serve (the serial every ready DNS pod serves), when to send each a
//! NOTIFY and when to ask it for its serial, and what to report. Time comes in as an
//! argument; the task in [`super::task`] carries the commands out.
//!
//! Per secondary: when the zone's target serial is newer than what it serves, a NOTIFY
//! goes out at once, and again after 1, 2, 4 … up to 60 seconds while it lags; in
//! between, its SOA is asked for every second. Once it serves the target it is asked
//! every sweep. After three NOTIFYs without effect a Warning Event says so, and a Normal
//! one when it catches up.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use hickory_proto::rr::Name;
use zonefleet_api::{SecondariesStatus, SecondaryStatus};
use zonefleet_tsig::Key;
use zonefleet_wire::is_newer;

use crate::zone::ObjectKey;

/// How often a secondary that serves the target is asked for its serial.
pub const SWEEP: Duration = Duration::from_secs(30);
/// How often a lagging secondary is asked for its serial.
pub const LAGGING_PROBE: Duration = Duration::from_secs(1);
/// How soon after a NOTIFY the secondary is asked for its serial.
pub const AFTER_NOTIFY: Duration = Duration::from_millis(300);
/// The longest wait between two NOTIFYs of the same serial.
pub const MAX_RENOTIFY: Duration = Duration::from_secs(60);
/// NOTIFYs without effect before a Warning Event.
pub const LAGGING_AFTER: u32 = 3;

/// One secondary to keep up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryTarget {
    /// Where it listens.
    pub address: SocketAddr,
    /// The key to sign NOTIFYs with.
    pub key: Option<Key>,
}

/// A zone's secondaries and what they should serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSecondaries {
    /// The Zone.
    pub zone: ObjectKey,
    /// Its apex.
    pub origin: Name,
    /// Its external secondaries.
    pub secondaries: Vec<SecondaryTarget>,
    /// The serial every ready DNS pod serves, once they do.
    pub target: Option<u32>,
}

/// Something to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send a NOTIFY.
    Notify {
        /// The Zone.
        zone: ObjectKey,
        /// Its apex.
        origin: Name,
        /// The secondary.
        address: SocketAddr,
        /// The key to sign with.
        key: Option<Key>,
    },
    /// Ask for the SOA serial.
    Probe {
        /// The Zone.
        zone: ObjectKey,
        /// Its apex.
        origin: Name,
        /// The secondary.
        address: SocketAddr,
    },
}

/// What a command found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The NOTIFY was acknowledged, or why not.
    Notified(Result<(), String>),
    /// The serial it serves, or why it did not say.
    Probed(Result<u32, String>),
}

/// What the tracker tells the Zone controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// A zone's secondaries changed: keep the status and reconcile the Zone.
    Status {
        /// The Zone.
        zone: ObjectKey,
        /// What its secondaries serve.
        status: SecondariesStatus,
    },
    /// An Event about the Zone.
    Event {
        /// The Zone.
        zone: ObjectKey,
        /// True for a Warning.
        warning: bool,
        /// `SecondaryLagging` or `SecondarySynced`.
        reason: &'static str,
        /// For people.
        note: String,
    },
}

#[derive(Debug)]
struct Tracked {
    target: SecondaryTarget,
    serial: Option<u32>,
    error: Option<String>,
    /// NOTIFYs sent for the current target.
    notifies: u32,
    next_notify: Option<Instant>,
    next_probe: Instant,
    in_flight: bool,
    lagging_reported: bool,
}

#[derive(Debug)]
struct TrackedZone {
    origin: Name,
    target: Option<u32>,
    secondaries: Vec<Tracked>,
}

/// The state of every tracked zone's secondaries.
#[derive(Debug, Default)]
pub struct Tracker {
    zones: HashMap<ObjectKey, TrackedZone>,
}

impl Tracked {
    fn new(target: SecondaryTarget, now: Instant) -> Self {
        Self {
            target,
            serial: None,
            error: None,
            notifies: 0,
            next_notify: None,
            next_probe: now,
            in_flight: false,
            lagging_reported: false,
        }
    }

    fn synced(&self, target: Option<u32>) -> bool {
        match (self.serial, target) {
            (Some(serial), Some(target)) => serial == target || is_newer(serial, target),
            _ => false,
        }
    }

    fn status(&self, target: Option<u32>) -> SecondaryStatus {
        SecondaryStatus {
            address: self.target.address.to_string(),
            serial: self.serial,
            synced: self.synced(target),
            message: self.error.clone(),
        }
    }
}

impl TrackedZone {
    fn status(&self) -> SecondariesStatus {
        let items: Vec<SecondaryStatus> = self
            .secondaries
            .iter()
            .map(|secondary| secondary.status(self.target))
            .collect();
        let synced = items.iter().filter(|item| item.synced).count();
        SecondariesStatus {
            summary: format!("{synced}/{}", items.len()),
            items,
        }
    }
}

impl Tracker {
    /// Tracks `zone`'s secondaries from now on (a zone with none is dropped). Returns the
    /// report of the new status, if it changed.
    pub fn set(&mut self, zone: ZoneSecondaries, now: Instant) -> Option<Report> {
        if zone.secondaries.is_empty() {
            self.zones.remove(&zone.zone);
            return None;
        }
        let before = self.zones.get(&zone.zone).map(TrackedZone::status);
        let tracked = self
            .zones
            .entry(zone.zone.clone())
            .or_insert_with(|| TrackedZone {
                origin: zone.origin.clone(),
                target: None,
                secondaries: Vec::new(),
            });
        tracked.origin = zone.origin;
        // Keep what is known of secondaries still listed; start the new ones.
        let mut kept: Vec<Tracked> = Vec::with_capacity(zone.secondaries.len());
        for target in zone.secondaries {
            let old = tracked
                .secondaries
                .iter()
                .position(|s| s.target.address == target.address)
                .map(|at| tracked.secondaries.swap_remove(at));
            kept.push(match old {
                Some(mut old) => {
                    old.target = target;
                    old
                }
                None => Tracked::new(target, now),
            });
        }
        tracked.secondaries = kept;
        if zone.target != tracked.target {
            tracked.target = zone.target;
            for secondary in &mut tracked.secondaries {
                secondary.notifies = 0;
                secondary.next_notify =
                    (!secondary.synced(zone.target) && zone.target.is_some()).then_some(now);
            }
        }
        let after = tracked.status();
        (before.as_ref() != Some(&after)).then_some(Report::Status {
            zone: zone.zone,
            status: after,
        })
    }

    /// Stops tracking a zone.
    pub fn remove(&mut self, zone: &ObjectKey) {
        self.zones.remove(zone);
    }

    /// What a zone's secondaries serve, if it has any.
    pub fn status(&self, zone: &ObjectKey) -> Option<SecondariesStatus> {
        self.zones.get(zone).map(TrackedZone::status)
    }

    /// The commands due at `now`; each secondary has at most one in flight.
    pub fn due(&mut self, now: Instant) -> Vec<Command> {
        let mut commands = Vec::new();
        for (key, zone) in &mut self.zones {
            let target = zone.target;
            for secondary in &mut zone.secondaries {
                if secondary.in_flight {
                    continue;
                }
                let notify =
                    !secondary.synced(target) && secondary.next_notify.is_some_and(|at| at <= now);
                let command = if notify {
                    Command::Notify {
                        zone: key.clone(),
                        origin: zone.origin.clone(),
                        address: secondary.target.address,
                        key: secondary.target.key.clone(),
                    }
                } else if secondary.next_probe <= now {
                    Command::Probe {
                        zone: key.clone(),
                        origin: zone.origin.clone(),
                        address: secondary.target.address,
                    }
                } else {
                    continue;
                };
                secondary.in_flight = true;
                commands.push(command);
            }
        }
        commands
    }

    /// The earliest time something may be due, if anything is tracked.
    pub fn next_due(&self) -> Option<Instant> {
        self.zones
            .values()
            .flat_map(|zone| {
                zone.secondaries
                    .iter()
                    .filter(|s| !s.in_flight)
                    .map(|s| match s.next_notify {
                        Some(notify) if !s.synced(zone.target) => notify.min(s.next_probe),
                        _ => s.next_probe,
                    })
            })
            .min()
    }

    /// Takes what a command found; returns what to report.
    pub fn record(
        &mut self,
        zone: &ObjectKey,
        address: SocketAddr,
        outcome: Outcome,
        now: Instant,
    ) -> Vec<Report> {
        let Some(tracked) = self.zones.get_mut(zone) else {
            return Vec::new();
        };
        let before = tracked.status();
        let target = tracked.target;
        let Some(secondary) = tracked
            .secondaries
            .iter_mut()
            .find(|s| s.target.address == address)
        else {
            return Vec::new();
        };
        secondary.in_flight = false;
        let mut reports = Vec::new();
        match outcome {
            Outcome::Notified(result) => {
                secondary.notifies += 1;
                let wait = Duration::from_secs(1 << secondary.notifies.saturating_sub(1).min(6))
                    .min(MAX_RENOTIFY);
                secondary.next_notify = Some(now + wait);
                secondary.next_probe = now + AFTER_NOTIFY;
                if let Err(error) = result {
                    secondary.error = Some(format!("NOTIFY: {error}"));
                }
            }
            Outcome::Probed(result) => {
                match result {
                    Ok(serial) => {
                        secondary.serial = Some(serial);
                        secondary.error = None;
                    }
                    Err(error) => {
                        secondary.serial = None;
                        secondary.error = Some(format!("SOA query: {error}"));
                    }
                }
                let synced = secondary.synced(target);
                secondary.next_probe = now + if synced { SWEEP } else { LAGGING_PROBE };
                if !synced && target.is_some() && secondary.next_notify.is_none() {
                    // Newly listed, or fallen behind: it needs a NOTIFY too.
                    secondary.next_notify = Some(now);
                }
                if synced {
                    secondary.notifies = 0;
                    secondary.next_notify = None;
                    if secondary.lagging_reported {
                        secondary.lagging_reported = false;
                        reports.push(Report::Event {
                            zone: zone.clone(),
                            warning: false,
                            reason: "SecondarySynced",
                            note: format!(
                                "{} serves serial {}",
                                address,
                                secondary.serial.unwrap_or_default()
                            ),
                        });
                    }
                } else if secondary.notifies >= LAGGING_AFTER && !secondary.lagging_reported {
                    secondary.lagging_reported = true;
                    let serving = secondary
                        .serial
                        .map_or_else(|| "nothing".to_owned(), |s| format!("serial {s}"));
                    reports.push(Report::Event {
                        zone: zone.clone(),
                        warning: true,
                        reason: "SecondaryLagging",
                        note: format!(
                            "{address} serves {serving}, the DNS pods serial {}, after {} NOTIFYs{}",
                            target.unwrap_or_default(),
                            secondary.notifies,
                            secondary
                                .error
                                .as_ref()
                                .map(|e| format!(" ({e})"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
        }
        let after = tracked.status();
        if after != before {
            reports.push(Report::Status {
                zone: zone.clone(),
                status: after,
            });
        }
        reports
    }
}

#[cfg(test)]
mod tests;
