//! Serving DNS over UDP (hickory-server) and TCP (our capped listener), both through one
//! [`QueryHandler`].

mod handler;
pub mod raw;
pub mod response;
mod tcp;

use std::{net::SocketAddr, sync::Arc};

pub use handler::{QueryHandler, TransferAcl};
use hickory_server::Server;
pub use tcp::TcpLimits;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::metrics::DnsMetrics;

/// The bound DNS sockets.
#[derive(Debug)]
pub struct DnsListeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsListeners {
    /// Binds UDP and TCP on `address`.
    pub async fn bind(address: SocketAddr) -> std::io::Result<Self> {
        let udp = UdpSocket::bind(address).await?;
        // With port 0, TCP takes the port UDP got.
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Ok(Self { udp, tcp })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves until a listener fails.
    pub async fn serve(
        self,
        handler: QueryHandler,
        tcp_limits: TcpLimits,
        metrics: Arc<DnsMetrics>,
    ) -> anyhow::Result<()> {
        info!(address = %self.local_addr()?, "serving DNS over UDP and TCP");
        let mut udp = Server::new(handler.clone());
        udp.register_socket(self.udp);
        tokio::select! {
            result = udp.block_until_done() => result.map_err(|e| anyhow::anyhow!("UDP: {e}")),
            result = tcp::serve(self.tcp, Arc::new(handler), tcp_limits, metrics) => {
                result.map_err(|e| anyhow::anyhow!("TCP: {e}"))
            }
        }
    }
}
