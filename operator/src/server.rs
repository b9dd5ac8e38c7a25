//! `/metrics`, `/healthz` and `/readyz`, as `zonefleet_admin` serves them; `/readyz` answers
//! `503 starting` until the operator has started (as leader or standby).

use std::{net::SocketAddr, sync::Arc};

use prometheus_client::registry::Registry;
pub use zonefleet_admin::Readiness;

/// What `/readyz` says until the operator has started.
pub const STARTING: &str = "starting";

/// Serves until the process ends.
pub async fn serve(
    address: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
) -> std::io::Result<()> {
    let (bound, serving) =
        zonefleet_admin::bind(address, zonefleet_admin::router(registry, readiness)).await?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    serving.await
}
