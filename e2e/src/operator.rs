//! Running the operator for end-to-end tests, and reading what it wrote.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use tokio::process::{Child, Command};
use zonefleet_api::Zone;

use crate::harness::{ClusterEnv, spawn_logged, wait_until};

/// The field manager tests apply manifests with, as `kubectl apply --server-side` would.
pub const TEST_MANAGER: &str = "zonefleet-e2e";

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        },
        PathBuf::from,
    )
}

/// The binary `name` built with `profile` (`debug`), or an error saying how to build it.
pub fn built_binary(profile: &str, name: &str) -> anyhow::Result<PathBuf> {
    let binary = target_dir().join(profile).join(name);
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins`",
        binary.display()
    );
    Ok(binary)
}

/// The repository root.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs (or updates) the CRDs from `crds/` with server-side apply and waits until the
/// API server serves them.
pub async fn install_crds(client: &Client) -> anyhow::Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    let dir = repo_dir().join("crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let name = crd.metadata.name.clone().context("a CRD name")?;
        api.patch(
            &name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        names.push(name);
    }
    for name in &names {
        wait_until(
            &format!("CRD {name} to be established"),
            Duration::from_secs(30),
            || async {
                let crd = api.get(name).await?;
                let established = crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
                Ok(established.then_some(()))
            },
        )
        .await?;
    }
    Ok(names)
}

/// Deletes every Zone of `namespace` and waits (up to `timeout`) until the operator has let
/// them go (their finalizers removed).
pub async fn delete_zones(
    client: &Client,
    namespace: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let zones: Api<Zone> = Api::namespaced(client.clone(), namespace);
    zones
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    wait_until(
        &format!("the Zones of {namespace} to be gone"),
        timeout,
        || async {
            Ok(zones
                .list(&ListParams::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        },
    )
    .await
}

/// An operator process, killed when dropped.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Child,
    /// Its identity in the Lease.
    pub identity: String,
    /// Its log file.
    pub log: PathBuf,
    /// Where its `/metrics` listens.
    pub metrics: std::net::SocketAddr,
}

impl OperatorProcess {
    /// Starts `zonefleet-operator` (from `target/$ZONEFLEET_OPERATOR_PROFILE`, default
    /// `debug`) with the admin kubeconfig, its Lease in `lease_namespace`.
    pub fn start(env: &ClusterEnv, lease_namespace: &str, identity: &str) -> anyhow::Result<Self> {
        Self::start_with(env, lease_namespace, identity, &[])
    }

    /// [`OperatorProcess::start`] with extra environment variables (e.g. NATS settings;
    /// without them the operator only logs its versions).
    pub fn start_with(
        env: &ClusterEnv,
        lease_namespace: &str,
        identity: &str,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let profile =
            std::env::var("ZONEFLEET_OPERATOR_PROFILE").unwrap_or_else(|_| "debug".into());
        let binary = built_binary(&profile, "zonefleet-operator")?;
        let logs = env.dir()?.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("operator-{lease_namespace}-{identity}.log"));
        let out = std::fs::File::create(&log)?;
        let metrics = free_local_port()?;
        let mut command = Command::new(&binary);
        command
            .arg("--metrics-address")
            .arg(metrics.to_string())
            .env("KUBECONFIG", env.var("KUBECONFIG")?)
            .env("POD_NAMESPACE", lease_namespace)
            .env("POD_NAME", identity)
            .env(
                "RUST_LOG",
                std::env::var("ZONEFLEET_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
            )
            // NATS only when the test asks for it (the runner's environment may name one).
            .env_remove("NATS_URL")
            .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = spawn_logged(&mut command, &binary, out)?;
        Ok(Self {
            child,
            identity: identity.to_owned(),
            log,
            metrics,
        })
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after 30 s).
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        crate::harness::terminate(&mut self.child, Duration::from_secs(30)).await
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn free_local_port() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Applies a manifest (server-side apply as [`TEST_MANAGER`]), as `kubectl apply
/// --server-side` would.
pub async fn apply<K>(api: &kube::Api<K>, manifest: &serde_json::Value) -> kube::Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(
        name,
        &kube::api::PatchParams::apply(TEST_MANAGER),
        &kube::api::Patch::Apply(manifest),
    )
    .await
}

/// A Record manifest for the Zone `zone` of the same namespace.
pub fn record_manifest(
    zone: &str,
    name: &str,
    owner: &str,
    kind: &str,
    values: &[&str],
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "dns.zonefleet.io/v1alpha1", "kind": "Record",
        "metadata": {"name": name},
        "spec": {"zoneRef": {"name": zone}, "name": owner, "type": kind, "values": values},
    })
}
