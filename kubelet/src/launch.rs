//! Turns a Pod's container into a launch plan: the program, its arguments, its environment,
//! its user, and its probes, as a kubelet would resolve them.
//!
//! Everything here is a pure function of the Pod and of the ConfigMap and Secret values the
//! caller fetched beforehand, so it is unit-tested without a cluster.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Container, EnvVar, Pod, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    image::ImageMap,
    resolve::{LaunchError, SandboxFacts, SourceKind, field_value},
    volume::{MountPlan, plan_mounts},
};

/// The ConfigMaps and Secrets a container refers to, fetched by the caller:
/// (kind, name) → key → value. A missing entry means the object does not exist.
pub type ValueSources = BTreeMap<(SourceKind, String), BTreeMap<String, String>>;

/// A container, resolved and ready to start.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchPlan {
    /// The local binary the image maps to.
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited from the kubelet).
    pub env: Vec<(String, String)>,
    /// `(uid, gid)` from the security context, when set.
    pub run_as: Option<(u32, u32)>,
    /// The volumes the container mounts.
    pub mounts: Vec<MountPlan>,
    /// `readOnlyRootFilesystem`: everything but the volumes is read-only.
    pub read_only_root: bool,
    /// The readiness probe.
    pub readiness: Option<ProbePlan>,
    /// The liveness probe.
    pub liveness: Option<ProbePlan>,
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    /// An HTTP GET that succeeds on a 2xx or 3xx status.
    HttpGet {
        /// The container port.
        port: u16,
        /// The request path.
        path: String,
    },
    /// A TCP connect that succeeds when the port accepts.
    TcpSocket {
        /// The container port.
        port: u16,
    },
}

/// A probe with its timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbePlan {
    /// What is checked.
    pub action: ProbeAction,
    /// The delay after start before the first probe.
    pub initial_delay: Duration,
    /// The time between probes.
    pub period: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
    /// Consecutive successes that count as success.
    pub success_threshold: u32,
    /// Consecutive failures that count as failure.
    pub failure_threshold: u32,
}

