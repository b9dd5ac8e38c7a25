//! Serving DNS over UDP (batched, one socket per worker, with a fast path for plain
//! queries) and TCP (with a connection cap and an idle timeout). Whatever the fast path
//! does not take goes through the same checks ([`raw`]) and one request handler,
//! [`QueryHandler`]. Both decide who answers with [`crate::route`] and write with
//! [`crate::encode`]; nothing here waits on anything but the sockets.

pub mod fast;
mod handler;
pub mod raw;
mod tcp;
mod udp;

use std::{net::SocketAddr, sync::Arc};

pub use handler::{CONDENSE_ABOVE, QueryHandler, TransferAcl};
pub use tcp::TcpLimits;
use tokio::net::TcpListener;
use tracing::info;

use crate::metrics::DnsMetrics;

/// The bound DNS sockets: one UDP socket per worker, all on one address, and a TCP
/// listener on the same port.
#[derive(Debug)]
pub struct DnsListeners {
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
}

impl DnsListeners {
    /// Binds `udp_workers` UDP sockets (0: one per CPU this process may use) and a TCP
    /// listener on `address`.
    pub async fn bind(address: SocketAddr, udp_workers: usize) -> std::io::Result<Self> {
        let workers = match udp_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        // With port 0, TCP takes the port UDP got; another process may hold it for TCP, so
        // try a few ports. The TCP listener (without SO_REUSEPORT) also keeps a second
        // server off the port.
        let attempts = if address.port() == 0 { 16 } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            let first = udp::socket(address)?;
            let bound = first.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => {
                    let mut udp = vec![first];
                    for _ in 1..workers {
                        udp.push(udp::socket(bound)?);
                    }
                    return Ok(Self { udp, tcp });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no port for UDP and TCP")))
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The number of UDP workers.
    pub fn udp_workers(&self) -> usize {
        self.udp.len()
    }

    /// Serves until a listener fails.
    pub async fn serve(
        self,
        handler: QueryHandler,
        tcp_limits: TcpLimits,
        metrics: Arc<DnsMetrics>,
    ) -> anyhow::Result<()> {
        info!(
            address = %self.local_addr()?,
            udp_workers = self.udp.len(),
            "serving DNS over UDP and TCP"
        );
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
