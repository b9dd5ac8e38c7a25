//! What resolving a container's environment ([`launch`](super::launch)) and materialising
//! its Pod's volumes ([`volume`](super::volume)) both need: where values come from besides
//! the Pod, the sandbox facts and `fieldRef` paths of the downward API, and why a container
//! cannot be started.

use std::{collections::BTreeMap, net::Ipv4Addr};

use k8s_openapi::api::core::v1::Pod;

/// Where an environment value or a volume's files can come from besides the Pod itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKind {
    /// A ConfigMap in the Pod's namespace.
    ConfigMap,
    /// A Secret in the Pod's namespace.
    Secret,
}

/// Facts about the pod sandbox that the downward API and the service environment expose.
#[derive(Clone, Debug)]
pub struct SandboxFacts {
    /// The Pod's own address.
    pub pod_ip: Ipv4Addr,
    /// The node's address.
    pub host_ip: Ipv4Addr,
    /// The API server's address and port, as `KUBERNETES_SERVICE_HOST`/`_PORT`.
    pub apiserver: (String, u16),
}

/// Why a container cannot be started; the reason becomes its `Waiting` state.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchError {
    /// The image has no local binary.
    #[error("image {image:?} is not mapped to a local binary (mapped: {known})")]
    ImageNotMapped {
        /// The image asked for.
        image: String,
        /// The mapped repositories.
        known: String,
    },
    /// An environment source is missing.
    #[error("{0}")]
    Config(String),
    /// A probe or field the process kubelet does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl LaunchError {
    /// The `Waiting` reason a kubelet reports for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            LaunchError::ImageNotMapped { .. } => "ErrImagePull",
            LaunchError::Config(_) | LaunchError::Unsupported(_) => "CreateContainerConfigError",
        }
    }
}

/// The downward API's `fieldRef` paths.
pub fn field_value(pod: &Pod, path: &str, facts: &SandboxFacts) -> Result<String, LaunchError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: Option<&BTreeMap<String, String>>, key: &str| {
        map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    let quoted_key = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_owned)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.to_string(),
        _ => {
            if let Some(key) = quoted_key("metadata.labels['") {
                from_map(meta.labels.as_ref(), &key)
            } else if let Some(key) = quoted_key("metadata.annotations['") {
                from_map(meta.annotations.as_ref(), &key)
            } else {
                return Err(LaunchError::Unsupported(format!("fieldRef {path}")));
            }
        }
    })
}
