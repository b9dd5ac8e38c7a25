//! One Pod's life on the node: sandbox, containers, status, and deletion.

use std::{collections::BTreeMap, net::Ipv4Addr, sync::Arc, time::Duration};

use futures::future::select_all;
use k8s_openapi::{
    api::{
        authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
        core::v1::{ConfigMap, Pod, Secret, ServiceAccount},
    },
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::json;
use tokio::{sync::watch, task::JoinHandle};

use super::{
    KubeletContext,
    container::ContainerRunner,
    launch::{self, ValueSources},
    network::Sandbox,
    process::{container_files, pod_dir, pod_volumes_dir},
    resolve::{LaunchError, SandboxFacts, SourceKind},
    status::{ConditionClock, ContainerPhase, ContainerReport, pod_status},
    volume::{self, TokenSpec, VolumeInputs},
};

/// (kind, name) → key → bytes of the ConfigMaps and Secrets fetched for a Pod.
type FetchedObjects = BTreeMap<(SourceKind, String), BTreeMap<String, Vec<u8>>>;

/// The longest grace period honoured, so a test run never waits on a long one.
const MAX_GRACE: Duration = Duration::from_secs(30);
/// How often a status write that failed is retried.
const STATUS_RETRY: Duration = Duration::from_secs(2);

/// Runs a Pod until it is deleted. `updates` carries the latest Pod object; `None` (or a
/// dropped sender) means it is gone from the API.
pub async fn supervise(ctx: Arc<KubeletContext>, mut updates: watch::Receiver<Option<Pod>>) {
    let Some(pod) = updates.borrow().clone() else {
        return;
    };
    let (namespace, name, uid) = (
        pod.namespace().unwrap_or_default(),
        pod.name_any(),
        pod.uid().unwrap_or_default(),
    );

    let previous_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let address = {
        let mut pool = ctx
            .addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match previous_ip {
            Some(ip) if pool.reserve(ip) => Some(ip),
            _ => pool.allocate(),
        }
    };
    let Some(address) = address else {
        tracing::error!(%namespace, %name, "the pod network has no free address");
        return;
    };
    let sandbox = match ctx.network.create(&uid, address).await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            tracing::error!(%namespace, %name, error = %e, "could not create the pod sandbox");
            ctx.release(address);
            return;
        }
    };
    tracing::info!(%namespace, %name, ip = %address, netns = %sandbox.netns, "pod sandbox ready");

    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let (stop_tx, stop_rx) = watch::channel(None::<Duration>);
    let (mut reports, runners) = start_containers(&ctx, &pod, &sandbox, stop_rx).await;
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    let started = Timestamp::now();
    let mut clock = ConditionClock::default();
    let mut written: Option<serde_json::Value> = None;

    let deleted_in_api = loop {
        let snapshot: Vec<ContainerReport> = reports.iter().map(|r| r.borrow().clone()).collect();
        let status = pod_status(
            address,
            ctx.host_ip,
            started,
            &snapshot,
            &restart_policy,
            &mut clock,
            Timestamp::now(),
        );
        let status = serde_json::to_value(status).unwrap_or_default();
        if written.as_ref() != Some(&status) {
            match api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
            {
                Ok(_) => written = Some(status),
                Err(e) => {
                    tracing::warn!(%namespace, %name, error = %e, "could not write the pod status")
                }
            }
        }
        let container_changed = async {
            if reports.is_empty() {
                std::future::pending::<()>().await;
            }
            let _ = select_all(reports.iter_mut().map(|r| Box::pin(r.changed()))).await;
        };
        tokio::select! {
            () = container_changed => {}
            changed = updates.changed() => {
                let current = if changed.is_ok() { updates.borrow().clone() } else { None };
                match current {
                    None => break None,
                    Some(pod) if pod.metadata.deletion_timestamp.is_some() => break Some(grace_of(&pod)),
                    Some(_) => {}
                }
            }
            () = tokio::time::sleep(STATUS_RETRY), if written.is_none() => {}
        }
    };

    let grace = deleted_in_api.unwrap_or(Duration::from_secs(2));
    tracing::info!(%namespace, %name, ?grace, "stopping the pod");
    let _ = stop_tx.send(Some(grace));
    for runner in runners {
        let _ = runner.await;
    }
    ctx.network.remove(&sandbox.netns).await;
    ctx.release(address);
    let _ = std::fs::remove_dir_all(pod_dir(&ctx.state_dir, &namespace, &name));
    if deleted_in_api.is_some() {
        // The kubelet's confirmation that the Pod is gone: delete it for good.
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => {}
            Err(e) => {
                tracing::warn!(%namespace, %name, error = %e, "could not finish deleting the pod")
            }
        }
    }
    tracing::info!(%namespace, %name, "pod stopped");
}

fn grace_of(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0)).min(MAX_GRACE)
}

