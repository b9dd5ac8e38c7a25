//! Serving DNS over UDP and TCP (with a connection cap and an idle timeout), both through
//! the same checks ([`raw`]) and one hickory-server request handler, [`QueryHandler`].

mod handler;
pub mod raw;
pub mod response;
mod tcp;
mod udp;

use std::{net::SocketAddr, sync::Arc};

pub use handler::{QueryHandler, TransferAcl};
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
        // With port 0, TCP takes the port UDP got; another process may hold it for TCP, so
        // try a few ports.
        let attempts = if address.port() == 0 { 16 } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            let udp = UdpSocket::bind(address).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => return Ok(Self { udp, tcp }),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no port for UDP and TCP")))
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
        let handler = Arc::new(handler);
        tokio::select! {
            result = udp::serve(self.udp, Arc::clone(&handler)) => {
                result.map_err(|e| anyhow::anyhow!("UDP: {e}"))
            }
            result = tcp::serve(self.tcp, handler, tcp_limits, metrics) => {
                result.map_err(|e| anyhow::anyhow!("TCP: {e}"))
            }
        }
    }
}
