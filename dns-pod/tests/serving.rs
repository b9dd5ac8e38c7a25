//! The DNS server's behaviour over real sockets: the server runs in-process on 127.0.0.1
//! (UDP and TCP on one port) with small test zones (`common`), and each test talks to it
//! as a client would.

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::{
    BIG_TXT_COUNT, EXAMPLE_COM_NEGATIVE_TTL, EXAMPLE_NET_NEGATIVE_TTL, LOOSE_LIMITS, TestServer,
    ask_on, ask_tcp, ask_udp, big_txt, decode, encode, example_com_record_count, framed, name,
    query, rendered, tcp_connect, tcp_receive, tcp_send, with_edns,
};
use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{RData, Record, RecordType},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use zonefleet_dns_pod::{encode::UDP_PAYLOAD_CAP, serve::TcpLimits};

/// The network the test clients connect from.
const LOOPBACK: &str = "127.0.0.0/8";

/// A server with no transfer ACL and loose TCP limits.
async fn server() -> TestServer {
    TestServer::start(&[], LOOSE_LIMITS).await
}

/// The one SOA of an authority section, checked to be the only record there.
fn only_soa(authority: &[Record]) -> &Record {
    assert_eq!(authority.len(), 1, "authority: {:?}", rendered(authority));
    assert_eq!(authority[0].record_type(), RecordType::SOA);
    &authority[0]
}

/// A positive answer has AA set, echoes the question name in the exact case it was asked,
/// and holds the record under that owner name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positive_answer_is_authoritative_and_keeps_the_case_asked() {
    let server = server().await;
    let (reply, _) = ask_udp(server.addr, &query(1, "wWw.ExAmple.com.", RecordType::A)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative, "AA");
    assert!(!reply.metadata.truncation, "TC");
    assert_eq!(reply.queries.len(), 1);
    assert_eq!(reply.queries[0].name().to_ascii(), "wWw.ExAmple.com.");
    assert_eq!(reply.queries[0].query_type(), RecordType::A);
    assert_eq!(
        rendered(&reply.answers),
        ["wWw.ExAmple.com. 3600 IN A 192.0.2.80"]
    );
}

