//! DNS pods run by the process kubelet, and the Service in front of them, as tests and the
//! demo create them; and [`Fleet`], the fixture of the tests that run a whole fleet (NATS,
//! operators, dns-pods).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::{sync::Mutex, time::Instant};
use zonefleet_api::{Record, Zone};

use crate::{
    harness::{TestNamespace, wait_for_object, wait_until, with_test_namespace},
    nats::NatsServer,
    operator::{OperatorProcess, delete_zones, install_crds},
    tools::kubectl,
};

/// The DNS port of the pods.
pub const DNS_PORT: u16 = 5353;
/// The admin port of the pods (`/readyz`, `/zones`, `/metrics`).
pub const ADMIN_PORT: u16 = 8080;

/// A dns-pod Pod: image `ghcr.io/zonefleet/dns-pod`, label `app=<app>`, following NATS with
/// the given environment, its local snapshot in `snapshot_dir`, ready on `/readyz`.
/// `readiness_failures` is the readiness probe's failure threshold (1 s period).
pub fn dns_pod(
    pod_label: &str,
    name: &str,
    app: &str,
    nats_env: &[(String, String)],
    snapshot_dir: &Path,
    readiness_failures: u32,
) -> anyhow::Result<Pod> {
    let (key, value) = pod_label
        .split_once('=')
        .context("the kubelet's pod label is key=value")?;
    let mut env: Vec<Value> = nats_env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    env.push(
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    );
    env.push(json!({"name": "RUST_LOG", "value": "info"}));
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {key: value, "app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "dns",
                "image": "ghcr.io/zonefleet/dns-pod:latest",
                "args": ["--listen", format!("0.0.0.0:{DNS_PORT}"),
                         "--admin-address", format!("0.0.0.0:{ADMIN_PORT}"),
                         "--snapshot-dir", snapshot_dir.display().to_string()],
                "ports": [{"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                          {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
                          {"name": "admin", "containerPort": ADMIN_PORT}],
                "env": env,
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "admin"},
                    "periodSeconds": 1, "failureThreshold": readiness_failures,
                },
            }],
        },
    }))?)
}

/// The headless Service the operator's fleet health checker watches: ports `dns` (UDP),
/// `dns-tcp` and `admin`, selecting `app=<app>`.
pub fn dns_service(name: &str, app: &str) -> anyhow::Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": app},
            "ports": [
                {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": "dns"},
                {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP", "targetPort": "dns-tcp"},
                {"name": "admin", "port": ADMIN_PORT, "protocol": "TCP", "targetPort": "admin"},
            ],
        },
    }))?)
}

/// How a test's [`Fleet`] is made.
#[derive(Debug, Clone, Copy)]
pub struct FleetSpec {
    /// The dns-pods: a Pod each, of that name, behind the Service `dns`.
    pub pods: &'static [&'static str],
    /// The identity of the operator the fleet starts with.
    pub operator: &'static str,
    /// How long the fixture waits (for the pods to be ready, for Zones to go, …).
    pub timeout: Duration,
}

/// A test's fleet, in the test's namespace: its NATS server, its operators (the first one
/// leads), the dns-pods of its [`FleetSpec`] behind the headless Service `dns`, and any other
/// namespaces it created. The operators watch every namespace: run one fleet at a time
/// ([`with_fleet`] takes a lock).
#[allow(missing_debug_implementations)]
pub struct Fleet {
    /// The test's namespace.
    pub ns: TestNamespace,
    /// The fleet's NATS server.
    pub nats: NatsServer,
    /// The NATS prefix the operators and pods share.
    pub prefix: String,
    /// What the fleet was made of.
    pub spec: FleetSpec,
    /// The Zones of the test's namespace.
    pub zones: Api<Zone>,
    /// The Records of the test's namespace.
    pub records: Api<Record>,
    /// The Pods of the test's namespace.
    pub pods: Api<Pod>,
    operators: Mutex<Vec<OperatorProcess>>,
    others: std::sync::Mutex<Vec<String>>,
}

