//! Pod volumes: emptyDir, configMap, secret, downwardAPI and projected (ServiceAccount
//! token, configMap, secret, downwardAPI), as a kubelet materialises them.
//!
//! Each volume is a directory under the Pod's own directory. A container sees it at its
//! `mountPath` through a bind mount in a mount namespace of its own (see `process.rs`), so
//! `/var/run/secrets/kubernetes.io/serviceaccount/token` is the Pod's own token, as in a real
//! cluster.
//!
//! What a volume holds is a pure function of the Pod and of the objects and tokens the caller
//! fetched beforehand ([`VolumeInputs`]), so it is unit-tested without a cluster.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path},
};

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, ServiceAccountTokenProjection, Volume,
};

use super::resolve::{LaunchError, SandboxFacts, SourceKind, field_value};

/// A file inside a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    /// The path relative to the volume's root.
    pub path: String,
    /// The content.
    pub bytes: Vec<u8>,
    /// The permission bits.
    pub mode: u32,
}

/// What a volume is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeContent {
    /// An empty directory the containers write into.
    EmptyDir,
    /// Files written once when the Pod starts.
    Files(Vec<VolumeFile>),
}

/// A container's view of one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPlan {
    /// The volume's name in the Pod.
    pub volume: String,
    /// Where the container sees it.
    pub mount_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A ServiceAccount token a projected volume asks for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenSpec {
    /// The audience; empty means the API server's.
    pub audience: String,
    /// The lifetime asked for, in seconds.
    pub expiration_seconds: i64,
}

/// Everything the volumes of a Pod are built from, fetched by the caller.
#[derive(Clone, Debug, Default)]
pub struct VolumeInputs {
    /// (kind, name) → key → bytes; a missing entry means the object does not exist.
    pub objects: BTreeMap<(SourceKind, String), BTreeMap<String, Vec<u8>>>,
    /// The tokens minted for the Pod's ServiceAccount.
    pub tokens: BTreeMap<TokenSpec, String>,
}

/// The default mode of configMap, secret, downwardAPI and projected files.
const DEFAULT_MODE: u32 = 0o644;
/// The lifetime of a projected token when the Pod does not say (the API server's default).
const DEFAULT_TOKEN_SECONDS: i64 = 3607;

/// The ConfigMaps, Secrets and tokens a Pod's volumes refer to.
pub fn volume_references(pod: &Pod) -> (BTreeSet<(SourceKind, String)>, BTreeSet<TokenSpec>) {
    let mut objects = BTreeSet::new();
    let mut tokens = BTreeSet::new();
    for volume in pod_volumes(pod) {
        if let Some(cm) = &volume.config_map {
            objects.insert((SourceKind::ConfigMap, cm.name.clone()));
        }
        if let Some(secret) = &volume.secret {
            objects.insert((
                SourceKind::Secret,
                secret.secret_name.clone().unwrap_or_default(),
            ));
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                objects.insert((SourceKind::ConfigMap, cm.name.clone()));
            }
            if let Some(secret) = &source.secret {
                objects.insert((SourceKind::Secret, secret.name.clone()));
            }
            if let Some(token) = &source.service_account_token {
                tokens.insert(token_spec(token));
            }
        }
    }
    (objects, tokens)
}

fn token_spec(token: &ServiceAccountTokenProjection) -> TokenSpec {
    TokenSpec {
        audience: token.audience.clone().unwrap_or_default(),
        expiration_seconds: token.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
    }
}

fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten())
}

