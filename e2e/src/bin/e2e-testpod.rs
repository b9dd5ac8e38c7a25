//! A tiny server the harness tests run as a Pod.
//!
//! - `GET /` names the Pod it runs as (`<namespace>/<name> <ip>`);
//! - `GET /readyz` answers 200 while it is ready and 503 while not;
//! - `POST /ready` and `POST /unready` switch that, so tests drive readiness exactly.
//!
//! It starts ready unless `START_UNREADY` is set, and listens on `0.0.0.0:$PORT` (8080).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let ready = Arc::new(AtomicBool::new(std::env::var_os("START_UNREADY").is_none()));
    let identity = format!(
        "{}/{} {}",
        std::env::var("POD_NAMESPACE").unwrap_or_default(),
        std::env::var("POD_NAME").unwrap_or_default(),
        std::env::var("POD_IP").unwrap_or_default(),
    );
    let (r1, r2, r3) = (ready.clone(), ready.clone(), ready);
    let app = Router::new()
        .route("/", get(move || async move { identity }))
        .route(
            "/readyz",
            get(move || async move {
                if r1.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .route(
            "/ready",
            post(move || async move { r2.store(true, Ordering::SeqCst) }),
        )
        .route(
            "/unready",
            post(move || async move { r3.store(false, Ordering::SeqCst) }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    eprintln!("e2e-testpod listening on {}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            term.recv().await;
            eprintln!("e2e-testpod: SIGTERM, shutting down");
        })
        .await?;
    Ok(())
}