/// Queries answered over UDP, by the fast path and by the general one, are counted by type
/// and response code, with their sizes. A worker adds its counts after it sends a batch,
/// so the test waits a little for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_answers_are_counted_in_the_metrics() {
    let server = server().await;
    let asked = [
        ("www.example.com.", RecordType::A),
        ("WWW.example.com.", RecordType::A),
        ("nothing.example.com.", RecordType::A),
        // DS is left to the general path.
        ("www.example.com.", RecordType::DS),
    ];
    let mut sizes = 0;
    for (id, (qname, qtype)) in (1..).zip(asked) {
        let (_, size) = ask_udp(server.addr, &query(id, qname, qtype)).await;
        sizes += size;
    }
    let expected = [
        "zonefleet_dns_queries_total{qtype=\"A\",protocol=\"udp\"} 3\n".to_owned(),
        "zonefleet_dns_queries_total{qtype=\"DS\",protocol=\"udp\"} 1\n".to_owned(),
        "zonefleet_dns_responses_total{rcode=\"NXDOMAIN\"} 1\n".to_owned(),
        "zonefleet_dns_responses_total{rcode=\"NOERROR\"} 3\n".to_owned(),
        "zonefleet_dns_response_size_bytes_count 4\n".to_owned(),
        format!("zonefleet_dns_response_size_bytes_sum {sizes}.0\n"),
        "zonefleet_dns_response_size_bytes_bucket{le=\"128.0\"} 4\n".to_owned(),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.metrics_text();
        let missing: Vec<_> = expected
            .iter()
            .filter(|line| !text.contains(*line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {missing:?} from the metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A name in no zone we serve is REFUSED, without AA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_outside_our_zones_is_refused() {
    let server = server().await;
    for qname in ["www.example.org.", "com.", "."] {
        let (reply, _) = ask_udp(server.addr, &query(2, qname, RecordType::A)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{qname}"
        );
        assert!(!reply.metadata.authoritative, "AA for {qname}");
        assert!(
            reply.answers.is_empty() && reply.authorities.is_empty(),
            "{qname}"
        );
    }
}

/// NXDOMAIN carries the zone's SOA in the authority section with TTL = min(SOA TTL, SOA
/// MINIMUM) (RFC 2308 §3): MINIMUM for example.com. (3600 vs 300), the SOA TTL for
/// example.net. (60 vs 300).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_carries_the_soa_with_the_negative_ttl() {
    let server = server().await;
    let cases = [
        (
            "nope.example.com.",
            "example.com.",
            EXAMPLE_COM_NEGATIVE_TTL,
        ),
        (
            "nope.example.net.",
            "example.net.",
            EXAMPLE_NET_NEGATIVE_TTL,
        ),
    ];
    for (qname, zone, ttl) in cases {
        let (reply, _) = ask_udp(server.addr, &query(3, qname, RecordType::A)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{qname}"
        );
        assert!(reply.metadata.authoritative, "AA for {qname}");
        assert!(reply.answers.is_empty(), "{qname}");
        let soa = only_soa(&reply.authorities);
        assert_eq!(soa.name.to_ascii(), zone);
        assert_eq!(soa.ttl, ttl, "negative TTL for {qname}");
    }
}

/// NODATA (the name exists, the type does not) is NOERROR with an empty answer and the SOA,
/// with the same negative TTL as NXDOMAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodata_carries_the_soa_with_the_negative_ttl() {
    let server = server().await;
    let cases = [
        ("www.example.com.", "example.com.", EXAMPLE_COM_NEGATIVE_TTL),
        ("www.example.net.", "example.net.", EXAMPLE_NET_NEGATIVE_TTL),
    ];
    for (qname, zone, ttl) in cases {
        let (reply, _) = ask_udp(server.addr, &query(4, qname, RecordType::MX)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{qname}"
        );
        assert!(reply.metadata.authoritative, "AA for {qname}");
        assert!(reply.answers.is_empty(), "{qname}");
        let soa = only_soa(&reply.authorities);
        assert_eq!(soa.name.to_ascii(), zone);
        assert_eq!(soa.ttl, ttl, "negative TTL for {qname}");
    }
}

/// A response to an EDNS query carries an OPT record offering our 1232-byte payload,
/// whatever the client offered; a query without EDNS gets no OPT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_response_offers_1232_bytes() {
    let server = server().await;
    for offered in [512, 1232, 4096, 65_535] {
        let request = with_edns(query(5, "www.example.com.", RecordType::A), offered);
        let (reply, _) = ask_udp(server.addr, &request).await;
        let edns = reply.edns.as_ref().expect("an OPT record in the response");
        assert_eq!(edns.max_payload(), UDP_PAYLOAD_CAP, "offered {offered}");
        assert_eq!(edns.version(), 0);
        assert_eq!(reply.answers.len(), 1);
    }
    let (plain, _) = ask_udp(server.addr, &query(6, "www.example.com.", RecordType::A)).await;
    assert!(plain.edns.is_none(), "no OPT without EDNS in the query");
}

/// A large RRset over UDP is truncated to what the client can take: at most 1232 bytes with
/// EDNS 4096 (the cap), at most 512 without EDNS; TC is set either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rrset_over_udp_is_truncated() {
    let server = server().await;
    let cases = [
        (Some(4096), usize::from(UDP_PAYLOAD_CAP)),
        (Some(1232), usize::from(UDP_PAYLOAD_CAP)),
        (None, 512),
    ];
    for (payload, limit) in cases {
        let request = query(7, "big.example.com.", RecordType::TXT);
        let request = match payload {
            Some(payload) => with_edns(request, payload),
            None => request,
        };
        let (reply, size) = ask_udp(server.addr, &request).await;
        assert!(reply.metadata.truncation, "TC with EDNS {payload:?}");
        assert!(size <= limit, "{size} bytes with EDNS {payload:?}");
        assert!(
            reply.answers.len() < BIG_TXT_COUNT,
            "a truncated answer cannot hold the whole RRset"
        );
        assert_eq!(reply.edns.is_some(), payload.is_some());
    }
}

/// The query that UDP truncates gets the whole RRset over TCP, with TC clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rrset_over_tcp_is_whole() {
    let server = server().await;
    let request = with_edns(query(8, "big.example.com.", RecordType::TXT), 4096);
    let reply = ask_tcp(server.addr, &request).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.truncation, "TC over TCP");
    let texts: HashSet<String> = reply
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::TXT(txt) => txt.to_string(),
            other => panic!("a TXT record, not {other}"),
        })
        .collect();
    let expected: HashSet<String> = (0..BIG_TXT_COUNT).map(big_txt).collect();
    assert_eq!(texts, expected);
}

