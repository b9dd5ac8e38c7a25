//! DNS over UDP: one thread per worker, each with its own `SO_REUSEPORT` socket on the
//! same address, so the kernel spreads clients over the workers. A worker takes datagrams
//! in batches (`recvmmsg`), answers each through the fast path ([`super::fast`]) or else
//! the general handler ([`super::raw::respond`]), and sends the batch's responses at once
//! (`sendmmsg`). It never answers a response (hickory-server's own UDP listener answers a
//! malformed packet with QR=1 with FORMERR, since it parses before it looks at QR).

use std::{
    collections::HashMap,
    io::{IoSlice, IoSliceMut},
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hickory_proto::{op::ResponseCode, rr::RecordType};
use hickory_server::net::xfer::Protocol;
use nix::{
    errno::Errno,
    sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg},
};
use prometheus_client::metrics::counter::Counter;
use socket2::{Domain, Socket, Type};
use tracing::{debug, error};

use super::{QueryHandler, fast, raw};
use crate::metrics::{DnsMetrics, SizeTally};

/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams taken and answered per system call.
const BATCH: usize = 32;
/// How long a worker waits for a datagram before it checks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(200);
/// The receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// Opens one worker's UDP socket on `address`, shared with the other workers.
pub fn socket(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_reuse_port(true)?;
    if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES) {
        debug!(%error, "could not enlarge the UDP receive buffer");
    }
    socket.bind(&address.into())?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    Ok(socket.into())
}

/// Serves UDP clients on `sockets`, one worker thread each, until a socket fails. When the
/// returned future is dropped, the workers stop within [`STOP_CHECK`].
pub async fn serve(sockets: Vec<UdpSocket>, handler: Arc<QueryHandler>) -> std::io::Result<()> {
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let (failed, mut failures) = tokio::sync::mpsc::unbounded_channel();
    for (number, socket) in sockets.into_iter().enumerate() {
        let handler = Arc::clone(&handler);
        let stop = Arc::clone(&stop.0);
        let failed = failed.clone();
        std::thread::Builder::new()
            .name(format!("udp-{number}"))
            .spawn(move || {
                let result = Worker::new(socket, handler).run(&stop);
                // The receiver is gone only when serving already stopped.
                let _ = failed.send(result);
            })?;
    }
    drop(failed);
    match failures.recv().await {
        Some(result) => result,
        None => Ok(()),
    }
}

/// Tells the workers to stop when serving is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One worker: its socket, buffers and the batch's responses.
struct Worker {
    socket: UdpSocket,
    handler: Arc<QueryHandler>,
    buffers: Vec<Vec<u8>>,
    /// The size and sender of each datagram of the batch.
    received: Vec<(usize, SockaddrStorage)>,
    /// The batch's responses and where they go.
    responses: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
    tally: Tally,
}

impl Worker {
    fn new(socket: UdpSocket, handler: Arc<QueryHandler>) -> Self {
        Self {
            socket,
            handler,
            buffers: vec![vec![0; MAX_DATAGRAM]; BATCH],
            received: Vec::with_capacity(BATCH),
            responses: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            tally: Tally::default(),
        }
    }

