//! Readiness and liveness probes, run from the node against the Pod's address.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpStream;

use super::launch::{ProbeAction, ProbePlan};
use crate::http;

/// Runs a probe once; `Ok(())` is success, `Err` says why it failed.
pub async fn probe_once(plan: &ProbePlan, pod_ip: Ipv4Addr) -> Result<(), String> {
    match &plan.action {
        ProbeAction::TcpSocket { port } => {
            let connect = TcpStream::connect(SocketAddr::from((pod_ip, *port)));
            match tokio::time::timeout(plan.timeout, connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("timed out after {:?}", plan.timeout)),
            }
        }
        ProbeAction::HttpGet { port, path } => {
            // As the kubelet's prober: any status from 200 to 399 is success.
            let response =
                http::request("GET", SocketAddr::from((pod_ip, *port)), path, plan.timeout)
                    .await
                    .map_err(|e| e.to_string())?;
            if (200..400).contains(&response.status) {
                Ok(())
            } else {
                Err(format!(
                    "HTTP probe failed with statuscode: {}",
                    response.status
                ))
            }
        }
    }
}
