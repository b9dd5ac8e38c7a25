//! A minimal blocking DNS client: one query over UDP (with retries) or TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::queries::{QuerySpec, Transport};

/// The EDNS(0) UDP payload size advertised by every query that carries OPT.
pub const EDNS_PAYLOAD: u16 = 1232;

/// How long to wait for one UDP response or one TCP read.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a UDP query is sent before giving up.
const UDP_ATTEMPTS: usize = 3;

/// Sends `spec` to `server` with message id `id` and returns the decoded response.
pub fn exchange(server: SocketAddr, spec: &QuerySpec, id: u16) -> Result<Message, String> {
    let request = build_query(id, &spec.name, spec.qtype, spec.edns)
        .to_vec()
        .map_err(|e| format!("encoding the query: {e}"))?;
    let wire = match spec.transport {
        Transport::Udp => exchange_udp(server, &request, id)?,
        Transport::Tcp => exchange_tcp(server, &request)?,
    };
    let response = Message::from_vec(&wire).map_err(|e| format!("decoding the response: {e}"))?;
    if response.metadata.id != id {
        return Err(format!(
            "response id {} does not match query id {id}",
            response.metadata.id
        ));
    }
    Ok(response)
}

/// A non-recursive IN query for `name`/`qtype`, with EDNS(0) (payload 1232, DO=0) if `edns`.
pub fn build_query(id: u16, name: &Name, qtype: RecordType, edns: bool) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    let mut query = Query::query(name.clone(), qtype);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD)
            .set_version(0)
            .set_dnssec_ok(false);
        message.set_edns(opt);
    }
    message
}

/// Sends one datagram and waits for the matching response, resending on timeout.
fn exchange_udp(server: SocketAddr, request: &[u8], id: u16) -> Result<Vec<u8>, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("UDP bind: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("UDP connect to {server}: {e}"))?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| format!("UDP timeout: {e}"))?;
    let mut buffer = vec![0_u8; 65_535];
    let mut last_error = String::new();
    for _ in 0..UDP_ATTEMPTS {
        socket
            .send(request)
            .map_err(|e| format!("UDP send to {server}: {e}"))?;
        match socket.recv(&mut buffer) {
            Ok(len) if len >= 2 && u16::from_be_bytes([buffer[0], buffer[1]]) == id => {
                return Ok(buffer[..len].to_vec());
            }
            Ok(len) => last_error = format!("stray datagram of {len} bytes"),
            Err(e) => last_error = format!("UDP receive from {server}: {e}"),
        }
    }
    Err(format!(
        "no UDP response after {UDP_ATTEMPTS} attempts ({last_error})"
    ))
}

/// Sends one length-prefixed query on a fresh TCP connection and reads one response.
fn exchange_tcp(server: SocketAddr, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&server, TIMEOUT)
        .map_err(|e| format!("TCP connect to {server}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| format!("TCP timeout: {e}"))?;
    let len = u16::try_from(request.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream
        .write_all(&framed)
        .map_err(|e| format!("TCP send to {server}: {e}"))?;
    let mut prefix = [0_u8; 2];
    stream
        .read_exact(&mut prefix)
        .map_err(|e| format!("TCP read of the length prefix: {e}"))?;
    let mut response = vec![0_u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut response)
        .map_err(|e| format!("TCP read of the response: {e}"))?;
    Ok(response)
}
