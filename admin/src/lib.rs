//! The admin HTTP endpoints the operator and the DNS pods serve on a port of their own:
//!
//! - `/metrics`: the registry in the OpenMetrics text format;
//! - `/healthz`: `200 ok` while the process serves HTTP at all;
//! - `/readyz`: `200 ok` once the [`Readiness`] handle is set ready, `503` before (with the
//!   reason the binary gave) and while draining (`shutting down`).
//!
//! [`router`] builds them, a binary merges its own routes into it (the DNS pod's `/zones`
//! and `/refused`), and [`bind`] serves the result.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use prometheus_client::{encoding::text::encode, registry::Registry};

#[cfg(feature = "testing")]
pub mod testing;

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether the process is ready, as `/readyz` reports it; clones share the state.
#[derive(Clone, Debug)]
pub struct Readiness {
    state: Arc<ReadinessState>,
}

#[derive(Debug)]
struct ReadinessState {
    ready: AtomicBool,
    draining: AtomicBool,
    waiting: &'static str,
}

impl Readiness {
    /// Not ready yet: `/readyz` answers `503 <waiting>` until [`Readiness::set_ready`].
    pub fn new(waiting: &'static str) -> Self {
        Self {
            state: Arc::new(ReadinessState {
                ready: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                waiting,
            }),
        }
    }

    /// Ready from now on; `true` if it was not ready before.
    pub fn set_ready(&self) -> bool {
        !self.state.ready.swap(true, Ordering::SeqCst)
    }

    /// Whether it was set ready.
    pub fn is_ready(&self) -> bool {
        self.state.ready.load(Ordering::SeqCst)
    }

    /// Shutting down: the process still works, but `/readyz` answers `503 shutting down` so
    /// that it is taken out of its Service.
    pub fn drain(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// What `/readyz` answers now.
    fn status(&self) -> (StatusCode, &'static str) {
        if self.state.draining.load(Ordering::SeqCst) {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        } else if self.is_ready() {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, self.state.waiting)
        }
    }
}

#[derive(Clone, Debug)]
struct Endpoints {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(registry: Arc<Registry>, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Endpoints {
            registry,
            readiness,
        })
}

/// Binds `address`; returns the bound address and the future that serves `router` on it.
pub async fn bind(
    address: SocketAddr,
    router: Router,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((bound, async move { axum::serve(listener, router).await }))
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, &endpoints.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string(),
        ),
    }
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    endpoints.readiness.status()
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    async fn fetch(address: SocketAddr, path: &str) -> (u16, String, String) {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness_and_merged_routes() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("answers", "Answers", counter.clone());
        counter.inc();
        let readiness = Readiness::new("waiting for the initial sync");
        let app = router(Arc::new(registry), readiness.clone())
            .merge(Router::new().route("/zones", get(|| async { "[]" })));
        let (address, serving) = bind(([127, 0, 0, 1], 0).into(), app).await.unwrap();
        let server = tokio::spawn(serving);

        let plain = "text/plain; charset=utf-8";
        let (status, content_type, body) = fetch(address, "/metrics").await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, OPENMETRICS_CONTENT_TYPE)
        );
        assert!(body.contains("answers_total 1"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(
            fetch(address, "/healthz").await,
            (200, plain.into(), "ok".into())
        );
        assert_eq!(
            fetch(address, "/readyz").await,
            (503, plain.into(), "waiting for the initial sync".into())
        );
        assert!(readiness.set_ready());
        assert!(!readiness.set_ready());
        assert_eq!(
            fetch(address, "/readyz").await,
            (200, plain.into(), "ok".into())
        );
        readiness.drain();
        assert!(readiness.is_ready());
        assert_eq!(
            fetch(address, "/readyz").await,
            (503, plain.into(), "shutting down".into())
        );
        assert_eq!(fetch(address, "/zones").await.2, "[]");
        assert_eq!(fetch(address, "/nothing").await.0, 404);
        server.abort();
    }
}