/// The volumes a container mounts, checked against the Pod's volumes.
pub fn plan_mounts(pod: &Pod, container: &Container) -> Result<Vec<MountPlan>, LaunchError> {
    let declared: BTreeSet<&str> = pod_volumes(pod).map(|v| v.name.as_str()).collect();
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|mount| {
            if !declared.contains(mount.name.as_str()) {
                return Err(LaunchError::Config(format!(
                    "volumeMount {:?} names no volume of the Pod",
                    mount.name
                )));
            }
            if mount.sub_path.as_deref().is_some_and(|p| !p.is_empty())
                || mount.sub_path_expr.is_some()
            {
                return Err(LaunchError::Unsupported(format!(
                    "subPath in volumeMount {:?}",
                    mount.name
                )));
            }
            if !mount.mount_path.starts_with('/') {
                return Err(LaunchError::Config(format!(
                    "mountPath {:?} is not absolute",
                    mount.mount_path
                )));
            }
            Ok(MountPlan {
                volume: mount.name.clone(),
                mount_path: mount.mount_path.clone(),
                read_only: mount.read_only.unwrap_or(false),
            })
        })
        .collect()
}

/// What every volume of the Pod holds, by volume name.
pub fn render_volumes(
    pod: &Pod,
    facts: &SandboxFacts,
    inputs: &VolumeInputs,
) -> Result<BTreeMap<String, VolumeContent>, LaunchError> {
    pod_volumes(pod)
        .map(|volume| {
            Ok((
                volume.name.clone(),
                render_volume(pod, volume, facts, inputs)?,
            ))
        })
        .collect()
}

fn render_volume(
    pod: &Pod,
    volume: &Volume,
    facts: &SandboxFacts,
    inputs: &VolumeInputs,
) -> Result<VolumeContent, LaunchError> {
    if volume.empty_dir.is_some() {
        return Ok(VolumeContent::EmptyDir);
    }
    let mut files = Vec::new();
    if let Some(cm) = &volume.config_map {
        let mode = mode_or_default(cm.default_mode);
        let key = (SourceKind::ConfigMap, cm.name.clone());
        object_files(
            inputs,
            &key,
            cm.items.as_deref(),
            cm.optional,
            mode,
            &mut files,
        )?;
    } else if let Some(secret) = &volume.secret {
        let mode = mode_or_default(secret.default_mode);
        let key = (
            SourceKind::Secret,
            secret.secret_name.clone().unwrap_or_default(),
        );
        object_files(
            inputs,
            &key,
            secret.items.as_deref(),
            secret.optional,
            mode,
            &mut files,
        )?;
    } else if let Some(downward) = &volume.downward_api {
        let mode = mode_or_default(downward.default_mode);
        downward_files(pod, facts, downward.items.as_deref(), mode, &mut files)?;
    } else if let Some(projected) = &volume.projected {
        let mode = mode_or_default(projected.default_mode);
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let key = (SourceKind::ConfigMap, cm.name.clone());
                object_files(
                    inputs,
                    &key,
                    cm.items.as_deref(),
                    cm.optional,
                    mode,
                    &mut files,
                )?;
            } else if let Some(secret) = &source.secret {
                let key = (SourceKind::Secret, secret.name.clone());
                object_files(
                    inputs,
                    &key,
                    secret.items.as_deref(),
                    secret.optional,
                    mode,
                    &mut files,
                )?;
            } else if let Some(downward) = &source.downward_api {
                downward_files(pod, facts, downward.items.as_deref(), mode, &mut files)?;
            } else if let Some(token) = &source.service_account_token {
                let minted = inputs.tokens.get(&token_spec(token)).ok_or_else(|| {
                    LaunchError::Config(format!("no token for the projected path {}", token.path))
                })?;
                files.push(file(&token.path, minted.as_bytes().to_vec(), mode)?);
            } else {
                return Err(LaunchError::Unsupported(format!(
                    "a projected source of volume {:?} other than serviceAccountToken, \
                     configMap, secret and downwardAPI",
                    volume.name
                )));
            }
        }
    } else {
        return Err(LaunchError::Unsupported(format!(
            "volume {:?}: only emptyDir, configMap, secret, downwardAPI and projected volumes \
             are run by the process kubelet",
            volume.name
        )));
    }
    Ok(VolumeContent::Files(files))
}

fn mode_or_default(mode: Option<i32>) -> u32 {
    mode.and_then(|m| u32::try_from(m).ok())
        .map_or(DEFAULT_MODE, |m| m & 0o777)
}

