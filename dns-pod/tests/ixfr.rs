//! Incremental zone transfers (RFC 1995) from the deltas a pod applied: a real listener on
//! 127.0.0.1 serves a zone that went through three versions; hand-made queries, `dig` and
//! Knot DNS as a real secondary ask for the differences.

mod common;

use std::{net::SocketAddr, process::Command, sync::Arc};

use common::{LOOSE_LIMITS, framed, knot::Knot};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType, rdata::SOA},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zonefleet_dns_pod::{
    metrics::DnsMetrics,
    serve::{DnsListeners, QueryHandler, TransferAcl},
    zone_files,
    zones::{ServedZone, ZoneStore},
};
use zonefleet_wire::{Delta, Snapshot};

const ZONE: &str = "example.org.";

/// Version `serial` of the test zone: `www` changes address each version, and version 3
/// adds `new`.
fn version(serial: u32) -> Snapshot {
    let origin = Name::from_ascii(ZONE).expect("a valid test zone, query or server");
    let mut text = format!(
        "@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ 3600 IN NS ns1\n\
         ns1 3600 IN A 192.0.2.53\n\
         www 3600 IN A 192.0.2.{serial}\n"
    );
    if serial >= 3 {
        text.push_str("new 3600 IN TXT \"added in 3\"\n");
    }
    zone_files::parse(&text, origin, None).expect("a valid test zone, query or server")
}

/// A listener serving the zone at version 3, reached from version 1 by two deltas.
async fn server() -> SocketAddr {
    let v1 = ServedZone::from_snapshot(version(1)).expect("a valid test zone, query or server");
    let v2 = v1
        .apply(&Delta::between(&version(1), &version(2)))
        .expect("a valid test zone, query or server");
    let v3 = v2
        .apply(&Delta::between(&version(2), &version(3)))
        .expect("a valid test zone, query or server");
    serve(v3).await
}

/// A listener serving `zone`, transfers allowed from 127.0.0.0/8.
async fn serve(zone: ServedZone) -> SocketAddr {
    let zones = Arc::new(ZoneStore::new());
    zones.insert(zone);
    let metrics = Arc::new(DnsMetrics::register(&mut Default::default()));
    let acl = TransferAcl::new(vec![
        "127.0.0.0/8"
            .parse()
            .expect("a valid test zone, query or server"),
    ]);
    let handler = QueryHandler::new(zones, Default::default(), acl, Arc::clone(&metrics));
    let listeners = DnsListeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1)
        .await
        .expect("a valid test zone, query or server");
    let address = listeners
        .local_addr()
        .expect("a valid test zone, query or server");
    tokio::spawn(listeners.serve(handler, LOOSE_LIMITS, metrics));
    address
}

/// An IXFR query from a client at `serial` (none: without the SOA the RFC asks for).
fn ixfr(id: u16, serial: Option<u32>) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    let apex = Name::from_ascii(ZONE).expect("a valid test zone, query or server");
    message.add_query(Query::query(apex.clone(), RecordType::IXFR));
    if let Some(serial) = serial {
        let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
        message.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    }
    message
        .to_vec()
        .expect("a valid test zone, query or server")
}

/// Sends `query` over TCP and reads the responses until the transfer ends: after the first
/// message when it holds one SOA alone or is an error, else at the SOA that closes it.
async fn transfer(server: SocketAddr, query: &[u8]) -> (ResponseCode, Vec<Record>) {
    let mut stream = TcpStream::connect(server)
        .await
        .expect("a valid test zone, query or server");
    stream
        .write_all(&framed(query))
        .await
        .expect("a valid test zone, query or server");
    let mut records: Vec<Record> = Vec::new();
    loop {
        let len = stream
            .read_u16()
            .await
            .expect("a valid test zone, query or server");
        let mut bytes = vec![0; usize::from(len)];
        stream
            .read_exact(&mut bytes)
            .await
            .expect("a valid test zone, query or server");
        let message = Message::from_vec(&bytes).expect("a valid test zone, query or server");
        if message.metadata.response_code != ResponseCode::NoError {
            return (message.metadata.response_code, message.answers);
        }
        assert!(message.metadata.authoritative, "AA in a transfer");
        records.extend(message.answers);
        let current = records.first().map(serial_of);
        let closed = records.len() > 1
            && records.last().map(serial_of) == current
            && records.last().map(Record::record_type) == Some(RecordType::SOA);
        if records.len() == 1 || closed {
            return (ResponseCode::NoError, records);
        }
    }
}

