//! The tests' and the benches' DNS client: one question, sent over UDP or TCP with a timeout
//! per attempt, and the response parsed with hickory-proto.
//!
//! - [`ask`] asks as `dig +norecurse +time=1 +tries=2` does: UDP with EDNS(0), no recursion
//!   wanted, again over TCP when the response is truncated; an unanswered or stray response
//!   is an error. [`ask_with`] takes other [`Attempts`].
//! - [`exchange`] sends a query the caller built and reports what became of it, an
//!   unanswered query included, for tests that count retries.
//! - [`query`] builds the query those send, for callers that run their own loop.
//!
//! Tests that check what a real DNS client shows (its presentation of TXT strings, say) run
//! `dig` themselves.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context as _, bail, ensure};
use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType, rdata::TXT},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

/// The EDNS(0) payload size [`ask`] advertises, as dig does (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// How a query travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// A connection of its own, messages framed by their length.
    Tcp,
}

/// How a query is sent: over which transport, how long each attempt waits for a response,
/// and how many attempts are made before the query counts as unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts {
    /// The transport.
    pub transport: Transport,
    /// How long one attempt waits (over TCP: to connect, send and read the response).
    pub timeout: Duration,
    /// How many times the query is sent, at least once.
    pub attempts: usize,
}

impl Default for Attempts {
    /// dig's `+time=1 +tries=2` over UDP.
    fn default() -> Self {
        Self {
            transport: Transport::Udp,
            timeout: Duration::from_secs(1),
            attempts: 2,
        }
    }
}

/// A query for `name record_type` (class IN) with recursion not wanted, as one asks an
/// authoritative server; no EDNS.
pub fn query(id: u16, name: &str, record_type: RecordType) -> anyhow::Result<Message> {
    let mut name = Name::from_ascii(name).with_context(|| format!("the name {name:?}"))?;
    name.set_fqdn(true);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name, record_type));
    Ok(message)
}

/// A response, and how many attempts went unanswered before it came.
#[derive(Clone, Debug)]
pub struct Response {
    /// The response as it came, whatever its ID.
    pub message: Message,
    /// Attempts that timed out before the one answered.
    pub retries: usize,
}

/// Sends `query` to `server` up to `how.attempts` times, each time waiting `how.timeout`;
/// `None` when no attempt was answered. Over UDP the attempts share one socket, so a late
/// response to an earlier attempt answers a later one too, and datagrams from another
/// address are ignored. The first response is returned as it is: the caller checks that it
/// answers the query.
pub async fn exchange(
    server: SocketAddr,
    query: &Message,
    how: Attempts,
) -> anyhow::Result<Option<Response>> {
    let bytes = query.to_vec().context("encoding the query")?;
    let message = match how.transport {
        Transport::Udp => exchange_udp(server, &bytes, how).await?,
        Transport::Tcp => exchange_tcp(server, &bytes, how).await?,
    };
    message
        .map(|(bytes, retries)| {
            let message = Message::from_vec(&bytes)
                .with_context(|| format!("decoding the response from {server}"))?;
            Ok(Response { message, retries })
        })
        .transpose()
}

async fn exchange_udp(
    server: SocketAddr,
    bytes: &[u8],
    how: Attempts,
) -> anyhow::Result<Option<(Vec<u8>, usize)>> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local).await?;
    let mut buffer = vec![0; 65_535];
    for retries in 0..how.attempts.max(1) {
        socket.send_to(bytes, server).await?;
        let deadline = tokio::time::Instant::now() + how.timeout;
        while let Ok(received) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await
        {
            let (len, from) = received?;
            if from == server {
                return Ok(Some((buffer[..len].to_vec(), retries)));
            }
        }
    }
    Ok(None)
}

