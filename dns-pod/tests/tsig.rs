//! Zone transfers under a zone's access rules, with TSIG (RFC 8945): a real listener on
//! 127.0.0.1 serves a zone of a few thousand records whose access document allows
//! transfers signed with one key. `dig`, `kdig` and Knot DNS (a real secondary) transfer it
//! with the key; a hand-made client checks each refusal's response code and TSIG error,
//! and the chain of signatures across every message. The last test brings the document
//! through a real nats-server, sealed and signed, as the operator publishes it.

mod common;

use std::{net::SocketAddr, process::Command, sync::Arc, time::Duration};

use common::{
    LOOSE_LIMITS, framed,
    knot::Knot,
    nats::{Nats, nats_server_binary},
};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType, rdata::SOA},
};
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use zonefleet_dns_pod::{
    access::{AccessStore, ServedAccess},
    metrics::{DnsMetrics, SyncMetrics},
    serve::{DnsListeners, QueryHandler, TransferAcl},
    sync::AccessFollower,
    zone_files,
    zones::{ServedZone, ZoneStore},
};
use zonefleet_nats::{AccessKey, AccessRule, Layout, MessageKey, SIGNATURE, ZoneAccess};
use zonefleet_tsig::{Algorithm, Key, ResponseError, TsigError, sign_request, unix_now as now};
use zonefleet_wire::{Delta, Snapshot};

const ZONE: &str = "example.net.";
const KEY_NAME: &str = "transfer.example.net.";
const SECRET: &str = "e8v0pkrVfG3dyNMDpuk0IA/5Y4dyFjxHfrsVrKLiK+w=";
/// Records beside the apex: enough for several transfer messages.
const HOSTS: u32 = 3000;

fn key() -> Key {
    Key::from_base64(KEY_NAME, Algorithm::HmacSha256, SECRET).expect("the test key")
}

/// Version `serial`: `host-N` A records, and `www` whose address is the serial.
fn version(serial: u32) -> Snapshot {
    let origin = Name::from_ascii(ZONE).expect("the zone name");
    let mut text = format!(
        "@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n@ 3600 IN NS ns1\n\
         ns1 3600 IN A 192.0.2.53\nwww 3600 IN A 192.0.2.{serial}\n"
    );
    for n in 0..HOSTS {
        text.push_str(&format!(
            "host-{n} 3600 IN A 10.{}.{}.{}\n",
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        ));
    }
    zone_files::parse(&text, origin, None).expect("the test zone parses")
}

/// The zone's access document: transfers signed with the key from anywhere, and signed
/// with it from 127.0.0.1 only under a second rule that needs both (the key alone would
/// already do; `network_and_key` replaces the first rule).
fn document(rules: Vec<AccessRule>) -> ZoneAccess {
    ZoneAccess {
        origin: ZONE.into(),
        transfer: rules,
        keys: vec![AccessKey {
            name: KEY_NAME.into(),
            algorithm: "hmac-sha256".into(),
            secret: SECRET.into(),
        }],
    }
}

fn key_only() -> Vec<AccessRule> {
    vec![AccessRule {
        networks: Vec::new(),
        key: Some(KEY_NAME.into()),
    }]
}

struct Server {
    address: SocketAddr,
    zones: Arc<ZoneStore>,
    access: Arc<AccessStore>,
    registry: Arc<Registry>,
}

impl Server {
    /// A listener serving version 1, with no transfer allowed by address (the pod-wide
    /// list is empty): only the zone's access document can allow one.
    async fn start() -> Self {
        let zones = Arc::new(ZoneStore::new());
        zones.insert(ServedZone::from_snapshot(version(1)).expect("version 1"));
        let access = Arc::new(AccessStore::default());
        let mut registry = Registry::default();
        let metrics = Arc::new(DnsMetrics::register(&mut registry));
        let handler = QueryHandler::new(
            Arc::clone(&zones),
            Arc::clone(&access),
            TransferAcl::new(Vec::new()),
            Arc::clone(&metrics),
        );
        let listeners = DnsListeners::bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1)
            .await
            .expect("a listener");
        let address = listeners.local_addr().expect("its address");
        tokio::spawn(listeners.serve(handler, LOOSE_LIMITS, metrics));
        Self {
            address,
            zones,
            access,
            registry: Arc::new(registry),
        }
    }

    fn allow(&self, rules: Vec<AccessRule>) {
        let (origin, access) =
            ServedAccess::from_document(&document(rules)).expect("the document builds");
        self.access.set(origin, Some(access));
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("metrics encode");
        text
    }
}

