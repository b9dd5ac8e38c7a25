//! Wiring: the zone store, the listeners, the admin endpoints, and the source of zones.

use std::sync::{Arc, atomic::AtomicBool};

use anyhow::Context;
use prometheus_client::registry::Registry;
use tracing::{error, info};

use crate::{
    admin::{self, AdminState},
    config::{Config, LogFormat},
    metrics::{DnsMetrics, SyncMetrics},
    serve::{DnsListeners, QueryHandler, TcpLimits, TransferAcl},
    zone_files,
    zones::{ServedZone, ZoneStore},
};

/// Sets up logging: `RUST_LOG` filters (default `info`, hickory's per-query lines off).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs the pod until a listener fails or the process is signalled.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let dns_metrics = Arc::new(DnsMetrics::register(&mut registry));
    let sync_metrics = Arc::new(SyncMetrics::register(&mut registry));
    let zones = Arc::new(ZoneStore::new());
    let ready = Arc::new(AtomicBool::new(false));

    let listeners = DnsListeners::bind(config.listen)
        .await
        .with_context(|| format!("cannot bind DNS on {}", config.listen))?;
    let (admin_address, admin) = admin::bind(
        config.admin_address,
        AdminState {
            registry: Arc::new(registry),
            ready: Arc::clone(&ready),
            zones: Arc::clone(&zones),
        },
    )
    .await
    .with_context(|| format!("cannot bind the admin port on {}", config.admin_address))?;
    info!(address = %admin_address, "serving /metrics, /healthz, /readyz and /zones");

    let Some(dir) = &config.zones_dir else {
        anyhow::bail!("no source of zones: pass --zones-dir");
    };
    let snapshots = zone_files::read_dir(dir)?;
    let mut served = Vec::with_capacity(snapshots.len());
    for snapshot in snapshots {
        let origin = snapshot.origin.to_string();
        let zone = ServedZone::from_snapshot(snapshot)
            .with_context(|| format!("cannot serve the zone {origin}"))?;
        sync_metrics.served(&origin, zone.serial());
        info!(zone = %origin, serial = zone.serial(), records = zone.index.record_count(), "zone loaded");
        served.push(zone);
    }
    sync_metrics
        .zones
        .set(i64::try_from(served.len()).unwrap_or(i64::MAX));
    zones.replace_all(served);
    ready.store(true, std::sync::atomic::Ordering::SeqCst);

    let handler = QueryHandler::new(
        Arc::clone(&zones),
        TransferAcl::new(config.allow_transfer.clone()),
        Arc::clone(&dns_metrics),
    );
    let limits = TcpLimits {
        max_connections: config.tcp_max_connections,
        idle_timeout: config.tcp_idle_timeout(),
    };
    tokio::select! {
        result = listeners.serve(handler, limits, dns_metrics) => result,
        result = admin => result.context("admin endpoint failed"),
        () = shutdown_signal() => {
            info!("shutting down");
            Ok(())
        }
    }
    .inspect_err(|e| error!(error = %e, "stopping"))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
