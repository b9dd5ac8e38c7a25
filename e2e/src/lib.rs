//! Zonefleet's end-to-end test harness. The tests' Pods run on the process kubelet (crate
//! `zonefleet-process-kubelet`).
//!
//! - [`harness`]: what the tests share: the cluster's environment, clients, temporary
//!   namespaces and waiting;
//! - [`http`]: HTTP GETs for tests that talk to Pods (the process kubelet's prober client);
//! - [`operator`]: running the operator and installing the CRDs for tests;
//! - [`nats`]: a NATS server a test owns, to stop and start;
//! - [`dns`]: the DNS client of the tests and benches (hickory-proto, UDP and TCP);
//! - [`dns_pod`]: a dns-pod run as a plain child process;
//! - [`dns_fleet`]: dns-pod Pods and their Service, for the process kubelet, and the
//!   [`dns_fleet::Fleet`] fixture (NATS, operators, dns-pods) of the fleet tests;
//! - [`knot`]: Knot DNS as an external secondary of the fleet;
//! - [`tools`]: kubectl and helm, run as a user would.

pub mod dns;
pub mod dns_fleet;
pub mod dns_pod;
pub mod harness;
pub mod knot;
pub mod nats;
pub mod operator;
pub mod tools;

/// HTTP GETs: the process kubelet's prober client, for tests that talk to Pods.
pub use zonefleet_process_kubelet::http;
