//! Bad input never hurts the server: no panic, no hang, no malformed or misaddressed
//! response, no answer to a packet that is itself a response, and correct answers after the
//! storm.
//!
//! Packets reach the server two ways: in-process through `serve::raw::respond` (raw bytes
//! in, encoded responses out, exactly what the TCP listener does), fast enough for tens of
//! thousands of cases; and over real UDP and TCP sockets to a running server. The mutation
//! fuzzer is deterministic (a seeded xorshift), so a failure names a case that replays.
//!
//! Regression tests are named after the past hickory/trust-dns advisories they cover.

mod common;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::{
    LOOSE_LIMITS, MANY_MX_COUNT, REPLY_TIMEOUT, TestServer, ask_tcp, ask_udp, decode, encode,
    framed, handler, many_mx_target, name, query, tcp_connect, tcp_receive, tcp_send, udp_receive,
    udp_socket, with_edns,
};
use hickory_proto::{
    op::{Header, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType},
    serialize::binary::{BinDecodable, BinDecoder},
};
use hickory_server::net::xfer::Protocol;
use tokio::net::{TcpStream, UdpSocket};
use zonefleet_dns_pod::{
    encode::UDP_PAYLOAD_CAP,
    serve::{QueryHandler, raw},
};

/// Where in-process requests claim to come from (inside the transfer ACL, so mutated AXFR
/// queries over TCP exercise transfers too).
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)),
    53_535,
);
/// The network allowed to transfer zones in these tests.
const LOOPBACK: &str = "127.0.0.0/8";
/// The limit on the whole in-process fuzz run before it counts as hung.
const IN_PROCESS_LIMIT: Duration = Duration::from_secs(600);
/// The limit on one in-process regression case before it counts as hung.
const CASE_LIMIT: Duration = Duration::from_secs(30);
/// Mutated cases fed in-process, on top of the truncations and the hostile packets.
const IN_PROCESS_CASES: usize = 50_000;
/// Mutated cases sent over each real socket (UDP, then TCP).
const SOCKET_CASES: usize = 3_000;
/// The ID of the sentinel queries of the socket runs (case IDs stay below it).
const SENTINEL_ID: u16 = 0x8000;

// ---------------------------------------------------------------------------------------
// Packets

/// A deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// A DNS header: ID, flags, then the four section counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes
}

/// A wire name of uncompressed labels, ending with the root.
fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for label in labels {
        bytes.push(u8::try_from(label.len()).expect("a label length fits a byte"));
        bytes.extend_from_slice(label);
    }
    bytes.push(0);
    bytes
}

/// A compression pointer to `offset`.
fn pointer(offset: u16) -> [u8; 2] {
    (0xC000 | offset).to_be_bytes()
}

/// QTYPE A, QCLASS IN.
const A_IN: [u8; 4] = [0, 1, 0, 1];

/// A name of one label `a` followed by a pointer back to the name's own start (offset 12):
/// a loop through a label.
fn label_then_pointer_to_itself() -> Vec<u8> {
    let mut name = vec![1, b'a'];
    name.extend_from_slice(&pointer(12));
    name
}

/// A question for the wire name `name`, type A, class IN.
fn question(name: &[u8]) -> Vec<u8> {
    let mut question = name.to_vec();
    question.extend_from_slice(&A_IN);
    question
}

/// A packet: header with `flags`, then the question section `questions`, counted as
/// `qdcount`.
fn raw_query(id: u16, flags: u16, qdcount: u16, questions: &[u8]) -> Vec<u8> {
    let mut bytes = header(id, flags, [qdcount, 0, 0, 0]);
    bytes.extend_from_slice(questions);
    bytes
}

/// A one-question query (QR and RD clear) for the wire name `name`, type A.
fn name_query(name: &[u8]) -> Vec<u8> {
    raw_query(0x1234, 0, 1, &question(name))
}

/// Queries whose one question name is a compression pointer into the header (the only
/// place a first name can point to): with RD set, a pointer to offset 2 reads the name
/// `\000.` (flags bytes 0x01 0x00, then QDCOUNT's high byte 0x00); with the flags 0x79 0x00
/// (an unassigned opcode), a pointer to offset 3 reads the root.
fn header_pointer_queries() -> Vec<Vec<u8>> {
    vec![
        raw_query(0x4247, 0x0100, 1, &question(&pointer(2))),
        raw_query(0x4248, 0x7900, 1, &question(&pointer(3))),
    ]
}

