//! Zonefleet's end-to-end test harness.
//!
//! - [`kubelet`]: the process kubelet, which runs the tests' Pods as local processes;
//! - [`harness`]: what the tests share: the cluster's environment, clients, temporary
//!   namespaces and waiting;
//! - [`http`]: a minimal HTTP client for probes and tests;
//! - [`operator`]: running the operator and installing the CRDs for tests;
//! - [`nats`]: a NATS server a test owns, to stop and start;
//! - [`dig`]: asking DNS servers with `dig`;
//! - [`dns_pod`]: a dns-pod run as a plain child process;
//! - [`dns_fleet`]: dns-pod Pods and their Service, for the process kubelet;
//! - [`tools`]: kubectl and helm, run as a user would.

pub mod dig;
pub mod dns_fleet;
pub mod dns_pod;
pub mod harness;
pub mod http;
pub mod kubelet;
pub mod nats;
pub mod operator;
pub mod tools;