    fn run(mut self, stop: &AtomicBool) -> std::io::Result<()> {
        let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut spare = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::Relaxed) {
            match self.receive(&mut receive_headers) {
                Ok(()) => {}
                Err(error) if is_transient(error) => continue,
                Err(error) => {
                    error!(%error, "UDP receive failed");
                    return Err(error.into());
                }
            }
            self.answer_batch(&mut spare);
            self.send(&mut send_headers);
            // Keep the response buffers for the next batch.
            spare.append(&mut self.responses);
            self.destinations.clear();
            self.tally.flush(self.handler.metrics());
        }
        Ok(())
    }

    /// Waits for at least one datagram and takes up to a batch.
    fn receive(&mut self, headers: &mut MultiHeaders<SockaddrStorage>) -> Result<(), Errno> {
        self.received.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buffers
            .iter_mut()
            .map(|buffer| [IoSliceMut::new(buffer)])
            .collect();
        let results = recvmmsg(
            self.socket.as_raw_fd(),
            headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        for message in results {
            if let Some(address) = message.address {
                self.received.push((message.bytes, address));
            }
        }
        Ok(())
    }

    /// Answers every datagram of the batch into `responses`.
    fn answer_batch(&mut self, spare: &mut Vec<Vec<u8>>) {
        let zones = self.handler.zones().load();
        for (at, &(len, peer)) in self.received.iter().enumerate() {
            // Port 0 cannot be answered (and answering it would only reflect).
            let Some(peer_address) = socket_address(&peer).filter(|a| a.port() != 0) else {
                continue;
            };
            let packet = &self.buffers[at][..len];
            let mut out = spare.pop().unwrap_or_default();
            if let Some(answer) = fast::answer(&zones, packet, &mut out) {
                self.tally.answered(answer, out.len());
                self.responses.push(out);
                self.destinations.push(Some(peer));
                continue;
            }
            spare.push(out);
            for response in
                raw::respond(&self.handler, packet.to_vec(), peer_address, Protocol::Udp)
            {
                self.responses.push(response);
                self.destinations.push(Some(peer));
            }
        }
    }

    /// Sends the batch's responses; a response that cannot be sent is dropped.
    fn send(&mut self, headers: &mut MultiHeaders<SockaddrStorage>) {
        let mut start = 0;
        while start < self.responses.len() {
            let end = self.responses.len().min(start + BATCH);
            let slices: Vec<[IoSlice<'_>; 1]> = self.responses[start..end]
                .iter()
                .map(|response| [IoSlice::new(response)])
                .collect();
            let no_control: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                self.socket.as_raw_fd(),
                headers,
                slices.iter(),
                &self.destinations[start..end],
                no_control,
                MsgFlags::empty(),
            ) {
                // A partial send stops at the first message that failed: skip it.
                Ok(sent) => start += sent.count().max(1),
                Err(Errno::EINTR) => {}
                Err(error) => {
                    debug!(%error, "UDP send failed");
                    start += 1;
                }
            }
        }
    }
}

/// The counts of one batch, added to the metrics once per batch. The worker keeps the
/// counters it has used, so adding them takes no lookup and no lock.
#[derive(Debug, Default)]
struct Tally {
    queries: Vec<(RecordType, u64)>,
    responses: Vec<(ResponseCode, u64)>,
    sizes: SizeTally,
    truncated: u64,
    query_counters: HashMap<RecordType, Counter>,
    response_counters: HashMap<ResponseCode, Counter>,
}

impl Tally {
    fn answered(&mut self, answer: fast::FastAnswer, size: usize) {
        bump(&mut self.queries, answer.qtype);
        bump(&mut self.responses, answer.rcode);
        self.sizes.observe(size);
        self.truncated += u64::from(answer.truncated);
    }

    fn flush(&mut self, metrics: &DnsMetrics) {
        for (qtype, count) in self.queries.drain(..) {
            self.query_counters
                .entry(qtype)
                .or_insert_with(|| metrics.query_counter(qtype, Protocol::Udp))
                .inc_by(count);
        }
        for (rcode, count) in self.responses.drain(..) {
            self.response_counters
                .entry(rcode)
                .or_insert_with(|| metrics.response_counter(rcode))
                .inc_by(count);
        }
        metrics.response_sizes(&mut self.sizes);
        if self.truncated > 0 {
            metrics.truncated(std::mem::take(&mut self.truncated));
        }
    }
}

/// Counts one more of `key` in a batch's counts (a batch holds few distinct keys).
fn bump<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, count)) => *count += 1,
        None => counts.push((key, 1)),
    }
}

fn socket_address(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from(std::net::SocketAddrV4::from(*v4)));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
}

/// Errors after which the worker goes on: a timeout (to check for stop), a signal, and
/// ICMP errors from an earlier send, which Linux reports on the next receive.
fn is_transient(error: Errno) -> bool {
    matches!(
        error,
        Errno::EAGAIN
            | Errno::EINTR
            | Errno::ECONNREFUSED
            | Errno::ECONNRESET
            | Errno::EHOSTUNREACH
            | Errno::ENETUNREACH
    )
}
