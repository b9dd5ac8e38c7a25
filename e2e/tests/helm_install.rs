//! `helm install`, `helm upgrade` and `helm uninstall` of the chart on the local control
//! plane. The process kubelet runs the chart's own Pods: the operator on its ServiceAccount
//! token (mounted by the kubelet at the usual path, with no kubeconfig anywhere), and the DNS
//! pods with their emptyDir, in a namespace that enforces Pod Security "restricted".
//!
//! NATS is the cluster's nats-server, given to the chart as external NATS with a credentials
//! Secret (the bundled StatefulSet needs persistent volumes, which this cluster lacks).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Pod, Secret},
        discovery::v1::EndpointSlice,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
};
use serde_json::json;
use zonefleet_api::Zone;
use zonefleet_e2e::{
    dns::{self, Attempts, Transport},
    harness::{TestNamespace, wait_for_object, wait_until, with_test_namespace},
    operator::{install_crds, repo_dir},
    tools::{chart_dir, enforce_restricted_pod_security, kubectl, run, run_with_input, tool},
};

const CRDS: [&str; 2] = ["zones.dns.zonefleet.io", "records.dns.zonefleet.io"];

fn helm(ns: &TestNamespace) -> anyhow::Result<Command> {
    let mut command = Command::new(tool("helm")?);
    command
        .env("KUBECONFIG", ns.env.var("KUBECONFIG")?)
        .args(["--namespace", &ns.name]);
    Ok(command)
}

/// The values a user of external NATS would write, plus the label that hands the Pods to
/// the process kubelet.
fn values(ns: &TestNamespace, prefix: &str) -> anyhow::Result<serde_json::Value> {
    let label = ns.env.var("ZONEFLEET_POD_LABEL")?;
    let (key, value) = label.split_once('=').context("ZONEFLEET_POD_LABEL")?;
    let pod_labels = json!({ key: value });
    Ok(json!({
        "operator": {"podLabels": pod_labels, "logFormat": "text"},
        "dns": {"podLabels": pod_labels, "shutdownDelaySeconds": 3},
        "nats": {
            "prefix": prefix,
            "bundled": {"enabled": false},
            "external": {"url": ns.env.var("NATS_URL")?, "existingSecret": "nats-credentials"},
        },
    }))
}

/// The CRDs exist already (other tests installed them): let the release adopt them, as a
/// user who applied `crds/` before installing the chart would.
fn adopt_crds(ns: &TestNamespace, release: &str) -> anyhow::Result<()> {
    run(kubectl(ns)?
        .args(["annotate", "--overwrite", "crd"])
        .args(CRDS)
        .args([
            &format!("meta.helm.sh/release-name={release}"),
            &format!("meta.helm.sh/release-namespace={}", ns.name),
        ]))?;
    run(kubectl(ns)?
        .args(["label", "--overwrite", "crd"])
        .args(CRDS)
        .arg("app.kubernetes.io/managed-by=Helm"))?;
    Ok(())
}

async fn pods(ns: &TestNamespace, component: &str) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let selector = format!("app.kubernetes.io/component={component}");
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

fn pod_ip(pod: &Pod) -> anyhow::Result<IpAddr> {
    Ok(pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .context("a pod IP")?
        .parse()?)
}

/// The operator's token, as the kubelet mounted it for the pod.
fn mounted_token(ns: &TestNamespace, pod: &str) -> anyhow::Result<String> {
    let volumes = ns.volumes_dir(pod)?;
    for entry in std::fs::read_dir(&volumes).with_context(|| volumes.display().to_string())? {
        let token = entry?.path().join("token");
        if token.exists() {
            return Ok(std::fs::read_to_string(token)?);
        }
    }
    bail!("no token volume under {}", volumes.display())
}

/// The environment of the operator container's process.
fn process_environment(ns: &TestNamespace, pod: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let pid = ns.container_pid(pod, "operator")?;
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    Ok(environ
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect())
}

/// How long the client waits for one response before it sends the query again.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How many times the client sends a query before it gives up, as a stub resolver does
/// (glibc's `attempts`, dig's `+tries`).
const QUERY_ATTEMPTS: usize = 3;

/// What became of one query sent to one server.
#[derive(Debug)]
enum Outcome {
    /// Answered with both addresses, after this many unanswered attempts.
    Answered { retries: usize },
    /// Answered, but not with both addresses (or not as a response to the query).
    Wrong(String),
    /// No response to any attempt.
    Unanswered,
}

