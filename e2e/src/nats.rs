//! A NATS server of a test's own, which the test can stop and start again (with its
//! JetStream store kept), on the pod network so process pods reach it.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use anyhow::Context as _;
use tokio::process::{Child, Command};

use crate::{harness::ClusterEnv, operator::repo_dir};

/// A nats-server process with JetStream and one user.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    config: PathBuf,
    binary: PathBuf,
    log: PathBuf,
    /// Where clients connect (on the pod network).
    pub address: SocketAddr,
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl NatsServer {
    /// Starts a server on the host's pod-network address, a free port, with its store under
    /// the cluster's state directory (`nats-<name>`).
    pub async fn start(env: &ClusterEnv, name: &str) -> anyhow::Result<Self> {
        let output = std::process::Command::new("bash")
            .arg(repo_dir().join("e2e/tools.sh"))
            .args(["path", "nats-server"])
            .output()
            .context("locating nats-server")?;
        anyhow::ensure!(
            output.status.success(),
            "e2e/tools.sh path nats-server failed"
        );
        let binary = PathBuf::from(String::from_utf8(output.stdout)?.trim());
        let host: std::net::IpAddr = env.var("ZONEFLEET_HOST_IP")?.parse()?;
        let port = std::net::TcpListener::bind((host, 0))?.local_addr()?.port();
        let address = SocketAddr::new(host, port);
        let dir = env.dir()?.join(format!("nats-{name}"));
        std::fs::create_dir_all(&dir)?;
        let password = format!("pw-{name}-{}", std::process::id());
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"{address}\"\nserver_name: {name}\nmax_payload: 1MB\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 256MB\n  max_file_store: 4GB\n}}\n\
                 authorization {{\n  users = [ {{ user: \"zonefleet\", password: \"{password}\" }} ]\n}}\n",
                store = dir.join("store").display(),
            ),
        )?;
        let mut server = Self {
            child: None,
            config,
            binary,
            log: dir.join("nats.log"),
            address,
            user: "zonefleet".into(),
            password,
        };
        server.resume().await?;
        Ok(server)
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        format!("nats://{}", self.address)
    }

    /// The environment that points a Zonefleet process at this server.
    pub fn client_env(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            ("NATS_URL".into(), self.url()),
            ("NATS_USER".into(), self.user.clone()),
            ("NATS_PASSWORD".into(), self.password.clone()),
            ("ZONEFLEET_NATS_PREFIX".into(), prefix.into()),
        ]
    }

    /// Its process id, while it runs (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops the server (SIGTERM, then SIGKILL) and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::harness::terminate(&mut child, Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    /// Starts the server again, with the same address and store; waits until it accepts
    /// connections.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the NATS server is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.address).await.is_err() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not listen on {}; see {}",
                self.address,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}
