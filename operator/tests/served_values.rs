//! Every value the operator accepts is served.
//!
//! For every record type of the API, many values (a fixed-seed generator plus hand-written
//! edge cases) go through the whole way a value travels: the operator's `assemble` on a
//! Zone with that one Record; if accepted, the version encoded as a snapshot; the DNS pod's
//! zone built from those bytes (`ServedZone::from_encoded`, the digest check included);
//! and a query for the owner and type through the pod's general answer path over TCP, and
//! over UDP through the fast path, which must give the general path's bytes. The answer's
//! rdata must be the assembled rdata. A rejected value must be rejected as `InvalidRData`
//! or `AmbiguousName` with a message, and values known to be valid must be accepted.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, Record, RecordType},
    serialize::binary::BinEncodable,
};
use hickory_server::net::xfer::Protocol;
use prometheus_client::registry::Registry;
use serde_json::json;
use zonefleet_api::{RecordSpec, ZoneSpec};
use zonefleet_dns_pod::{
    metrics::DnsMetrics,
    serve::{QueryHandler, TransferAcl, fast, raw},
    zones::{ServedZone, ZoneStore},
};
use zonefleet_operator::zone::{
    AssembledZone, ObjectKey, RecordInput, RejectReason, Verdict, assemble,
};

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);

/// Stands for the case's zone domain in owners (each case has a zone of its own).
const ZONE: &str = "ZONE.test";

/// Generated values per record type.
const VALUES_PER_TYPE: usize = 60;

/// Every record type of the API.
const TYPES: [&str; 15] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "DS", "TLSA", "SSHFP", "NAPTR",
    "SVCB", "HTTPS",
];

/// What a case expects of the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A valid value: it must be accepted (and then served).
    Accepted,
    /// It must be rejected with this reason.
    Rejected(RejectReason),
    /// Either; if accepted, it must be served.
    Either,
}

/// One Record in a zone of its own.
#[derive(Clone, Debug)]
struct Case {
    record_type: &'static str,
    owner: String,
    ttl: Option<i32>,
    values: Vec<String>,
    expect: Expect,
}

/// SplitMix64: small, fixed-seed, good enough to spread values.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02X}", self.below(256)))
            .collect()
    }

    fn label(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 1 + self.below(12) as usize;
        let mut label: String = (0..len).map(|_| *self.pick(CHARS) as char).collect();
        if self.chance(20) {
            label.insert(0, '_');
        }
        label
    }

    /// A target name: relative, absolute, or the root.
    fn target(&mut self) -> String {
        match self.below(5) {
            0 => ".".into(),
            1 => format!("{}.example.net.", self.label()),
            2 => format!("{}.{}", self.label(), self.label()),
            _ => self.label(),
        }
    }

    /// Printable text, some of it not ASCII; `quoted` escapes `"` and `\`.
    fn text(&mut self, len: usize, quoted: bool) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", " ", "=", ";", ":", "+", "/", "-", "_", ".", "@", "~", "é", "ü", "日",
            "🙂", "\"", "\\", "'", "(", ")", "%",
        ];
        let mut text = String::new();
        while text.len() < len {
            let piece = *self.pick(PIECES);
            match piece {
                "\"" | "\\" if quoted => {
                    text.push('\\');
                    text.push_str(piece);
                }
                _ => text.push_str(piece),
            }
        }
        text
    }
}

fn valid(record_type: &'static str, owner: String, values: Vec<String>) -> Case {
    Case {
        record_type,
        owner,
        ttl: None,
        values,
        expect: Expect::Accepted,
    }
}

