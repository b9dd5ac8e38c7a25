//! The operator's command line.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, ValueEnum};

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Reconciles Zone and Record objects (dns.zonefleet.io) and publishes zone versions.
#[derive(Clone, Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    #[arg(
        long,
        env = "ZONEFLEET_METRICS_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_address: SocketAddr,

    /// Log format.
    #[arg(long, env = "ZONEFLEET_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Run without leader election (only ever run one replica this way).
    #[arg(long, env = "ZONEFLEET_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,

    /// The namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// The name of the leader-election Lease.
    #[arg(
        long,
        env = "ZONEFLEET_LEASE_NAME",
        default_value = "zonefleet-operator"
    )]
    pub lease_name: String,

    /// This replica's identity in the Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Seconds a Lease stays valid without renewal; a standby takes over after it expires.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,

    /// Seconds before expiry at which the leader renews.
    #[arg(long, default_value_t = 5)]
    pub lease_grace_seconds: u64,

    /// How many Zones are reconciled at once (and, separately, how many Records).
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,

    /// Seconds between full reconciles of every Zone, whether or not anything changed.
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,

    /// NATS, where zone versions are published. Without a URL, versions are only logged.
    #[command(flatten)]
    pub nats: zonefleet_nats::NatsArgs,

    /// Replicas of the NATS stream and snapshot bucket when the operator creates them.
    #[arg(long, env = "ZONEFLEET_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,

    /// Change events up to this many bytes carry their records; larger changes are
    /// announced, and the pods fetch the snapshot.
    #[arg(long, default_value_t = 256 * 1024)]
    pub nats_inline_limit: usize,
}

impl Args {
    /// This replica's identity: `--identity`, or the host name and process id.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }

    /// The resync period.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds.max(1))
    }
}