fn object_files(
    inputs: &VolumeInputs,
    key: &(SourceKind, String),
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), LaunchError> {
    let Some(values) = inputs.objects.get(key) else {
        if optional.unwrap_or(false) {
            return Ok(());
        }
        return Err(LaunchError::Config(format!(
            "{:?} {:?} (a volume source) not found",
            key.0, key.1
        )));
    };
    match items {
        None => {
            for (name, bytes) in values {
                files.push(file(name, bytes.clone(), default_mode)?);
            }
        }
        Some(items) => {
            for item in items {
                let bytes = values.get(&item.key).ok_or_else(|| {
                    LaunchError::Config(format!(
                        "key {:?} of {:?} {:?} (a volume item) not found",
                        item.key, key.0, key.1
                    ))
                })?;
                files.push(file(
                    &item.path,
                    bytes.clone(),
                    item.mode.map_or(default_mode, |m| mode_or_default(Some(m))),
                )?);
            }
        }
    }
    Ok(())
}

fn downward_files(
    pod: &Pod,
    facts: &SandboxFacts,
    items: Option<&[DownwardAPIVolumeFile]>,
    default_mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), LaunchError> {
    for item in items.into_iter().flatten() {
        let field = item.field_ref.as_ref().ok_or_else(|| {
            LaunchError::Unsupported(format!("downwardAPI item {:?} without fieldRef", item.path))
        })?;
        let value = field_value(pod, &field.field_path, facts)?;
        files.push(file(
            &item.path,
            value.into_bytes(),
            item.mode.map_or(default_mode, |m| mode_or_default(Some(m))),
        )?);
    }
    Ok(())
}

/// A file at a relative path that stays inside the volume.
fn file(path: &str, bytes: Vec<u8>, mode: u32) -> Result<VolumeFile, LaunchError> {
    let relative = Path::new(path);
    let inside = !path.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        return Err(LaunchError::Config(format!(
            "volume path {path:?} is not a relative path inside the volume"
        )));
    }
    Ok(VolumeFile {
        path: path.to_owned(),
        bytes,
        mode,
    })
}