fn axfr(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(ZONE).expect("the zone"),
        RecordType::AXFR,
    ));
    message.to_vec().expect("a query")
}

fn ixfr(id: u16, serial: u32) -> Vec<u8> {
    let apex = Name::from_ascii(ZONE).expect("the zone");
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(apex.clone(), RecordType::IXFR));
    let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
    message.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    message.to_vec().expect("a query")
}

/// What a transfer brought: the raw messages, until the closing SOA or an error.
async fn transfer_from(server: SocketAddr, source: [u8; 4], query: &[u8]) -> Vec<Vec<u8>> {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("a loopback source address");
    let mut stream: TcpStream = socket.connect(server).await.expect("connected");
    stream.write_all(&framed(query)).await.expect("sent");
    let mut messages = Vec::new();
    let mut soas = 0;
    loop {
        let len = tokio::time::timeout(Duration::from_secs(10), stream.read_u16())
            .await
            .expect("a response in time")
            .expect("a length");
        let mut bytes = vec![0; usize::from(len)];
        stream.read_exact(&mut bytes).await.expect("the message");
        let message = Message::from_vec(&bytes).expect("the response parses");
        messages.push(bytes);
        if message.metadata.response_code != ResponseCode::NoError {
            return messages;
        }
        soas += message
            .answers
            .iter()
            .filter(|record| record.record_type() == RecordType::SOA)
            .count();
        let first_alone = messages.len() == 1 && message.answers.len() == 1;
        if soas >= 2 || first_alone {
            return messages;
        }
    }
}

