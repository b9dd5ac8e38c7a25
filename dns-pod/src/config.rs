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

    /// Seconds a TCP connection may stay idle.
    #[arg(long, default_value_t = 10)]
    pub tcp_idle_timeout_seconds: u64,

    /// A network allowed to transfer zones (AXFR over TCP); repeat for more. Transfers are
    /// refused to everyone else, and to everyone by default.
    #[arg(long = "allow-transfer", value_name = "CIDR")]
    pub allow_transfer: Vec<IpNet>,

    /// Log line format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// The TCP idle timeout.
    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tcp_idle_timeout_seconds.max(1))
    }
}