/// Writes a volume under `dir`, owned by `owner` (uid, gid) when the Pod runs as non-root.
pub fn materialise(
    dir: &Path,
    content: &VolumeContent,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let chown = |path: &Path| match owner {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
        None => Ok(()),
    };
    chown(dir)?;
    match content {
        VolumeContent::EmptyDir => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
        }
        VolumeContent::Files(files) => {
            for f in files {
                let path = dir.join(&f.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                    chown(parent)?;
                }
                std::fs::write(&path, &f.bytes)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
                chown(&path)?;
            }
        }
    }
    Ok(())
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

    /// The shape the ServiceAccount admission plugin gives every Pod that mounts a token.
    fn pod_with_volumes() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "op-0", "namespace": "zf"},
            "spec": {
                "serviceAccountName": "operator",
                "containers": [{
                    "name": "main", "image": "x",
                    "volumeMounts": [
                        {"name": "kube-api-access-abcde", "readOnly": true,
                         "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                        {"name": "scratch", "mountPath": "/var/lib/zonefleet"},
                        {"name": "conf", "mountPath": "/etc/app", "readOnly": true},
                    ],
                }],
                "volumes": [
                    {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    ]}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "conf", "secret": {"secretName": "app-conf", "defaultMode": 256,
                                                "optional": true}},
                ],
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_service_account_volume_holds_token_ca_and_namespace() {
        let pod = pod_with_volumes();
        let (objects, tokens) = volume_references(&pod);
        assert!(objects.contains(&(SourceKind::ConfigMap, "kube-root-ca.crt".into())));
        assert!(objects.contains(&(SourceKind::Secret, "app-conf".into())));
        let spec = TokenSpec {
            audience: String::new(),
            expiration_seconds: 3607,
        };
        assert_eq!(tokens, BTreeSet::from([spec.clone()]));

        let mut inputs = VolumeInputs::default();
        inputs.objects.insert(
            (SourceKind::ConfigMap, "kube-root-ca.crt".into()),
            BTreeMap::from([("ca.crt".into(), b"PEM".to_vec())]),
        );
        inputs.tokens.insert(spec, "eyJ.token".into());
        let volumes = render_volumes(&pod, &facts(), &inputs).unwrap();
        let VolumeContent::Files(files) = &volumes["kube-api-access-abcde"] else {
            panic!("not files");
        };
        let by_path: BTreeMap<&str, &[u8]> = files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.as_slice()))
            .collect();
        assert_eq!(
            by_path,
            BTreeMap::from([
                ("token", b"eyJ.token".as_slice()),
                ("ca.crt", b"PEM".as_slice()),
                ("namespace", b"zf".as_slice())
            ])
        );
        assert!(files.iter().all(|f| f.mode == 0o644));
        assert_eq!(volumes["scratch"], VolumeContent::EmptyDir);
        // The optional Secret is missing: an empty volume, not an error.
        assert_eq!(volumes["conf"], VolumeContent::Files(vec![]));

        let mounts = plan_mounts(&pod, &pod.spec.as_ref().unwrap().containers[0]).unwrap();
        assert_eq!(mounts.len(), 3);
        assert!(mounts[0].read_only && !mounts[1].read_only);
        assert_eq!(mounts[1].mount_path, "/var/lib/zonefleet");
    }

    #[test]
    fn secret_items_modes_and_missing_objects() {
        let mut pod = pod_with_volumes();
        let spec = pod.spec.as_mut().unwrap();
        spec.volumes.as_mut().unwrap()[2] = serde_json::from_value(json!(
            {"name": "conf", "secret": {"secretName": "app-conf", "defaultMode": 256,
              "items": [{"key": "a", "path": "dir/a.txt"}, {"key": "b", "path": "b", "mode": 384}]}}
        ))
        .unwrap();
        let mut inputs = VolumeInputs::default();
        inputs.tokens.insert(
            TokenSpec {
                audience: String::new(),
                expiration_seconds: 3607,
            },
            "t".into(),
        );
        inputs.objects.insert(
            (SourceKind::ConfigMap, "kube-root-ca.crt".into()),
            BTreeMap::from([("ca.crt".into(), b"PEM".to_vec())]),
        );
        let missing = render_volumes(&pod, &facts(), &inputs).unwrap_err();
        assert_eq!(missing.reason(), "CreateContainerConfigError");
        assert!(missing.to_string().contains("app-conf"), "{missing}");

        inputs.objects.insert(
            (SourceKind::Secret, "app-conf".into()),
            BTreeMap::from([
                ("a".into(), b"1".to_vec()),
                ("b".into(), b"2".to_vec()),
                ("c".into(), b"3".to_vec()),
            ]),
        );
        let volumes = render_volumes(&pod, &facts(), &inputs).unwrap();
        assert_eq!(
            volumes["conf"],
            VolumeContent::Files(vec![
                VolumeFile {
                    path: "dir/a.txt".into(),
                    bytes: b"1".to_vec(),
                    mode: 0o400
                },
                VolumeFile {
                    path: "b".into(),
                    bytes: b"2".to_vec(),
                    mode: 0o600
                },
            ])
        );
    }

    #[test]
    fn paths_outside_the_volume_and_unknown_kinds_are_refused() {
        assert!(file("../etc/passwd", vec![], 0o644).is_err());
        assert!(file("/etc/passwd", vec![], 0o644).is_err());
        assert!(file("", vec![], 0o644).is_err());
        assert!(file("a/b", vec![], 0o644).is_ok());

        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {
                "containers": [{"name": "main", "image": "x",
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "x"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}],
            },
        }))
        .unwrap();
        let err = render_volumes(&pod, &facts(), &VolumeInputs::default()).unwrap_err();
        assert_eq!(err.reason(), "CreateContainerConfigError");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert!(plan_mounts(&pod, container).is_err());
    }
}
