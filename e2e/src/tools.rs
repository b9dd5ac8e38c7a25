//! The cluster tools `e2e/tools.sh` installs (kubectl, helm, …), run as a user would.

use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

use crate::{harness::TestNamespace, operator::repo_dir};

/// The path of a tool `e2e/tools.sh` installed.
pub fn tool(name: &str) -> anyhow::Result<String> {
    let output = Command::new("bash")
        .arg(repo_dir().join("e2e/tools.sh"))
        .args(["path", name])
        .output()?;
    ensure!(output.status.success(), "e2e/tools.sh path {name} failed");
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// `kubectl` with the cluster's admin kubeconfig.
pub fn kubectl(ns: &TestNamespace) -> anyhow::Result<Command> {
    let mut command = Command::new(tool("kubectl")?);
    command.env("KUBECONFIG", ns.env.var("KUBECONFIG")?);
    Ok(command)
}

/// Labels the test namespace to enforce, and warn on, Pod Security "restricted".
pub fn enforce_restricted_pod_security(ns: &TestNamespace) -> anyhow::Result<()> {
    run(kubectl(ns)?.args(["label", "namespace", &ns.name]).args([
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    ]))?;
    Ok(())
}

/// The chart's directory.
pub fn chart_dir() -> String {
    repo_dir().join("charts/zonefleet").display().to_string()
}

/// Runs a command; returns its stdout, or fails with its stderr.
pub fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("{command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs a command with `input` on its stdin; returns its stdout and stderr, or fails with
/// its stderr.
pub fn run_with_input(command: &mut Command, input: &str) -> anyhow::Result<(String, String)> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{command:?}"))?;
    std::io::Write::write_all(
        child.stdin.as_mut().context("the child's stdin")?,
        input.as_bytes(),
    )?;
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure!(output.status.success(), "{command:?} failed:\n{stderr}");
    Ok((String::from_utf8(output.stdout)?, stderr))
}