/// Valid queries the mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let mut two = query(1, "www.example.com.", RecordType::A);
    two.add_query(Query::query(name("mail.example.com."), RecordType::A));
    let mut status = query(2, "example.com.", RecordType::SOA);
    status.metadata.op_code = OpCode::Status;
    let mut badvers = with_edns(query(3, "www.example.com.", RecordType::A), 1232);
    if let Some(edns) = badvers.edns.as_mut() {
        edns.set_version(1);
    }
    let mut seeds: Vec<Message> = vec![
        query(4, "www.example.com.", RecordType::A),
        with_edns(query(5, "wWw.ExAmple.com.", RecordType::A), 4096),
        with_edns(query(6, "big.example.com.", RecordType::TXT), 1232),
        with_edns(query(7, "manymx.example.com.", RecordType::MX), 4096),
        query(8, "example.com.", RecordType::AXFR),
        query(9, "multi.example.com.", RecordType::ANY),
        query(10, "nope.example.com.", RecordType::A),
        query(11, "nullmx.example.com.", RecordType::MX),
        query(12, "_sip._tcp.example.com.", RecordType::SRV),
        query(13, "www.example.org.", RecordType::A),
        query(14, "www.example.net.", RecordType::MX),
        two,
        status,
        badvers,
    ];
    for seed in &mut seeds {
        seed.metadata.recursion_desired = true;
    }
    seeds.iter().map(encode).collect()
}

/// Applies one random mutation.
fn mutate_once(rng: &mut Rng, packet: &mut Vec<u8>) {
    let len = packet.len();
    match rng.below(11) {
        // Bit flips.
        0 if len > 0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(len);
                packet[at] ^= 1 << rng.below(8);
            }
        }
        // Truncation.
        1 => packet.truncate(rng.below(len + 1)),
        // Random bytes overwritten.
        2 if len > 0 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(len);
                packet[at] = rng.byte();
            }
        }
        // Bytes inserted.
        3 => {
            let at = rng.below(len + 1);
            let count = 1 + rng.below(16);
            let inserted = rng.bytes(count);
            packet.splice(at..at, inserted);
        }
        // Bytes deleted.
        4 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(8)).min(len);
            packet.drain(at..end);
        }
        // A header count set to a large value.
        5 if len >= 12 => {
            let at = 4 + 2 * rng.below(4);
            let value = [0xFFFF, 0x8000, 0x0100, 0x00FF, 2][rng.below(5)];
            packet[at..at + 2].copy_from_slice(&u16::to_be_bytes(value));
        }
        // A compression pointer somewhere after the header: to itself, forward, into the
        // header, or anywhere.
        6 if len > 12 => {
            let at = 12 + rng.below(len - 12);
            let target = match rng.below(4) {
                0 => at,
                1 => at + 1 + rng.below(64),
                2 => rng.below(12),
                _ => rng.below(0x4000),
            };
            let bytes = pointer(u16::try_from(target & 0x3FFF).expect("14 bits fit"));
            packet.truncate(at);
            packet.extend_from_slice(&bytes);
            if rng.below(2) == 0 {
                packet.extend_from_slice(&A_IN);
            }
        }
        // The question replaced by a hostile name.
        7 if len >= 12 => {
            let hostile = hostile_name(rng);
            packet.truncate(12);
            packet[4..6].copy_from_slice(&1u16.to_be_bytes());
            packet.extend_from_slice(&hostile);
            packet.extend_from_slice(&A_IN);
        }
        // QR set: the packet claims to be a response.
        8 if len > 2 => packet[2] |= 0x80,
        // A random opcode.
        9 if len > 2 => packet[2] = (packet[2] & 0x87) | (rng.byte() & 0x78),
        // Random trailing garbage.
        10 => {
            let count = 1 + rng.below(32);
            packet.extend(rng.bytes(count));
        }
        _ => {}
    }
}

/// A hostile question name: too many labels, labels too long, a name too long, or a
/// compression pointer loop (all placed at offset 12, right after the header).
fn hostile_name(rng: &mut Rng) -> Vec<u8> {
    let one_byte = [b"a".as_slice(); 130];
    match rng.below(7) {
        0 => wire_name(&one_byte[..120 + rng.below(10)]),
        1 => {
            // A label length of 64..=255 (reserved high bits included).
            let mut name = vec![u8::try_from(64 + rng.below(192)).expect("fits a byte")];
            let len = rng.below(300);
            name.extend(rng.bytes(len));
            name
        }
        2 => wire_name(&[[b'x'; 63].as_slice(); 5]),
        3 => pointer(12).to_vec(),
        4 => label_then_pointer_to_itself(),
        5 => pointer(u16::try_from(rng.below(12)).expect("fits")).to_vec(),
        _ => pointer(u16::try_from(13 + rng.below(100)).expect("fits")).to_vec(),
    }
}

/// The fuzz cases: `count` random mutations of the seeds (one to three each, sometimes with
/// QR set, sometimes pure noise).
fn mutated_cases(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    let seeds = seeds();
    (0..count)
        .map(|_| {
            if rng.below(50) == 0 {
                let len = rng.below(600);
                return rng.bytes(len);
            }
            let mut packet = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                mutate_once(rng, &mut packet);
            }
            if rng.below(20) == 0 && packet.len() > 2 {
                packet[2] |= 0x80;
            }
            packet
        })
        .collect()
}

