//! The admin HTTP endpoints, on their own port: `zonefleet_admin`'s `/metrics`, `/healthz`
//! and `/readyz` (ready once the initial sync or a local snapshot is loaded, failing while
//! draining), and the pod's own `/zones` (what is served) and `/refused` (the last version
//! of each zone that could not be served).

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, routing::get};
use prometheus_client::registry::Registry;
pub use zonefleet_admin::Readiness;
use zonefleet_nats::RefusedVersion;

use crate::{
    sync::RefusalBook,
    zones::{ZoneStore, ZoneSummary},
};

/// What `/readyz` says until there is something worth serving.
pub const WAITING: &str = "waiting for the initial sync";

/// What the endpoints report.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The metrics.
    pub registry: Arc<Registry>,
    /// Ready once there is something worth serving; draining when the pod is shutting down
    /// (it still answers, but asks to be taken out of the Service).
    pub readiness: Readiness,
    /// The served zones.
    pub zones: Arc<ZoneStore>,
    /// The refused versions.
    pub refusals: Arc<RefusalBook>,
}

/// Binds the admin address; returns the bound address and the serving future.
pub async fn bind(
    address: SocketAddr,
    state: AdminState,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let own = Router::new()
        .route("/zones", get(zones))
        .route("/refused", get(refused))
        .with_state(state.clone());
    let app = zonefleet_admin::router(state.registry, state.readiness).merge(own);
    zonefleet_admin::bind(address, app).await
}

async fn zones(State(state): State<AdminState>) -> Json<Vec<ZoneSummary>> {
    Json(state.zones.load().summaries())
}

async fn refused(State(state): State<AdminState>) -> Json<Vec<RefusedVersion>> {
    Json(state.refusals.snapshot().all())
}
