//! The deterministic query generator.
//!
//! Every existing name (owners and empty non-terminals) is asked for every type in
//! [`QTYPES`]; generated names that do not exist (siblings and children of existing names,
//! names below wildcards, below delegations and below empty non-terminals) are asked for
//! [`NX_QTYPES`]; names outside every served zone are asked for [`OUT_OF_ZONE_QTYPES`] and
//! must be REFUSED. Each question name gets a case variant from a seeded generator, so the
//! same queries (byte for byte) are sent on every run; existing names are asked in upper
//! case as well.

use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::{Name, RecordType};

use crate::zones::ZoneSet;

/// The types asked at every existing name.
pub const QTYPES: [RecordType; 17] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::NS,
    RecordType::PTR,
    RecordType::CAA,
    RecordType::DS,
    RecordType::SOA,
    RecordType::TLSA,
    RecordType::SSHFP,
    RecordType::NAPTR,
    RecordType::SVCB,
    RecordType::HTTPS,
    RecordType::ANY,
];

/// The types asked at generated names, most of which do not exist.
pub const NX_QTYPES: [RecordType; 5] = [
    RecordType::A,
    RecordType::TXT,
    RecordType::NS,
    RecordType::DS,
    RecordType::ANY,
];

/// The types asked at names outside every served zone.
pub const OUT_OF_ZONE_QTYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::NS,
    RecordType::SOA,
    RecordType::DS,
];

/// Names that no test zone contains (checked against the zones when generating).
const OUT_OF_ZONE_NAMES: [&str; 12] = [
    ".",
    "com.",
    "org.",
    "arpa.",
    "example.org.",
    "www.example.org.",
    "ExAmPlE.NeT.",
    "xexample.com.",
    "example.com.invalid.",
    "in-addr.arpa.",
    "0.192.in-addr.arpa.",
    "3.0.192.in-addr.arpa.",
];

/// The seed of the case randomization; change it to explore other case mixes.
const SEED: u64 = 0x5eed_d1ff_0001;

/// Every `TCP_EVERY`-th question is also sent over TCP.
const TCP_EVERY: usize = 10;

/// Every `NO_EDNS_EVERY`-th question (offset by 5) is also sent without EDNS, and so is
/// every TXT question (TXT holds the answers that outgrow 512 bytes and must truncate).
const NO_EDNS_EVERY: usize = 20;

/// How a query is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One UDP datagram, retried on timeout.
    Udp,
    /// One TCP connection, with the 2-byte length prefix.
    Tcp,
}

/// One query to send to every server.
#[derive(Clone, Debug)]
pub struct QuerySpec {
    /// The question name, in the exact case to send.
    pub name: Name,
    /// The question type (class is always IN).
    pub qtype: RecordType,
    /// UDP or TCP.
    pub transport: Transport,
    /// Whether the query carries an OPT record (EDNS(0), payload 1232, DO=0).
    pub edns: bool,
    /// Whether the name is outside every served zone (the answer must be REFUSED).
    pub out_of_zone: bool,
}

impl fmt::Display for QuerySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        let edns = if self.edns { "edns" } else { "no-edns" };
        write!(f, "{} IN {} ({transport}, {edns})", self.name, self.qtype)
    }
}