/// Every seed cut at every length.
fn truncations() -> Vec<Vec<u8>> {
    seeds()
        .iter()
        .flat_map(|seed| (0..seed.len()).map(|len| seed[..len].to_vec()))
        .collect()
}

/// What a hand-made packet must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This response code.
    Rcode(ResponseCode),
    /// FORMERR, or no response at all.
    FormErrOrNothing,
    /// No response.
    Nothing,
    /// Whatever passes the general checks.
    Checked,
}

/// Hand-made hostile packets, each with what it must get.
fn hostile_packets() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::{Checked, FormErrOrNothing, Nothing, Rcode};
    let one_byte = [b"a".as_slice(); 128];
    let mut under_example_com: Vec<&[u8]> = one_byte[..121].to_vec();
    under_example_com.extend([b"example".as_slice(), b"com"]);
    let long_labels = [[b'x'; 63].as_slice(); 5];
    let valid = encode(&query(0x4242, "www.example.com.", RecordType::A));
    let www_question = valid[12..].to_vec();
    let with_counts = |counts: [u16; 4]| {
        let mut bytes = header(0x4243, 0, counts);
        bytes.extend_from_slice(&www_question);
        bytes
    };
    // An OPT record: root owner, type 41, payload 1232, TTL 0, no options.
    let opt = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0];
    let mut two_opts = header(0x4244, 0, [1, 0, 0, 2]);
    two_opts.extend_from_slice(&www_question);
    two_opts.extend_from_slice(&opt);
    two_opts.extend_from_slice(&opt);
    // `x.`, then 199 names each `x` and a pointer to the previous one: valid pointers, but
    // the names grow past 255 bytes.
    let mut chain = question(&wire_name(&[b"x"]));
    let mut previous = 12;
    for _ in 1..200 {
        let here = u16::try_from(12 + chain.len()).expect("fits");
        let mut name = vec![1, b'x'];
        name.extend_from_slice(&pointer(previous));
        chain.extend(question(&name));
        previous = here;
    }
    // The first question points forward to the second (at 18), the second back to it.
    let mut mutual = question(&pointer(18));
    mutual.extend(question(&pointer(12)));
    let mut response = valid.clone();
    response[2] |= 0x80;
    let mut truncated_response = response.clone();
    truncated_response.truncate(20);
    let chaos_class = {
        let mut bytes = valid.clone();
        let len = bytes.len();
        bytes[len - 1] = 3;
        bytes
    };
    vec![
        (
            "127 one-byte labels, 255 bytes",
            name_query(&wire_name(&one_byte[..127])),
            Rcode(ResponseCode::Refused),
        ),
        (
            "121 one-byte labels under example.com., 255 bytes",
            name_query(&wire_name(&under_example_com)),
            Rcode(ResponseCode::NXDomain),
        ),
        (
            "128 one-byte labels, 257 bytes",
            name_query(&wire_name(&one_byte)),
            FormErrOrNothing,
        ),
        (
            "a 64-byte label",
            name_query(&wire_name(&[&[b'x'; 64]])),
            FormErrOrNothing,
        ),
        (
            "a label length with reserved bits 10",
            name_query(&[0x80, b'x', 0]),
            FormErrOrNothing,
        ),
        (
            "five 63-byte labels, 321 bytes",
            name_query(&wire_name(&long_labels)),
            FormErrOrNothing,
        ),
        (
            "a pointer to itself",
            name_query(&pointer(12)),
            FormErrOrNothing,
        ),
        (
            "a label, then a pointer back to the name's own start",
            name_query(&label_then_pointer_to_itself()),
            FormErrOrNothing,
        ),
        (
            "a pointer forward",
            name_query(&pointer(40)),
            FormErrOrNothing,
        ),
        (
            "a pointer past the end",
            name_query(&pointer(0x3FFF)),
            FormErrOrNothing,
        ),
        (
            "two questions pointing at each other",
            raw_query(0x4245, 0, 2, &mutual),
            FormErrOrNothing,
        ),
        (
            "200 questions, each a label and a pointer to the previous",
            raw_query(0x4246, 0, 200, &chain),
            FormErrOrNothing,
        ),
        (
            "a pointer into the header",
            name_query(&pointer(0)),
            Checked,
        ),
        (
            "a pointer to the header's flags",
            header_pointer_queries().remove(0),
            Checked,
        ),
        (
            "QDCOUNT 65535",
            with_counts([0xFFFF, 0, 0, 0]),
            FormErrOrNothing,
        ),
        (
            "ANCOUNT 65535",
            with_counts([1, 0xFFFF, 0, 0]),
            FormErrOrNothing,
        ),
        (
            "ARCOUNT 65535",
            with_counts([1, 0, 0, 0xFFFF]),
            FormErrOrNothing,
        ),
        ("two OPT records", two_opts, FormErrOrNothing),
        ("class CH", chaos_class, Rcode(ResponseCode::Refused)),
        ("a valid response (QR=1)", response, Nothing),
        ("a truncated response (QR=1)", truncated_response, Nothing),
        ("an empty packet", Vec::new(), Nothing),
        ("an 11-byte packet", valid[..11].to_vec(), Nothing),
    ]
}