/// A valid value of `record_type`.
fn generate_value(rng: &mut Rng, record_type: &str) -> String {
    match record_type {
        "A" => format!(
            "{}.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        "AAAA" => {
            if rng.chance(50) {
                format!("2001:db8::{:x}", rng.below(65536))
            } else {
                (0..8)
                    .map(|_| format!("{:x}", rng.below(65536)))
                    .collect::<Vec<_>>()
                    .join(":")
            }
        }
        "CNAME" | "NS" | "PTR" => rng.target(),
        "MX" => format!("{} {}", rng.below(65536), rng.target()),
        "TXT" => generate_txt(rng),
        "SRV" => format!(
            "{} {} {} {}",
            rng.below(65536),
            rng.below(65536),
            rng.below(65536),
            rng.target()
        ),
        "CAA" => generate_caa(rng),
        "DS" => {
            let (digest_type, len) = *rng.pick(&[(1, 20), (2, 32), (4, 48)]);
            format!(
                "{} {} {digest_type} {}",
                rng.below(65536),
                rng.pick(&[5, 7, 8, 10, 13, 14, 15, 16]),
                rng.hex(len)
            )
        }
        "TLSA" => {
            let len = 1 + rng.below(64) as usize;
            format!(
                "{} {} {} {}",
                rng.below(4),
                rng.below(2),
                rng.below(3),
                rng.hex(len)
            )
        }
        "SSHFP" => {
            let (fp_type, len) = *rng.pick(&[(1, 20), (2, 32)]);
            format!("{} {fp_type} {}", rng.pick(&[1, 2, 3, 4, 6]), rng.hex(len))
        }
        "NAPTR" => format!(
            "{} {} \"{}\" \"{}\" \"{}\" {}",
            rng.below(65536),
            rng.below(65536),
            rng.pick(&["U", "S", "A", "P", ""]),
            rng.pick(&["E2U+sip", "SIP+D2U", "E2U+email:mailto", ""]),
            rng.pick(&[
                "",
                "!^.*$!sip:info@example.com!",
                "!^(.*)$!mailto:\\\\1@example.com!"
            ]),
            rng.target()
        ),
        "SVCB" | "HTTPS" => generate_svcb(rng),
        other => panic!("no generator for {other}"),
    }
}

fn generate_txt(rng: &mut Rng) -> String {
    match rng.below(6) {
        // Unquoted: one string, taken literally, spaces and all.
        0 | 1 => {
            let len = 1 + rng.below(80) as usize;
            let text = rng.text(len, false);
            // A value starting with `"` is read as quoted text; keep these unquoted.
            format!("x{}", text.trim_start_matches('"'))
        }
        // Quoted, several strings.
        2 | 3 => (0..1 + rng.below(4))
            .map(|_| {
                let len = rng.below(60) as usize;
                format!("\"{}\"", rng.text(len, true))
            })
            .collect::<Vec<_>>()
            .join(" "),
        // Long: a DKIM-sized string, quoted or not.
        _ => {
            let len = 256 + rng.below(3500) as usize;
            let text: String = (0..len)
                .map(|_| {
                    *rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                        as char
                })
                .collect();
            if rng.chance(50) {
                format!("v=DKIM1; k=rsa; p={text}")
            } else {
                format!("\"v=DKIM1; k=rsa; p={text}\"")
            }
        }
    }
}

fn generate_caa(rng: &mut Rng) -> String {
    let flags = rng.pick(&[0, 128]);
    let tag = match rng.below(5) {
        0 => "issue".to_owned(),
        1 => "issuewild".to_owned(),
        2 => "iodef".to_owned(),
        _ => {
            const TAG_CHARS: &[u8] =
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            let len = 1 + rng.below(15) as usize;
            (0..len).map(|_| *rng.pick(TAG_CHARS) as char).collect()
        }
    };
    let value = match tag.as_str() {
        "issue" | "issuewild" => rng
            .pick(&[
                ";",
                "letsencrypt.org",
                "ca.example.net; account=230123",
                "ca.example.net; policy=ev",
            ])
            .to_string(),
        "iodef" => rng
            .pick(&["mailto:security@example.com", "https://iodef.example.com/"])
            .to_string(),
        _ => {
            let len = rng.below(40) as usize;
            rng.text(len, true)
        }
    };
    format!("{flags} {tag} \"{value}\"")
}

