//! DNS over UDP: one task reading datagrams and answering each through
//! [`super::raw::respond`], the same checks and handler as TCP. (hickory-server's own UDP
//! listener answers a malformed packet with QR=1 with FORMERR, since it parses before it
//! looks at QR; ours never answers a response.)

use std::{net::SocketAddr, sync::Arc};

use hickory_server::{net::xfer::Protocol, server::RequestHandler};
use tokio::net::UdpSocket;
use tracing::debug;

use super::raw;

/// The largest datagram read; larger ones are cut and then fail to parse.
const MAX_DATAGRAM: usize = 65_535;

/// Serves UDP clients until the socket fails.
pub async fn serve<H: RequestHandler>(socket: UdpSocket, handler: Arc<H>) -> std::io::Result<()> {
    let mut buffer = vec![0; MAX_DATAGRAM];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            // An ICMP error from an earlier send surfaces here on Linux: not fatal.
            Err(error) if is_transient(&error) => {
                debug!(%error, "UDP receive failed");
                continue;
            }
            Err(error) => return Err(error),
        };
        if !answerable(peer) {
            continue;
        }
        let request = buffer[..len].to_vec();
        for response in raw::respond(handler.as_ref(), request, peer, Protocol::Udp).await {
            if let Err(error) = socket.send_to(&response, peer).await {
                debug!(%peer, %error, "UDP send failed");
            }
        }
    }
}

/// Port 0 cannot be answered (and answering it would only reflect).
fn answerable(peer: SocketAddr) -> bool {
    peer.port() != 0
}

fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused
            | ConnectionReset
            | Interrupted
            | WouldBlock
            | HostUnreachable
            | NetworkUnreachable
    )
}