/// The ConfigMaps and Secrets a container's environment refers to.
pub fn referenced_sources(container: &Container) -> BTreeSet<(SourceKind, String)> {
    let mut refs = BTreeSet::new();
    for source in container.env_from.iter().flatten() {
        if let Some(cm) = &source.config_map_ref {
            refs.insert((SourceKind::ConfigMap, cm.name.clone()));
        }
        if let Some(secret) = &source.secret_ref {
            refs.insert((SourceKind::Secret, secret.name.clone()));
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(cm) = &from.config_map_key_ref {
            refs.insert((SourceKind::ConfigMap, cm.name.clone()));
        }
        if let Some(secret) = &from.secret_key_ref {
            refs.insert((SourceKind::Secret, secret.name.clone()));
        }
    }
    refs
}

/// Resolves a container of a Pod into a launch plan.
pub fn plan_container(
    pod: &Pod,
    container: &Container,
    facts: &SandboxFacts,
    images: &ImageMap,
    sources: &ValueSources,
) -> Result<LaunchPlan, LaunchError> {
    let image = container.image.clone().unwrap_or_default();
    let program = images
        .resolve(&image)
        .cloned()
        .ok_or_else(|| LaunchError::ImageNotMapped {
            image: image.clone(),
            known: images.repositories().collect::<Vec<_>>().join(", "),
        })?;
    let env = container_env(pod, container, facts, sources)?;
    let lookup: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // `command` replaces the image's entrypoint: its first element stands for the mapped
    // binary, the rest are arguments before `args`.
    let args = container
        .command
        .iter()
        .flatten()
        .skip(1)
        .chain(container.args.iter().flatten())
        .map(|arg| expand_references(arg, &lookup))
        .collect();
    Ok(LaunchPlan {
        program,
        args,
        env,
        run_as: run_as(pod, container),
        mounts: plan_mounts(pod, container)?,
        read_only_root: container
            .security_context
            .as_ref()
            .and_then(|c| c.read_only_root_filesystem)
            .unwrap_or(false),
        readiness: container
            .readiness_probe
            .as_ref()
            .map(|p| plan_probe(p, container))
            .transpose()?,
        liveness: container
            .liveness_probe
            .as_ref()
            .map(|p| plan_probe(p, container))
            .transpose()?,
    })
}

/// The `(uid, gid)` a container runs as, from its security context or the Pod's.
pub fn run_as(pod: &Pod, container: &Container) -> Option<(u32, u32)> {
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let ctx = container.security_context.as_ref();
    let uid = ctx
        .and_then(|c| c.run_as_user)
        .or_else(|| pod_ctx.and_then(|c| c.run_as_user))?;
    let gid = ctx
        .and_then(|c| c.run_as_group)
        .or_else(|| pod_ctx.and_then(|c| c.run_as_group))
        .unwrap_or(uid);
    Some((u32::try_from(uid).ok()?, u32::try_from(gid).ok()?))
}

fn container_env(
    pod: &Pod,
    container: &Container,
    facts: &SandboxFacts,
    sources: &ValueSources,
) -> Result<Vec<(String, String)>, LaunchError> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        ("KUBERNETES_SERVICE_HOST".into(), facts.apiserver.0.clone()),
        (
            "KUBERNETES_SERVICE_PORT".into(),
            facts.apiserver.1.to_string(),
        ),
        (
            "KUBERNETES_SERVICE_PORT_HTTPS".into(),
            facts.apiserver.1.to_string(),
        ),
    ];
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    };
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        let (kind, name, optional) = if let Some(cm) = &source.config_map_ref {
            (
                SourceKind::ConfigMap,
                &cm.name,
                cm.optional.unwrap_or(false),
            )
        } else if let Some(secret) = &source.secret_ref {
            (
                SourceKind::Secret,
                &secret.name,
                secret.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match sources.get(&(kind, name.clone())) {
            Some(values) => {
                for (key, value) in values {
                    set(&mut env, format!("{prefix}{key}"), value.clone());
                }
            }
            None if optional => {}
            None => return Err(LaunchError::Config(format!("{kind:?} {name:?} not found"))),
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(pod, var, facts, sources, &env)? {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

fn env_value(
    pod: &Pod,
    var: &EnvVar,
    facts: &SandboxFacts,
    sources: &ValueSources,
    so_far: &[(String, String)],
) -> Result<Option<String>, LaunchError> {
    let Some(from) = &var.value_from else {
        let lookup: BTreeMap<&str, &str> = so_far
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        return Ok(Some(expand_references(
            var.value.as_deref().unwrap_or(""),
            &lookup,
        )));
    };
    if let Some(field) = &from.field_ref {
        return field_value(pod, &field.field_path, facts).map(Some);
    }
    let (kind, name, key, optional) = if let Some(r) = &from.config_map_key_ref {
        (
            SourceKind::ConfigMap,
            &r.name,
            &r.key,
            r.optional.unwrap_or(false),
        )
    } else if let Some(r) = &from.secret_key_ref {
        (
            SourceKind::Secret,
            &r.name,
            &r.key,
            r.optional.unwrap_or(false),
        )
    } else {
        return Err(LaunchError::Unsupported(format!(
            "valueFrom of env var {}",
            var.name
        )));
    };
    match sources
        .get(&(kind, name.clone()))
        .and_then(|values| values.get(key))
    {
        Some(value) => Ok(Some(value.clone())),
        None if optional => Ok(None),
        None => Err(LaunchError::Config(format!(
            "key {key:?} of {kind:?} {name:?} (env var {}) not found",
            var.name
        ))),
    }
}

/// Kubernetes' `$(VAR)` expansion: defined references are replaced, `$$` escapes a `$`,
/// and undefined references are left as they are.
pub fn expand_references(input: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
        {
            let name = &inner[..close];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn plan_probe(probe: &Probe, container: &Container) -> Result<ProbePlan, LaunchError> {
    let action = if let Some(http) = &probe.http_get {
        ProbeAction::HttpGet {
            port: resolve_port(&http.port, container)?,
            path: http.path.clone().unwrap_or_else(|| "/".into()),
        }
    } else if let Some(tcp) = &probe.tcp_socket {
        ProbeAction::TcpSocket {
            port: resolve_port(&tcp.port, container)?,
        }
    } else {
        return Err(LaunchError::Unsupported(
            "probes other than httpGet and tcpSocket".into(),
        ));
    };
    let secs = |v: Option<i32>, default: u64| {
        Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
    };
    let count = |v: Option<i32>, default: u32| {
        v.and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    Ok(ProbePlan {
        action,
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10),
        timeout: secs(probe.timeout_seconds, 1),
        success_threshold: count(probe.success_threshold, 1),
        failure_threshold: count(probe.failure_threshold, 3),
    })
}

fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, LaunchError> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .ok_or_else(|| LaunchError::Config(format!("named port {name:?} not found")))?,
    };
    u16::try_from(number).map_err(|_| LaunchError::Config(format!("port {number} out of range")))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;

    fn facts() -> SandboxFacts {
        SandboxFacts {
            pod_ip: Ipv4Addr::new(198, 18, 1, 7),
            host_ip: Ipv4Addr::new(198, 18, 0, 1),
            apiserver: ("198.18.0.1".into(), 6443),
        }
    }

    fn images() -> ImageMap {
        let mut map = ImageMap::default();
        map.add_mapping("zonefleet/e2e-testpod=/bin/testpod")
            .unwrap();
        map
    }

    fn pod(container: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns1", "uid": "u-1",
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [container],
                     "securityContext": {"runAsUser": 1000}},
        }))
        .unwrap()
    }

    fn plan(pod: &Pod, sources: &ValueSources) -> Result<LaunchPlan, LaunchError> {
        let container = &pod.spec.as_ref().unwrap().containers[0];
        plan_container(pod, container, &facts(), &images(), sources)
    }

    fn env_of<'a>(plan: &'a LaunchPlan, name: &str) -> Option<&'a str> {
        plan.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn resolves_program_args_downward_api_and_expansion() {
        let pod = pod(json!({
            "name": "main", "image": "zonefleet/e2e-testpod:v1",
            "command": ["/testpod", "--verbose"],
            "args": ["--listen", "$(POD_IP):8080", "$$(POD_IP)", "$(UNDEFINED)"],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "GREETING", "value": "hello $(POD_NAME)"},
            ],
        }));
        let plan = plan(&pod, &ValueSources::new()).unwrap();
        assert_eq!(plan.program, PathBuf::from("/bin/testpod"));
        assert_eq!(
            plan.args,
            [
                "--verbose",
                "--listen",
                "198.18.1.7:8080",
                "$(POD_IP)",
                "$(UNDEFINED)"
            ]
        );
        assert_eq!(env_of(&plan, "POD_NAME"), Some("web-0"));
        assert_eq!(env_of(&plan, "APP"), Some("web"));
        assert_eq!(env_of(&plan, "GREETING"), Some("hello web-0"));
        assert_eq!(env_of(&plan, "KUBERNETES_SERVICE_HOST"), Some("198.18.0.1"));
        assert_eq!(plan.run_as, Some((1000, 1000)));
    }

    #[test]
    fn reads_config_maps_and_secrets_and_reports_missing_ones() {
        let pod = pod(json!({
            "name": "main", "image": "zonefleet/e2e-testpod",
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "env": [{"name": "PASSWORD",
                     "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}],
        }));
        let mut sources = ValueSources::new();
        sources.insert(
            (SourceKind::ConfigMap, "cfg".into()),
            BTreeMap::from([("MODE".into(), "fast".into())]),
        );
        let missing = plan(&pod, &sources).unwrap_err();
        assert_eq!(missing.reason(), "CreateContainerConfigError");
        assert!(missing.to_string().contains("creds"), "{missing}");

        sources.insert(
            (SourceKind::Secret, "creds".into()),
            BTreeMap::from([("password".into(), "s3cret".into())]),
        );
        let plan = plan(&pod, &sources).unwrap();
        assert_eq!(env_of(&plan, "CFG_MODE"), Some("fast"));
        assert_eq!(env_of(&plan, "PASSWORD"), Some("s3cret"));
    }

    #[test]
    fn unknown_images_cannot_start() {
        let pod = pod(json!({"name": "main", "image": "nginx:1.27"}));
        let err = plan(&pod, &ValueSources::new()).unwrap_err();
        assert_eq!(err.reason(), "ErrImagePull");
        assert!(err.to_string().contains("nginx:1.27"));
    }

    #[test]
    fn probes_resolve_named_ports_and_defaults() {
        let pod = pod(json!({
            "name": "main", "image": "zonefleet/e2e-testpod",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
            "livenessProbe": {"tcpSocket": {"port": 8080}},
        }));
        let plan = plan(&pod, &ValueSources::new()).unwrap();
        let readiness = plan.readiness.unwrap();
        assert_eq!(
            readiness.action,
            ProbeAction::HttpGet {
                port: 8080,
                path: "/readyz".into()
            }
        );
        assert_eq!(readiness.period, Duration::from_secs(1));
        assert_eq!(readiness.failure_threshold, 3);
        assert_eq!(
            plan.liveness.unwrap().action,
            ProbeAction::TcpSocket { port: 8080 }
        );
    }

    #[test]
    fn expansion_handles_edge_cases() {
        let vars = BTreeMap::from([("A", "1")]);
        assert_eq!(expand_references("$(A)$(A)", &vars), "11");
        assert_eq!(expand_references("$$(A)", &vars), "$(A)");
        assert_eq!(expand_references("cost $5", &vars), "cost $5");
        assert_eq!(expand_references("$(A", &vars), "$(A");
        assert_eq!(expand_references("end $", &vars), "end $");
    }
}
