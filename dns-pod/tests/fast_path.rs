//! The fast path gives byte for byte the responses of the general path.
//!
//! Every query of the differential suite (every name of its zones in two cases, every
//! type, generated names that do not exist, names outside the zones) is sent with several
//! header flags and EDNS variants, over both paths in process: the fast path
//! (`serve::fast::answer`, from precomputed templates, relocated shared answers or an
//! index lookup) and the general
//! hickory-server path (`serve::raw::respond`). Where the fast path answers, the bytes must
//! be identical; where it declines, the general path answers. The test also counts both
//! kinds of fast answer and the declines, so it cannot pass without exercising each.

// The suite's query generator and zone loader; not every field is read here.
#[allow(dead_code)]
#[path = "differential/queries.rs"]
mod queries;
#[path = "differential/zones.rs"]
mod zones;

mod common;

use std::{net::SocketAddr, path::Path, sync::Arc};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{DNSClass, Name, RecordType},
};
use hickory_server::net::xfer::Protocol;
use zonefleet_dns_pod::{
    serve::{QueryHandler, fast, raw},
    zone_files,
    zones::{ServedZone, ZoneStore},
};

const CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5300);

/// Header flags and EDNS of one query variant.
#[derive(Clone, Copy, Debug)]
struct Variant {
    recursion_desired: bool,
    checking_disabled: bool,
    authentic_data: bool,
    /// EDNS payload size, and the DO bit.
    edns: Option<(u16, bool)>,
}

const VARIANTS: [Variant; 6] = [
    Variant {
        recursion_desired: false,
        checking_disabled: false,
        authentic_data: false,
        edns: None,
    },
    Variant {
        recursion_desired: true,
        checking_disabled: false,
        authentic_data: true,
        edns: None,
    },
    Variant {
        recursion_desired: true,
        checking_disabled: true,
        authentic_data: false,
        edns: Some((1232, false)),
    },
    Variant {
        recursion_desired: false,
        checking_disabled: false,
        authentic_data: false,
        edns: Some((512, true)),
    },
    Variant {
        recursion_desired: false,
        checking_disabled: true,
        authentic_data: true,
        edns: Some((4096, false)),
    },
    Variant {
        recursion_desired: true,
        checking_disabled: false,
        authentic_data: false,
        edns: Some((100, false)),
    },
];

fn packet(id: u16, name: &Name, qtype: RecordType, variant: Variant) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = variant.recursion_desired;
    message.metadata.checking_disabled = variant.checking_disabled;
    message.metadata.authentic_data = variant.authentic_data;
    let mut query = Query::query(name.clone(), qtype);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    if let Some((payload, dnssec_ok)) = variant.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(payload)
            .set_version(0)
            .set_dnssec_ok(dnssec_ok);
        message.set_edns(edns);
    }
    message.to_vec().expect("the query encodes")
}

/// How the queries went.
#[derive(Debug, Default)]
struct Tally {
    precomputed: usize,
    relocated: usize,
    looked_up: usize,
    truncated: usize,
    declined: usize,
    mismatches: Vec<String>,
}