/// One UDP query for `name A` to `server`, sent again after each [`QUERY_TIMEOUT`] up to
/// [`QUERY_ATTEMPTS`] times.
async fn query_a(server: SocketAddr, name: &str, id: u16) -> anyhow::Result<Outcome> {
    let query = dns::query(id, name, RecordType::A)?;
    let attempts = Attempts {
        transport: Transport::Udp,
        timeout: QUERY_TIMEOUT,
        attempts: QUERY_ATTEMPTS,
    };
    let Some(dns::Response { message, retries }) = dns::exchange(server, &query, attempts).await?
    else {
        return Ok(Outcome::Unanswered);
    };
    let metadata = &message.metadata;
    Ok(
        if metadata.id == id
            && metadata.response_code == ResponseCode::NoError
            && message.answers.len() == 2
        {
            Outcome::Answered { retries }
        } else {
            Outcome::Wrong(format!(
                "id {} (sent {id}), {}, {} answers",
                metadata.id,
                metadata.response_code,
                message.answers.len()
            ))
        },
    )
}

/// How far behind the EndpointSlices the client's view of the Service is, as kube-proxy's
/// is on a busy node.
const ROUTING_LAG: Duration = Duration::from_secs(1);

/// What a client of the DNS Service saw while it ran: it sends each query to the next ready
/// endpoint of the Service's EndpointSlices as they were [`ROUTING_LAG`] ago, as kube-proxy
/// would route it.
#[derive(Debug, Default)]
struct ServiceClient {
    answered: usize,
    /// Queries answered only after they were sent again.
    retried: Vec<String>,
    failed: Vec<String>,
    servers: BTreeSet<String>,
}