impl Fleet {
    /// Installs the CRDs, starts NATS, the Service, the operator and the pods, and waits
    /// until every pod is ready.
    pub async fn start(ns: TestNamespace, spec: FleetSpec) -> anyhow::Result<Self> {
        install_crds(&ns.client).await?;
        let nats = NatsServer::start(&ns.env, &ns.name).await?;
        let prefix = format!("e2e-{}", ns.name);
        let fleet = Self {
            zones: ns.api(),
            records: ns.api(),
            pods: ns.api(),
            ns,
            nats,
            prefix,
            spec,
            operators: Mutex::default(),
            others: std::sync::Mutex::default(),
        };
        let services: Api<Service> = fleet.api();
        services
            .create(&PostParams::default(), &dns_service("dns", "dns")?)
            .await?;
        fleet.start_operator(spec.operator).await?;
        for pod in spec.pods {
            fleet.add_pod(pod).await?;
        }
        for pod in spec.pods {
            wait_for_object(&fleet.pods, pod, "Ready", spec.timeout, |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .await?;
        }
        Ok(fleet)
    }

    /// The operators' environment: NATS, the Service `dns`, a 3 s sweep and 3 re-sync
    /// attempts.
    pub fn operator_env(&self) -> Vec<(String, String)> {
        let mut env = self.nats.client_env(&self.prefix);
        env.push(("ZONEFLEET_DNS_SERVICE".into(), "dns".into()));
        env.push(("ZONEFLEET_SWEEP_SECONDS".into(), "3".into()));
        env.push(("ZONEFLEET_RESYNC_ATTEMPTS".into(), "3".into()));
        env
    }

    /// Starts an operator with identity `identity`; it runs until the fleet is cleaned up
    /// (or a test kills it).
    pub async fn start_operator(&self, identity: &str) -> anyhow::Result<()> {
        let operator = OperatorProcess::start_with(
            &self.ns.env,
            &self.ns.name,
            identity,
            &self.operator_env(),
        )?;
        self.operators.lock().await.push(operator);
        Ok(())
    }

    /// Kills the operator `identity` at once, as a crash would.
    pub async fn kill_operator(&self, identity: &str) -> anyhow::Result<()> {
        let mut operators = self.operators.lock().await;
        let operator = operators
            .iter_mut()
            .find(|o| o.identity == identity)
            .with_context(|| format!("no operator {identity}"))?;
        operator.kill().await
    }

    /// The `/metrics` of the operator the fleet started with.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let address = self
            .operators
            .lock()
            .await
            .first()
            .context("the operator")?
            .metrics;
        let response =
            crate::http::request("GET", address, "/metrics", Duration::from_secs(5)).await?;
        anyhow::ensure!(response.status == 200, "GET /metrics: {}", response.status);
        Ok(response.body)
    }

    /// Adds a dns-pod `name` behind the Service.
    pub async fn add_pod(&self, name: &str) -> anyhow::Result<()> {
        let snapshot_dir = self
            .ns
            .env
            .dir()?
            .join("snapshots")
            .join(&self.ns.name)
            .join(name);
        // A frozen pod must stay a ready endpoint for a while, so the checker sees it.
        let pod = dns_pod(
            self.ns.env.var("ZONEFLEET_POD_LABEL")?,
            name,
            "dns",
            &self.nats.client_env(&self.prefix),
            &snapshot_dir,
            60,
        )?;
        self.pods.create(&PostParams::default(), &pod).await?;
        Ok(())
    }

    /// The process id of the dns-pod `pod` (to freeze it).
    pub fn pid_of(&self, pod: &str) -> anyhow::Result<Pid> {
        let pid = self.ns.container_pid(pod, "dns")?;
        Ok(Pid::from_raw(i32::try_from(pid)?))
    }

    /// The address of the Pod `pod`.
    pub async fn pod_ip(&self, pod: &str) -> anyhow::Result<IpAddr> {
        let pod = self.pods.get(pod).await?;
        Ok(pod
            .status
            .and_then(|s| s.pod_ip)
            .context("a pod address")?
            .parse()?)
    }

    /// The DNS address of the dns-pod `pod`.
    pub async fn pod_address(&self, pod: &str) -> anyhow::Result<SocketAddr> {
        Ok(SocketAddr::new(self.pod_ip(pod).await?, DNS_PORT))
    }

