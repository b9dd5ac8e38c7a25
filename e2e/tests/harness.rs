//! Proves the local control plane and the process kubelet behave as a cluster does.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::{
    authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec},
    core::v1::{Pod, Secret, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;
use zonefleet_e2e::{
    harness::{TestNamespace, wait_for_object, wait_until, with_test_namespace},
    http,
};
use zonefleet_process_kubelet::process::{process_start_time, read_pid_file};

const TIMEOUT: Duration = Duration::from_secs(60);
const TEST_POD_PORT: u16 = 8080;

fn pod_label(ns: &TestNamespace) -> anyhow::Result<(String, String)> {
    let label = ns.env.var("ZONEFLEET_POD_LABEL")?;
    let (key, value) = label
        .split_once('=')
        .context("ZONEFLEET_POD_LABEL is key=value")?;
    Ok((key.to_owned(), value.to_owned()))
}

/// A test pod run by the process kubelet, with a 1 s readiness probe on `/readyz`.
fn test_pod(ns: &TestNamespace, name: &str, start_unready: bool) -> anyhow::Result<Pod> {
    let (key, value) = pod_label(ns)?;
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
    ];
    if start_unready {
        env.push(json!({"name": "START_UNREADY", "value": "1"}));
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {key: value, "app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{
                "name": "server",
                "image": "zonefleet/e2e-testpod:latest",
                "ports": [{"name": "http", "containerPort": TEST_POD_PORT}],
                "env": env,
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http"},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
            }],
        },
    }))?)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

async fn wait_for_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    accept: impl Fn(&Pod) -> bool,
) -> anyhow::Result<Pod> {
    wait_for_object(pods, name, what, TIMEOUT, accept).await
}

async fn get(ip: Ipv4Addr, path: &str) -> anyhow::Result<http::Response> {
    Ok(http::request(
        "GET",
        SocketAddr::from((ip, TEST_POD_PORT)),
        path,
        Duration::from_secs(2),
    )
    .await?)
}

async fn post(ip: Ipv4Addr, path: &str) -> anyhow::Result<()> {
    let response = http::request(
        "POST",
        SocketAddr::from((ip, TEST_POD_PORT)),
        path,
        Duration::from_secs(2),
    )
    .await?;
    ensure!(
        response.status == 200,
        "POST {path} answered {}",
        response.status
    );
    Ok(())
}