// ---------------------------------------------------------------------------------------
// Checks

/// The transport a packet went over: the size limit of its responses differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn protocol(self) -> Protocol {
        match self {
            Self::Udp => Protocol::Udp,
            Self::Tcp => Protocol::Tcp,
        }
    }
}

/// The ID and QR bit of a request, if it has a header.
fn request_header(request: &[u8]) -> Option<(u16, bool)> {
    let header = Header::read(&mut BinDecoder::new(request)).ok()?;
    Some((
        header.metadata.id,
        header.metadata.message_type == MessageType::Response,
    ))
}

/// The questions of a request as the server reads them (case kept), if they parse.
fn request_questions(request: &[u8]) -> Option<Vec<Query>> {
    let mut decoder = BinDecoder::new(request);
    let header = Header::read(&mut decoder).ok()?;
    (0..header.counts.queries)
        .map(|_| Query::read(&mut decoder).ok())
        .collect()
}

/// A question as text, owner in the case sent.
fn question_text(query: &Query) -> String {
    format!(
        "{} {} {}",
        query.name().to_ascii(),
        query.query_class(),
        query.query_type()
    )
}

/// Why a case failed: a kind (failures are grouped by it) and the details.
#[derive(Debug)]
struct Failure {
    kind: &'static str,
    detail: String,
}

fn failure(kind: &'static str, detail: impl Into<String>) -> Result<(), Failure> {
    Err(Failure {
        kind,
        detail: detail.into(),
    })
}