fn generate_svcb(rng: &mut Rng) -> String {
    let target = rng.target();
    if rng.chance(20) {
        // AliasMode: priority 0, no parameters.
        return format!("0 {target}");
    }
    let mut params = Vec::new();
    let alpn = rng.chance(60);
    if rng.chance(20) && alpn {
        params.push("mandatory=alpn".to_owned());
    }
    if alpn {
        params.push(format!(
            "alpn={}",
            rng.pick(&["h2", "h3", "h2,h3", "http/1.1,h2"])
        ));
    }
    if alpn && rng.chance(20) {
        params.push("no-default-alpn".to_owned());
    }
    if rng.chance(50) {
        params.push(format!("port={}", rng.below(65536)));
    }
    if rng.chance(40) {
        params.push(format!(
            "ipv4hint=192.0.2.{},198.51.100.{}",
            rng.below(256),
            rng.below(256)
        ));
    }
    if rng.chance(40) {
        params.push(format!("ipv6hint=2001:db8::{:x}", rng.below(65536)));
    }
    format!("{} {target} {}", 1 + rng.below(65535), params.join(" "))
        .trim_end()
        .to_owned()
}

/// An owner for a `record_type` case number `i`: relative, deeper, absolute, the apex or a
/// wildcard where the type allows.
fn generate_owner(rng: &mut Rng, record_type: &str, i: usize) -> String {
    let apex_allowed = !matches!(record_type, "CNAME" | "NS");
    let wildcard_allowed = !matches!(record_type, "NS" | "DS");
    match rng.below(5) {
        0 if apex_allowed => "@".into(),
        1 if wildcard_allowed => format!("*.w{i}"),
        2 => format!("h{i}.{ZONE}."),
        3 => format!("_{}.h{i}", rng.label().trim_start_matches('_')),
        _ => format!("h{i}"),
    }
}

