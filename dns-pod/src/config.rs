//! The command line.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};
use ipnet::IpNet;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// An authoritative DNS server for Zonefleet zones.
///
/// With `--zones-dir` it serves master files and needs nothing else (static mode);
/// otherwise it builds its zones from NATS JetStream.
#[derive(Clone, Debug, Parser)]
#[command(name = "zonefleet-dns-pod", version)]
pub struct Config {
    /// Static mode: serve every `DIR/<origin>.zone` (RFC 1035 master files) without NATS.
    #[arg(long, value_name = "DIR")]
    pub zones_dir: Option<PathBuf>,

    /// The DNS address, for UDP and TCP.
    #[arg(long, env = "ZONEFLEET_DNS_LISTEN", default_value = "0.0.0.0:5353")]
    pub listen: SocketAddr,

    /// The admin HTTP address: /metrics, /healthz, /readyz, /zones.
    #[arg(long, env = "ZONEFLEET_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    pub admin_address: SocketAddr,

    /// The most TCP connections open at once; more are closed on accept.
    #[arg(long, default_value_t = 256)]
    pub tcp_max_connections: usize,

    /// UDP worker threads, each with its own socket on the listen address (0: one per CPU
    /// the process may use).
    #[arg(long, env = "ZONEFLEET_UDP_WORKERS", default_value_t = 0)]
    pub udp_workers: usize,

    /// Seconds a TCP connection may stay idle.
    #[arg(long, default_value_t = 10)]
    pub tcp_idle_timeout_seconds: u64,

    /// A network allowed to transfer zones (AXFR over TCP); repeat for more. Transfers are
    /// refused to everyone else, and to everyone by default.
    #[arg(long = "allow-transfer", value_name = "CIDR")]
    pub allow_transfer: Vec<IpNet>,

    /// On SIGTERM, keep answering this many seconds with /readyz failing, so the pod leaves
    /// the Service's endpoints before it stops (Kubernetes removes it and signals it at the
    /// same time).
    #[arg(long, env = "ZONEFLEET_SHUTDOWN_DELAY_SECONDS", default_value_t = 0)]
    pub shutdown_delay_seconds: u64,

    /// Log line format.
    #[arg(long, env = "ZONEFLEET_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// This pod's name: its re-sync subject is `<prefix>.pod.<name>.resync`.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// Keep the served zones in this directory (e.g. an emptyDir), and serve them at once
    /// after a restart, before NATS answers.
    #[arg(long, env = "ZONEFLEET_SNAPSHOT_DIR", value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,

    /// NATS, where the zones come from (unless --zones-dir).
    #[command(flatten)]
    pub nats: zonefleet_nats::NatsArgs,
}

impl Config {
    /// This pod's name: `--pod-name`, or the host name.
    pub fn pod_name(&self) -> String {
        self.pod_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "dns-pod".into())
        })
    }

    /// How long to keep answering after SIGTERM.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_seconds)
    }

    /// The idle timeout of a TCP connection (at least a second).
    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tcp_idle_timeout_seconds.max(1))
    }
}