/// Generates the full, deterministic query list for `zones`.
pub fn generate(zones: &ZoneSet) -> Vec<QuerySpec> {
    let mut questions = Vec::new();
    for name in zones.existing_names() {
        questions.extend(
            QTYPES
                .iter()
                .map(|&qtype| (name.clone(), qtype, false, true)),
        );
    }
    for name in generated_names(zones) {
        questions.extend(
            NX_QTYPES
                .iter()
                .map(|&qtype| (name.clone(), qtype, false, false)),
        );
    }
    for name in out_of_zone_names(zones) {
        questions.extend(
            OUT_OF_ZONE_QTYPES
                .iter()
                .map(|&qtype| (name.clone(), qtype, true, false)),
        );
    }

    let mut rng = SplitMix64(SEED);
    let mut specs = Vec::new();
    for (index, (name, qtype, out_of_zone, existing)) in questions.into_iter().enumerate() {
        let spec = QuerySpec {
            name: recase(&name, &mut rng),
            qtype,
            transport: Transport::Udp,
            edns: true,
            out_of_zone,
        };
        if index.is_multiple_of(TCP_EVERY) {
            specs.push(QuerySpec {
                transport: Transport::Tcp,
                ..spec.clone()
            });
        }
        if index % NO_EDNS_EVERY == 5 || qtype == RecordType::TXT {
            specs.push(QuerySpec {
                edns: false,
                ..spec.clone()
            });
        }
        if existing {
            // Every existing name is also asked in upper case: zone membership, zone cuts and
            // the parent side of DS must not depend on the case asked.
            specs.push(QuerySpec {
                name: upper(&name),
                ..spec.clone()
            });
        }
        specs.push(spec);
    }
    specs
}

/// `name` in upper case.
fn upper(name: &Name) -> Name {
    let labels = name.iter().map(<[u8]>::to_ascii_uppercase);
    Name::from_labels(labels.collect::<Vec<_>>()).expect("an upper-cased name is valid")
}

/// Names derived from the zones that mostly do not exist: a child and a sibling of every
/// existing name (which covers names below delegations, wildcards and empty non-terminals),
/// plus names one to three labels below every wildcard and two labels below every delegation.
fn generated_names(zones: &ZoneSet) -> BTreeSet<Name> {
    let existing = zones.existing_names();
    let origins: BTreeSet<&Name> = zones.origins().collect();
    let mut names = BTreeSet::new();
    for name in &existing {
        names.insert(below(name, &["nx"]));
        if !origins.contains(name) {
            names.insert(sibling(name));
        }
    }
    for parent in zones.wildcard_parents() {
        names.insert(below(&parent, &["one"]));
        names.insert(below(&parent, &["Two", "levels"]));
        names.insert(below(&parent, &["three", "LEVELS", "deep"]));
    }
    for delegation in zones.delegations() {
        names.insert(below(&delegation, &["host"]));
        names.insert(below(&delegation, &["a", "b"]));
    }
    names.retain(|name| !existing.contains(name));
    names
}

/// The fixed out-of-zone names; panics if a test zone covers one of them.
fn out_of_zone_names(zones: &ZoneSet) -> Vec<Name> {
    OUT_OF_ZONE_NAMES
        .iter()
        .map(|text| {
            let name = Name::from_ascii(text).expect("valid out-of-zone name");
            assert!(
                !zones.origins().any(|origin| origin.zone_of(&name)),
                "out-of-zone name {name} is inside a test zone"
            );
            name
        })
        .collect()
}

/// `labels` (leftmost first) prepended to `name`.
fn below(name: &Name, labels: &[&str]) -> Name {
    labels.iter().rev().fold(name.clone(), |name, label| {
        name.prepend_label(*label).expect("valid label")
    })
}

/// `name` with `-nx` appended to its first label.
fn sibling(name: &Name) -> Name {
    let mut labels: Vec<Vec<u8>> = name.iter().map(<[u8]>::to_vec).collect();
    if let Some(first) = labels.first_mut() {
        first.extend_from_slice(b"-nx");
    }
    Name::from_labels(labels).expect("valid sibling name")
}

/// `name` in one of four case variants: as written, lower, upper, or mixed at random.
fn recase(name: &Name, rng: &mut SplitMix64) -> Name {
    let variant = rng.next() % 4;
    let labels = name.iter().map(|label| {
        label
            .iter()
            .map(|&byte| match variant {
                1 => byte.to_ascii_lowercase(),
                2 => byte.to_ascii_uppercase(),
                3 if rng.next().is_multiple_of(2) => byte.to_ascii_uppercase(),
                3 => byte.to_ascii_lowercase(),
                _ => byte,
            })
            .collect::<Vec<u8>>()
    });
    Name::from_labels(labels.collect::<Vec<_>>()).expect("recased name is valid")
}

/// A tiny deterministic generator (SplitMix64), so the test needs no `rand` dependency.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