    /// An API of the test's own namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        self.ns.api()
    }

    /// An API of the namespace `namespace`.
    pub fn api_in<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.ns.client.clone(), namespace)
    }

    /// Creates another namespace (named `generate_name` and a suffix), deleted with its
    /// Zones when the fleet is cleaned up.
    pub async fn other_namespace(&self, generate_name: &str) -> anyhow::Result<String> {
        let namespaces: Api<Namespace> = Api::all(self.ns.client.clone());
        let created = namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        generate_name: Some(generate_name.to_owned()),
                        labels: Some([("zonefleet.io/e2e".to_owned(), "true".to_owned())].into()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await?;
        let name = created.metadata.name.context("a generated name")?;
        self.others
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(name.clone());
        Ok(name)
    }

    /// Waits (the fleet's timeout) until the Zone `namespace/name` passes `ok`.
    pub async fn wait_zone_in(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        ok: impl Fn(&Zone) -> bool,
    ) -> anyhow::Result<Zone> {
        wait_for_object(&self.api_in(namespace), name, what, self.spec.timeout, ok).await
    }

    /// [`Fleet::wait_zone_in`] the test's namespace.
    pub async fn wait_zone(
        &self,
        name: &str,
        what: &str,
        ok: impl Fn(&Zone) -> bool,
    ) -> anyhow::Result<Zone> {
        self.wait_zone_in(&self.ns.name, name, what, ok).await
    }

    /// Waits (the fleet's timeout) until the Record `name` of the test's namespace passes
    /// `ok`.
    pub async fn wait_record(
        &self,
        name: &str,
        what: &str,
        ok: impl Fn(&Record) -> bool,
    ) -> anyhow::Result<Record> {
        wait_for_object(&self.records, name, what, self.spec.timeout, ok).await
    }

    /// Deletes a Zone and waits until it is gone (its finalizer removed).
    pub async fn delete_zone_in(&self, namespace: &str, name: &str) -> anyhow::Result<()> {
        let zones: Api<Zone> = self.api_in(namespace);
        zones.delete(name, &DeleteParams::default()).await?;
        wait_until(
            &format!("Zone {namespace}/{name} to be gone"),
            self.spec.timeout,
            || async { Ok(zones.get_opt(name).await?.is_none().then_some(())) },
        )
        .await
    }

    /// `kubectl wait --for=condition=<condition> <object> --timeout=<timeout>` in the test's
    /// namespace: whether it succeeded, and what it printed.
    pub fn kubectl_wait(
        &self,
        object: &str,
        condition: &str,
        timeout: &str,
    ) -> anyhow::Result<(bool, String)> {
        let output = kubectl(&self.ns)?
            .args(["wait", "-n", &self.ns.name, object])
            .arg(format!("--for=condition={condition}"))
            .arg(format!("--timeout={timeout}"))
            .output()?;
        Ok((
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ))
    }

    /// Deletes the Zones of every namespace the test used while the operators still run (so
    /// their finalizers go), then the other namespaces, then stops the operators and NATS.
    pub async fn clean_up(mut self) -> anyhow::Result<()> {
        let mut namespaces = vec![self.ns.name.clone()];
        namespaces.extend(
            self.others
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .clone(),
        );
        let mut outcome = Ok(());
        for namespace in &namespaces {
            let deleted = delete_zones(&self.ns.client, namespace, self.spec.timeout).await;
            outcome = outcome.and(deleted);
        }
        let all: Api<Namespace> = Api::all(self.ns.client.clone());
        for namespace in &namespaces[1..] {
            if let Err(e) = all.delete(namespace, &DeleteParams::default()).await {
                eprintln!("could not delete namespace {namespace}: {e}");
            }
        }
        for operator in self.operators.get_mut().iter_mut() {
            operator.terminate().await?;
        }
        self.nats.stop().await?;
        outcome
    }
}

/// Runs `test` on a fleet of its own (made as `spec` says), holding `one_at_a_time`, and
/// cleans up also when it fails (then printing where the operators' logs are).
pub async fn with_fleet<F, Fut>(one_at_a_time: &Mutex<()>, prefix: &str, spec: FleetSpec, test: F)
where
    F: FnOnce(Arc<Fleet>) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let _turn = one_at_a_time.lock().await;
    let started = Instant::now();
    with_test_namespace(prefix, |ns| async move {
        let fleet = Arc::new(Fleet::start(ns, spec).await?);
        let outcome = test(fleet.clone()).await;
        if outcome.is_err() {
            let logs: Vec<String> = fleet
                .operators
                .lock()
                .await
                .iter()
                .map(|o| o.log.display().to_string())
                .collect();
            eprintln!("the operators' logs: {logs:?}");
        }
        let fleet =
            Arc::try_unwrap(fleet).map_err(|_| anyhow::anyhow!("the test kept its fleet"))?;
        let cleanup = fleet.clean_up().await;
        outcome.and(cleanup)
    })
    .await;
    eprintln!("{prefix}: {:?}", started.elapsed());
}