fn serial_of(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// Each record as `type value`, SOAs by serial.
fn shown(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| match serial_of(record) {
            Some(serial) => format!("SOA {serial}"),
            None => format!("{} {} {}", record.name, record.record_type(), record.data),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ixfr_from_a_known_version_sends_each_difference_in_order() {
    let server = server().await;
    let (rcode, records) = transfer(server, &ixfr(1, Some(1))).await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        shown(&records),
        [
            "SOA 3",
            "SOA 1",
            "www.example.org. A 192.0.2.1",
            "SOA 2",
            "www.example.org. A 192.0.2.2",
            "SOA 2",
            "www.example.org. A 192.0.2.2",
            "SOA 3",
            "new.example.org. TXT added in 3",
            "www.example.org. A 192.0.2.3",
            "SOA 3",
        ]
    );
    let (_, from_2) = transfer(server, &ixfr(2, Some(2))).await;
    assert_eq!(from_2.len(), 7, "one difference: {:?}", shown(&from_2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ixfr_from_the_current_or_a_newer_version_is_the_soa_alone() {
    let server = server().await;
    for known in [3, 4] {
        let (rcode, records) = transfer(server, &ixfr(3, Some(known))).await;
        assert_eq!(rcode, ResponseCode::NoError);
        assert_eq!(shown(&records), ["SOA 3"], "client at {known}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ixfr_from_an_unknown_version_is_the_whole_zone() {
    let server = server().await;
    let (rcode, records) = transfer(server, &ixfr(4, Some(0))).await;
    assert_eq!(rcode, ResponseCode::NoError);
    let shown = shown(&records);
    assert_eq!(shown.first().map(String::as_str), Some("SOA 3"));
    assert_eq!(shown.last().map(String::as_str), Some("SOA 3"));
    // The zone's 5 records and the closing SOA, as an AXFR.
    assert_eq!(shown.len(), 6, "{shown:?}");
    assert!(shown.contains(&"new.example.org. TXT added in 3".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ixfr_without_the_clients_soa_is_a_format_error() {
    let server = server().await;
    let (rcode, _) = transfer(server, &ixfr(5, None)).await;
    assert_eq!(rcode, ResponseCode::FormErr);
}

/// `dig` asks as a secondary would, and reads the differences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_reads_the_incremental_transfer() {
    let server = server().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("dig")
            .args([
                &format!("@{}", server.ip()),
                "-p",
                &server.port().to_string(),
                "+tcp",
                "+nocmd",
                "+nostats",
                "+noall",
                "+answer",
                ZONE,
                "IXFR=1",
            ])
            .output()
    })
    .await
    .expect("a valid test zone, query or server")
    .expect("dig is installed (dnsutils)");
    assert!(output.status.success(), "dig failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let soas: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("\tSOA\t"))
        .map(|line| line.split_whitespace().nth(6).unwrap_or_default())
        .collect();
    assert_eq!(soas, ["3", "1", "2", "2", "3", "3"], "{text}");
    assert!(text.contains("192.0.2.3"), "{text}");
}

/// A version keeps the last `HISTORY_DELTAS` deltas: a client at a version that many
/// deltas back gets the differences, one further back the whole zone.
#[test]
fn a_version_keeps_a_bounded_history() {
    use zonefleet_dns_pod::zones::HISTORY_DELTAS;
    let steps = u32::try_from(HISTORY_DELTAS).expect("a small bound") + 2;
    let mut zone = ServedZone::from_snapshot(version(1)).expect("version 1");
    for serial in 2..=steps + 1 {
        let delta = Delta::between(&version(serial - 1), &version(serial));
        zone = zone.apply(&delta).expect("each delta applies");
    }
    let current = steps + 1;
    assert_eq!(zone.serial(), current);
    let oldest_kept = current - u32::try_from(HISTORY_DELTAS).expect("a small bound");
    assert_eq!(
        zone.deltas_since(oldest_kept).map(<[_]>::len),
        Some(HISTORY_DELTAS)
    );
    assert!(zone.deltas_since(oldest_kept - 1).is_none());
    assert_eq!(zone.deltas_since(current).map(<[_]>::len), Some(0));
}

/// The serial and `www` address Knot serves, if it serves the zone.
async fn knot_serves(knot: SocketAddr) -> Option<(u32, String)> {
    let ask = |qtype| {
        let mut message = Message::new(9, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii(if qtype == RecordType::SOA {
                ZONE
            } else {
                "www.example.org."
            })
            .expect("a valid name"),
            qtype,
        ));
        message.to_vec().expect("a query")
    };
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut answers = Vec::new();
    for qtype in [RecordType::SOA, RecordType::A] {
        socket.send_to(&ask(qtype), knot).await.ok()?;
        let mut buffer = vec![0; 4096];
        let len = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            socket.recv(&mut buffer),
        )
        .await
        .ok()?
        .ok()?;
        let reply = Message::from_vec(&buffer[..len]).ok()?;
        answers.push(reply.answers.first()?.clone());
    }
    Some((serial_of(&answers[0])?, answers[1].data.to_string()))
}

/// Knot, a real secondary, takes the zone by AXFR, then follows two new versions with one
/// IXFR carrying both differences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_the_pod_by_ixfr() {
    let v1 = ServedZone::from_snapshot(version(1)).expect("version 1");
    let v2 = v1
        .apply(&Delta::between(&version(1), &version(2)))
        .expect("delta to 2");
    let v3 = v2
        .apply(&Delta::between(&version(2), &version(3)))
        .expect("delta to 3");
    let zones = Arc::new(ZoneStore::new());
    zones.insert(ServedZone::from_snapshot(version(1)).expect("version 1"));
    let metrics = Arc::new(DnsMetrics::register(&mut Default::default()));
    let acl = TransferAcl::new(vec!["127.0.0.0/8".parse().expect("a network")]);
    let handler = QueryHandler::new(
        Arc::clone(&zones),
        Default::default(),
        acl,
        Arc::clone(&metrics),
    );
    let listeners = DnsListeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1)
        .await
        .expect("a listener");
    let primary = listeners.local_addr().expect("its address");
    tokio::spawn(listeners.serve(handler, LOOSE_LIMITS, metrics));

    let knot = Knot::secondary_of("ixfr", primary, ZONE, None);
    let wait_for = |serial: u32| {
        let address = knot.address;
        async move {
            for _ in 0..100 {
                if let Some(served) = knot_serves(address).await
                    && served.0 == serial
                {
                    return Some(served);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            None
        }
    };
    let first = wait_for(1).await;
    assert_eq!(
        first,
        Some((1, "192.0.2.1".to_owned())),
        "Knot took version 1:\n{}",
        knot.log()
    );

    zones.insert(v3);
    knot.refresh();
    let followed = wait_for(3).await;
    let log = knot.log();
    assert_eq!(
        followed,
        Some((3, "192.0.2.3".to_owned())),
        "Knot followed to version 3:\n{log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("IXFR, incoming") && line.contains("finished")),
        "Knot took version 3 by IXFR:\n{log}"
    );
    assert!(
        !log.lines().any(|line| line.contains("fallback to AXFR")),
        "no AXFR fallback:\n{log}"
    );
}

/// Over more than `CONDENSE_ABOVE` versions, the differences arrive as one: what came and
/// went in between is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chain_is_sent_as_one_difference() {
    use zonefleet_dns_pod::serve::CONDENSE_ABOVE;
    let last = u32::try_from(CONDENSE_ABOVE).expect("a small bound") + 4;
    let mut zone = ServedZone::from_snapshot(version(3)).expect("version 3");
    for serial in 4..=last {
        zone = zone
            .apply(&Delta::between(&version(serial - 1), &version(serial)))
            .expect("each delta applies");
    }
    let server = serve(zone).await;
    let (rcode, records) = transfer(server, &ixfr(6, Some(3))).await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        shown(&records),
        [
            format!("SOA {last}"),
            "SOA 3".to_owned(),
            "www.example.org. A 192.0.2.3".to_owned(),
            format!("SOA {last}"),
            format!("www.example.org. A 192.0.2.{last}"),
            format!("SOA {last}"),
        ]
    );
    // A short chain keeps one difference per version.
    let (_, recent) = transfer(server, &ixfr(7, Some(last - 2))).await;
    assert_eq!(recent.len(), 1 + 2 * 4 + 1, "{:?}", shown(&recent));
}