async fn compare(store: Arc<ZoneStore>, questions: &[(Name, RecordType)]) -> Tally {
    // Wait for every zone's templates, so exact names take them.
    for zone in store.load().iter() {
        zone.prepare_fast_answers();
    }
    let handler = QueryHandler::new(
        Arc::clone(&store),
        Default::default(),
        common::transfer_acl(&[]),
        common::metrics(),
    );
    let zones = store.load();
    let mut tally = Tally::default();
    let mut out = Vec::new();
    let mut id: u16 = 1;
    for (name, qtype) in questions {
        for variant in VARIANTS {
            id = id.wrapping_mul(31).wrapping_add(7);
            let bytes = packet(id, name, *qtype, variant);
            let general = raw::respond(&handler, bytes.clone(), CLIENT, Protocol::Udp);
            let Some(answer) = fast::answer(&zones, &bytes, &mut out) else {
                tally.declined += 1;
                continue;
            };
            tally.truncated += usize::from(answer.truncated);
            match answer.source {
                fast::Source::Whole => tally.precomputed += 1,
                fast::Source::Relocated => tally.relocated += 1,
                fast::Source::LookedUp => tally.looked_up += 1,
            }
            if general.as_slice() != [out.clone()] {
                tally.mismatches.push(format!(
                    "{name} {qtype} {variant:?} ({:?}):\n  fast    {}\n  general {}",
                    answer.source,
                    hex(&out),
                    general.first().map_or("nothing".into(), |g| hex(g)),
                ));
            }
        }
    }
    tally
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn store_of(zones: Vec<ServedZone>) -> Arc<ZoneStore> {
    let store = ZoneStore::new();
    store.replace_all(zones);
    Arc::new(store)
}

fn report(what: &str, tally: &Tally) {
    println!(
        "{what}: {} precomputed, {} relocated, {} looked up ({} truncated), {} left to the \
         general path, {} mismatches",
        tally.precomputed,
        tally.relocated,
        tally.looked_up,
        tally.truncated,
        tally.declined,
        tally.mismatches.len()
    );
    assert!(
        tally.mismatches.is_empty(),
        "{what}: the fast path differs from the general path on {} queries; the first:\n{}",
        tally.mismatches.len(),
        tally.mismatches[..tally.mismatches.len().min(5)].join("\n")
    );
}

#[tokio::test]
async fn the_fast_path_answers_byte_for_byte_as_the_general_path() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/zones");
    let zone_set = zones::ZoneSet::load(&dir);
    let served: Vec<ServedZone> = zone_set
        .zones
        .iter()
        .map(|zone| {
            let text = std::fs::read_to_string(&zone.path).expect("the zone file reads");
            let snapshot = zone_files::parse(&text, zone.origin.clone(), None).expect("it parses");
            ServedZone::from_snapshot(snapshot).expect("it indexes")
        })
        .collect();
    let questions: Vec<(Name, RecordType)> = queries::generate(&zone_set)
        .into_iter()
        .filter(|spec| spec.transport == queries::Transport::Udp)
        .map(|spec| (spec.name, spec.qtype))
        .collect();
    let tally = compare(store_of(served), &questions).await;
    report("differential zones", &tally);
    assert!(
        tally.precomputed > 1000,
        "too few precomputed answers: {tally:?}"
    );
    assert!(
        tally.relocated > 1000,
        "too few relocated answers: {tally:?}"
    );
    assert!(
        tally.looked_up > 100,
        "too few looked-up answers: {tally:?}"
    );
    assert!(
        tally.declined > 100,
        "too few declines (DS, out of zone): {tally:?}"
    );
}

#[tokio::test]
async fn answers_too_large_for_the_client_are_cut_as_the_general_path_cuts_them() {
    let questions: Vec<(Name, RecordType)> = [
        ("big.example.com.", RecordType::TXT),
        ("BIG.Example.com.", RecordType::TXT),
        ("manymx.example.com.", RecordType::MX),
        ("www.example.com.", RecordType::A),
        ("nothing-here.example.com.", RecordType::A),
    ]
    .into_iter()
    .map(|(name, qtype)| (Name::from_ascii(name).expect("a name"), qtype))
    .collect();
    let tally = compare(common::zone_store(), &questions).await;
    report("large answers", &tally);
    // The big TXT and MX answers do not fit 512 bytes (2 names x 2 variants without EDNS,
    // and the 100-byte payload variant, which is raised to 512): their templates are not
    // used, and the lookup cuts them to TC responses.
    assert!(
        tally.looked_up >= 18 && tally.truncated >= 9,
        "the large answers were not cut: {tally:?}"
    );
    assert!(tally.precomputed > 0 && tally.relocated > 0, "{tally:?}");
}
