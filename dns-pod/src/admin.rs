//! The admin HTTP endpoints, on their own port: `/metrics`, `/healthz`, `/readyz` (ready
//! once the initial sync or a local snapshot is loaded), `/zones` (what is served) and
//! `/refused` (the last version of each zone that could not be served).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use prometheus_client::{encoding::text::encode, registry::Registry};

use zonefleet_nats::RefusedVersion;

use crate::{
    sync::RefusalBook,
    zones::{ZoneStore, ZoneSummary},
};

/// What the endpoints report.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The metrics.
    pub registry: Arc<Registry>,
    /// Set once there is something worth serving.
    pub ready: Arc<AtomicBool>,
    /// Set when the pod is shutting down: it still answers, but asks to be taken out of
    /// the Service.
    pub draining: Arc<AtomicBool>,
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
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/zones", get(zones))
        .route("/refused", get(refused))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((bound, async move { axum::serve(listener, app).await }))
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string(),
        ),
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the initial sync",
        )
    }
}

async fn zones(State(state): State<AdminState>) -> Json<Vec<ZoneSummary>> {
    Json(state.zones.load().summaries())
}

async fn refused(State(state): State<AdminState>) -> Json<Vec<RefusedVersion>> {
    Json(state.refusals.snapshot().all())
}