#[tokio::test]
async fn apiserver_authenticates_service_accounts_and_rbac_denies_them_without_a_role() {
    with_test_namespace("rbac", |ns| async move {
        let accounts: Api<ServiceAccount> = Api::namespaced(ns.client.clone(), &ns.name);
        accounts
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "no-role"}}))?)
            .await?;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec { expiration_seconds: Some(600), ..TokenRequestSpec::default() }),
            ..TokenRequest::default()
        };
        let issued: TokenRequest =
            accounts.create_subresource("token", "no-role", &PostParams::default(), &request).await?;
        let token = issued.status.and_then(|s| s.token).context("the token request returns a token")?;
        let as_account = ns.env.token_client(&token).await?;

        // The signed token authenticates: the API server knows who is asking.
        let review: SelfSubjectReview = Api::<SelfSubjectReview>::all(as_account.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await?;
        let username = review.status.and_then(|s| s.user_info).and_then(|u| u.username);
        assert_eq!(username, Some(format!("system:serviceaccount:{}:no-role", ns.name)));

        // Without a role, RBAC denies it.
        let pods: Api<Pod> = Api::namespaced(as_account.clone(), &ns.name);
        let secrets: Api<Secret> = Api::namespaced(as_account.clone(), &ns.name);
        for denied in [pods.list(&ListParams::default()).await.err(), secrets.list(&ListParams::default()).await.err()] {
            match denied {
                Some(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 403, "{status:?}");
                    assert!(status.message.contains("no-role"), "{}", status.message);
                }
                other => panic!("expected 403 Forbidden, got {other:?}"),
            }
        }

        // Granting a Role lets exactly that through, which shows the denial came from RBAC.
        let roles: Api<Role> = Api::namespaced(ns.client.clone(), &ns.name);
        roles.create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "list-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        }))?).await?;
        let bindings: Api<RoleBinding> = Api::namespaced(ns.client.clone(), &ns.name);
        bindings.create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "list-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": "no-role", "namespace": ns.name}],
        }))?).await?;
        wait_until("the role to take effect", TIMEOUT, || async {
            Ok(pods.list(&ListParams::default()).await.ok().map(drop))
        })
        .await?;
        assert!(secrets.list(&ListParams::default()).await.is_err(), "secrets stay denied");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn process_pod_becomes_ready_and_answers_on_its_own_address() {
    with_test_namespace("pod", |ns| async move {
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        pods.create(&PostParams::default(), &test_pod(&ns, "web", false)?)
            .await?;
        let pod = wait_for_pod(&pods, "web", "Ready", is_ready).await?;

        let ip = pod_ip(&pod).context("a pod IP")?;
        let node_ip: Ipv4Addr = ns.env.var("ZONEFLEET_HOST_IP")?.parse()?;
        ensure!(
            ip != node_ip && !ip.is_loopback(),
            "the pod has an address of its own, got {ip}"
        );
        let spec = pod.spec.as_ref().context("spec")?;
        assert_eq!(
            spec.node_name.as_deref(),
            Some(ns.env.var("ZONEFLEET_NODE_NAME")?)
        );
        let status = pod.status.as_ref().context("status")?;
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let container = &status
            .container_statuses
            .as_ref()
            .context("container statuses")?[0];
        assert!(
            container.ready
                && container
                    .state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some())
        );

        // The process listens on its real container port, on the pod's address, and knows
        // its identity through the downward API.
        let response = get(ip, "/").await?;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, format!("{}/web {ip}", ns.name));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn service_over_a_process_pod_gets_an_endpoint_slice_that_follows_readiness() {
    with_test_namespace("svc", |ns| async move {
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        pods.create(&PostParams::default(), &test_pod(&ns, "backend", true)?)
            .await?;
        let services: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
        services
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": "backend"},
                    "spec": {"selector": {"app": "backend"},
                             "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
                }))?,
            )
            .await?;

        let pod = wait_for_pod(&pods, "backend", "running with an address", |p| {
            pod_ip(p).is_some()
        })
        .await?;
        let ip = pod_ip(&pod).context("a pod IP")?;
        assert!(!is_ready(&pod), "the pod starts unready");

        let slices: Api<EndpointSlice> = Api::namespaced(ns.client.clone(), &ns.name);
        let by_service = ListParams::default().labels("kubernetes.io/service-name=backend");
        let endpoint_ready = |want: bool| {
            let (slices, by_service) = (slices.clone(), by_service.clone());
            async move {
                let list = slices.list(&by_service).await?;
                let found = list
                    .items
                    .iter()
                    .flat_map(|s| s.endpoints.iter().flatten())
                    .find(|e| {
                        e.addresses.contains(&ip.to_string())
                            && e.target_ref.as_ref().and_then(|r| r.name.as_deref())
                                == Some("backend")
                            && e.conditions.as_ref().and_then(|c| c.ready) == Some(want)
                    });
                anyhow::Ok(found.map(drop))
            }
        };
        wait_until("a not-ready endpoint for the pod", TIMEOUT, || {
            endpoint_ready(false)
        })
        .await?;
        let slice = &slices.list(&by_service).await?.items[0];
        let port = slice
            .ports
            .as_ref()
            .and_then(|p| p.first())
            .and_then(|p| p.port);
        assert_eq!(
            port,
            Some(i32::from(TEST_POD_PORT)),
            "the slice carries the container port"
        );

        post(ip, "/ready").await?;
        wait_for_pod(&pods, "backend", "Ready", is_ready).await?;
        wait_until("a ready endpoint for the pod", TIMEOUT, || {
            endpoint_ready(true)
        })
        .await?;

        post(ip, "/unready").await?;
        wait_for_pod(&pods, "backend", "not Ready", |p| !is_ready(p)).await?;
        wait_until("the endpoint to turn not ready", TIMEOUT, || {
            endpoint_ready(false)
        })
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn deleting_a_pod_kills_its_process_and_frees_its_address() {
    with_test_namespace("delete", |ns| async move {
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        pods.create(&PostParams::default(), &test_pod(&ns, "doomed", false)?)
            .await?;
        let pod = wait_for_pod(&pods, "doomed", "Ready", is_ready).await?;
        let ip = pod_ip(&pod).context("a pod IP")?;

        let (pid, start) = read_pid_file(&ns.pid_file("doomed", "server")?)?;
        ensure!(!start.is_empty(), "a start time is recorded");
        ensure!(
            process_start_time(pid).as_deref() == Some(start.as_str()),
            "process {pid} runs"
        );
        get(ip, "/").await?;

        pods.delete("doomed", &DeleteParams::default()).await?;
        wait_until("the pod to be gone from the API", TIMEOUT, || async {
            Ok(pods.get_opt("doomed").await?.is_none().then_some(()))
        })
        .await?;
        if process_start_time(pid).as_deref() == Some(start.as_str()) {
            bail!("process {pid} still runs after its pod was deleted");
        }
        ensure!(
            get(ip, "/").await.is_err(),
            "nothing answers on {ip} any more"
        );
        ensure!(
            !ns.pid_file("doomed", "server")?.exists(),
            "the pid file is removed"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_unmapped_image_is_reported_and_not_run() {
    with_test_namespace("image", |ns| async move {
        let (key, value) = pod_label(&ns)?;
        let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "unknown", "labels": {key: value}},
                "spec": {"containers": [{"name": "main", "image": "docker.io/library/nginx:1.27"}]},
            }))?,
        )
        .await?;
        let pod = wait_for_pod(&pods, "unknown", "waiting on its image", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.state
                            .as_ref()
                            .and_then(|s| s.waiting.as_ref())
                            .is_some_and(|w| w.reason.as_deref() == Some("ErrImagePull"))
                    })
                })
        })
        .await?;
        let status = pod.status.context("status")?;
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let waiting = status.container_statuses.context("statuses")?[0]
            .state
            .clone()
            .context("state")?
            .waiting
            .context("waiting")?;
        let message = waiting.message.unwrap_or_default();
        assert!(
            message.contains("nginx") && message.contains("not mapped"),
            "{message}"
        );
        ensure!(
            !ns.pid_file("unknown", "main")?.exists(),
            "no process was started"
        );
        Ok(())
    })
    .await;
}
