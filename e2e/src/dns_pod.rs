//! A dns-pod run directly as a child process (not through the kubelet), on loopback, for
//! tests that need only NATS.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::{
    harness::{free_port, spawn_logged},
    http,
    operator::built_binary,
};

/// A running `zonefleet-dns-pod`.
#[derive(Debug)]
pub struct DnsPodProcess {
    child: Child,
    /// Its log file.
    pub log: PathBuf,
    /// Its DNS address (UDP and TCP).
    pub dns: SocketAddr,
    /// Its admin address.
    pub admin: SocketAddr,
}

impl DnsPodProcess {
    /// Starts the binary from `target/debug` with `args` and `env`, logging to `log`.
    pub fn start(args: &[String], env: &[(String, String)], log: &Path) -> anyhow::Result<Self> {
        let binary = built_binary("debug", "zonefleet-dns-pod")?;
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = spawn_logged(
            Command::new(&binary)
                .arg("--listen")
                .arg(dns.to_string())
                .arg("--admin-address")
                .arg(admin.to_string())
                .args(args)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            &binary,
            out,
        )?;
        Ok(Self {
            child,
            log: log.to_owned(),
            dns,
            admin,
        })
    }

    /// GETs an admin path; returns the body of a 200.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<String> {
        let response = http::request("GET", self.admin, path, Duration::from_secs(5)).await?;
        anyhow::ensure!(
            response.status == 200,
            "GET {path} answered {}",
            response.status
        );
        Ok(response.body)
    }

    /// The value of a metric line starting with `prefix` (labels included), or 0.
    pub async fn metric(&self, prefix: &str) -> anyhow::Result<f64> {
        let body = self.admin_get("/metrics").await?;
        Ok(body
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0))
    }

    /// Stops it (SIGTERM, then SIGKILL) and waits.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        crate::harness::terminate(&mut self.child, Duration::from_secs(10)).await
    }
}
