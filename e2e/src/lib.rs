//! Zonefleet's end-to-end test harness.
//!
//! - [`kubelet`]: the process kubelet, which runs the tests' Pods as local processes;
//! - [`harness`]: what the tests share: the cluster's environment, clients, temporary
//!   namespaces and waiting;
//! - [`http`]: a minimal HTTP client for probes and tests;
//! - [`operator`]: running the operator and installing the CRDs for tests.

pub mod harness;
pub mod http;
pub mod kubelet;
pub mod operator;
