//! Shared by the `serving` and `bad_packets` tests: the test zones, an in-process server on
//! 127.0.0.1, and small UDP and TCP clients that speak raw bytes or hickory messages.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod knot;
pub mod nats;

use std::{fmt::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{Name, Record, RecordType},
};
use ipnet::IpNet;
use prometheus_client::registry::Registry;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    task::JoinHandle,
    time::timeout,
};
use zonefleet_dns_pod::{
    metrics::DnsMetrics,
    serve::{DnsListeners, QueryHandler, TcpLimits, TransferAcl},
    zone_files,
    zones::{ServedZone, ZoneStore},
};

/// How long a client waits for a reply (or for the server to close) before the test fails
/// as hung. Generous: it only guards against hangs.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP limits loose enough not to interfere with a test.
pub const LOOSE_LIMITS: TcpLimits = TcpLimits {
    max_connections: 64,
    idle_timeout: Duration::from_secs(30),
};

/// The TXT records of `big.example.com.`: together far beyond any UDP limit.
pub const BIG_TXT_COUNT: usize = 60;
/// The MX records of `manymx.example.com.`, each with a distinct long target.
pub const MANY_MX_COUNT: usize = 300;
/// The negative TTL of `example.com.`: its SOA TTL is 3600, its MINIMUM 300.
pub const EXAMPLE_COM_NEGATIVE_TTL: u32 = 300;
/// The negative TTL of `example.net.`: its SOA TTL is 60, its MINIMUM 300.
pub const EXAMPLE_NET_NEGATIVE_TTL: u32 = 60;

const EXAMPLE_COM: &str = r#"
$ORIGIN example.com.
$TTL 3600
@          IN SOA   ns1 hostmaster 2024010101 7200 900 1209600 300
@          IN NS    ns1
@          IN MX    10 mail
ns1        IN A     192.0.2.53
mail       IN A     192.0.2.25
www        IN A     192.0.2.80
multi      IN A     192.0.2.10
multi      IN AAAA  2001:db8::10
multi      IN TXT   "several types at one name"
multi      IN MX    20 mail
nullmx     IN MX    0 .
_sip._tcp  IN SRV   0 0 0 .
"#;

const EXAMPLE_NET: &str = r#"
$ORIGIN example.net.
@          60   IN SOA  ns1.example.com. hostmaster.example.com. 7 7200 900 1209600 300
@          3600 IN NS   ns1.example.com.
www        3600 IN A    198.51.100.80
"#;

/// The 60-byte string of the `i`th TXT record of `big.example.com.`.
pub fn big_txt(i: usize) -> String {
    format!("{i:03}-{}", "t".repeat(56))
}

/// The target of the `i`th MX record of `manymx.example.com.`: three labels of its own, so
/// that each name adds compression candidates and few suffixes repeat.
pub fn many_mx_target(i: usize) -> String {
    format!(
        "mx{i:03}.pool-{i:03}-{}.rack{i:03}.example.com.",
        "q".repeat(30)
    )
}

/// The master file of `example.com.`, with the generated large RRsets.
pub fn example_com_text() -> String {
    let mut text = EXAMPLE_COM.to_owned();
    for i in 0..BIG_TXT_COUNT {
        writeln!(text, "big IN TXT \"{}\"", big_txt(i)).expect("write to a String");
    }
    for i in 0..MANY_MX_COUNT {
        writeln!(text, "manymx IN MX 10 {}", many_mx_target(i)).expect("write to a String");
    }
    text
}

fn served_zone(text: &str, origin: &str) -> ServedZone {
    let snapshot = zone_files::parse(text, name(origin), None).expect("the test zone parses");
    ServedZone::from_snapshot(snapshot).expect("the test zone indexes")
}

/// The test zones: `example.com.` and `example.net.`.
pub fn served_zones() -> Vec<ServedZone> {
    vec![
        served_zone(&example_com_text(), "example.com."),
        served_zone(EXAMPLE_NET, "example.net."),
    ]
}

/// The number of records of `example.com.` (what an AXFR carries, plus the closing SOA).
pub fn example_com_record_count() -> usize {
    served_zone(&example_com_text(), "example.com.")
        .index
        .record_count()
}

/// A store serving the test zones.
pub fn zone_store() -> Arc<ZoneStore> {
    let store = ZoneStore::new();
    store.replace_all(served_zones());
    Arc::new(store)
}

/// Metrics registered in a throwaway registry.
pub fn metrics() -> Arc<DnsMetrics> {
    Arc::new(DnsMetrics::register(&mut Registry::default()))
}

/// A transfer ACL of the given networks (e.g. `"127.0.0.0/8"`).
pub fn transfer_acl(networks: &[&str]) -> TransferAcl {
    TransferAcl::new(
        networks
            .iter()
            .map(|net| net.parse::<IpNet>().expect("a valid network"))
            .collect(),
    )
}

/// A handler over the test zones.
pub fn handler(transfer_networks: &[&str]) -> QueryHandler {
    QueryHandler::new(
        zone_store(),
        Default::default(),
        transfer_acl(transfer_networks),
        metrics(),
    )
}