/// The general checks on the responses to one request:
/// - a packet shorter than a header, or with QR set, gets nothing;
/// - any other packet gets a response (exactly one over UDP);
/// - every response parses, has QR set and the request's ID, fits the transport (1232 bytes
///   over UDP), and echoes the request's question exactly, if it echoes one.
fn check(request: &[u8], responses: &[Vec<u8>], transport: Transport) -> Result<(), Failure> {
    let Some((id, is_response)) = request_header(request) else {
        return match responses.is_empty() {
            true => Ok(()),
            false => failure("answered a packet shorter than a header", ""),
        };
    };
    if is_response {
        return match responses.is_empty() {
            true => Ok(()),
            false => failure(
                "answered a packet with QR=1 (RUSTSEC-2023-0041)",
                format!("response {}", hex(&responses[0])),
            ),
        };
    }
    match (transport, responses.len()) {
        (_, 0) => return failure("a query got no response", ""),
        (Transport::Udp, n) if n > 1 => return failure("several responses over UDP", ""),
        _ => {}
    }
    for bytes in responses {
        let response = match Message::from_vec(bytes) {
            Ok(response) => response,
            Err(error) => {
                return failure(
                    "a response does not parse",
                    format!("{error}; response {}", hex(bytes)),
                );
            }
        };
        if response.metadata.message_type != MessageType::Response {
            return failure("a response without QR", hex(bytes));
        }
        if response.metadata.id != id {
            return failure(
                "a response with another ID",
                format!("{} for {id}", response.metadata.id),
            );
        }
        if transport == Transport::Udp && bytes.len() > usize::from(UDP_PAYLOAD_CAP) {
            return failure("a UDP response over 1232 bytes", bytes.len().to_string());
        }
        if !response.queries.is_empty() {
            let Some(asked) = request_questions(request) else {
                return failure(
                    "a question echoed from a request whose questions do not parse",
                    hex(bytes),
                );
            };
            let asked: Vec<String> = asked.iter().map(question_text).collect();
            let echoed: Vec<String> = response.queries.iter().map(question_text).collect();
            if asked != echoed {
                return failure(
                    "the response's question is not the request's",
                    format!(
                        "asked {asked:?}, echoed {echoed:?}; response {}",
                        hex(bytes)
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The hand-made expectation on top of the general checks.
fn check_expectation(responses: &[Vec<u8>], expect: Expect) -> Result<(), Failure> {
    let rcodes: Vec<ResponseCode> = responses
        .iter()
        .filter_map(|bytes| Message::from_vec(bytes).ok())
        .map(|message| message.metadata.response_code)
        .collect();
    let ok = match expect {
        Expect::Rcode(rcode) => rcodes == [rcode],
        Expect::FormErrOrNothing => rcodes.is_empty() || rcodes == [ResponseCode::FormErr],
        Expect::Nothing => rcodes.is_empty(),
        Expect::Checked => true,
    };
    match ok {
        true => Ok(()),
        false => failure(
            "not the expected response",
            format!("expected {expect:?}, got {rcodes:?}"),
        ),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes.iter().take(200) {
        write!(text, "{byte:02x}").expect("write to a String");
    }
    if bytes.len() > 200 {
        text.push('…');
    }
    text
}

/// Collects failures, grouped by kind, and fails the test with a count and the first case
/// of each kind.
#[derive(Default)]
struct Failures {
    count: usize,
    by_kind: BTreeMap<&'static str, (usize, String)>,
}

impl Failures {
    fn record(&mut self, label: &str, request: &[u8], result: Result<(), Failure>) {
        let Err(Failure { kind, detail }) = result else {
            return;
        };
        self.count += 1;
        let entry = self.by_kind.entry(kind).or_insert_with(|| {
            (
                0,
                format!("{label}: {detail}\n      request {}", hex(request)),
            )
        });
        entry.0 += 1;
    }

    fn assert_none(&self, what: &str, cases: usize) {
        let mut report = String::new();
        for (kind, (count, first)) in &self.by_kind {
            write!(report, "\n  {count} × {kind}; the first:\n    {first}")
                .expect("write to a String");
        }
        assert!(
            self.count == 0,
            "{what}: {} of {cases} cases failed:{report}",
            self.count
        );
    }
}

// ---------------------------------------------------------------------------------------
// Running cases

/// Runs `work` on its own thread with its own runtime; fails the test if it takes longer
/// than `limit` (a hang) or panics.
fn guarded<T, F>(limit: Duration, work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _ = done.send(runtime.block_on(work()));
    });
    match result.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: no result within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the work panicked"),
    }
}

/// The responses to one packet, in-process.
async fn respond(handler: &QueryHandler, packet: &[u8], transport: Transport) -> Vec<Vec<u8>> {
    raw::respond(handler, packet.to_vec(), CLIENT, transport.protocol())
}

/// The answer data of a normal query, through `raw::respond`.
async fn in_process_answer(handler: &QueryHandler, transport: Transport) -> Vec<String> {
    let request = encode(&query(0x0777, "www.example.com.", RecordType::A));
    let responses = respond(handler, &request, transport).await;
    assert_eq!(responses.len(), 1, "one response to a normal query");
    answer_data(&decode(&responses[0]))
}

fn answer_data(message: &Message) -> Vec<String> {
    message.answers.iter().map(|r| r.data.to_string()).collect()
}

/// Gives each packet long enough to carry one its own ID (`index + 1`), so that responses
/// over UDP can be matched to packets.
fn stamp_ids(packets: &mut [Vec<u8>]) {
    for (index, packet) in packets.iter_mut().enumerate() {
        if packet.len() >= 2 {
            let id = u16::try_from(index + 1).expect("fewer cases than the sentinel ID");
            assert!(id < SENTINEL_ID);
            packet[..2].copy_from_slice(&id.to_be_bytes());
        }
    }
}

/// A sentinel query and a check of its answer.
fn sentinel(id: u16) -> Vec<u8> {
    encode(&query(id, "www.example.com.", RecordType::A))
}

fn check_sentinel(bytes: &[u8]) {
    let message = decode(bytes);
    assert_eq!(
        answer_data(&message),
        ["192.0.2.80"],
        "the sentinel's answer"
    );
}

/// The ID of a message, if it is long enough to have one.
fn message_id(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Sends each packet over UDP followed by a sentinel query, and collects every datagram
/// that comes back until the sentinel's answer (and, at the end, a quiet half second).
/// Returns the responses to each packet, matched by ID (see [`stamp_ids`]); fails the test
/// on a response that matches no packet.
async fn over_udp(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    let socket = udp_socket().await;
    let mut received = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        let sentinel_id = SENTINEL_ID | u16::try_from(index & 0x7FFF).expect("15 bits fit");
        send_datagram(&socket, server, packet).await;
        send_datagram(&socket, server, &sentinel(sentinel_id)).await;
        loop {
            let bytes = udp_receive(&socket, REPLY_TIMEOUT)
                .await
                .unwrap_or_else(|| panic!("no answer to the sentinel after case {index}"));
            let id = message_id(&bytes);
            if id.is_some_and(|id| id & SENTINEL_ID != 0) {
                // This case's sentinel ends the wait; an earlier one's late answer does not.
                check_sentinel(&bytes);
                if id == Some(sentinel_id) {
                    break;
                }
                continue;
            }
            received.push(bytes);
        }
    }
    while let Some(bytes) = udp_receive(&socket, Duration::from_millis(500)).await {
        received.push(bytes);
    }
    let mut by_case = vec![Vec::new(); packets.len()];
    for bytes in received {
        let case = message_id(&bytes)
            .and_then(|id| usize::from(id).checked_sub(1))
            .filter(|&case| case < packets.len())
            .unwrap_or_else(|| panic!("a UDP response matches no packet sent: {}", hex(&bytes)));
        by_case[case].push(bytes);
    }
    by_case
}

async fn send_datagram(socket: &UdpSocket, server: SocketAddr, packet: &[u8]) {
    socket
        .send_to(packet, server)
        .await
        .expect("send a datagram");
}

/// Sends each packet over TCP followed by a sentinel query on the same connection, and
/// collects the messages before the sentinel's answer (TCP answers in order). A connection
/// the server closes is reopened; the packet that closed it is noted in its responses as
/// an empty message.
async fn over_tcp(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    let mut stream = tcp_connect(server).await;
    let mut all = Vec::with_capacity(packets.len());
    for packet in packets {
        all.push(tcp_case(&mut stream, packet).await);
        if all
            .last()
            .is_some_and(|r: &Vec<Vec<u8>>| r.iter().any(Vec::is_empty))
        {
            stream = tcp_connect(server).await;
        }
    }
    all
}

async fn tcp_case(stream: &mut TcpStream, packet: &[u8]) -> Vec<Vec<u8>> {
    let sentinel_id = SENTINEL_ID | 0x7FFF;
    let mut batch = framed(packet);
    batch.extend(framed(&sentinel(sentinel_id)));
    tokio::io::AsyncWriteExt::write_all(stream, &batch)
        .await
        .expect("write to the TCP connection");
    let mut responses = Vec::new();
    loop {
        match tcp_receive(stream).await {
            Some(bytes) if message_id(&bytes) == Some(sentinel_id) => {
                check_sentinel(&bytes);
                return responses;
            }
            Some(bytes) => responses.push(bytes),
            None => {
                responses.push(Vec::new());
                return responses;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fuzzer

/// Tens of thousands of mutated, truncated and hand-made hostile packets through
/// `raw::respond` over both transports: no panic or hang, every response well-formed and
/// addressed to its request, nothing for QR=1; and a normal query is still answered right
/// afterwards.
#[test]
fn in_process_fuzz_never_hurts() {
    let (cases, failures) = guarded(IN_PROCESS_LIMIT, || async {
        let handler = handler(&[LOOPBACK]);
        let mut rng = Rng::new(0x005E_ED0F_2024);
        let mut packets = mutated_cases(&mut rng, IN_PROCESS_CASES);
        packets.extend(truncations());
        packets.extend(hostile_packets().into_iter().map(|(_, packet, _)| packet));
        let mut failures = Failures::default();
        let mut cases = 0;
        for (index, packet) in packets.iter().enumerate() {
            for transport in [Transport::Udp, Transport::Tcp] {
                let responses = respond(&handler, packet, transport).await;
                let label = format!("case {index} over {transport:?}");
                failures.record(&label, packet, check(packet, &responses, transport));
                cases += 1;
            }
        }
        for transport in [Transport::Udp, Transport::Tcp] {
            assert_eq!(
                in_process_answer(&handler, transport).await,
                ["192.0.2.80"],
                "a normal query after the storm, {transport:?}"
            );
        }
        (cases, failures)
    });
    println!("{cases} in-process cases");
    failures.assert_none("in-process fuzz", cases);
}

/// Each hand-made hostile packet gets what it must (FORMERR or nothing for a malformed name,
/// the right rcode for a well-formed one, nothing for QR=1), in-process over both transports.
#[test]
fn hostile_packets_get_what_they_must_in_process() {
    let failures = guarded(IN_PROCESS_LIMIT, || async {
        let handler = handler(&[LOOPBACK]);
        let mut failures = Failures::default();
        for (label, packet, expect) in hostile_packets() {
            for transport in [Transport::Udp, Transport::Tcp] {
                let responses = respond(&handler, &packet, transport).await;
                let result = check(&packet, &responses, transport)
                    .and_then(|()| check_expectation(&responses, expect));
                failures.record(&format!("{label} over {transport:?}"), &packet, result);
            }
        }
        failures
    });
    failures.assert_none("hostile packets in-process", hostile_packets().len() * 2);
}

/// A few thousand mutated packets and the hostile ones over a real UDP socket, then over
/// TCP, to the running server: the same checks, the server answers a sentinel query right
/// after every case, and it is still running at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socket_fuzz_never_hurts() {
    let server = TestServer::start(&[LOOPBACK], LOOSE_LIMITS).await;
    let mut rng = Rng::new(0x00DD_BA11);
    let mut packets = mutated_cases(&mut rng, SOCKET_CASES);
    packets.extend(hostile_packets().into_iter().map(|(_, packet, _)| packet));
    stamp_ids(&mut packets);
    let mut failures = Failures::default();
    let udp = over_udp(server.addr, &packets).await;
    for (index, (packet, responses)) in packets.iter().zip(&udp).enumerate() {
        let result = check(packet, responses, Transport::Udp);
        failures.record(&format!("case {index} over UDP"), packet, result);
    }
    let tcp = over_tcp(server.addr, &packets).await;
    for (index, (packet, responses)) in packets.iter().zip(&tcp).enumerate() {
        let result = match responses.iter().any(Vec::is_empty) {
            true => failure("the server closed the connection", ""),
            false => check(packet, responses, Transport::Tcp),
        };
        failures.record(&format!("case {index} over TCP"), packet, result);
    }
    assert!(server.is_running(), "the server is still running");
    let after = over_udp(server.addr, &[sentinel(1)]).await;
    assert_eq!(after[0].len(), 1);
    check_sentinel(&after[0][0]);
    failures.assert_none("socket fuzz", packets.len() * 2);
}

/// The hand-made hostile packets over real UDP and TCP get what they must.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_packets_get_what_they_must_over_sockets() {
    let server = TestServer::start(&[LOOPBACK], LOOSE_LIMITS).await;
    let hostile = hostile_packets();
    let mut packets: Vec<Vec<u8>> = hostile.iter().map(|(_, p, _)| p.clone()).collect();
    stamp_ids(&mut packets);
    let udp = over_udp(server.addr, &packets).await;
    let tcp = over_tcp(server.addr, &packets).await;
    let mut failures = Failures::default();
    for (index, (label, _, expect)) in hostile.iter().enumerate() {
        let packet = &packets[index];
        for (transport, responses) in [(Transport::Udp, &udp[index]), (Transport::Tcp, &tcp[index])]
        {
            let result = check(packet, responses, transport)
                .and_then(|()| check_expectation(responses, *expect));
            failures.record(&format!("{label} over {transport:?}"), packet, result);
        }
    }
    failures.assert_none("hostile packets over sockets", hostile.len() * 2);
}

// ---------------------------------------------------------------------------------------
// Advisories

/// RUSTSEC-2018-0007 (trust-dns-proto: a compression pointer to itself sent the name
/// decoder into unbounded recursion). A question whose name points to itself, or loops
/// through a label back to its own start, gets FORMERR or nothing, with no hang or panic,
/// in-process and over UDP and TCP; the server answers normally afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rustsec_2018_0007_self_pointing_compression_pointer() {
    let mut packets = vec![
        name_query(&pointer(12)),
        name_query(&label_then_pointer_to_itself()),
    ];
    stamp_ids(&mut packets);

    let in_process = packets.clone();
    let results = guarded(CASE_LIMIT, || async move {
        let handler = handler(&[]);
        let mut results = Vec::new();
        for packet in &in_process {
            results.push(respond(&handler, packet, Transport::Udp).await);
        }
        results
    });
    let server = TestServer::start(&[], LOOSE_LIMITS).await;
    let udp = over_udp(server.addr, &packets).await;
    let tcp = over_tcp(server.addr, &packets).await;
    for (index, packet) in packets.iter().enumerate() {
        for (path, responses, transport) in [
            ("in-process", &results[index], Transport::Udp),
            ("UDP", &udp[index], Transport::Udp),
            ("TCP", &tcp[index], Transport::Tcp),
        ] {
            check(packet, responses, transport)
                .and_then(|()| check_expectation(responses, Expect::FormErrOrNothing))
                .unwrap_or_else(|e| panic!("case {index} {path}: {}: {}", e.kind, e.detail));
        }
    }
    assert!(server.is_running());
}

/// RUSTSEC-2020-0001 (trust-dns-server: an MX or SRV record whose target is the root `.`
/// sent additional-section processing into a stack overflow). `MX 0 .` and `SRV 0 0 0 .`
/// load and are answered with their root targets, over UDP and TCP, and the server keeps
/// running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rustsec_2020_0001_mx_and_srv_with_root_target() {
    let server = TestServer::start(&[], LOOSE_LIMITS).await;
    let mx = query(0x2020, "nullmx.example.com.", RecordType::MX);
    let srv = query(0x2021, "_sip._tcp.example.com.", RecordType::SRV);
    let any = query(0x2022, "NullMX.example.com.", RecordType::ANY);
    for request in [&mx, &srv, &any] {
        let (udp, _) = ask_udp(server.addr, request).await;
        let tcp = ask_tcp(server.addr, request).await;
        for reply in [udp, tcp] {
            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
            assert!(reply.metadata.authoritative);
            assert_eq!(reply.answers.len(), 1, "{:?}", reply.answers);
            match &reply.answers[0].data {
                RData::MX(mx) => {
                    assert_eq!(mx.preference, 0);
                    assert!(mx.exchange.is_root(), "MX target {}", mx.exchange);
                }
                RData::SRV(srv) => {
                    assert_eq!((srv.priority, srv.weight, srv.port), (0, 0, 0));
                    assert!(srv.target.is_root(), "SRV target {}", srv.target);
                }
                other => panic!("an MX or SRV record, not {other}"),
            }
        }
    }
    assert!(server.is_running());
}

/// A valid response packet (QR=1) and a malformed one.
fn response_packets() -> Vec<Vec<u8>> {
    let mut valid = encode(&query(0x2300, "www.example.com.", RecordType::A));
    valid[2] |= 0x80;
    let mut answered = Message::new(0x2301, MessageType::Response, OpCode::Query);
    answered.add_query(Query::query(name("www.example.com."), RecordType::A));
    let mut malformed = valid.clone();
    malformed.truncate(17);
    vec![valid, encode(&answered), malformed]
}

/// RUSTSEC-2023-0041 (trust-dns-server answered responses, so two servers could be made to
/// answer each other forever): a well-formed packet with QR=1 gets no response, in-process,
/// over UDP and over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rustsec_2023_0041_response_gets_no_response() {
    let mut packets = response_packets();
    packets.truncate(2);
    assert_no_response(&packets).await;
}

/// RUSTSEC-2023-0041, malformed: a packet with QR=1 whose body does not parse (here, a
/// question cut short) must not get a FORMERR back either; that would let a forged,
/// malformed "response" bounce between two servers just the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rustsec_2023_0041_malformed_response_gets_no_response() {
    let packets = response_packets().split_off(2);
    assert_no_response(&packets).await;
}

async fn assert_no_response(packets: &[Vec<u8>]) {
    let handler = handler(&[]);
    for packet in packets {
        for transport in [Transport::Udp, Transport::Tcp] {
            let responses = respond(&handler, packet, transport).await;
            assert!(
                responses.is_empty(),
                "in-process over {transport:?} answered {}",
                hex(packet)
            );
        }
    }
    let server = TestServer::start(&[], LOOSE_LIMITS).await;
    let mut stamped = packets.to_vec();
    stamp_ids(&mut stamped);
    for (path, responses) in [
        ("UDP", over_udp(server.addr, &stamped).await),
        ("TCP", over_tcp(server.addr, &stamped).await),
    ] {
        for (packet, responses) in stamped.iter().zip(responses) {
            assert!(
                responses.is_empty(),
                "{path} answered the QR=1 packet {} with {}",
                hex(packet),
                hex(&responses[0])
            );
        }
    }
}

/// RUSTSEC-2026-0119 (hickory-proto: name compression scanned every earlier name linearly,
/// O(n²) in the names of a message; fixed in hickory-proto 0.26.1, and we build on 0.26.3).
/// A response with hundreds of distinct long names to compress (300 MX targets of three
/// labels each) is answered whole over TCP, in-process and over a socket, and truncated over
/// UDP. The timeouts only guard against a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rustsec_2026_0119_many_names_to_compress() {
    let request = with_edns(query(0x2026, "manymx.example.com.", RecordType::MX), 4096);
    let in_process = encode(&request);
    let responses = guarded(CASE_LIMIT, || async move {
        respond(&handler(&[]), &in_process, Transport::Tcp).await
    });
    assert_eq!(responses.len(), 1);
    assert_many_mx(&decode(&responses[0]));

    let server = TestServer::start(&[], LOOSE_LIMITS).await;
    let started = Instant::now();
    let mut stream = tcp_connect(server.addr).await;
    tcp_send(&mut stream, &encode(&request)).await;
    let bytes = tcp_receive(&mut stream).await.expect("an answer over TCP");
    assert_many_mx(&decode(&bytes));
    println!(
        "{MANY_MX_COUNT} MX records over TCP in {:?}",
        started.elapsed()
    );

    let (udp, size) = ask_udp(server.addr, &request).await;
    assert!(udp.metadata.truncation, "TC over UDP");
    assert!(size <= usize::from(UDP_PAYLOAD_CAP));
}

fn assert_many_mx(reply: &Message) {
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.truncation);
    let mut targets: Vec<Name> = reply
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::MX(mx) => mx.exchange.clone(),
            other => panic!("an MX record, not {other}"),
        })
        .collect();
    targets.sort();
    let mut expected: Vec<Name> = (0..MANY_MX_COUNT)
        .map(|i| name(&many_mx_target(i)))
        .collect();
    expected.sort();
    assert_eq!(targets, expected);
}

