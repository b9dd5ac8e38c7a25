//! The process kubelet: plays kubelet for the Pods of the end-to-end tests.
//!
//! No container runtime can run on the test machines, so this binds Pods that carry a chosen
//! label to its node, runs each container's image as a local binary inside a network
//! namespace of the Pod's own, probes it, and writes the Pod's status as a kubelet would. The
//! real EndpointSlice controller then publishes the Pods behind Services as in any cluster.
//!
//! It acts under two identities, as the real components do: the node's
//! (`system:node:<name>`, confined by Node authorization and NodeRestriction) for the node,
//! its Lease and its Pods, and the scheduler's (`system:kube-scheduler`) for bindings.
//!
//! The binaries: `process-kubelet` runs [`run`]; `container-enter` is the helper it starts
//! each container with (see [`mount_namespace`]). [`http`] is its prober's HTTP client, which
//! the end-to-end tests use too.

pub mod container;
pub mod http;
pub mod image;
pub mod ipam;
pub mod launch;
pub mod mount_namespace;
pub mod network;
pub mod node;
pub mod pod;
pub mod probe;
pub mod process;
pub mod resolve;
pub mod status;
pub mod volume;

use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use tracing::Instrument;

use self::{image::ImageMap, ipam::PodAddressPool, network::PodNetwork};

/// What the supervisors of all Pods share.
#[allow(missing_debug_implementations)]
pub struct KubeletContext {
    /// The node's client.
    pub client: Client,
    /// Image → binary.
    pub images: ImageMap,
    /// The pod network's host side.
    pub network: PodNetwork,
    /// Free and used pod addresses.
    pub addresses: Mutex<PodAddressPool>,
    /// Pid files, logs and pod working directories live here.
    pub state_dir: PathBuf,
    /// The node's address.
    pub host_ip: Ipv4Addr,
    /// The API server as Pods reach it.
    pub apiserver: (String, u16),
}

/// The process kubelet's settings.
#[allow(missing_debug_implementations)]
pub struct KubeletConfig {
    /// The node's client (`system:node:<name>`).
    pub node_client: Client,
    /// The client that binds Pods (`system:kube-scheduler`).
    pub scheduler_client: Client,
    /// The node's name.
    pub node_name: String,
    /// The label selector of the Pods to run.
    pub selector: String,
    /// Image → binary.
    pub images: ImageMap,
    /// The pod network.
    pub network: PodNetwork,
    /// The API server as Pods reach it.
    pub apiserver: (String, u16),
}

struct Supervised {
    updates: watch::Sender<Option<Pod>>,
    task: JoinHandle<()>,
}

/// Runs until SIGTERM or SIGINT, then stops every Pod it runs.
pub async fn run(config: KubeletConfig) -> anyhow::Result<()> {
    let host_ip = config.network.gateway;
    let node = node::register(&config.node_client, &config.node_name, host_ip).await?;
    let heartbeat = tokio::spawn(node::heartbeat(config.node_client.clone(), node, host_ip));
    let ctx = Arc::new(KubeletContext {
        client: config.node_client.clone(),
        images: config.images,
        addresses: Mutex::new(PodAddressPool::new(host_ip, config.network.prefix_len)),
        state_dir: config.network.state_dir.clone(),
        network: config.network,
        host_ip,
        apiserver: config.apiserver,
    });
    let binder = Binder {
        client: config.scheduler_client,
        node_name: config.node_name.clone(),
    };
    let scheduler = tokio::spawn(binder.run(config.selector.clone()));

    // Node authorization lets a node list and watch only the Pods bound to it.
    let pods: Api<Pod> = Api::all(config.node_client);
    let on_this_node = watcher::Config::default()
        .labels(&config.selector)
        .fields(&format!("spec.nodeName={}", config.node_name));
    let mut events = watcher(pods, on_this_node).default_backoff().boxed();
    let mut supervised: HashMap<String, Supervised> = HashMap::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tracing::info!(node = %config.node_name, selector = %config.selector, "process kubelet running");

    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        supervised.retain(|_, s| !s.task.is_finished());
        match event {
            Some(Ok(watcher::Event::Apply(pod))) => {
                handle_pod(&ctx, &mut supervised, pod);
            }
            Some(Ok(watcher::Event::InitApply(pod))) => {
                listed.insert(pod.uid().unwrap_or_default());
                handle_pod(&ctx, &mut supervised, pod);
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                if let Some(s) = supervised.get(&pod.uid().unwrap_or_default()) {
                    let _ = s.updates.send(None);
                }
            }
            Some(Ok(watcher::Event::Init)) => listed.clear(),
            Some(Ok(watcher::Event::InitDone)) => {
                // A Pod missing from a fresh list was deleted while the watch was down.
                for (uid, s) in &supervised {
                    if !listed.contains(uid) {
                        let _ = s.updates.send(None);
                    }
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            None => break,
        }
    }

    tracing::info!(pods = supervised.len(), "shutting down: stopping every pod");
    heartbeat.abort();
    scheduler.abort();
    for s in supervised.values() {
        let _ = s.updates.send(None);
    }
    for (_, s) in supervised {
        let _ = s.task.await;
    }
    Ok(())
}

/// Starts a supervisor for a Pod bound to this node, or hands it the Pod's new state.
fn handle_pod(ctx: &Arc<KubeletContext>, supervised: &mut HashMap<String, Supervised>, pod: Pod) {
    let uid = pod.uid().unwrap_or_default();
    if let Some(s) = supervised.get(&uid) {
        let _ = s.updates.send(Some(pod));
        return;
    }
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| matches!(phase, "Succeeded" | "Failed"));
    if finished && pod.metadata.deletion_timestamp.is_none() {
        return;
    }
    let span = tracing::info_span!("pod", namespace = %pod.namespace().unwrap_or_default(), name = %pod.name_any());
    let (updates, receiver) = watch::channel(Some(pod));
    let task = tokio::spawn(pod::supervise(ctx.clone(), receiver).instrument(span));
    supervised.insert(uid, Supervised { updates, task });
}

/// Binds unscheduled Pods to the node, as the scheduler would.
struct Binder {
    client: Client,
    node_name: String,
}

impl Binder {
    /// Watches the unscheduled Pods that carry the label, and binds each to the node.
    async fn run(self, selector: String) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let unscheduled = watcher::Config::default()
            .labels(&selector)
            .fields("spec.nodeName=");
        let mut events = watcher(pods, unscheduled)
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(pod) if pod.metadata.deletion_timestamp.is_none() => self.bind(&pod).await,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unscheduled pod watch failed; retrying"),
            }
        }
    }

    async fn bind(&self, pod: &Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name_any()),
                uid: pod.uid(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(self.node_name.clone()),
                ..ObjectReference::default()
            },
        };
        match api
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &pod.name_any(),
                &PostParams::default(),
                &binding,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(%namespace, pod = %pod.name_any(), node = %self.node_name, "bound pod")
            }
            Err(e) => {
                tracing::warn!(%namespace, pod = %pod.name_any(), error = %e, "could not bind pod")
            }
        }
    }
}
