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

    /// Fleet health: the DNS Service whose EndpointSlices list the DNS pods.
    #[arg(long, env = "ZONEFLEET_DNS_SERVICE", default_value = "zonefleet-dns")]
    pub dns_service: String,

    /// The DNS Service's namespace (default: the operator's own, `--lease-namespace`).
    #[arg(long, env = "ZONEFLEET_DNS_SERVICE_NAMESPACE")]
    pub dns_service_namespace: Option<String>,

    /// The name of the DNS port in the Service.
    #[arg(long, env = "ZONEFLEET_DNS_PORT_NAME", default_value = "dns")]
    pub dns_port_name: String,

    /// The name of the pods' admin port (`/zones`) in the Service.
    #[arg(long, env = "ZONEFLEET_ADMIN_PORT_NAME", default_value = "admin")]
    pub admin_port_name: String,

    /// Seconds between full checks of every pod and zone.
    #[arg(long, env = "ZONEFLEET_SWEEP_SECONDS", default_value_t = 30)]
    pub sweep_seconds: u64,

    /// Milliseconds after a publish by which every pod should serve it; pods that do not
    /// are re-synced.
    #[arg(long, default_value_t = 2000)]
    pub publish_deadline_ms: u64,

    /// Pod checks in flight at once.
    #[arg(long, default_value_t = 256)]
    pub check_concurrency: usize,

    /// Milliseconds to wait for a pod's answer.
    #[arg(long, default_value_t = 1000)]
    pub check_timeout_ms: u64,

    /// Re-syncs of a pod before its zone is reported Degraded (retries go on, slowly).
    #[arg(long, env = "ZONEFLEET_RESYNC_ATTEMPTS", default_value_t = 5)]
    pub resync_attempts: u32,

    /// Milliseconds before the second re-sync; each further wait doubles, up to
    /// `--resync-max-backoff-seconds`.
    #[arg(long, default_value_t = 500)]
    pub resync_backoff_ms: u64,

    /// The slow pace of re-syncs, in seconds.
    #[arg(long, default_value_t = 60)]
    pub resync_max_backoff_seconds: u64,

    /// Do not check the DNS pods.
    #[arg(long, env = "ZONEFLEET_NO_FLEET_HEALTH")]
    pub no_fleet_health: bool,
}

impl Args {
    /// This replica's identity: `--identity`, or the host name and process id.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }

    /// The fleet health settings.
    pub fn fleet(&self, layout: zonefleet_nats::Layout) -> crate::fleet::FleetSettings {
        crate::fleet::FleetSettings {
            service_namespace: self
                .dns_service_namespace
                .clone()
                .unwrap_or_else(|| self.lease_namespace.clone()),
            service_name: self.dns_service.clone(),
            ports: crate::fleet::PortNames {
                dns: self.dns_port_name.clone(),
                admin: self.admin_port_name.clone(),
            },
            sweep: Duration::from_secs(self.sweep_seconds.max(1)),
            publish_deadline: Duration::from_millis(self.publish_deadline_ms),
            concurrency: self.check_concurrency.max(1),
            query_timeout: Duration::from_millis(self.check_timeout_ms.max(10)),
            backoff: crate::fleet::Backoff {
                first: Duration::from_millis(self.resync_backoff_ms.max(10)),
                max: Duration::from_secs(self.resync_max_backoff_seconds.max(1)),
                attempts_before_degraded: self.resync_attempts.max(1),
            },
            layout,
        }
    }

    /// The resync period.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds.max(1))
    }
}
