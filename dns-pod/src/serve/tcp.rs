//! DNS over TCP (RFC 7766) with a cap on open connections and an idle timeout, which the
//! stock hickory-server listener lacks.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_server::net::xfer::Protocol;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::timeout,
};
use tracing::debug;

use super::{QueryHandler, raw};
use crate::metrics::DnsMetrics;

/// Limits on TCP clients.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection with no complete query for this long is closed.
    pub idle_timeout: Duration,
}

/// Serves TCP clients until the listener fails.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<QueryHandler>,
    limits: TcpLimits,
    metrics: Arc<DnsMetrics>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Per-connection errors (reset before accept, out of descriptors) pass.
            Err(error) => {
                debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            metrics.tcp_refused();
            drop(stream);
            continue;
        };
        let handler = Arc::clone(&handler);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            metrics.tcp_opened();
            if let Err(reason) = connection(stream, peer, handler.as_ref(), limits).await {
                debug!(%peer, reason, "TCP connection closed");
            }
            metrics.tcp_closed();
            drop(permit);
        });
    }
}

/// Answers the queries of one connection, in order, until the client closes it, sends
/// garbage, or stays idle too long.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: &QueryHandler,
    limits: TcpLimits,
) -> Result<(), &'static str> {
    stream.set_nodelay(true).map_err(|_| "socket option")?;
    loop {
        let len = match timeout(limits.idle_timeout, stream.read_u16()).await {
            Err(_) => return Err("idle timeout"),
            Ok(Err(_)) => return Ok(()),
            Ok(Ok(len)) => usize::from(len),
        };
        let mut message = vec![0; len];
        timeout(limits.idle_timeout, stream.read_exact(&mut message))
            .await
            .map_err(|_| "idle timeout in a message")?
            .map_err(|_| "closed in a message")?;
        for response in raw::respond(handler, message, peer, Protocol::Tcp) {
            let len = u16::try_from(response.len()).map_err(|_| "response too long")?;
            let mut framed = Vec::with_capacity(response.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&response);
            stream
                .write_all(&framed)
                .await
                .map_err(|_| "write failed")?;
        }
    }
}
