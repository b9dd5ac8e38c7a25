//! One container's life: start, probe, restart with back-off, stop.
//!
//! A runner reports its container's state through a watch channel and stops when told,
//! with the grace period it is given.

use std::{
    convert::Infallible, net::Ipv4Addr, os::unix::process::ExitStatusExt, process::ExitStatus,
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

use super::{
    launch::{LaunchPlan, ProbePlan},
    network::Sandbox,
    probe::probe_once,
    process::{ContainerFiles, ContainerProcess},
    resolve::LaunchError,
    status::{ContainerPhase, ContainerReport, Termination},
};

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long resets the crash back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Everything a runner needs.
#[derive(Debug)]
pub struct ContainerRunner {
    /// The resolved container, or why it cannot start.
    pub plan: Result<LaunchPlan, LaunchError>,
    /// The Pod's sandbox.
    pub sandbox: Sandbox,
    /// Where its files go.
    pub files: ContainerFiles,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    /// The grace period for a liveness restart.
    pub termination_grace: Duration,
}

/// Why a running process stopped being run.
enum RunEnd {
    Exited(ExitStatus),
    LivenessFailed,
    Stopped,
}

impl ContainerRunner {
    /// Runs until `stop` carries a grace period; reports through `report`.
    pub async fn run(
        self,
        report: watch::Sender<ContainerReport>,
        mut stop: watch::Receiver<Option<Duration>>,
    ) {
        let plan = match &self.plan {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(log = %self.files.log_file.display(), error = %e, "container cannot start");
                set_phase(
                    &report,
                    ContainerPhase::Waiting {
                        reason: e.reason().into(),
                        message: e.to_string(),
                    },
                );
                let _ = stop.wait_for(Option::is_some).await;
                return;
            }
        };
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let started_at = Timestamp::now();
            let mut process = match ContainerProcess::spawn(plan, &self.sandbox, &self.files) {
                Ok(process) => process,
                Err(e) => {
                    tracing::warn!(program = %plan.program.display(), error = %e, "could not start the container");
                    set_phase(
                        &report,
                        ContainerPhase::Waiting {
                            reason: "RunContainerError".into(),
                            message: format!("starting {}: {e}", plan.program.display()),
                        },
                    );
                    if wait_or_stop(&mut stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            tracing::info!(pid = process.pid(), program = %plan.program.display(), ip = %self.sandbox.address, "container started");
            set_phase(
                &report,
                ContainerPhase::Running {
                    started_at,
                    ready: plan.readiness.is_none(),
                },
            );

            let end = tokio::select! {
                status = process.wait() => match status {
                    Ok(status) => RunEnd::Exited(status),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost track of the container process");
                        RunEnd::Exited(ExitStatus::from_raw(255 << 8))
                    }
                },
                never = readiness(plan.readiness.as_ref(), self.sandbox.address, &report) => match never {},
                () = liveness(plan.liveness.as_ref(), self.sandbox.address) => RunEnd::LivenessFailed,
                _ = stop.wait_for(Option::is_some) => RunEnd::Stopped,
            };
            let status = match end {
                RunEnd::Exited(status) => status,
                RunEnd::Stopped => {
                    let grace = stop.borrow().unwrap_or_default();
                    process.stop(grace).await;
                    return;
                }
                RunEnd::LivenessFailed => {
                    tracing::warn!(
                        pid = process.pid(),
                        "liveness probe failed; restarting the container"
                    );
                    process
                        .stop(self.termination_grace)
                        .await
                        .unwrap_or(ExitStatus::from_raw(137 << 8))
                }
            };
            let finished_at = Timestamp::now();
            let termination = termination_of(status, started_at, finished_at);
            tracing::info!(exit_code = termination.exit_code, signal = ?termination.signal, "container exited");
            let restart = match self.restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => termination.exit_code != 0,
                _ => true,
            };
            if !restart {
                set_phase(&report, ContainerPhase::Terminated(termination));
                let _ = stop.wait_for(Option::is_some).await;
                return;
            }
            if finished_at.duration_since(started_at).unsigned_abs() >= STABLE_RUN {
                backoff = INITIAL_BACKOFF;
            }
            report.send_modify(|r| {
                r.restart_count += 1;
                r.last_termination = Some(termination);
                r.phase = ContainerPhase::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!("back-off {backoff:?} restarting failed container"),
                };
            });
            if wait_or_stop(&mut stop, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn set_phase(report: &watch::Sender<ContainerReport>, phase: ContainerPhase) {
    report.send_modify(|r| r.phase = phase);
}

/// Sleeps for `delay`; true if a stop came first.
async fn wait_or_stop(stop: &mut watch::Receiver<Option<Duration>>, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = stop.wait_for(Option::is_some) => true,
    }
}

fn termination_of(
    status: ExitStatus,
    started_at: Timestamp,
    finished_at: Timestamp,
) -> Termination {
    let signal = status.signal();
    Termination {
        exit_code: status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0)),
        signal,
        started_at,
        finished_at,
    }
}

/// Probes for readiness forever, flipping the report's `ready` flag on the thresholds.
async fn readiness(
    plan: Option<&ProbePlan>,
    ip: Ipv4Addr,
    report: &watch::Sender<ContainerReport>,
) -> Infallible {
    let Some(plan) = plan else {
        return std::future::pending().await;
    };
    tokio::time::sleep(plan.initial_delay).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        match probe_once(plan, ip).await {
            Ok(()) => {
                successes += 1;
                failures = 0;
            }
            Err(reason) => {
                tracing::debug!(%ip, %reason, "readiness probe failed");
                failures += 1;
                successes = 0;
            }
        }
        let verdict = if successes >= plan.success_threshold {
            Some(true)
        } else if failures >= plan.failure_threshold {
            Some(false)
        } else {
            None
        };
        if let Some(ready) = verdict {
            report.send_if_modified(|r| match &mut r.phase {
                ContainerPhase::Running { ready: current, .. } if *current != ready => {
                    *current = ready;
                    true
                }
                _ => false,
            });
        }
        tokio::time::sleep(plan.period).await;
    }
}

/// Probes for liveness; returns once the failure threshold is reached.
async fn liveness(plan: Option<&ProbePlan>, ip: Ipv4Addr) {
    let Some(plan) = plan else {
        return std::future::pending().await;
    };
    tokio::time::sleep(plan.initial_delay).await;
    let mut failures = 0;
    loop {
        match probe_once(plan, ip).await {
            Ok(()) => failures = 0,
            Err(reason) => {
                failures += 1;
                tracing::info!(%ip, %reason, failures, "liveness probe failed");
                if failures >= plan.failure_threshold {
                    return;
                }
            }
        }
        tokio::time::sleep(plan.period).await;
    }
}
