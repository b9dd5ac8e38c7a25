//! The process kubelet; see the `zonefleet_process_kubelet` library.

use std::{net::Ipv4Addr, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use zonefleet_process_kubelet::{
    self as kubelet, KubeletConfig, image::ImageMap, network::PodNetwork,
};

/// Runs the Pods that carry a label as local processes, each in a network namespace of its own.
#[derive(Debug, Parser)]
struct Args {
    /// The node's kubeconfig (`system:node:<name>`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The kubeconfig that binds Pods to the node (`system:kube-scheduler`).
    #[arg(long)]
    scheduler_kubeconfig: PathBuf,
    /// The node's name.
    #[arg(long, default_value = "process-node")]
    node_name: String,
    /// The label selector of the Pods to run.
    #[arg(long)]
    selector: String,
    /// The state directory (pid files, logs, pod working directories).
    #[arg(long)]
    state_dir: PathBuf,
    /// The host-only bridge the pod network namespaces join.
    #[arg(long)]
    bridge: String,
    /// The bridge's address with prefix length: the pods' gateway and the node's address.
    #[arg(long)]
    gateway: String,
    /// The API server's `host:port` as Pods reach it.
    #[arg(long)]
    apiserver: String,
    /// `REPOSITORY=PATH`: the local binary an image runs. Repeatable.
    #[arg(long = "image")]
    images: Vec<String>,
}

async fn client(path: &PathBuf) -> anyhow::Result<Client> {
    let kubeconfig =
        Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut images = ImageMap::default();
    for mapping in &args.images {
        images.add_mapping(mapping)?;
    }
    let (gateway, prefix_len) = args
        .gateway
        .split_once('/')
        .context("--gateway must be ADDRESS/PREFIX")?;
    let gateway: Ipv4Addr = gateway.parse().context("--gateway address")?;
    let prefix_len: u8 = prefix_len.parse().context("--gateway prefix length")?;
    let (host, port) = args
        .apiserver
        .rsplit_once(':')
        .context("--apiserver must be HOST:PORT")?;
    kubelet::run(KubeletConfig {
        node_client: client(&args.kubeconfig).await?,
        scheduler_client: client(&args.scheduler_kubeconfig).await?,
        node_name: args.node_name,
        selector: args.selector,
        images,
        network: PodNetwork {
            bridge: args.bridge,
            gateway,
            prefix_len,
            state_dir: args.state_dir,
        },
        apiserver: (host.to_owned(), port.parse().context("--apiserver port")?),
    })
    .await
}
