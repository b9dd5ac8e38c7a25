//! What the end-to-end tests share: the environment `e2e/cluster.sh up` wrote, clients,
//! temporary namespaces, and waiting with a deadline.

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    events::v1::Event,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use zonefleet_process_kubelet::process::{container_files, pod_volumes_dir, read_pid_file};

/// The environment of a running local cluster, read from `<state>/env`.
#[derive(Clone, Debug)]
pub struct ClusterEnv {
    vars: BTreeMap<String, String>,
}

impl ClusterEnv {
    /// The state directory: `$ZONEFLEET_E2E_DIR`, or `.e2e` at the repository root.
    pub fn state_dir() -> PathBuf {
        std::env::var_os("ZONEFLEET_E2E_DIR").map_or_else(
            || {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(".e2e")
            },
            PathBuf::from,
        )
    }

    /// Reads the environment; fails with instructions when the cluster is not up.
    pub fn load() -> anyhow::Result<Self> {
        let path = Self::state_dir().join("env");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is missing: start the local cluster with `e2e/cluster.sh up`",
                path.display()
            )
        })?;
        Ok(Self {
            vars: parse_env_file(&text),
        })
    }

    /// One variable.
    pub fn var(&self, name: &str) -> anyhow::Result<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("{name} is not set by the cluster environment"))
    }

    /// The state directory the cluster uses.
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        self.var("ZONEFLEET_E2E_DIR").map(PathBuf::from)
    }

    /// A client with the admin kubeconfig.
    pub async fn admin_client(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.var("KUBECONFIG")?)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// A client that authenticates with a bearer token (such as a ServiceAccount's).
    pub async fn token_client(&self, token: &str) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.var("KUBECONFIG")?)?;
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        };
        Ok(Client::try_from(config)?)
    }
}

/// Parses `export NAME='value'` lines.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| {
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.split_once('\''))
                .map_or(value, |(v, _)| v);
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_error {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the object `name` exists and `accept` holds for it; returns it.
pub async fn wait_for_object<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&K) -> bool,
) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("object");
    wait_until(&format!("{kind} {name}: {what}"), timeout, || async {
        Ok(api.get_opt(name).await?.filter(|object| accept(object)))
    })
    .await
}

/// A namespace of one test's own, deleted when the test ends, whether it passed or not.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
    /// The admin client.
    pub client: Client,
    /// The cluster environment.
    pub env: ClusterEnv,
}

impl TestNamespace {
    /// The pid file the process kubelet keeps for container `container` of Pod `pod`.
    pub fn pid_file(&self, pod: &str, container: &str) -> anyhow::Result<PathBuf> {
        Ok(container_files(&self.env.dir()?, &self.name, pod, container).pid_file)
    }

    /// The pid of container `container` of Pod `pod`, as the process kubelet recorded it.
    pub fn container_pid(&self, pod: &str, container: &str) -> anyhow::Result<u32> {
        let pid_file = self.pid_file(pod, container)?;
        let (pid, _) = read_pid_file(&pid_file).with_context(|| pid_file.display().to_string())?;
        Ok(pid)
    }

    /// The directory holding the volumes of Pod `pod`.
    pub fn volumes_dir(&self, pod: &str) -> anyhow::Result<PathBuf> {
        Ok(pod_volumes_dir(&self.env.dir()?, &self.name, pod))
    }

    /// An API of this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

/// Events in `namespace` about objects of `kind` (only the one named `name`, if given), as
/// `reason: note`.
pub async fn events_about(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some(kind) && name.is_none_or(|n| r.name.as_deref() == Some(n))
            })
        })
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect())
}

/// A loopback port free for UDP and TCP at once.
pub fn free_port() -> anyhow::Result<u16> {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

/// Spawns `command` (which runs `binary`) without colours, its stdin closed, its stdout and
/// stderr written to `log`, killed when dropped.
pub fn spawn_logged(
    command: &mut tokio::process::Command,
    binary: &Path,
    log: std::fs::File,
) -> anyhow::Result<tokio::process::Child> {
    command
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Runs `test` in a fresh namespace named after `prefix`, then deletes the namespace. A
/// panic in the test is re-raised after the clean-up.
pub async fn with_test_namespace<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    let env = ClusterEnv::load().expect("the local cluster's environment");
    let client = env.admin_client().await.expect("an admin client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("e2e-{prefix}-")),
            labels: Some(BTreeMap::from([(
                "zonefleet.io/e2e".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create a test namespace");
    let name = created.metadata.name.clone().expect("a generated name");
    // Pods can only be created once the ServiceAccount controller made `default`.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    wait_until(
        "the default ServiceAccount",
        Duration::from_secs(30),
        || async { Ok(accounts.get_opt("default").await?) },
    )
    .await
    .expect("the default ServiceAccount");

    let ns = TestNamespace {
        name: name.clone(),
        client: client.clone(),
        env,
    };
    let outcome = tokio::spawn(test(ns)).await;
    if let Err(e) = namespaces.delete(&name, &DeleteParams::default()).await {
        eprintln!("could not delete test namespace {name}: {e}");
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test in namespace {name} failed: {e:#}"),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test in namespace {name} was cancelled: {e}"),
        },
    }
}

/// Stops a child process: SIGTERM, then SIGKILL if it is still running after `grace`.
pub async fn terminate(child: &mut tokio::process::Child, grace: Duration) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        child.kill().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_env_file_cluster_sh_writes() {
        let vars = parse_env_file(
            "export KUBECONFIG='/x/admin.kubeconfig'\nexport PATH='/a:/b:'\"$PATH\"\n# comment\nexport N='v'\n",
        );
        assert_eq!(vars["KUBECONFIG"], "/x/admin.kubeconfig");
        assert_eq!(vars["PATH"], "/a:/b:");
        assert_eq!(vars["N"], "v");
    }
}