/// Values that are valid and must be accepted, and edge cases.
fn corpus() -> Vec<Case> {
    let one = |t: &'static str, v: &str| valid(t, "corpus".into(), vec![v.to_owned()]);
    let long_key = format!(
        "v=DKIM1; k=rsa; p={}",
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A".repeat(13)
    );
    let mut cases = vec![
        one("TXT", &long_key),
        one("TXT", &format!("\"{long_key}\"")),
        one("TXT", &"y".repeat(4096)),
        one("TXT", "\"\""),
        one("TXT", "v=spf1 include:_spf.example.net ~all"),
        one("TXT", "\"v=spf1 include:_spf.example.net ~all\""),
        one("TXT", "\"v=spf1\" \" include:_spf.example.net\" \" ~all\""),
        one("TXT", "grüße aus Köln 日本 🙂"),
        one("TXT", "\"grüße aus Köln 日本 🙂\""),
        one("TXT", "text with \"quotes\" and \\backslashes\\ inside"),
        one("TXT", "\"escaped \\\" quote and \\\\ backslash\""),
        one("TXT", &"é".repeat(200)),
        one("TXT", "   leading and trailing spaces   "),
        one("CAA", "0 issue \";\""),
        one("CAA", "128 issue \"ca.example.net\""),
        one("CAA", "0 issuewild \"ca.example.net; account=12345\""),
        one("CAA", "0 iodef \"mailto:security@example.com\""),
        one("CAA", "0 contactemail \"security@example.com\""),
        one("CAA", "0 Tag15CharsLong \"anything goes\""),
        one("MX", "0 ."),
        one("MX", "10 mail"),
        one("SRV", "0 0 0 ."),
        one("SRV", "10 60 5060 sip.example.net."),
        one("SVCB", "1 . alpn=h2"),
        one("SVCB", "0 svc.example.net."),
        one(
            "SVCB",
            "1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1",
        ),
        one(
            "SVCB",
            "16 foo.example.net. mandatory=alpn alpn=h2 no-default-alpn",
        ),
        one("HTTPS", "1 . alpn=h2,h3"),
        one("HTTPS", "1 . alpn=h3 port=443"),
        one("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"),
        one("TLSA", "3 1 1 0123456789ABCDEF"),
        one("SSHFP", "2 1 123456789abcdef67890123456789abcdef67890"),
        one(
            "NAPTR",
            "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
        ),
        one(
            "NAPTR",
            "100 50 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.net.",
        ),
        one("PTR", "host.example.net."),
        one("CNAME", "target"),
        valid(
            "NS",
            "sub".into(),
            vec!["ns1.example.net.".into(), "ns2.sub".into()],
        ),
        valid(
            "A",
            "many".into(),
            (0..200)
                .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
                .collect(),
        ),
        Case {
            record_type: "A",
            owner: "ttl".into(),
            ttl: Some(2_147_483_647),
            values: vec!["192.0.2.1".into()],
            expect: Expect::Accepted,
        },
        Case {
            record_type: "TXT",
            owner: "ttl0".into(),
            ttl: Some(0),
            values: vec!["zero".into()],
            expect: Expect::Accepted,
        },
    ];
    let rejected = |t: &'static str, owner: &str, v: &str, reason: RejectReason| Case {
        record_type: t,
        owner: owner.into(),
        ttl: None,
        values: vec![v.to_owned()],
        expect: Expect::Rejected(reason),
    };
    cases.extend([
        rejected(
            "CAA",
            "bad",
            "0 bogus-tag \"x\"",
            RejectReason::InvalidRData,
        ),
        rejected(
            "CAA",
            "bad",
            "0 tag_with_underscore \"x\"",
            RejectReason::InvalidRData,
        ),
        rejected(
            "CAA",
            "bad",
            "0 thistagistoolong16 \"x\"",
            RejectReason::InvalidRData,
        ),
        rejected("A", "bad", "999.1.1.1", RejectReason::InvalidRData),
        rejected("MX", "bad", "mail.example.net.", RejectReason::InvalidRData),
        rejected(
            "NAPTR",
            "bad",
            &format!("1 1 \"{}\" \"\" \"\" .", "U".repeat(300)),
            RejectReason::InvalidRData,
        ),
        rejected(
            "TXT",
            &format!("api.{ZONE}"),
            "x",
            RejectReason::AmbiguousName,
        ),
        rejected("A", ZONE, "192.0.2.1", RejectReason::AmbiguousName),
    ]);
    cases.push(Case {
        record_type: "TXT",
        owner: "huge".into(),
        ttl: None,
        values: (0..20)
            .map(|i| format!("{i:02}{}", "t".repeat(4000)))
            .collect(),
        expect: Expect::Rejected(RejectReason::InvalidRData),
    });
    cases
}

/// Values from the generator: valid ones, and some mangled ones that may go either way.
fn generated(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for record_type in TYPES {
        for i in 0..VALUES_PER_TYPE {
            let owner = generate_owner(rng, record_type, i);
            let count = 1 + rng.below(3) as usize;
            let mut values: Vec<String> = (0..count)
                .map(|_| generate_value(rng, record_type))
                .collect();
            if record_type == "CNAME" {
                values.truncate(1);
            }
            let mut expect = Expect::Accepted;
            if rng.chance(15) {
                // Mangle one value: drop a token, double one, or cut it short.
                let value = &mut values[0];
                let tokens: Vec<&str> = value.split(' ').collect();
                *value = match rng.below(3) {
                    0 if tokens.len() > 1 => tokens[1..].join(" "),
                    1 => format!("{value} {}", tokens[tokens.len() - 1]),
                    _ => value.chars().take(value.chars().count() / 2 + 1).collect(),
                };
                expect = Expect::Either;
            }
            let ttl = rng.chance(30).then(|| rng.below(100_000) as i32);
            cases.push(Case {
                record_type,
                owner,
                ttl,
                values,
                expect,
            });
        }
    }
    cases
}

fn zone_spec(domain: &str) -> ZoneSpec {
    serde_json::from_value(json!({
        "domain": domain,
        "ttl": 3600,
        "nameServers": [{"name": "ns1.provider.test"}],
    }))
    .expect("the zone spec")
}

