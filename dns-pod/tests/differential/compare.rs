//! Reducing responses to what must match, comparing them, and printing them like dig.

use std::fmt::Write as _;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::queries::QuerySpec;

/// A response as a server sent it, or why there was none.
pub type Reply = Result<Message, String>;

/// One resource record as compared: lowercased owner, type, class, TTL and the RDATA in
/// DNSSEC canonical wire form (uncompressed, names inside RDATA lowercased).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rr {
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

/// The parts of a response that every server must agree on.
///
/// Sections are sorted multisets, so record order does not matter. The additional section
/// is only compared for referrals (an authority section with NS records), where it carries
/// the glue; elsewhere its contents are optional. The OPT record is never compared as a
/// record, only whether one is present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    rcode: ResponseCode,
    authoritative: bool,
    truncated: bool,
    edns: bool,
    answer: Vec<Rr>,
    authority: Vec<Rr>,
    glue: Vec<Rr>,
}

impl Normalized {
    /// Reduces `message` to its comparable parts.
    pub fn of(message: &Message) -> Self {
        let authority = section(&message.authorities);
        let is_referral = message
            .authorities
            .iter()
            .any(|record| record.record_type() == RecordType::NS);
        Self {
            rcode: message.metadata.response_code,
            authoritative: message.metadata.authoritative,
            truncated: message.metadata.truncation,
            edns: message.edns.is_some(),
            answer: section(&message.answers),
            authority,
            glue: if is_referral {
                section(&message.additionals)
            } else {
                Vec::new()
            },
        }
    }

    /// The response code.
    pub fn rcode(&self) -> ResponseCode {
        self.rcode
    }

    /// The names of the fields in which `self` and `other` differ, e.g. `["rcode", "answer"]`.
    pub fn differences(&self, other: &Self) -> Vec<&'static str> {
        let checks = [
            ("rcode", self.rcode == other.rcode),
            ("aa", self.authoritative == other.authoritative),
            ("tc", self.truncated == other.truncated),
            ("edns", self.edns == other.edns),
            ("answer", self.answer == other.answer),
            ("authority", self.authority == other.authority),
            ("glue", self.glue == other.glue),
        ];
        checks
            .into_iter()
            .filter(|(_, same)| !same)
            .map(|(field, _)| field)
            .collect()
    }
}

/// A section as a sorted multiset of [`Rr`]s (OPT, should one appear, is left out).
fn section(records: &[Record]) -> Vec<Rr> {
    let mut rrs: Vec<Rr> = records
        .iter()
        .filter(|record| record.record_type() != RecordType::OPT)
        .map(|record| Rr {
            owner: record.name.to_lowercase().to_ascii(),
            rtype: u16::from(record.record_type()),
            class: u16::from(record.dns_class),
            ttl: record.ttl,
            rdata: canonical_rdata(&record.data),
        })
        .collect();
    rrs.sort();
    rrs
}

/// RDATA in DNSSEC canonical form (RFC 4034 §6.2), so name case and compression do not count.
fn canonical_rdata(rdata: &RData) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_canonical_form(true);
    rdata.emit(&mut encoder).expect("re-encoding decoded RDATA");
    bytes
}

/// Checks that the question section echoes `spec` exactly, including the name's case.
pub fn question_mismatch(spec: &QuerySpec, message: &Message) -> Option<String> {
    match message.queries.as_slice() {
        [query]
            if query.name().eq_case(&spec.name)
                && query.query_type() == spec.qtype
                && query.query_class() == DNSClass::IN =>
        {
            None
        }
        [query] => Some(format!(
            "question {} {} {} does not echo {} IN {} exactly",
            query.name(),
            query.query_class(),
            query.query_type(),
            spec.name,
            spec.qtype
        )),
        queries => Some(format!(
            "{} questions in the response, expected 1",
            queries.len()
        )),
    }
}

/// A response in the style of `dig`, indented for the report.
pub fn dig(reply: &Reply) -> String {
    let message = match reply {
        Ok(message) => message,
        Err(error) => return format!("    ;; no response: {error}\n"),
    };
    let header = &message.metadata;
    let mut flags = vec!["qr"];
    for (set, flag) in [
        (header.authoritative, "aa"),
        (header.truncation, "tc"),
        (header.recursion_desired, "rd"),
        (header.recursion_available, "ra"),
    ] {
        if set {
            flags.push(flag);
        }
    }
    let mut out = format!(
        "    ;; status: {}, flags: {}; EDNS: {}\n",
        header.response_code,
        flags.join(" "),
        match &message.edns {
            Some(edns) => format!("version {}, udp {}", edns.version(), edns.max_payload()),
            None => "none".to_owned(),
        }
    );
    for query in &message.queries {
        let _ = writeln!(
            out,
            "    ;; QUESTION: {} {} {}",
            query.name(),
            query.query_class(),
            query.query_type()
        );
    }
    for (title, records) in [
        ("ANSWER", &message.answers),
        ("AUTHORITY", &message.authorities),
        ("ADDITIONAL", &message.additionals),
    ] {
        if !records.is_empty() {
            let _ = writeln!(out, "    ;; {title}:");
            for record in records {
                let _ = writeln!(out, "    {record}");
            }
        }
    }
    out
}
