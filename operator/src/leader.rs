//! Leader election with a coordination.k8s.io Lease.
//!
//! Only the leader reconciles and publishes. A Lease gives no fencing on its own: the
//! reconcilers check [`Context::ensure_leading`](crate::controller::Context::ensure_leading)
//! before each write, and a status that records a new serial is written with the Zone's
//! resourceVersion as a precondition.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

/// Where the Lease lives and how long it lasts.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity.
    pub identity: String,
    /// Validity without renewal, in seconds.
    pub duration_seconds: u64,
    /// Renewal margin before expiry, in seconds.
    pub grace_seconds: u64,
}

/// A running election: `leading` says whether this replica holds the Lease.
#[derive(Debug)]
pub struct Election {
    /// True while this replica leads.
    pub leading: watch::Receiver<bool>,
    /// The task that keeps acquiring and renewing the Lease.
    pub task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Starts taking part in the election.
pub async fn elect(
    client: Client,
    settings: &LeaseSettings,
) -> Result<Election, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration_seconds)
        .with_grace(settings.grace_seconds)
        .build()
        .await?;
    let (leading, task) = manager.watch().await;
    Ok(Election { leading, task })
}