fn record_input(case: &Case, domain: &str) -> RecordInput {
    let spec: RecordSpec = serde_json::from_value(json!({
        "zoneRef": {"name": "zone"},
        "name": case.owner.replace(ZONE, domain),
        "type": case.record_type,
        "ttl": case.ttl,
        "values": case.values,
    }))
    .expect("the record spec");
    RecordInput {
        key: ObjectKey {
            namespace: "dns".into(),
            name: "record".into(),
        },
        created: None,
        spec,
        namespace_labels: None,
    }
}

/// The name to ask for the case's records: the owner, or a name the wildcard covers.
fn question_name(owner: &str, origin: &Name) -> Name {
    let owner = owner.replace(ZONE, origin.to_ascii().trim_end_matches('.'));
    let relative = match owner.as_str() {
        "@" => return origin.clone(),
        o if o.ends_with('.') => {
            return Name::from_ascii(o).expect("an absolute owner");
        }
        o => o.replacen('*', "synthesised", 1),
    };
    Name::from_ascii(&relative)
        .and_then(|name| name.append_domain(origin))
        .expect("a relative owner")
}

fn query_packet(id: u16, name: &Name, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(1232).set_version(0);
        message.set_edns(opt);
    }
    message.to_vec().expect("the query encodes")
}

/// Rdata in a comparable order.
fn sorted(mut rdata: Vec<RData>) -> Vec<RData> {
    rdata.sort_by_cached_key(|r| r.to_bytes().unwrap_or_default());
    rdata
}

/// The records of `record_type` the response gives for the question: from the answer, or,
/// for a delegation's NS, from the authority section.
fn answered(response: &Message, record_type: RecordType) -> Vec<Record> {
    let from = if response.answers.is_empty() {
        &response.authorities
    } else {
        &response.answers
    };
    from.iter()
        .filter(|r| r.record_type() == record_type)
        .cloned()
        .collect()
}

/// A case that was accepted and published, to be asked.
struct Published {
    case: Case,
    question: Name,
    record_type: RecordType,
    ttl: u32,
    rdata: Vec<RData>,
}

/// The accepted RRset of the case (the zone's only Record) in the assembled zone.
fn assembled_rrset(zone: &AssembledZone, case: &Case) -> (RecordType, u32, Vec<RData>) {
    let record_type: RecordType = case.record_type.parse().expect("a record type");
    let set = zone
        .rrsets
        .iter()
        .find(|set| {
            set.record_type == record_type
                && !(record_type == RecordType::NS && set.name == zone.origin)
        })
        .unwrap_or_else(|| panic!("no {record_type} RRset for {case:?}"));
    (record_type, set.ttl, set.rdata.clone())
}

/// Assembles, checks the verdict, and builds the pod's zone from the encoded snapshot.
fn assemble_case(
    index: usize,
    case: &Case,
    failures: &mut Vec<String>,
) -> Option<(ServedZone, Published)> {
    let domain = format!("z{index}.test");
    let assembly = assemble("dns", &zone_spec(&domain), &[record_input(case, &domain)])
        .expect("the zone spec assembles");
    let verdict = assembly.verdicts.values().next().expect("a verdict");
    match (verdict, case.expect) {
        (Verdict::Accepted, Expect::Rejected(reason)) => {
            failures.push(format!("accepted, expected {reason:?}: {case:?}"));
            return None;
        }
        (Verdict::Rejected { reason, message }, expect) => {
            let allowed = matches!(
                reason,
                RejectReason::InvalidRData | RejectReason::AmbiguousName
            );
            let as_expected = match expect {
                Expect::Accepted => false,
                Expect::Rejected(expected) => expected == *reason,
                Expect::Either => true,
            };
            if !allowed || !as_expected || message.trim().is_empty() {
                failures.push(format!("rejected {reason:?} ({message}): {case:?}"));
            }
            return None;
        }
        (Verdict::Accepted, _) => {}
    }
    let bytes = match assembly.zone.snapshot(7).encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            failures.push(format!(
                "accepted but the snapshot does not encode ({e}): {case:?}"
            ));
            return None;
        }
    };
    let served = match ServedZone::from_encoded(&bytes) {
        Ok(served) => served,
        Err(e) => {
            failures.push(format!(
                "accepted but the pod cannot build it ({e}): {case:?}"
            ));
            return None;
        }
    };
    let (record_type, ttl, rdata) = assembled_rrset(&assembly.zone, case);
    let question = question_name(&case.owner, &assembly.zone.origin);
    Some((
        served,
        Published {
            case: case.clone(),
            question,
            record_type,
            ttl,
            rdata,
        },
    ))
}

