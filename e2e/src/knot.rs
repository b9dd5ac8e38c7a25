//! Knot DNS (Debian package `knot`) as an external secondary of the fleet: it transfers a
//! zone from a DNS pod with a TSIG key and takes NOTIFY from the operator, as a secondary a
//! user already runs would.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;

use crate::harness::{free_port, spawn_logged};

/// Knot's daemon.
const KNOTD: &str = "/usr/sbin/knotd";

/// A TSIG key as Knot's configuration names it.
#[derive(Clone, Debug)]
pub struct KnotKey {
    /// The key name.
    pub name: String,
    /// `hmac-sha256` and so on.
    pub algorithm: String,
    /// The secret in base64.
    pub secret: String,
}

/// A knotd process, killed when dropped.
#[allow(missing_debug_implementations)]
pub struct KnotSecondary {
    _child: tokio::process::Child,
    /// Its directory: configuration, journal, `knot.log`.
    pub dir: PathBuf,
    /// Where it answers (127.0.0.1).
    pub address: SocketAddr,
}

impl KnotSecondary {
    /// Starts Knot on 127.0.0.1 as a secondary of `primary` for `zone`, transferring with
    /// `key` and taking NOTIFY signed with it from `notifier`; it lets tests on 127.0.0.0/8
    /// transfer its copy.
    pub async fn start(
        dir: PathBuf,
        zone: &str,
        primary: SocketAddr,
        notifier: IpAddr,
        key: &KnotKey,
    ) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).context("Knot's directory")?;
        let port = free_port()?;
        let config = format!(
            "server:\n  rundir: \"{dir}\"\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
             database:\n  storage: \"{dir}/db\"\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n  - id: {key_name}\n    algorithm: {algorithm}\n    secret: {secret}\n\
             remote:\n  - id: primary\n    address: {primary_ip}@{primary_port}\n    key: {key_name}\n\
             acl:\n  - id: notify-from-operator\n    address: {notifier}\n    key: {key_name}\n    action: notify\n\
             \x20\x20- id: transfer-to-tests\n    address: 127.0.0.0/8\n    action: transfer\n\
             template:\n  - id: default\n    storage: \"{dir}\"\n    zonefile-sync: -1\n\
             zone:\n  - domain: \"{zone}\"\n    master: primary\n    acl: [notify-from-operator, transfer-to-tests]\n",
            dir = dir.display(),
            key_name = key.name,
            algorithm = key.algorithm,
            secret = key.secret,
            primary_ip = primary.ip(),
            primary_port = primary.port(),
        );
        let config_path = dir.join("knot.conf");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.join("knot.log"))?;
        let child = spawn_logged(
            tokio::process::Command::new(KNOTD)
                .arg("-c")
                .arg(&config_path),
            std::path::Path::new(KNOTD),
            log,
        )?;
        let knot = Self {
            _child: child,
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        // Knot opens its control socket once its listeners are bound.
        for _ in 0..200 {
            if knot.dir.join("knot.sock").exists() {
                return Ok(knot);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("Knot did not start:\n{}", knot.log())
    }

    /// What Knot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knot.log")).unwrap_or_default()
    }
}