/// An EDNS version we do not support gets BADVERS (RFC 6891 §6.1.3), with an OPT of
/// version 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_version_1_gets_badvers() {
    let server = server().await;
    let mut request = with_edns(query(9, "www.example.com.", RecordType::A), 1232);
    request
        .edns
        .as_mut()
        .expect("the request has EDNS")
        .set_version(1);
    let (reply, _) = ask_udp(server.addr, &request).await;
    // Extended rcode 16 (BADVERS); hickory names 16 BADSIG when decoding.
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert!(reply.answers.is_empty());
    let edns = reply.edns.as_ref().expect("an OPT record in the response");
    assert_eq!(edns.version(), 0);
}

/// Opcodes other than QUERY get NOTIMP: STATUS (2), the unassigned 3, NOTIFY and UPDATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcode_gets_notimp() {
    let server = server().await;
    for op_code in [
        OpCode::Status,
        OpCode::Unknown(3),
        OpCode::Notify,
        OpCode::Update,
    ] {
        let mut request = query(10, "example.com.", RecordType::SOA);
        request.metadata.op_code = op_code;
        let (reply, _) = ask_udp(server.addr, &request).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NotImp,
            "{op_code}"
        );
        assert!(reply.answers.is_empty(), "{op_code}");
    }
}

/// A query must hold exactly one question: none or two get FORMERR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn question_count_other_than_one_gets_formerr() {
    let server = server().await;
    let mut none = query(11, "www.example.com.", RecordType::A);
    none.queries.clear();
    let mut two = query(12, "www.example.com.", RecordType::A);
    two.add_query(Query::query(name("mail.example.com."), RecordType::A));
    for request in [none, two] {
        let count = request.queries.len();
        let (reply, _) = ask_udp(server.addr, &request).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::FormErr,
            "{count} questions"
        );
        assert!(reply.answers.is_empty(), "{count} questions");
        let reply = ask_tcp(server.addr, &request).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::FormErr,
            "{count} questions over TCP"
        );
    }
}

/// ANY at a name with several RRsets is answered with one RRset only (RFC 8482).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_is_answered_minimally() {
    let server = server().await;
    let (reply, _) = ask_udp(
        server.addr,
        &query(13, "multi.example.com.", RecordType::ANY),
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(!reply.answers.is_empty(), "ANY gets some data");
    let rrsets: HashSet<(String, RecordType)> = reply
        .answers
        .iter()
        .map(|record| (record.name.to_ascii(), record.record_type()))
        .collect();
    assert_eq!(rrsets.len(), 1, "one RRset: {:?}", rendered(&reply.answers));
}

/// Sends an AXFR on `stream` and collects its messages until the second SOA; checks each is
/// a NOERROR, authoritative response to it.
async fn collect_transfer(stream: &mut TcpStream, id: u16) -> Vec<Record> {
    tcp_send(
        stream,
        &encode(&query(id, "example.com.", RecordType::AXFR)),
    )
    .await;
    let mut records: Vec<Record> = Vec::new();
    loop {
        let bytes = tcp_receive(stream)
            .await
            .expect("the transfer ended before its closing SOA");
        let message = decode(&bytes);
        assert_eq!(message.metadata.id, id);
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.metadata.authoritative, "AA in a transfer");
        records.extend(message.answers);
        let soas = records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        if soas >= 2 {
            return records;
        }
    }
}

/// AXFR from a client outside the transfer ACL is REFUSED, over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_outside_the_acl_is_refused() {
    let server = TestServer::start(&["192.0.2.0/24"], LOOSE_LIMITS).await;
    let reply = ask_tcp(server.addr, &query(14, "example.com.", RecordType::AXFR)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(reply.answers.is_empty());
}

/// AXFR over TCP from a client in the ACL returns the whole zone, starting and ending with
/// the SOA, in one or more messages; nothing follows the closing SOA (the next message on the
/// connection answers the next query).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_over_tcp_in_the_acl_returns_the_zone() {
    let server = TestServer::start(&[LOOPBACK], LOOSE_LIMITS).await;
    let mut stream = tcp_connect(server.addr).await;
    let records = collect_transfer(&mut stream, 15).await;
    let first = records.first().expect("a record");
    let last = records.last().expect("a record");
    assert_eq!(
        first.record_type(),
        RecordType::SOA,
        "the transfer opens with SOA"
    );
    assert_eq!(
        last.record_type(),
        RecordType::SOA,
        "the transfer closes with SOA"
    );
    assert_eq!(first, last);
    // Every record once, plus the closing SOA.
    assert_eq!(records.len(), example_com_record_count() + 1);
    let rendered = rendered(&records);
    assert!(rendered.contains(&"www.example.com. 3600 IN A 192.0.2.80".to_owned()));
    let next = ask_on(&mut stream, &query(16, "www.example.com.", RecordType::A)).await;
    assert_eq!(
        next.answers.len(),
        1,
        "the next message answers the next query"
    );
}