async fn start_containers(
    ctx: &Arc<KubeletContext>,
    pod: &Pod,
    sandbox: &Sandbox,
    stop: watch::Receiver<Option<Duration>>,
) -> (Vec<watch::Receiver<ContainerReport>>, Vec<JoinHandle<()>>) {
    let namespace = pod.namespace().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let facts = SandboxFacts {
        pod_ip: sandbox.address,
        host_ip: ctx.host_ip,
        apiserver: ctx.apiserver.clone(),
    };
    // Every ConfigMap and Secret the Pod names, for its volumes and its containers'
    // environments, is read once.
    let (mut object_refs, token_specs) = volume::volume_references(pod);
    for container in &spec.containers {
        object_refs.extend(launch::referenced_sources(container));
    }
    let objects = fetch_objects(ctx, &namespace, object_refs).await;
    let env_sources = objects.as_ref().map_err(Clone::clone).map(|objects| {
        objects
            .iter()
            .map(|(key, values)| {
                let values = values
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect();
                (key.clone(), values)
            })
            .collect::<ValueSources>()
    });
    let volumes = match objects {
        Ok(objects) => prepare_volumes(ctx, pod, &facts, objects, token_specs).await,
        Err(e) => Err(e),
    };
    let mut reports = Vec::new();
    let mut runners = Vec::new();
    for container in &spec.containers {
        let plan = volumes
            .clone()
            .and(env_sources.clone())
            .and_then(|sources| {
                launch::plan_container(pod, container, &facts, &ctx.images, &sources)
            });
        let (report_tx, report_rx) = watch::channel(ContainerReport {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            phase: ContainerPhase::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last_termination: None,
            restart_count: 0,
        });
        let runner = ContainerRunner {
            plan,
            sandbox: sandbox.clone(),
            files: container_files(&ctx.state_dir, &namespace, &pod.name_any(), &container.name),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            termination_grace: grace_of(pod),
        };
        runners.push(tokio::spawn(runner.run(report_tx, stop.clone())));
        reports.push(report_rx);
    }
    (reports, runners)
}

/// Mints the tokens the Pod's volumes ask for and writes every volume under the Pod's
/// directory, owned by the user the Pod runs as.
async fn prepare_volumes(
    ctx: &KubeletContext,
    pod: &Pod,
    facts: &SandboxFacts,
    objects: FetchedObjects,
    token_specs: std::collections::BTreeSet<TokenSpec>,
) -> Result<(), LaunchError> {
    let namespace = pod.namespace().unwrap_or_default();
    let mut inputs = VolumeInputs {
        objects,
        tokens: BTreeMap::new(),
    };
    for spec in token_specs {
        let token = request_token(ctx, pod, &spec).await?;
        inputs.tokens.insert(spec, token);
    }
    let rendered = volume::render_volumes(pod, facts, &inputs)?;
    let Some(first) = pod.spec.as_ref().and_then(|s| s.containers.first()) else {
        return Ok(());
    };
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.fs_group)
        .and_then(|g| u32::try_from(g).ok());
    let owner = launch::run_as(pod, first).map(|(uid, gid)| (uid, fs_group.unwrap_or(gid)));
    let volumes_dir = pod_volumes_dir(&ctx.state_dir, &namespace, &pod.name_any());
    for (name, content) in &rendered {
        volume::materialise(&volumes_dir.join(name), content, owner)
            .map_err(|e| LaunchError::Config(format!("cannot write volume {name:?}: {e}")))?;
    }
    Ok(())
}

/// Mints a token for the Pod's ServiceAccount, bound to the Pod, as the kubelet does for a
/// projected `serviceAccountToken` source (the node authorizer allows it for Pods bound to
/// this node).
async fn request_token(
    ctx: &KubeletContext,
    pod: &Pod,
    spec: &TokenSpec,
) -> Result<String, LaunchError> {
    let namespace = pod.namespace().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: (!spec.audience.is_empty()).then(|| vec![spec.audience.clone()]),
            expiration_seconds: Some(spec.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name_any()),
                uid: pod.uid(),
            }),
        }),
        ..TokenRequest::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api
            .create_token_request(&account, &PostParams::default(), &request)
            .await
        {
            Ok(response) => {
                return response.status.and_then(|s| s.token).ok_or_else(|| {
                    LaunchError::Config("the TokenRequest returned no token".into())
                });
            }
            // The node authorizer learns of a freshly bound Pod a moment later.
            Err(kube::Error::Api(s)) if s.code == 403 && attempt < 20 => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(LaunchError::Config(format!(
                    "cannot mint a token for ServiceAccount {namespace}/{account}: {e}"
                )));
            }
        }
    }
}

/// Reads ConfigMaps and Secrets of the Pod's namespace. The node authorizer learns a Pod's
/// references a moment after it is bound, so a refusal is retried briefly. A missing object
/// is left out (whether that is an error depends on where it is referenced).
async fn fetch_objects(
    ctx: &KubeletContext,
    namespace: &str,
    refs: std::collections::BTreeSet<(SourceKind, String)>,
) -> Result<FetchedObjects, LaunchError> {
    let mut objects = FetchedObjects::new();
    for (kind, name) in refs {
        let mut attempt = 0;
        let values = loop {
            attempt += 1;
            let result = match kind {
                SourceKind::ConfigMap => {
                    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
                        .get_opt(&name)
                        .await
                        .map(|cm| {
                            cm.map(|cm| {
                                let text = cm.data.unwrap_or_default().into_iter();
                                let binary = cm.binary_data.unwrap_or_default().into_iter();
                                text.map(|(k, v)| (k, v.into_bytes()))
                                    .chain(binary.map(|(k, v)| (k, v.0)))
                                    .collect::<BTreeMap<_, _>>()
                            })
                        })
                }
                SourceKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
                    .get_opt(&name)
                    .await
                    .map(|s| {
                        s.map(|s| {
                            s.data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, v)| (k, v.0))
                                .collect::<BTreeMap<_, _>>()
                        })
                    }),
            };
            match result {
                Ok(values) => break values,
                Err(kube::Error::Api(s)) if s.code == 403 && attempt < 20 => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(LaunchError::Config(format!(
                        "cannot read {kind:?} {name:?}: {e}"
                    )));
                }
            }
        };
        if let Some(values) = values {
            objects.insert((kind, name), values);
        }
    }
    Ok(objects)
}

impl KubeletContext {
    fn release(&self, address: Ipv4Addr) {
        self.addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .release(address);
    }
}