async fn exchange_tcp(
    server: SocketAddr,
    bytes: &[u8],
    how: Attempts,
) -> anyhow::Result<Option<(Vec<u8>, usize)>> {
    let len = u16::try_from(bytes.len()).context("the query is longer than 65535 bytes")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    for retries in 0..how.attempts.max(1) {
        let attempt = async {
            let mut stream = TcpStream::connect(server).await?;
            stream.write_all(&framed).await?;
            let len = stream.read_u16().await?;
            let mut response = vec![0; usize::from(len)];
            stream.read_exact(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        if let Ok(response) = tokio::time::timeout(how.timeout, attempt).await {
            return Ok(Some((response?, retries)));
        }
    }
    Ok(None)
}

/// What a server answered to one question.
#[derive(Clone)]
pub struct Answer {
    /// The response.
    pub message: Message,
}

impl Answer {
    /// The response code.
    pub fn rcode(&self) -> ResponseCode {
        self.message.metadata.response_code
    }

    /// Whether the server answered with authority (the `aa` flag).
    pub fn authoritative(&self) -> bool {
        self.message.metadata.authoritative
    }

    /// The answer section's rdata in presentation format, in order, as dig prints it for the
    /// types the tests ask for (A, AAAA, SOA, CAA, TXT as quoted strings).
    pub fn rdata(&self) -> Vec<String> {
        self.message
            .answers
            .iter()
            .map(|record| match &record.data {
                RData::TXT(txt) => txt_presentation(txt),
                data => data.to_string(),
            })
            .collect()
    }

    /// The serial of the first SOA in the answer section.
    pub fn soa_serial(&self) -> Option<u32> {
        self.message
            .answers
            .iter()
            .find_map(|record| match &record.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("rcode", &self.rcode())
            .field("authoritative", &self.authoritative())
            .field("truncated", &self.message.metadata.truncation)
            .field("answers", &self.rdata())
            .field("authorities", &self.message.authorities.len())
            .finish()
    }
}

/// TXT strings as a zone file (and dig) writes them: each in quotes, `"` and `\` escaped,
/// bytes outside printable ASCII as `\DDD`.
fn txt_presentation(txt: &TXT) -> String {
    txt.txt_data
        .iter()
        .map(|string| {
            let mut out = String::from('"');
            for &byte in string.iter() {
                match byte {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(char::from(byte));
                    }
                    0x20..=0x7e => out.push(char::from(byte)),
                    _ => out.push_str(&format!("\\{byte:03}")),
                }
            }
            out.push('"');
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks `server` for `name record_type` as dig does (see the module's documentation).
pub async fn ask(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
) -> anyhow::Result<Answer> {
    ask_with(server, name, record_type, Attempts::default()).await
}

/// [`ask`] with other attempts; a truncated UDP response is asked again over TCP with the
/// same attempts.
pub async fn ask_with(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    how: Attempts,
) -> anyhow::Result<Answer> {
    let mut message = query(next_id(), name, record_type)?;
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD).set_version(0);
    message.set_edns(edns);
    let mut how = how;
    loop {
        let Some(response) = exchange(server, &message, how).await? else {
            bail!(
                "no response from {server} to {name} {record_type} over {:?} ({} attempts of {:?})",
                how.transport,
                how.attempts.max(1),
                how.timeout
            );
        };
        let answer = Answer {
            message: response.message,
        };
        ensure!(
            answer.message.metadata.id == message.metadata.id
                && answer.message.metadata.message_type == MessageType::Response,
            "{server} sent a stray message to {name} {record_type}: {answer:?}"
        );
        if answer.message.metadata.truncation && how.transport == Transport::Udp {
            how.transport = Transport::Tcp;
            continue;
        }
        return Ok(answer);
    }
}

/// A query ID that differs from one query to the next.
fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hickory_proto::rr::{Record, rdata::A};

    use super::*;

    /// A server on loopback that answers the queries it gets with `respond`, over UDP and
    /// TCP on the same port; it ignores the first `drop` datagrams.
    async fn server(drop: usize, respond: fn(&Message, Transport) -> Message) -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(address).await.unwrap();
        tokio::spawn(async move {
            let mut buffer = vec![0; 65_535];
            let mut seen = 0;
            loop {
                let (len, from) = udp.recv_from(&mut buffer).await.unwrap();
                seen += 1;
                if seen <= drop {
                    continue;
                }
                let query = Message::from_vec(&buffer[..len]).unwrap();
                let reply = respond(&query, Transport::Udp).to_vec().unwrap();
                udp.send_to(&reply, from).await.unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = tcp.accept().await.unwrap();
                let len = stream.read_u16().await.unwrap();
                let mut bytes = vec![0; usize::from(len)];
                stream.read_exact(&mut bytes).await.unwrap();
                let query = Message::from_vec(&bytes).unwrap();
                let reply = respond(&query, Transport::Tcp).to_vec().unwrap();
                let len = u16::try_from(reply.len()).unwrap();
                stream.write_all(&len.to_be_bytes()).await.unwrap();
                stream.write_all(&reply).await.unwrap();
            }
        });
        address
    }

    fn reply_to(query: &Message, _: Transport) -> Message {
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.metadata.authoritative = true;
        reply.queries.clone_from(&query.queries);
        let name = query.queries[0].name().clone();
        reply.add_answer(Record::from_rdata(
            name.clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        reply.add_answer(Record::from_rdata(
            name,
            300,
            RData::TXT(TXT::from_bytes(vec![b"say \"hi\"\\".as_slice(), b"\x01"])),
        ));
        reply
    }

    /// Truncated over UDP, whole over TCP.
    fn truncated_over_udp(query: &Message, transport: Transport) -> Message {
        let mut reply = reply_to(query, transport);
        if transport == Transport::Udp {
            reply.metadata.truncation = true;
            reply.answers.clear();
        }
        reply
    }

    #[tokio::test]
    async fn asks_over_udp_and_reads_the_answer_as_dig_prints_it() {
        let server = server(0, reply_to).await;
        let answer = ask(server, "www.example", RecordType::A).await.unwrap();
        assert_eq!(answer.rcode(), ResponseCode::NoError);
        assert!(answer.authoritative());
        assert_eq!(answer.rdata(), ["192.0.2.1", r#""say \"hi\"\\" "\001""#]);
        assert_eq!(answer.message.queries[0].name().to_string(), "www.example.");
    }

    #[test]
    fn soa_and_caa_read_as_dig_prints_them() {
        use hickory_proto::rr::rdata::{CAA, SOA};
        let name = |n: &str| Name::from_ascii(n).unwrap();
        let mut message = Message::response(1, OpCode::Query);
        message.add_answer(Record::from_rdata(
            name("mx1.acme.test."),
            300,
            RData::SOA(SOA::new(
                name("ns1.mx1.acme.test."),
                name("hostmaster.mx1.acme.test."),
                2_024_010_101,
                3600,
                600,
                1_209_600,
                300,
            )),
        ));
        message.add_answer(Record::from_rdata(
            name("acme.test."),
            300,
            RData::CAA(CAA::new_issue(false, Some(name("letsencrypt.org")), vec![])),
        ));
        let answer = Answer { message };
        assert_eq!(
            answer.rdata(),
            [
                "ns1.mx1.acme.test. hostmaster.mx1.acme.test. 2024010101 3600 600 1209600 300",
                "0 issue \"letsencrypt.org\""
            ]
        );
        assert_eq!(answer.soa_serial(), Some(2_024_010_101));
    }

    #[tokio::test]
    async fn counts_retries_and_reports_unanswered_queries() {
        let how = Attempts {
            transport: Transport::Udp,
            timeout: Duration::from_millis(200),
            attempts: 3,
        };
        let server = server(2, reply_to).await;
        let query = query(7, "www.example", RecordType::A).unwrap();
        let response = exchange(server, &query, how).await.unwrap().unwrap();
        assert_eq!(response.retries, 2);
        assert_eq!(response.message.metadata.id, 7);

        let silent = server_that_never_answers().await;
        assert!(exchange(silent, &query, how).await.unwrap().is_none());
        assert!(
            ask_with(silent, "www.example", RecordType::A, how)
                .await
                .is_err()
        );
    }

    async fn server_that_never_answers() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0; 512];
            while socket.recv_from(&mut buffer).await.is_ok() {}
        });
        address
    }

    #[tokio::test]
    async fn a_truncated_response_is_asked_again_over_tcp() {
        let server = server(0, truncated_over_udp).await;
        let answer = ask(server, "www.example", RecordType::A).await.unwrap();
        assert!(!answer.message.metadata.truncation);
        assert_eq!(answer.rdata().len(), 2);

        let tcp = Attempts {
            transport: Transport::Tcp,
            ..Attempts::default()
        };
        let query = query(9, "www.example", RecordType::A).unwrap();
        let response = exchange(server, &query, tcp).await.unwrap().unwrap();
        assert_eq!(response.message.answers.len(), 2);
    }
}
