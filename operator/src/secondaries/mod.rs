//! External secondaries (`spec.transfer.secondaries`): once every ready DNS pod serves a
//! new version, each secondary gets a NOTIFY (RFC 1996), again with backoff until its SOA
//! shows the serial; the serial each serves goes into the Zone's `status.secondaries`, with
//! Events when one lags and when it catches up.
//!
//! Like the fleet checker it runs on the leader only, and its decisions are pure:
//! [`tracker`] is the state machine, [`wire`] speaks DNS to a secondary, [`task`] runs
//! them. The Zone controller feeds it [`Update`]s and implements [`SecondariesHost`].

pub mod task;
pub mod tracker;
pub mod wire;

pub use task::run;
pub use tracker::{Command, Outcome, Report, SecondaryTarget, Tracker, ZoneSecondaries};

use std::net::{IpAddr, SocketAddr};

use crate::zone::{ObjectKey, access::key_name};
use zonefleet_api::ZoneSpec;
use zonefleet_nats::ZoneAccess;

/// The secondaries of `spec`, each with the key it names from `access` (the zone's access
/// document, whose step checked that addresses parse and keys exist).
pub fn targets(spec: &ZoneSpec, access: &ZoneAccess) -> Vec<SecondaryTarget> {
    let listed = spec
        .transfer
        .as_ref()
        .map(|t| t.secondaries.as_slice())
        .unwrap_or_default();
    listed
        .iter()
        .filter_map(|secondary| {
            let ip: IpAddr = secondary.address.parse().ok()?;
            let key = secondary.tsig_key.as_ref().and_then(|written| {
                let name = key_name(written);
                let key = access.keys.iter().find(|key| key.name == name)?;
                key.tsig_key().ok()
            });
            Some(SecondaryTarget {
                address: SocketAddr::new(ip, secondary.port),
                key,
            })
        })
        .collect()
}

/// What the Zone controller tells the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// A zone's secondaries and the serial they should serve (a zone with none is
    /// dropped).
    Set(ZoneSecondaries),
    /// A Zone is gone.
    Remove(ObjectKey),
}

/// The Zone controller's side of the task.
pub trait SecondariesHost: Send + Sync + 'static {
    /// Takes a report. Called from the task; it must not block.
    fn report(&self, report: Report);
}
