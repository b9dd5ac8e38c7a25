//! The operator binary: a thin entry point over the `zonefleet_operator` library.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use prometheus_client::registry::Registry;
use zonefleet_operator::{
    config::{Args, LogFormat},
    controller::{self, ControllerSettings, FleetHealth},
    leader::{self, LeaseSettings},
    metrics::Metrics,
    publish::{LogPublisher, NatsPublisher, NatsSettings, ZonePublisher},
    server::{self, Readiness},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let readiness = Readiness::new(server::STARTING);
    let address = args.metrics_address;
    let registry = Arc::new(registry);
    let serving = readiness.clone();
    tokio::spawn(async move {
        if let Err(e) = server::serve(address, registry, serving).await {
            tracing::error!(%address, error = %e, "the metrics server failed");
            std::process::exit(1);
        }
    });

    let identity = args.identity();
    let (mut leading, election) = if args.no_leader_election {
        let (tx, rx) = tokio::sync::watch::channel(true);
        (rx, Election::Disabled(tx))
    } else {
        let settings = LeaseSettings {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration_seconds: args.lease_duration_seconds,
            grace_seconds: args.lease_grace_seconds,
        };
        let election = leader::elect(client.clone(), &settings)
            .await
            .context("starting leader election")?;
        tracing::info!(lease = %format!("{}/{}", settings.namespace, settings.name), %identity, "waiting to lead");
        (election.leading, Election::Lease(election.task))
    };
    readiness.set_ready();

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        led = leading.wait_for(|leading| *leading) => { led.context("leader election stopped")?; }
        _ = terminate.recv() => return Ok(()),
        _ = tokio::signal::ctrl_c() => return Ok(()),
    }
    tracing::info!(%identity, "leading: starting the controllers");
    let (publisher, fleet): (Arc<dyn ZonePublisher>, _) = match &args.nats.url {
        None => {
            tracing::warn!(
                "no NATS URL: zone versions are logged, not distributed, and DNS pods are not checked"
            );
            (Arc::new(LogPublisher), None)
        }
        Some(url) => {
            let layout = args.nats.layout()?;
            let nats = args
                .nats
                .connect(&identity, |event| async move {
                    tracing::info!(%event, "NATS");
                })
                .await?;
            tracing::info!(%url, prefix = layout.prefix(), "connected to NATS");
            let settings = NatsSettings {
                replicas: args.nats_replicas,
                inline_limit: args.nats_inline_limit,
                key: args.nats.message_key()?,
                ..NatsSettings::default()
            };
            // NATS may be down at start: keep trying, as the reconciles would.
            let publisher = loop {
                match NatsPublisher::open(nats.clone(), layout.clone(), settings.clone()).await {
                    Ok(publisher) => break Arc::new(publisher),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the NATS stream and bucket; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                }
            };
            let fleet = (!args.no_fleet_health).then(|| FleetHealth {
                settings: args.fleet(layout.clone()),
                nats: nats.clone(),
            });
            (publisher, fleet)
        }
    };
    let settings = ControllerSettings {
        reporter: "zonefleet-operator".into(),
        instance: Some(identity.clone()),
        resync: args.resync(),
        concurrency: args.concurrency,
        fleet,
    };
    let controllers = tokio::spawn(controller::run(
        client,
        publisher,
        metrics,
        leading.clone(),
        settings,
    ));
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        lost = leading.wait_for(|leading| !*leading) => {
            // Exit at once: a deposed leader must stop writing, and a restart makes it a standby.
            tracing::error!(%identity, ok = lost.is_ok(), "lost leadership; exiting");
            std::process::exit(1);
        }
    }
    // Reconciles are idempotent and level-based, so stopping them mid-way is safe. Once the
    // controllers (and their copies of the channel) are gone, the election releases the
    // Lease, and a standby takes over at once instead of after the Lease expires.
    controllers.abort();
    let _ = controllers.await;
    drop(leading);
    if let Election::Lease(task) = election {
        match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader Lease"),
            _ => tracing::warn!("could not release the leader Lease; it expires on its own"),
        }
    }
    Ok(())
}

/// How leadership is held.
enum Election {
    /// `--no-leader-election`: always leading; the sender keeps the channel open.
    Disabled(#[allow(dead_code)] tokio::sync::watch::Sender<bool>),
    /// A Lease, kept by this task.
    Lease(
        tokio::task::JoinHandle<
            Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
        >,
    ),
}