fn parsed(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("the response parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_axfr_is_signed_message_by_message() {
    let server = Server::start().await;
    server.allow(key_only());
    let mut request = axfr(1);
    let mut verifier = sign_request(&mut request, &key(), now());
    let messages = transfer_from(server.address, [127, 0, 0, 1], &request).await;
    assert!(
        messages.len() >= 3,
        "{HOSTS} records take several messages, got {}",
        messages.len()
    );
    let mut records = 0;
    for (n, bytes) in messages.iter().enumerate() {
        let message = parsed(bytes);
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.signature().is_some(), "message {n} is signed");
        verifier
            .verify(bytes)
            .unwrap_or_else(|error| panic!("message {n} of {}: {error}", messages.len()));
        records += message.answers.len();
    }
    // Every record, and the SOA twice.
    assert_eq!(records, HOSTS as usize + 4 + 1);
    assert!(
        server
            .metrics()
            .contains("zonefleet_dns_signed_requests_total{result=\"verified\"} 1"),
        "{}",
        server.metrics()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_without_the_key_or_with_a_wrong_one_are_refused() {
    let server = Server::start().await;
    server.allow(key_only());
    let at = server.address;

    // Unsigned: REFUSED.
    let unsigned = transfer_from(at, [127, 0, 0, 1], &axfr(2)).await;
    assert_eq!(
        parsed(&unsigned[0]).metadata.response_code,
        ResponseCode::Refused
    );

    // The right name, a wrong secret: NOTAUTH, BADSIG, unsigned.
    let wrong =
        Key::from_base64(KEY_NAME, Algorithm::HmacSha256, "d3Jvbmcgc2VjcmV0").expect("a key");
    let mut request = axfr(3);
    sign_request(&mut request, &wrong, now());
    let response = parsed(&transfer_from(at, [127, 0, 0, 1], &request).await[0]);
    assert_eq!(response.metadata.response_code, ResponseCode::NotAuth);
    let tsig = &response.signature().expect("a TSIG record").data;
    assert_eq!(tsig.error, Some(TsigError::BadSig));
    assert!(tsig.mac.is_empty(), "a BADSIG answer is not signed");
    assert!(response.answers.is_empty());

    // A key the zone does not have: NOTAUTH, BADKEY.
    let unknown =
        Key::from_base64("other.example.net.", Algorithm::HmacSha256, SECRET).expect("a key");
    let mut request = axfr(4);
    sign_request(&mut request, &unknown, now());
    let response = parsed(&transfer_from(at, [127, 0, 0, 1], &request).await[0]);
    assert_eq!(response.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(
        response.signature().expect("a TSIG record").data.error,
        Some(TsigError::BadKey)
    );

    // The right key, signed ten minutes ago (a replay): NOTAUTH, BADTIME, signed.
    let mut request = axfr(5);
    let mut verifier = sign_request(&mut request, &key(), now() - 600);
    let messages = transfer_from(at, [127, 0, 0, 1], &request).await;
    let response = parsed(&messages[0]);
    assert_eq!(response.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(
        verifier.verify(&messages[0]),
        Err(ResponseError::Reported(TsigError::BadTime))
    );

    // A rule that needs the network and the key: the key from another address is refused.
    server.allow(vec![AccessRule {
        networks: vec!["127.0.0.1/32".parse().expect("a network")],
        key: Some(KEY_NAME.into()),
    }]);
    let mut request = axfr(6);
    sign_request(&mut request, &key(), now());
    let elsewhere = transfer_from(at, [127, 0, 0, 2], &request).await;
    let response = parsed(&elsewhere[0]);
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    assert!(
        response.signature().is_some(),
        "the refusal of a verified request is signed"
    );
    let mut request = axfr(7);
    sign_request(&mut request, &key(), now());
    let allowed = transfer_from(at, [127, 0, 0, 1], &request).await;
    assert_eq!(
        parsed(&allowed[0]).metadata.response_code,
        ResponseCode::NoError
    );

    let metrics = server.metrics();
    for result in ["BADSIG", "BADKEY", "BADTIME"] {
        assert!(
            metrics.contains(&format!(
                "zonefleet_dns_signed_requests_total{{result=\"{result}\"}} 1"
            )),
            "{result} counted:\n{metrics}"
        );
    }
}

/// `dig` and `kdig` from the Debian packages transfer the zone with the key (checking
/// every message's signature), and fail without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_and_kdig_transfer_with_the_key() {
    let server = Server::start().await;
    server.allow(key_only());
    let port = server.address.port().to_string();
    let secret = format!("hmac-sha256:{KEY_NAME}:{SECRET}");
    let run = |tool: &str, args: &[&str]| {
        let output = Command::new(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} runs (Debian bind9-dnsutils / knot-dnsutils): {e}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let hosts = |output: &str| {
        output
            .lines()
            .filter(|line| line.starts_with("host-") && line.contains("\tA\t"))
            .count()
    };

    let dig = run(
        "dig",
        &[
            "-p",
            &port,
            "@127.0.0.1",
            "-y",
            &secret,
            ZONE,
            "AXFR",
            "+nocookie",
        ],
    );
    assert_eq!(
        hosts(&dig),
        HOSTS as usize,
        "dig with the key:\n{}",
        tail(&dig)
    );
    assert!(
        !dig.to_ascii_lowercase().contains("tsig verify failure")
            && !dig.contains("Transfer failed"),
        "{}",
        tail(&dig)
    );

    let kdig = run(
        "kdig",
        &["-p", &port, "@127.0.0.1", "-y", &secret, ZONE, "AXFR"],
    );
    assert_eq!(
        hosts(&kdig),
        HOSTS as usize,
        "kdig with the key:\n{}",
        tail(&kdig)
    );
    assert!(
        !kdig.contains("WARNING") && !kdig.contains("failed"),
        "{}",
        tail(&kdig)
    );

    let without = run(
        "dig",
        &["-p", &port, "@127.0.0.1", ZONE, "AXFR", "+nocookie"],
    );
    assert_eq!(hosts(&without), 0);
    assert!(without.contains("Transfer failed"), "{without}");

    let wrong = run(
        "kdig",
        &[
            "-p",
            &port,
            "@127.0.0.1",
            "-y",
            "hmac-sha256:transfer.example.net.:d3Jvbmc=",
            ZONE,
            "AXFR",
        ],
    );
    assert_eq!(hosts(&wrong), 0);
    assert!(
        wrong.contains("NOTAUTH") || wrong.contains("BADSIG"),
        "{wrong}"
    );
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Knot, configured with the key, takes the zone by a signed AXFR and follows a new
/// version by a signed IXFR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_follows_with_the_key() {
    let server = Server::start().await;
    server.allow(key_only());
    let key = key();
    let knot = Knot::secondary_of("tsig", server.address, ZONE, Some(&key));
    let serves = |serial: u32| {
        let address = knot.address;
        async move {
            for _ in 0..100 {
                if knot_serial(address).await == Some(serial) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(serves(1).await, "Knot took version 1:\n{}", knot.log());

    let v2 = server
        .zones
        .load()
        .iter()
        .next()
        .expect("the zone")
        .apply(&Delta::between(&version(1), &version(2)))
        .expect("the delta applies");
    server.zones.insert(v2);
    knot.refresh();
    assert!(
        serves(2).await,
        "Knot followed to version 2:\n{}",
        knot.log()
    );
    let log = knot.log();
    assert!(
        log.lines()
            .any(|line| line.contains("IXFR, incoming") && line.contains("finished")),
        "Knot took version 2 by IXFR:\n{log}"
    );
    // Knot does not log its key: the pod's count of verified requests shows it signed
    // (and the zone allows no unsigned transfer).
    let metrics = server.metrics();
    let verified = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("zonefleet_dns_signed_requests_total{result=\"verified\"} ")
        })
        .and_then(|count| count.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        verified >= 2,
        "Knot's SOA checks and transfers were signed and verified:\n{metrics}"
    );
    assert!(
        !metrics.contains("result=\"BAD"),
        "every signed request verified:\n{metrics}"
    );

    // A Knot with a wrong secret gets nothing.
    let wrong =
        Key::from_base64(KEY_NAME, Algorithm::HmacSha256, "d3Jvbmcgc2VjcmV0").expect("a key");
    let wrong_knot = Knot::secondary_of("tsig-wrong", server.address, ZONE, Some(&wrong));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        knot_serial(wrong_knot.address).await,
        None,
        "{}",
        wrong_knot.log()
    );
    assert!(
        server.metrics().contains("result=\"BADSIG\""),
        "the wrong key's requests were refused as BADSIG:\n{}\n{}",
        server.metrics(),
        wrong_knot.log()
    );
    assert!(
        wrong_knot.log().contains("failed to verify TSIG"),
        "Knot says why:\n{}",
        wrong_knot.log()
    );
}

/// The SOA serial Knot serves for the zone.
async fn knot_serial(knot: SocketAddr) -> Option<u32> {
    let mut message = Message::new(11, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(ZONE).ok()?, RecordType::SOA));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(&message.to_vec().ok()?, knot).await.ok()?;
    let mut buffer = vec![0; 4096];
    let len = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer))
        .await
        .ok()?
        .ok()?;
    match &Message::from_vec(&buffer[..len])
        .ok()?
        .answers
        .first()?
        .data
    {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// The document reaches the pod through NATS as the operator publishes it: secrets sealed
/// and the message signed with the fleet's message key. A document signed with another
/// key, or one moved to another zone's subject, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_documents_arrive_sealed_over_nats() {
    let binary = nats_server_binary()
        .expect("no nats-server binary: run e2e/setup.sh (it builds one), or set NATS_SERVER");
    let nats = Nats::start(&binary, "tsig").await;
    let client = async_nats::connect(&nats.url).await.expect("NATS");
    let layout = Layout::new("zftsig").expect("a prefix");
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: layout.access_stream(),
        subjects: vec![layout.access_subjects()],
        max_messages_per_subject: 1,
        ..Default::default()
    })
    .await
    .expect("the access stream");
    let message_key = MessageKey::new(vec![7; 32]).expect("a message key");
    let publish = |key: MessageKey, subject: String, document: ZoneAccess| {
        let js = js.clone();
        async move {
            let payload = document.seal(Some(&key));
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(SIGNATURE, key.sign(&subject, &payload).as_str());
            js.publish_with_headers(subject, headers, payload.into())
                .await
                .expect("published")
                .await
                .expect("stored");
        }
    };

    let server = Server::start().await;
    let metrics = Arc::new(SyncMetrics::register(&mut Registry::default()));
    let follower = AccessFollower {
        client: client.clone(),
        layout: layout.clone(),
        key: Some(message_key.clone()),
        store: Arc::clone(&server.access),
        metrics: Arc::clone(&metrics),
    };
    tokio::spawn(follower.run());

    // Signed with another key: refused.
    let forger = MessageKey::new(vec![8; 32]).expect("another key");
    publish(forger, layout.access_subject(ZONE), document(key_only())).await;
    // About this zone, on another zone's subject: refused.
    publish(
        message_key.clone(),
        layout.access_subject("example.org."),
        document(key_only()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.access.is_empty(), "nothing was taken");

    publish(
        message_key.clone(),
        layout.access_subject(ZONE),
        document(key_only()),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.access.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the document did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut request = ixfr(8, 1);
    let mut verifier = sign_request(&mut request, &key(), now());
    let messages = transfer_from(server.address, [127, 0, 0, 1], &request).await;
    verifier.verify(&messages[0]).expect("a signed answer");
    assert_eq!(
        parsed(&messages[0]).answers.len(),
        1,
        "the client is current: our SOA alone"
    );

    // Closing the zone again takes effect too.
    publish(
        message_key,
        layout.access_subject(ZONE),
        ZoneAccess::closed(ZONE),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut request = axfr(9);
        sign_request(&mut request, &key(), now());
        let response = parsed(&transfer_from(server.address, [127, 0, 0, 1], &request).await[0]);
        // The closed document has no keys: the signature is now BADKEY.
        if response.metadata.response_code == ResponseCode::NotAuth {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the zone was not closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
