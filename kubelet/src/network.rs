//! Pod sandboxes: one network namespace per Pod, joined to the host-only bridge by a veth
//! pair, with the Pod's address on its `eth0`.
//!
//! Each namespace is recorded in `<state>/netns/<name>` so that `cluster.sh down` removes
//! exactly the namespaces that were made, even if the kubelet itself was killed.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use tokio::process::Command;

/// A failed `ip` command.
#[derive(Debug, thiserror::Error)]
#[error("`ip {args}` failed: {message}")]
pub struct NetworkError {
    args: String,
    message: String,
}

/// The host side of the pod network.
#[derive(Clone, Debug)]
pub struct PodNetwork {
    /// The bridge the veth pairs join.
    pub bridge: String,
    /// The bridge's address: the pods' default gateway and the node's address.
    pub gateway: Ipv4Addr,
    /// The network's prefix length.
    pub prefix_len: u8,
    /// Where namespace records are kept.
    pub state_dir: PathBuf,
}

/// A Pod's network namespace.
#[derive(Clone, Debug)]
pub struct Sandbox {
    /// The namespace's name (`ip netns`).
    pub netns: String,
    /// The Pod's address.
    pub address: Ipv4Addr,
}

impl Sandbox {
    /// The path `nsenter --net=` takes.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }
}

/// Names derived from the Pod's UID: namespace `zf-<12 hex>` and host veth `zfv<12 hex>`
/// (interface names are limited to 15 bytes).
pub fn sandbox_names(pod_uid: &str) -> (String, String) {
    let hex: String = pod_uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    (format!("zf-{hex}"), format!("zfv{hex}"))
}

async fn ip(args: &[&str]) -> Result<(), NetworkError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| NetworkError {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetworkError {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

impl PodNetwork {
    fn record(&self, netns: &str) -> PathBuf {
        self.state_dir.join("netns").join(netns)
    }

    /// Creates the namespace, the veth pair and the addressing for a Pod.
    pub async fn create(&self, pod_uid: &str, address: Ipv4Addr) -> Result<Sandbox, NetworkError> {
        let (netns, veth) = sandbox_names(pod_uid);
        // A namespace left by an earlier run of the same Pod is replaced.
        let _ = ip(&["netns", "del", &netns]).await;
        ip(&["netns", "add", &netns]).await?;
        let _ = std::fs::write(self.record(&netns), &netns);
        let cidr = format!("{address}/{}", self.prefix_len);
        let gateway = self.gateway.to_string();
        let steps: [&[&str]; 7] = [
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
            &["link", "set", &veth, "master", &self.bridge],
            &["link", "set", &veth, "up"],
            &["-n", &netns, "addr", "add", &cidr, "dev", "eth0"],
            &["-n", &netns, "link", "set", "eth0", "up"],
            &["-n", &netns, "link", "set", "lo", "up"],
            &["-n", &netns, "route", "add", "default", "via", &gateway],
        ];
        for step in steps {
            if let Err(e) = ip(step).await {
                self.remove(&netns).await;
                return Err(e);
            }
        }
        Ok(Sandbox { netns, address })
    }

    /// Deletes a Pod's namespace (its veth pair goes with it) and its record.
    pub async fn remove(&self, netns: &str) {
        if let Err(e) = ip(&["netns", "del", netns]).await {
            tracing::warn!(%netns, error = %e, "could not delete the network namespace");
        }
        let _ = std::fs::remove_file(self.record(netns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_interface_limits() {
        let (netns, veth) = sandbox_names("3f2a9c4e-1b2d-4c3e-9f00-aabbccddeeff");
        assert_eq!(netns, "zf-3f2a9c4e1b2d");
        assert_eq!(veth, "zfv3f2a9c4e1b2d");
        assert!(veth.len() <= 15);
    }
}
