//! Wiring: the zone store, the listeners, the admin endpoints, and the source of zones.

use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tracing::{error, info};

use zonefleet_wire::Snapshot;

use crate::{
    access::AccessStore,
    admin::{self, AdminState, Readiness},
    authority::BuildError,
    config::{Config, LogFormat},
    local_snapshot::{self, LocalSnapshot},
    metrics::{DnsMetrics, SyncMetrics},
    serve::{DnsListeners, QueryHandler, TcpLimits, TransferAcl},
    sync::{self, AccessFollower, Follower, RefusalBook},
    zone_files,
    zones::{ServedZone, ZoneStore},
};

/// Sets up logging: `RUST_LOG` filters (default `info`); hickory-server's per-query lines
/// stay off unless `RUST_LOG` names hickory.
pub fn init_logging(format: LogFormat) {
    let wanted = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    // hickory-server logs every query at info: keep that off unless asked for by name.
    let directives = if wanted.contains("hickory") {
        wanted
    } else {
        format!("{wanted},hickory_server=warn")
    };
    let filter = tracing_subscriber::EnvFilter::new(directives);
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
    registry.register(
        "zonefleet_dns_precompute_pending",
        "Zone versions served whose answers are still being precomputed (index lookups answer them meanwhile)",
        zones.precompute_pending().clone(),
    );
    let readiness = Readiness::new(admin::WAITING);
    let refusals = Arc::new(RefusalBook::new());

    let listeners = DnsListeners::bind(config.listen, config.udp_workers)
        .await
        .with_context(|| format!("cannot bind DNS on {}", config.listen))?;
    let (admin_address, admin) = admin::bind(
        config.admin_address,
        AdminState {
            registry: Arc::new(registry),
            readiness: readiness.clone(),
            zones: Arc::clone(&zones),
            refusals: Arc::clone(&refusals),
        },
    )
    .await
    .with_context(|| format!("cannot bind the admin port on {}", config.admin_address))?;
    info!(address = %admin_address, "serving /metrics, /healthz, /readyz, /zones and /refused");

    let follower = match &config.zones_dir {
        Some(dir) => {
            serve_zone_files(dir, &zones, &sync_metrics)?;
            readiness.set_ready();
            None
        }
        None => Some(start_follower(&config, &zones, &sync_metrics, &readiness, refusals).await?),
    };
    let access = Arc::new(AccessStore::default());
    let access_follower = follower.as_ref().map(|follower| AccessFollower {
        client: follower.client.clone(),
        layout: follower.layout.clone(),
        key: follower.key.clone(),
        store: Arc::clone(&access),
        metrics: Arc::clone(&sync_metrics),
    });
    let follow = async move {
        match (follower, access_follower) {
            (Some(follower), Some(access)) => {
                tokio::join!(follower.run(), access.run());
            }
            _ => std::future::pending().await,
        }
    };

    let handler = QueryHandler::new(
        Arc::clone(&zones),
        access,
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
        () = follow => Ok(()),
        () = drain_on_signal(&readiness, config.shutdown_delay()) => {
            info!("shutting down");
            Ok(())
        }
    }
    .inspect_err(|e| error!(error = %e, "stopping"))
}

/// Static mode: serves every zone file of `dir`.
fn serve_zone_files(
    dir: &std::path::Path,
    zones: &ZoneStore,
    metrics: &SyncMetrics,
) -> anyhow::Result<()> {
    let (served, failed) = index_all(zone_files::read_dir(dir)?);
    if let Some((origin, error)) = failed.into_iter().next() {
        anyhow::bail!("cannot serve the zone {origin}: {error}");
    }
    for zone in &served {
        info!(zone = %zone.origin(), serial = zone.serial(), records = zone.index.record_count(), "zone loaded");
    }
    install_all(served, zones, metrics);
    Ok(())
}

/// Indexes snapshots; returns the zones, and the apex and error of those that cannot be
/// served.
fn index_all(snapshots: Vec<Snapshot>) -> (Vec<ServedZone>, Vec<(String, BuildError)>) {
    let mut served = Vec::with_capacity(snapshots.len());
    let mut failed = Vec::new();
    for snapshot in snapshots {
        let origin = snapshot.origin.to_string();
        match ServedZone::from_snapshot(snapshot) {
            Ok(zone) => served.push(zone),
            Err(error) => failed.push((origin, error)),
        }
    }
    (served, failed)
}

/// Serves exactly `served`, and says so in the metrics.
fn install_all(served: Vec<ServedZone>, zones: &ZoneStore, metrics: &SyncMetrics) {
    for zone in &served {
        metrics.served(&zone.origin().to_string(), zone.serial());
    }
    metrics.zone_count(served.len());
    zones.replace_all(served);
}

/// NATS mode: serves the local snapshot if there is one, and returns the follower that
/// syncs from NATS.
async fn start_follower(
    config: &Config,
    zones: &Arc<ZoneStore>,
    metrics: &Arc<SyncMetrics>,
    readiness: &Readiness,
    refusals: Arc<RefusalBook>,
) -> anyhow::Result<Follower> {
    let layout = config.nats.layout()?;
    let local = match &config.snapshot_dir {
        Some(dir) => {
            let started = std::time::Instant::now();
            let served = local_snapshot::load(dir);
            if !served.is_empty() {
                info!(zones = served.len(), took = ?started.elapsed(), "serving the local snapshot");
                install_all(served, zones, metrics);
                readiness.set_ready();
            }
            Some(
                LocalSnapshot::start(dir.clone()).with_context(|| {
                    format!("cannot use {} for the local snapshot", dir.display())
                })?,
            )
        }
        None => None,
    };
    let connected = Arc::new(Notify::new());
    let pod = config.pod_name();
    let client = config
        .nats
        .connect(
            &format!("zonefleet-dns-pod {pod}"),
            sync::on_connection_event(Arc::clone(metrics), Arc::clone(&connected)),
        )
        .await?;
    info!(prefix = layout.prefix(), %pod, resync = layout.resync_subject(&pod), "following NATS");
    Ok(Follower {
        client,
        layout,
        pod,
        zones: Arc::clone(zones),
        metrics: Arc::clone(metrics),
        local,
        readiness: readiness.clone(),
        connected,
        key: config.nats.message_key()?,
        refusals,
    })
}

/// Resolves `delay` after SIGTERM or SIGINT; meanwhile /readyz fails and queries are still
/// answered (the listeners run until this resolves).
async fn drain_on_signal(readiness: &Readiness, delay: std::time::Duration) {
    shutdown_signal().await;
    if !delay.is_zero() {
        readiness.drain();
        info!(
            seconds = delay.as_secs(),
            "signalled: still answering while leaving the Service"
        );
        tokio::time::sleep(delay).await;
    }
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
