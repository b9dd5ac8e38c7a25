//! A container's filesystem view: a private mount namespace with its volumes bound at their
//! mount paths and, for `readOnlyRootFilesystem`, everything else read-only.
//!
//! The `container-enter` binary applies it and then executes the container's command line
//! (`nsenter` into the Pod's network namespace, then the program), so the kubelet itself never
//! changes namespaces.

use std::{
    ffi::OsString,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
};

/// One volume bound into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The volume's directory on the host.
    pub source: PathBuf,
    /// Where the container sees it.
    pub target: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

impl Bind {
    /// The `container-enter` argument: `--bind SRC=DST` or `--bind-ro SRC=DST`.
    pub fn to_args(&self) -> [OsString; 2] {
        let flag = if self.read_only {
            "--bind-ro"
        } else {
            "--bind"
        };
        let mut value = self.source.clone().into_os_string();
        value.push("=");
        value.push(&self.target);
        [flag.into(), value]
    }

    /// Parses `SRC=DST`.
    pub fn parse(value: &str, read_only: bool) -> Result<Self, String> {
        let (source, target) = value
            .split_once('=')
            .filter(|(s, t)| s.starts_with('/') && t.starts_with('/'))
            .ok_or_else(|| format!("{value:?} is not SOURCE=TARGET with absolute paths"))?;
        Ok(Self {
            source: source.into(),
            target: target.into(),
            read_only,
        })
    }
}

/// Creates the mount point of every bind that lacks one, as a runtime creates mount points in
/// an image's filesystem.
pub fn create_mount_points(binds: &[Bind]) -> std::io::Result<()> {
    for bind in binds {
        std::fs::create_dir_all(&bind.target)?;
    }
    Ok(())
}

/// Enters a new mount namespace, applies the binds and the read-only root, then replaces this
/// process with `command`. Returns only on failure.
pub fn enter_and_exec(
    binds: &[Bind],
    read_only_root: bool,
    command: &[OsString],
) -> anyhow::Result<()> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no command to run"))?;
    // Parents before children, so a volume mounted inside another stays visible.
    let mut binds = binds.to_vec();
    binds.sort_by_key(|b| b.target.components().count());
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&Path>,
        "/",
        None::<&Path>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&Path>,
    )?;
    for bind in &binds {
        mount(
            Some(&bind.source),
            &bind.target,
            None::<&Path>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&Path>,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "bind {} at {}: {e}",
                bind.source.display(),
                bind.target.display()
            )
        })?;
        if bind.read_only {
            remount_read_only(&bind.target)?;
        }
    }
    if read_only_root {
        remount_read_only(Path::new("/"))?;
    }
    Err(Command::new(program).args(args).exec().into())
}

fn remount_read_only(target: &Path) -> anyhow::Result<()> {
    mount(
        None::<&Path>,
        target,
        None::<&Path>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&Path>,
    )
    .map_err(|e| anyhow::anyhow!("remount {} read-only: {e}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_round_trip_through_arguments() {
        let bind = Bind {
            source: "/state/pods/ns_p/volumes/token".into(),
            target: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
            read_only: true,
        };
        let [flag, value] = bind.to_args();
        assert_eq!(flag, "--bind-ro");
        assert_eq!(Bind::parse(value.to_str().unwrap(), true).unwrap(), bind);
        assert!(Bind::parse("relative=/x", false).is_err());
        assert!(Bind::parse("/only-source", false).is_err());
    }
}