/// The server, serving the test zones on 127.0.0.1 (UDP and TCP on one port) until dropped.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<anyhow::Result<()>>,
    registry: Registry,
}

impl TestServer {
    /// Starts a server that lets `transfer_networks` transfer zones.
    pub async fn start(transfer_networks: &[&str], limits: TcpLimits) -> Self {
        let mut registry = Registry::default();
        let metrics = Arc::new(DnsMetrics::register(&mut registry));
        let handler = QueryHandler::new(
            zone_store(),
            Default::default(),
            transfer_acl(transfer_networks),
            Arc::clone(&metrics),
        );
        let listeners = DnsListeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 2)
            .await
            .expect("bind 127.0.0.1:0 for UDP and TCP");
        let addr = listeners.local_addr().expect("the bound address");
        let task = tokio::spawn(listeners.serve(handler, limits, metrics));
        Self {
            addr,
            task,
            registry,
        }
    }

    /// Its metrics, as Prometheus scrapes them.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("the metrics encode");
        text
    }

    /// True while the server task runs.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A name from text (case kept).
pub fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a valid name")
}

/// A query for `qname`/`qtype` without EDNS, RD clear.
pub fn query(id: u16, qname: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name(qname), qtype));
    message
}

/// The same query with an EDNS(0) OPT offering `payload` bytes.
pub fn with_edns(mut message: Message, payload: u16) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    message.set_edns(edns);
    message
}

/// The wire form of a message.
pub fn encode(message: &Message) -> Vec<u8> {
    message.to_vec().expect("the test message encodes")
}

/// Parses a response, failing the test if it does not parse.
pub fn decode(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("the response parses as a DNS message")
}

/// Records as `owner TTL CLASS TYPE RDATA` lines, owner in the case sent.
pub fn rendered(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name.to_ascii(),
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
        })
        .collect()
}

/// A UDP socket on 127.0.0.1.
pub async fn udp_socket() -> UdpSocket {
    UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a UDP client")
}

/// Receives one datagram, or None if nothing comes within `wait`.
pub async fn udp_receive(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buffer = vec![0; 65_535];
    let len = timeout(wait, socket.recv(&mut buffer))
        .await
        .ok()?
        .expect("receive a datagram");
    buffer.truncate(len);
    Some(buffer)
}

/// Sends raw bytes over UDP from a fresh socket and returns the reply's raw bytes.
pub async fn udp_exchange(server: SocketAddr, request: &[u8]) -> Vec<u8> {
    let socket = udp_socket().await;
    socket
        .send_to(request, server)
        .await
        .expect("send a datagram");
    udp_receive(&socket, REPLY_TIMEOUT)
        .await
        .expect("a UDP reply in time")
}

/// Asks over UDP; returns the reply and its size on the wire.
pub async fn ask_udp(server: SocketAddr, request: &Message) -> (Message, usize) {
    let bytes = udp_exchange(server, &encode(request)).await;
    let reply = decode(&bytes);
    assert_eq!(reply.metadata.id, request.metadata.id, "the reply's ID");
    (reply, bytes.len())
}

/// Connects over TCP.
pub async fn tcp_connect(server: SocketAddr) -> TcpStream {
    timeout(REPLY_TIMEOUT, TcpStream::connect(server))
        .await
        .expect("connect in time")
        .expect("connect over TCP")
}

/// Sends one length-prefixed message (RFC 1035 §4.2.2).
pub async fn tcp_send(stream: &mut TcpStream, message: &[u8]) {
    stream
        .write_all(&framed(message))
        .await
        .expect("write to the TCP connection");
}

/// A message with its two-byte length prefix.
pub fn framed(message: &[u8]) -> Vec<u8> {
    let len = u16::try_from(message.len()).expect("a message shorter than 64 KiB");
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// Reads one length-prefixed message; None once the server has closed (or reset) the
/// connection. Fails the test if neither happens in time.
pub async fn tcp_receive(stream: &mut TcpStream) -> Option<Vec<u8>> {
    timeout(REPLY_TIMEOUT, async {
        let len = stream.read_u16().await.ok()?;
        let mut message = vec![0; usize::from(len)];
        stream.read_exact(&mut message).await.ok()?;
        Some(message)
    })
    .await
    .expect("the server answered or closed the connection in time")
}

/// Asks one question on an open connection and returns the parsed reply.
pub async fn ask_on(stream: &mut TcpStream, request: &Message) -> Message {
    tcp_send(stream, &encode(request)).await;
    let bytes = tcp_receive(stream)
        .await
        .expect("a TCP reply before the connection closed");
    let reply = decode(&bytes);
    assert_eq!(reply.metadata.id, request.metadata.id, "the reply's ID");
    reply
}

/// Asks over a fresh TCP connection.
pub async fn ask_tcp(server: SocketAddr, request: &Message) -> Message {
    let mut stream = tcp_connect(server).await;
    ask_on(&mut stream, request).await
}
