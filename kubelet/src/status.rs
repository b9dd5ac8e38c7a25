//! Builds a Pod's status from what the process kubelet knows about its containers.
//!
//! Pure: the supervisor keeps the facts, this turns them into the `PodStatus` a kubelet
//! would write.

use std::{collections::BTreeMap, net::Ipv4Addr};

use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};

/// What a container is doing now.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerPhase {
    /// Not started, with a kubelet reason such as `ErrImagePull`.
    Waiting {
        /// A CamelCase reason.
        reason: String,
        /// A human-readable message.
        message: String,
    },
    /// Running since `started_at`.
    Running {
        /// When the process started.
        started_at: Timestamp,
        /// Whether the readiness probe passes (or there is none).
        ready: bool,
    },
    /// Exited.
    Terminated(Termination),
}

/// How a container's process ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    /// The exit code; 128 + signal for a process killed by a signal.
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
}

/// One container's facts.
#[derive(Clone, Debug)]
pub struct ContainerReport {
    /// The container's name.
    pub name: String,
    /// The image as the spec names it.
    pub image: String,
    /// The current state.
    pub phase: ContainerPhase,
    /// The previous run's end, after a restart.
    pub last_termination: Option<Termination>,
    /// Restarts so far.
    pub restart_count: i32,
}

/// The last status and transition time of each condition type, so transitions keep their
/// time across status writes.
#[derive(Debug, Default)]
pub struct ConditionClock {
    seen: BTreeMap<&'static str, (bool, Timestamp)>,
}

impl ConditionClock {
    fn condition(&mut self, kind: &'static str, status: bool, now: Timestamp) -> PodCondition {
        let entry = self.seen.entry(kind).or_insert((status, now));
        if entry.0 != status {
            *entry = (status, now);
        }
        PodCondition {
            type_: kind.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            last_transition_time: Some(Time(entry.1)),
            ..PodCondition::default()
        }
    }
}

/// The Pod-level phase for a set of containers under a restart policy.
pub fn pod_phase(containers: &[ContainerReport], restart_policy: &str) -> &'static str {
    let running = containers
        .iter()
        .any(|c| matches!(c.phase, ContainerPhase::Running { .. }));
    let all_terminated = !containers.is_empty()
        && containers
            .iter()
            .all(|c| matches!(c.phase, ContainerPhase::Terminated(_)));
    if all_terminated && restart_policy != "Always" {
        let failed = containers
            .iter()
            .any(|c| matches!(&c.phase, ContainerPhase::Terminated(t) if t.exit_code != 0));
        if !failed {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
    }
    if running || all_terminated {
        "Running"
    } else {
        "Pending"
    }
}

/// The complete status of a Pod.
pub fn pod_status(
    pod_ip: Ipv4Addr,
    host_ip: Ipv4Addr,
    start_time: Timestamp,
    containers: &[ContainerReport],
    restart_policy: &str,
    clock: &mut ConditionClock,
    now: Timestamp,
) -> PodStatus {
    let all_ready = !containers.is_empty()
        && containers
            .iter()
            .all(|c| matches!(c.phase, ContainerPhase::Running { ready: true, .. }));
    PodStatus {
        phase: Some(pod_phase(containers, restart_policy).to_owned()),
        pod_ip: Some(pod_ip.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: pod_ip.to_string(),
        }]),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        start_time: Some(Time(start_time)),
        conditions: Some(vec![
            clock.condition("PodReadyToStartContainers", true, now),
            clock.condition("Initialized", true, now),
            clock.condition("Ready", all_ready, now),
            clock.condition("ContainersReady", all_ready, now),
            clock.condition("PodScheduled", true, now),
        ]),
        container_statuses: Some(containers.iter().map(container_status).collect()),
        ..PodStatus::default()
    }
}

fn container_status(report: &ContainerReport) -> ContainerStatus {
    let (state, ready, started) = match &report.phase {
        ContainerPhase::Waiting { reason, message } => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                }),
                ..ContainerState::default()
            },
            false,
            false,
        ),
        ContainerPhase::Running { started_at, ready } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..ContainerState::default()
            },
            *ready,
            true,
        ),
        ContainerPhase::Terminated(t) => (terminated_state(t), false, false),
    };
    ContainerStatus {
        name: report.name.clone(),
        image: report.image.clone(),
        image_id: String::new(),
        container_id: None,
        ready,
        started: Some(started),
        restart_count: report.restart_count,
        state: Some(state),
        last_state: report.last_termination.as_ref().map(terminated_state),
        ..ContainerStatus::default()
    }
}

fn terminated_state(t: &Termination) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: Some(
                if t.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .to_owned(),
            ),
            started_at: Some(Time(t.started_at)),
            finished_at: Some(Time(t.finished_at)),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(phase: ContainerPhase) -> ContainerReport {
        ContainerReport {
            name: "main".into(),
            image: "img".into(),
            phase,
            last_termination: None,
            restart_count: 0,
        }
    }

    fn exited(code: i32) -> ContainerPhase {
        let t = Timestamp::UNIX_EPOCH;
        ContainerPhase::Terminated(Termination {
            exit_code: code,
            signal: None,
            started_at: t,
            finished_at: t,
        })
    }

    fn condition<'a>(status: &'a PodStatus, kind: &str) -> &'a PodCondition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    #[test]
    fn readiness_follows_the_probe_and_keeps_transition_times() {
        let mut clock = ConditionClock::default();
        let ip = Ipv4Addr::new(198, 18, 1, 1);
        let host = Ipv4Addr::new(198, 18, 0, 1);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let t2 = Timestamp::from_second(3_000).unwrap();
        let running = |ready| {
            report(ContainerPhase::Running {
                started_at: t0,
                ready,
            })
        };

        let s = pod_status(ip, host, t0, &[running(false)], "Always", &mut clock, t0);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("198.18.1.1"));
        assert_eq!(condition(&s, "Ready").status, "False");

        let s = pod_status(ip, host, t0, &[running(true)], "Always", &mut clock, t1);
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(condition(&s, "Ready").last_transition_time, Some(Time(t1)));
        assert!(s.container_statuses.as_ref().unwrap()[0].ready);

        let s = pod_status(ip, host, t0, &[running(true)], "Always", &mut clock, t2);
        assert_eq!(condition(&s, "Ready").last_transition_time, Some(Time(t1)));
        assert_eq!(
            condition(&s, "PodScheduled").last_transition_time,
            Some(Time(t0))
        );
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let waiting = report(ContainerPhase::Waiting {
            reason: "ErrImagePull".into(),
            message: String::new(),
        });
        assert_eq!(pod_phase(&[waiting], "Always"), "Pending");
        assert_eq!(pod_phase(&[report(exited(0))], "Never"), "Succeeded");
        assert_eq!(pod_phase(&[report(exited(1))], "Never"), "Failed");
        assert_eq!(pod_phase(&[report(exited(0))], "OnFailure"), "Succeeded");
        // OnFailure restarts a failed container; Always restarts any.
        assert_eq!(pod_phase(&[report(exited(1))], "OnFailure"), "Running");
        assert_eq!(pod_phase(&[report(exited(0))], "Always"), "Running");
    }
}