async fn query_the_service(
    ns: TestNamespace,
    service: String,
    name: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ServiceClient> {
    let slices: Api<EndpointSlice> = Api::namespaced(ns.client.clone(), &ns.name);
    let selector = format!("kubernetes.io/service-name={service}");
    let mut seen = ServiceClient::default();
    let mut next = 0usize;
    let mut views: std::collections::VecDeque<(tokio::time::Instant, Vec<(String, SocketAddr)>)> =
        std::collections::VecDeque::new();
    while !stop.load(Ordering::SeqCst) {
        let mut ready = Vec::new();
        for slice in slices
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
        {
            let port = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some("dns"))
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok());
            for endpoint in slice.endpoints.into_iter().flatten() {
                let is_ready = endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true);
                let pod = endpoint.target_ref.and_then(|t| t.name).unwrap_or_default();
                if let (true, Some(port), Some(address)) =
                    (is_ready, port, endpoint.addresses.first())
                {
                    ready.push((pod, SocketAddr::new(address.parse()?, port)));
                }
            }
        }
        ready.sort();
        let now = tokio::time::Instant::now();
        views.push_back((now, ready));
        while views.len() > 1 && views[1].0 + ROUTING_LAG <= now {
            views.pop_front();
        }
        let ready = &views[0].1;
        if let Some((pod, server)) = ready.get(next % ready.len().max(1)) {
            next = next.wrapping_add(1);
            let id = u16::try_from(next % 65536).unwrap_or(0);
            let at = k8s_openapi::jiff::Timestamp::now();
            let routed = views[0].0.elapsed();
            match query_a(*server, &name, id).await? {
                Outcome::Answered { retries } => {
                    seen.answered += 1;
                    seen.servers.insert(pod.clone());
                    if retries > 0 {
                        seen.retried.push(format!(
                            "{pod} ({server}) at {at}, after {retries} timeouts"
                        ));
                    }
                }
                Outcome::Wrong(why) => seen.failed.push(format!(
                    "{pod} ({server}) at {at}, routing view of {routed:?} before: answered {why}"
                )),
                Outcome::Unanswered => seen.failed.push(format!(
                    "{pod} ({server}) at {at}, routing view of {routed:?} before: no response to {QUERY_ATTEMPTS} attempts"
                )),
            }
        } else {
            seen.failed.push("no ready endpoint".into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_upgrade_and_uninstall_on_the_local_cluster() {
    with_test_namespace("helm", |ns| async move {
        let release = ns.name.clone();
        let fullname = format!("{release}-zonefleet");
        let prefix = ns.name.replace('-', "");
        install_crds(&ns.client).await?;
        adopt_crds(&ns, &release)?;
        enforce_restricted_pod_security(&ns)?;
        let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
        let credentials: Secret = serde_json::from_value(json!({
            "metadata": {"name": "nats-credentials"},
            "stringData": {"user": ns.env.var("NATS_USER")?, "password": ns.env.var("NATS_PASSWORD")?},
        }))?;
        secrets.create(&PostParams::default(), &credentials).await?;
        let values_file = ns.env.dir()?.join(format!("{}-values.json", ns.name));
        std::fs::write(&values_file, values(&ns, &prefix)?.to_string())?;

        // Install: helm waits until both operator replicas and both DNS pods are ready.
        run(helm(&ns)?
            .args(["install", &release, &chart_dir(), "--wait", "--timeout", "180s"])
            .arg("--values")
            .arg(&values_file))
        .context("helm install")?;
        let operators = pods(&ns, "operator").await?;
        ensure!(operators.len() == 2, "two operator replicas: {}", operators.len());
        let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
        let lease = wait_for_object(
            &leases,
            &format!("{fullname}-operator"),
            "held by an operator replica",
            Duration::from_secs(60),
            |lease| lease.spec.as_ref().and_then(|s| s.holder_identity.as_ref()).is_some(),
        )
        .await?;
        let leader = lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        ensure!(
            operators.iter().any(|p| p.name_any() == leader),
            "the Lease is held by {leader}, not by an operator pod"
        );

        // The operator works on its ServiceAccount token alone.
        let environment = process_environment(&ns, &leader)?;
        ensure!(
            !environment.contains_key("KUBECONFIG"),
            "the operator must not be given a kubeconfig"
        );
        ensure!(environment.contains_key("KUBERNETES_SERVICE_HOST"));
        let token = mounted_token(&ns, &leader)?;

        // The example Zone is served by both DNS pods and reported Synced. Its domain is made
        // the test's own: this operator serves every namespace, and Zones of other tests may
        // still be going away.
        let domain = format!("{}.example.com", ns.name);
        let example = std::fs::read_to_string(repo_dir().join("examples/example-zone.yaml"))?;
        ensure!(example.contains("domain: example.com\n"));
        let example = example.replace("domain: example.com\n", &format!("domain: {domain}\n"));
        run_with_input(kubectl(&ns)?.args(["apply", "-n", &ns.name, "-f", "-"]), &example)?;
        let zones: Api<Zone> = Api::namespaced(ns.client.clone(), &ns.name);
        wait_for_object(
            &zones,
            "example",
            "Synced on 2 of 2 DNS pods",
            Duration::from_secs(90),
            |zone| {
                let status = zone.status.as_ref();
                let synced = status.is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Synced" && c.status == "True")
                });
                let servers = status.and_then(|s| s.servers.as_ref());
                synced && servers.is_some_and(|s| s.total == 2 && s.synced == 2)
            },
        )
        .await?;
        let dns_pods = pods(&ns, "dns").await?;
        ensure!(dns_pods.len() == 2, "two DNS pods: {}", dns_pods.len());
        for pod in &dns_pods {
            let server = SocketAddr::new(pod_ip(pod)?, 5353);
            let answer = dns::ask(server, &format!("www.{domain}"), RecordType::A).await?;
            ensure!(
                answer.rcode() == ResponseCode::NoError
                    && answer.rdata() == ["192.0.2.10", "192.0.2.11"],
                "{} answered {answer:?}",
                pod.name_any()
            );
        }

        // Least privilege: the operator's own token reads Zones everywhere, and no Secrets,
        // in another namespace or in its own, and it cannot make Leases of its own.
        let as_operator = ns.env.token_client(&token).await?;
        Api::<Zone>::all(as_operator.clone())
            .list(&ListParams::default())
            .await
            .context("the operator's token lists Zones")?;
        for namespace in ["default", ns.name.as_str()] {
            match Api::<Secret>::namespaced(as_operator.clone(), namespace)
                .list(&ListParams::default())
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 403 => {}
                other => bail!(
                    "the operator's token must not list Secrets in {namespace}: {:?}",
                    other.map(|l| l.items.len())
                ),
            }
        }

        let other_lease: Lease = serde_json::from_value(json!({"metadata": {"name": "other"}}))?;
        match Api::<Lease>::namespaced(as_operator.clone(), &ns.name)
            .create(&PostParams::default(), &other_lease)
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 403 => {}
            other => bail!(
                "the operator's token must only use its own Lease: {:?}",
                other.map(|l| l.name_any())
            ),
        }

        // Upgrade with a changed value: the DNS pods roll, and a client of the Service
        // loses no query meanwhile.
        let before: BTreeSet<String> = dns_pods.iter().map(ResourceExt::name_any).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let client = tokio::spawn(query_the_service(
            ns.clone(),
            format!("{fullname}-dns-pods"),
            format!("www.{domain}."),
            Arc::clone(&stop),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut upgrade = helm(&ns)?;
        upgrade
            .args(["upgrade", &release, &chart_dir(), "--wait", "--timeout", "180s"])
            .arg("--values")
            .arg(&values_file)
            .args(["--set", "dns.tcp.idleTimeoutSeconds=20"]);
        // Off the runtime's threads, so the client keeps querying meanwhile.
        let upgrade = tokio::task::spawn_blocking(move || run(&mut upgrade))
            .await?
            .context("helm upgrade");
        // helm returns once the new pods are ready; the old ones are still shutting down.
        let after = wait_until(
            "the old DNS pods gone",
            Duration::from_secs(60),
            || async {
                let names: BTreeSet<String> =
                    pods(&ns, "dns").await?.iter().map(ResourceExt::name_any).collect();
                Ok((names.len() == 2 && names.is_disjoint(&before)).then_some(names))
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
        let seen = client.await??;
        upgrade?;
        let after = after.with_context(|| format!("the upgrade replaced both DNS pods {before:?}"))?;
        eprintln!(
            "during the upgrade ({before:?} → {after:?}): {} queries answered by {:?}, {} failed; sent again after a timeout: {:?}",
            seen.answered,
            seen.servers,
            seen.failed.len(),
            seen.retried
        );
        ensure!(
            seen.failed.is_empty(),
            "queries failed during the upgrade: {:?}",
            seen.failed
        );
        ensure!(
            seen.servers.len() >= 3 && seen.answered >= 50,
            "the client saw old and new pods answer: {seen:?}"
        );

        // Uninstall: nothing of the release is left but the CRDs and the user's Zones.
        run(helm(&ns)?.args(["uninstall", &release, "--wait", "--timeout", "120s"]))
            .context("helm uninstall")?;
        let pod_api: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        wait_until("every pod of the release gone", Duration::from_secs(60), || async {
            Ok(pod_api
                .list(&ListParams::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        })
        .await?;
        let kinds = run(kubectl(&ns)?.args(["api-resources", "--verbs=list", "--namespaced", "-o", "name"]))?;
        let kinds: Vec<&str> = kinds
            .lines()
            .filter(|k| !k.starts_with("events"))
            .collect();
        let left = run(kubectl(&ns)?
            .args(["get", &kinds.join(","), "-n", &ns.name, "-o", "name"]))?;
        let expected_left = [
            "configmap/kube-root-ca.crt",
            "serviceaccount/default",
            "secret/nats-credentials",
        ];
        let orphans: Vec<&str> = left
            .lines()
            .filter(|object| {
                !expected_left.contains(object)
                    && !object.starts_with("zone.dns.zonefleet.io/")
                    && !object.starts_with("record.dns.zonefleet.io/")
            })
            .collect();
        ensure!(orphans.is_empty(), "left behind in the namespace: {orphans:?}");
        let cluster_wide = run(kubectl(&ns)?
            .args(["get", "clusterroles,clusterrolebindings", "-o", "name"])
            .arg(format!("-l=app.kubernetes.io/instance={release}")))?;
        ensure!(cluster_wide.trim().is_empty(), "left behind: {cluster_wide}");
        let crds: Api<CustomResourceDefinition> = Api::all(ns.client.clone());
        for crd in CRDS {
            ensure!(crds.get_opt(crd).await?.is_some(), "the CRD {crd} is kept");
        }
        ensure!(zones.get_opt("example").await?.is_some(), "the Zone is kept");
        let pid_files: Vec<String> = std::fs::read_dir(ns.env.dir()?.join("pods"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&format!("{}_", ns.name)))
            .collect();
        ensure!(pid_files.is_empty(), "pod processes left: {pid_files:?}");

        // With the operator gone, the Zone's finalizer stays; clear it so the namespace goes.
        for kind in ["zones", "records"] {
            let names = run(kubectl(&ns)?.args(["get", kind, "-n", &ns.name, "-o", "name"]))?;
            for name in names.lines() {
                run(kubectl(&ns)?.args([
                    "patch",
                    name,
                    "-n",
                    &ns.name,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]))?;
            }
        }
        Ok(())
    })
    .await;
}
