//! Where zone versions go.
//!
//! The controller hands every new zone version to a [`ZonePublisher`], each zone's access
//! document (transfer rules and TSIG keys), and a deleted zone's retraction. [`NatsPublisher`] distributes them over NATS JetStream; [`LogPublisher`]
//! stands in where no distribution is configured.

mod nats;

pub use nats::{NatsPublisher, NatsSettings};

use std::sync::Arc;

use futures::future::BoxFuture;
use zonefleet_nats::ZoneAccess;

use crate::zone::{AssembledZone, ObjectKey};

/// A zone version ready to be published.
#[derive(Clone, Debug)]
pub struct ZoneVersion {
    /// The Zone object.
    pub zone: ObjectKey,
    /// Its serial.
    pub serial: u32,
    /// The serial it replaces, if any.
    pub previous_serial: Option<u32>,
    /// The content.
    pub content: Arc<AssembledZone>,
}

/// A failed publish: what was being done, and the error that stopped it (kept as the
/// source, so logs and the `PublishFailed` condition can show the whole chain).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct PublishError {
    /// What was being done.
    pub what: String,
    /// Why it failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl PublishError {
    /// A failure of `what`, caused by `source`.
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// What a [`ZonePublisher`] returns: a boxed future of the result (a trait object cannot
/// have `async fn`s).
pub type Publishing<'a, T = ()> = BoxFuture<'a, Result<T, PublishError>>;

/// Publishes zone versions, access documents and retractions. All must be idempotent: a
/// reconcile may repeat.
pub trait ZonePublisher: Send + Sync {
    /// Publishes a new version of a zone.
    fn publish<'a>(&'a self, version: &'a ZoneVersion) -> Publishing<'a>;
    /// Makes sure the distribution holds `version`, which an earlier run published (NATS
    /// may have lost it since, or this process may not have published it). Publishes it
    /// again if it is missing or different; cheap when it is there.
    fn ensure<'a>(&'a self, version: &'a ZoneVersion) -> Publishing<'a> {
        let _ = version;
        Box::pin(async { Ok(()) })
    }
    /// The version the distribution holds for `domain` (serial and digest in hex), if any:
    /// a Zone taking over a domain continues from it, so the serial never goes backwards.
    fn current<'a>(&'a self, domain: &'a str) -> Publishing<'a, Option<(u32, String)>> {
        let _ = domain;
        Box::pin(async { Ok(None) })
    }
    /// Publishes a zone's access document (its transfer rules and TSIG keys), if the
    /// distribution does not hold this very document already; cheap when it does. The
    /// default only logs it.
    fn publish_access<'a>(&'a self, access: &'a ZoneAccess) -> Publishing<'a> {
        Box::pin(async move {
            tracing::debug!(
                zone = %access.origin, rules = access.transfer.len(), keys = access.keys.len(),
                "access document ready (no distribution configured)"
            );
            Ok(())
        })
    }
    /// Publishes that a zone is gone (its access document goes too).
    fn retract<'a>(&'a self, zone: &'a ObjectKey, domain: &'a str) -> Publishing<'a>;
}

/// Logs each version and retraction: the stand-in when no distribution is configured.
#[derive(Debug, Default)]
pub struct LogPublisher;

impl ZonePublisher for LogPublisher {
    fn publish<'a>(&'a self, version: &'a ZoneVersion) -> Publishing<'a> {
        Box::pin(async move {
            tracing::info!(
                zone = %version.zone, domain = %version.content.origin, serial = version.serial,
                records = version.content.record_count, "zone version ready (no distribution configured)"
            );
            Ok(())
        })
    }

    fn retract<'a>(&'a self, zone: &'a ObjectKey, domain: &'a str) -> Publishing<'a> {
        Box::pin(async move {
            tracing::info!(%zone, domain, "zone retracted (no distribution configured)");
            Ok(())
        })
    }
}