/// AXFR over UDP is refused even for a client in the ACL (transfers need TCP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_over_udp_is_refused_even_in_the_acl() {
    let server = TestServer::start(&[LOOPBACK], LOOSE_LIMITS).await;
    let (reply, _) = ask_udp(server.addr, &query(17, "example.com.", RecordType::AXFR)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(reply.answers.is_empty());
}

/// True if a fresh connection gets its query answered.
async fn connection_is_served(stream: &mut TcpStream, id: u16) -> bool {
    tcp_send(
        stream,
        &encode(&query(id, "www.example.com.", RecordType::A)),
    )
    .await;
    tcp_receive(stream).await.is_some()
}

/// With `max_connections: 2`, a third connection is closed by the server while the first
/// two stay served; once one of them closes, a new connection is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_capped() {
    let limits = TcpLimits {
        max_connections: 2,
        idle_timeout: Duration::from_secs(30),
    };
    let server = TestServer::start(&[], limits).await;
    let mut first = tcp_connect(server.addr).await;
    let mut second = tcp_connect(server.addr).await;
    assert!(
        connection_is_served(&mut first, 18).await,
        "first connection"
    );
    assert!(
        connection_is_served(&mut second, 19).await,
        "second connection"
    );

    let mut third = tcp_connect(server.addr).await;
    // The kernel accepted it; the server closes it on accept. Writing may already fail.
    let _ = third
        .write_all(&framed(&encode(&query(
            20,
            "www.example.com.",
            RecordType::A,
        ))))
        .await;
    assert_eq!(
        tcp_receive(&mut third).await,
        None,
        "the third connection is closed unanswered"
    );

    assert!(connection_is_served(&mut first, 21).await, "first, after");
    assert!(connection_is_served(&mut second, 22).await, "second, after");

    drop(first);
    // The server frees the slot when it sees the close; until then it may still refuse.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut id = 23;
    loop {
        let mut fresh = tcp_connect(server.addr).await;
        if connection_is_served(&mut fresh, id).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after one closed"
        );
        id += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        connection_is_served(&mut second, 100).await,
        "second, still"
    );
}

/// An idle connection is closed after the idle timeout (1 s here): activity within the
/// timeout keeps it open, and silence closes it about a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connection_is_closed() {
    let limits = TcpLimits {
        max_connections: 8,
        idle_timeout: Duration::from_secs(1),
    };
    let server = TestServer::start(&[], limits).await;
    let mut stream = tcp_connect(server.addr).await;
    assert!(connection_is_served(&mut stream, 30).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        connection_is_served(&mut stream, 31).await,
        "still open within the timeout"
    );
    let idle_since = Instant::now();
    assert_eq!(tcp_receive(&mut stream).await, None, "closed when idle");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(500) && idle < Duration::from_secs(5),
        "closed after {idle:?} idle, expected about 1 s"
    );
}

/// Queries pipelined on one connection (sent in one write) are all answered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_queries_are_answered_in_order() {
    let server = server().await;
    let questions = [
        (40, "www.example.com.", RecordType::A, "192.0.2.80"),
        (41, "mail.example.com.", RecordType::A, "192.0.2.25"),
        (42, "ns1.example.com.", RecordType::A, "192.0.2.53"),
        (43, "multi.example.com.", RecordType::AAAA, "2001:db8::10"),
        (44, "www.example.net.", RecordType::A, "198.51.100.80"),
        (45, "nope.example.com.", RecordType::A, ""),
    ];
    let mut batch = Vec::new();
    for (id, qname, qtype, _) in questions {
        batch.extend(framed(&encode(&query(id, qname, qtype))));
    }
    let mut stream = tcp_connect(server.addr).await;
    stream.write_all(&batch).await.expect("write the batch");
    for (id, qname, _, data) in questions {
        let bytes = tcp_receive(&mut stream)
            .await
            .expect("every pipelined query is answered");
        let reply: Message = decode(&bytes);
        assert_eq!(reply.metadata.id, id, "answers come in order");
        assert_eq!(reply.queries[0].name().to_ascii(), qname);
        let answers: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
        if data.is_empty() {
            assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        } else {
            assert_eq!(answers, [data], "{qname}");
        }
    }
}