/// Asks the pod for one published case, over TCP (general path) and UDP (fast path
/// compared with the general path).
async fn ask(
    handler: &QueryHandler,
    store: &ZoneStore,
    id: u16,
    published: &Published,
    failures: &mut Vec<String>,
) {
    let Published {
        case,
        question,
        record_type,
        ttl,
        rdata,
    } = published;
    let tcp_query = query_packet(id, question, *record_type, false);
    let responses = raw::respond(handler, tcp_query, CLIENT, Protocol::Tcp);
    let Some(response) = responses.first().and_then(|r| Message::from_vec(r).ok()) else {
        failures.push(format!(
            "no parsable response for {question} {record_type}: {case:?}"
        ));
        return;
    };
    let records = answered(&response, *record_type);
    let served = sorted(records.iter().map(|r| r.data.clone()).collect());
    if response.metadata.response_code != ResponseCode::NoError
        || served != sorted(rdata.clone())
        || records.iter().any(|r| r.ttl != *ttl)
    {
        failures.push(format!(
            "{question} {record_type}: served {:?} (rcode {}), assembled {rdata:?} ttl {ttl}: {case:?}",
            records.iter().map(ToString::to_string).collect::<Vec<_>>(),
            response.metadata.response_code,
        ));
    }

    let udp_query = query_packet(id, question, *record_type, true);
    let general = raw::respond(handler, udp_query.clone(), CLIENT, Protocol::Udp);
    let mut fast_out = Vec::new();
    if fast::answer(&store.load(), &udp_query, &mut fast_out).is_some()
        && general.as_slice() != [fast_out]
    {
        failures.push(format!(
            "{question} {record_type}: the fast path differs from the general path: {case:?}"
        ));
    }
}

#[tokio::test]
async fn every_accepted_value_is_served_as_assembled() {
    let mut rng = Rng(0x5eed_2024_0001);
    let mut cases = corpus();
    let corpus_len = cases.len();
    cases.extend(generated(&mut rng));

    let mut failures = Vec::new();
    let mut zones = Vec::new();
    let mut published = Vec::new();
    let mut rejected: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        match assemble_case(index, case, &mut failures) {
            Some((zone, case)) => {
                zones.push(zone);
                published.push(case);
            }
            None => *rejected.entry(case.record_type).or_default() += 1,
        }
    }
    for zone in &zones {
        zone.prepare_fast_answers();
    }
    let store = Arc::new(ZoneStore::new());
    store.replace_all(zones);
    let handler = QueryHandler::new(
        Arc::clone(&store),
        Default::default(),
        TransferAcl::new(Vec::new()),
        Arc::new(DnsMetrics::register(&mut Registry::default())),
    );
    for (id, case) in published.iter().enumerate() {
        ask(&handler, &store, id as u16, case, &mut failures).await;
    }

    println!(
        "{} cases ({corpus_len} hand-written): {} accepted and served, rejected per type {rejected:?}",
        cases.len(),
        published.len()
    );
    for record_type in TYPES {
        let served = published
            .iter()
            .filter(|p| p.case.record_type == record_type)
            .count();
        assert!(
            served >= VALUES_PER_TYPE / 2,
            "only {served} {record_type} values served"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed; the first:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