// ---------------------------------------------------------------------------------------
// Other regressions

/// A question name compressed against the header (a pointer to offset 2 or 3, which the
/// name decoder accepts as "prior" data) must come back in the response as it was asked, in
/// a response that parses (or get a FORMERR without a question). Echoing the question's raw
/// bytes keeps the pointer while the header bytes it points to change (QR, AA, RCODE), so the
/// echoed name changes or stops parsing. In-process over both transports, and over UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn question_compressed_against_the_header_is_echoed_as_asked() {
    let mut packets = header_pointer_queries();
    let handler = handler(&[]);
    let mut failures = Failures::default();
    for (index, packet) in packets.iter().enumerate() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let responses = respond(&handler, packet, transport).await;
            let result = check(packet, &responses, transport);
            failures.record(
                &format!("query {index} in-process, {transport:?}"),
                packet,
                result,
            );
        }
    }
    let server = TestServer::start(&[], LOOSE_LIMITS).await;
    stamp_ids(&mut packets);
    let udp = over_udp(server.addr, &packets).await;
    for (index, (packet, responses)) in packets.iter().zip(&udp).enumerate() {
        let result = check(packet, responses, Transport::Udp);
        failures.record(&format!("query {index} over UDP"), packet, result);
    }
    failures.assert_none("questions compressed against the header", packets.len() * 3);
}
