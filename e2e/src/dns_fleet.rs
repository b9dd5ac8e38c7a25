//! DNS pods run by the process kubelet, and the Service in front of them, as tests and the
//! demo create them.

use std::path::Path;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Value, json};

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
