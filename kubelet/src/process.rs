//! Container processes: started inside the Pod's network namespace in a process group of
//! their own, logged to a file, and recorded in a pid file (`<pid> <start time>`) that
//! `cluster.sh down` can act on if the kubelet itself dies.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, Command};

use super::{
    launch::LaunchPlan,
    mount_namespace::{Bind, create_mount_points},
    network::Sandbox,
};

/// A running container process.
#[derive(Debug)]
pub struct ContainerProcess {
    child: Child,
    pid: u32,
    pid_file: PathBuf,
}

/// Where a container's files go.
#[derive(Clone, Debug)]
pub struct ContainerFiles {
    /// Its working directory (also `$HOME`).
    pub work_dir: PathBuf,
    /// Its combined stdout and stderr.
    pub log_file: PathBuf,
    /// Its pid file.
    pub pid_file: PathBuf,
    /// The Pod's volumes, one directory each.
    pub volumes_dir: PathBuf,
}

/// The helper that starts a container in a mount namespace of its own: `container-enter`,
/// built next to the kubelet.
fn container_enter_binary() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("container-enter"))
}

/// The start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19).map(str::to_owned)
}

impl ContainerProcess {
    /// Starts a container's process in its sandbox.
    pub fn spawn(
        plan: &LaunchPlan,
        sandbox: &Sandbox,
        files: &ContainerFiles,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&files.work_dir)?;
        if let Some((uid, gid)) = plan.run_as {
            std::os::unix::fs::chown(&files.work_dir, Some(uid), Some(gid))?;
        }
        if let Some(dir) = files.log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log_file)?;
        let binds: Vec<Bind> = plan
            .mounts
            .iter()
            .map(|m| Bind {
                source: files.volumes_dir.join(&m.volume),
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only,
            })
            .collect();
        let mut command = if binds.is_empty() && !plan.read_only_root {
            Command::new("nsenter")
        } else {
            create_mount_points(&binds)?;
            let mut command = Command::new(container_enter_binary()?);
            command.args(binds.iter().flat_map(Bind::to_args));
            if plan.read_only_root {
                command.arg("--read-only-root");
            }
            command.args(["--", "nsenter"]);
            command
        };
        command.arg(format!("--net={}", sandbox.netns_path().display()));
        if let Some((uid, gid)) = plan.run_as {
            command.args(["--setuid", &uid.to_string(), "--setgid", &gid.to_string()]);
        }
        command
            .arg("--")
            .arg(&plan.program)
            .args(&plan.args)
            .env_clear()
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", &files.work_dir)
            .current_dir(&files.work_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the process exited at once"))?;
        let start = process_start_time(pid).unwrap_or_default();
        std::fs::write(&files.pid_file, format!("{pid} {start}\n"))?;
        Ok(Self {
            child,
            pid,
            pid_file: files.pid_file.clone(),
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        let _ = std::fs::remove_file(&self.pid_file);
        status
    }

    /// SIGTERM to the process group, then SIGKILL after the grace period.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let group = Pid::from_raw(i32::try_from(self.pid).ok()?);
        let _ = killpg(group, Signal::SIGTERM);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    "the process outlived its grace period; killing it"
                );
                let _ = killpg(group, Signal::SIGKILL);
                self.child.wait().await.ok()
            }
        };
        // Anything else left in the group.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = std::fs::remove_file(&self.pid_file);
        status
    }
}

/// The directory of Pod `namespace/name` under the state directory: its containers' working
/// directories and its volumes.
pub fn pod_dir(state_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    state_dir.join("pods").join(format!("{namespace}_{name}"))
}

/// The directory of Pod `namespace/name`'s volumes, one directory each.
pub fn pod_volumes_dir(state_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    pod_dir(state_dir, namespace, name).join("volumes")
}

/// The pid and start time a pid file records (`<pid> <start time>`).
pub fn read_pid_file(pid_file: &Path) -> std::io::Result<(u32, String)> {
    let recorded = std::fs::read_to_string(pid_file)?;
    let mut fields = recorded.split_whitespace();
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not `<pid> <start>`");
    let pid = fields
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let start = fields.next().unwrap_or_default().to_owned();
    Ok((pid, start))
}

/// The files of container `container` of Pod `namespace/name` under the state directory.
pub fn container_files(
    state_dir: &Path,
    namespace: &str,
    name: &str,
    container: &str,
) -> ContainerFiles {
    let id = format!("{namespace}_{name}_{container}");
    let pod_dir = pod_dir(state_dir, namespace, name);
    ContainerFiles {
        work_dir: pod_dir.join(container),
        volumes_dir: pod_volumes_dir(state_dir, namespace, name),
        log_file: state_dir
            .join("logs")
            .join("pods")
            .join(format!("{id}.log")),
        pid_file: state_dir.join("pods").join(format!("{id}.pid")),
    }
}
