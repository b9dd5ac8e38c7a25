//! The node the process kubelet stands for: registered once, kept alive by a Lease in
//! `kube-node-lease` and a periodic status heartbeat, so that the node lifecycle controller
//! of the real kube-controller-manager treats it like any node.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::Node,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::json;

const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: i32 = 40;
const RENEW_INTERVAL: Duration = Duration::from_secs(10);
const STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// Creates the Node if it does not exist and reports it Ready.
pub async fn register(client: &Client, name: &str, address: Ipv4Addr) -> kube::Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/hostname".to_owned(), name.to_owned()),
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                (
                    "kubernetes.io/arch".to_owned(),
                    std::env::consts::ARCH.replace("x86_64", "amd64"),
                ),
            ])),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => tracing::info!(node = name, "registered the node"),
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    let node = report_status(&nodes, name, address).await?;
    renew_lease(client, &node).await?;
    Ok(node)
}

async fn report_status(nodes: &Api<Node>, name: &str, address: Ipv4Addr) -> kube::Result<Node> {
    let now = Timestamp::now().to_string();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let capacity =
        json!({"cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "50Gi"});
    let status = json!({"status": {
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "process kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": address.to_string()},
            {"type": "Hostname", "address": name},
        ],
        "capacity": capacity,
        "allocatable": capacity,
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": "", "osImage": "zonefleet process kubelet",
            "containerRuntimeVersion": "process://1", "kubeletVersion": "process-kubelet",
            "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64"),
        },
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(status))
        .await
}

async fn renew_lease(client: &Client, node: &Node) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let name = node.name_any();
    let renew = json!({"spec": {"renewTime": MicroTime(Timestamp::now())}});
    match leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&renew))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.clone(),
                        uid: node.meta().uid.clone().unwrap_or_default(),
                        ..OwnerReference::default()
                    }]),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(name.clone()),
                    lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                    renew_time: Some(MicroTime(Timestamp::now())),
                    ..LeaseSpec::default()
                }),
            };
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(drop)
        }
        Err(e) => Err(e),
    }
}

/// Renews the Lease every 10 s and the status every minute, forever.
pub async fn heartbeat(client: Client, node: Node, address: Ipv4Addr) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut renew = tokio::time::interval(RENEW_INTERVAL);
    let mut status = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = renew.tick() => {
                if let Err(e) = renew_lease(&client, &node).await {
                    tracing::warn!(error = %e, "could not renew the node lease");
                }
            }
            _ = status.tick() => {
                if let Err(e) = report_status(&nodes, &node.name_any(), address).await {
                    tracing::warn!(error = %e, "could not report the node status");
                }
            }
        }
    }
}
