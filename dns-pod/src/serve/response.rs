//! What to answer: a pure function from the served zones and a parsed query to the
//! sections of the response, and the fitting of those sections into the size the client
//! can take.

use std::sync::Arc;

use hickory_proto::{
    op::{Edns, Message, Metadata, OpCode, Query, ResponseCode, emit_message_parts},
    rr::{DNSClass, Name, Record, RecordType},
    serialize::binary::BinEncoder,
};

use crate::zones::{ServedZone, ZoneSet};

/// The largest UDP response we send, whatever the client offers (DNS Flag Day 2020).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
/// The UDP limit for clients without EDNS (RFC 1035 §4.2.1).
pub const UDP_PAYLOAD_PLAIN: u16 = 512;

/// How a query is answered, before it is sized for the transport.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An error with empty sections.
    Error(ResponseCode),
    /// The zone answers (through its `ZoneHandler`).
    Zone(Arc<ServedZone>),
    /// A zone transfer the client may receive: every record, SOA first and last.
    Transfer(Vec<Record>),
}

/// What a query may ask for beyond a lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct Permissions {
    /// The client may transfer zones (AXFR) over TCP.
    pub transfer: bool,
}

/// Decides who answers one query (the request passed the opcode, count and EDNS checks).
pub fn reply(zones: &ZoneSet, query: &Query, tcp: bool, permissions: Permissions) -> Reply {
    if query.query_class() != DNSClass::IN {
        return Reply::Error(ResponseCode::Refused);
    }
    let qname = query.name();
    match query.query_type() {
        RecordType::AXFR | RecordType::IXFR => {
            // A transfer needs TCP and permission, and covers exactly one zone we serve.
            return match zones.get(qname).filter(|_| tcp && permissions.transfer) {
                Some(zone) => Reply::Transfer(zone.transfer_records()),
                None => Reply::Error(ResponseCode::Refused),
            };
        }
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            return Reply::Error(ResponseCode::FormErr);
        }
        _ => {}
    }
    match zone_for(zones, qname, query.query_type()) {
        Some(zone) => Reply::Zone(Arc::clone(zone)),
        None => Reply::Error(ResponseCode::Refused),
    }
}

/// The zone that answers: the closest enclosing zone, except that a DS question at the apex
/// of a child zone belongs to its parent when the parent is served too (RFC 4035 §3.1.4.1).
fn zone_for<'z>(
    zones: &'z ZoneSet,
    qname: &Name,
    qtype: RecordType,
) -> Option<&'z Arc<ServedZone>> {
    let zone = zones.find(qname)?;
    if qtype == RecordType::DS
        && zone.origin().eq_ignore_root(qname)
        && !qname.is_root()
        && let Some(parent) = zones.find(&qname.base_name())
    {
        return Some(parent);
    }
    Some(zone)
}

/// The header of a response to `request`.
pub fn metadata_for(request: &Metadata, rcode: ResponseCode, authoritative: bool) -> Metadata {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = rcode;
    metadata.authoritative = authoritative;
    metadata.op_code = OpCode::Query;
    metadata
}

/// The EDNS record of a response: our payload size, version 0, no DNSSEC. None when the
/// request had no EDNS.
pub fn response_edns(request: Option<&Edns>) -> Option<Edns> {
    request.map(|_| our_edns())
}

/// Our EDNS record: payload [`UDP_PAYLOAD_CAP`], version 0, no DNSSEC, no options.
pub fn our_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD_CAP);
    edns.set_version(0);
    edns.set_dnssec_ok(false);
    edns
}

/// The largest response a UDP client can take: its EDNS payload size (at least 512), capped
/// at [`UDP_PAYLOAD_CAP`]; 512 without EDNS.
pub fn udp_limit(request: Option<&Edns>) -> u16 {
    udp_limit_for(request.map(Edns::max_payload))
}

/// [`udp_limit`] from the EDNS payload size offered, if any.
pub fn udp_limit_for(edns_payload: Option<u16>) -> u16 {
    edns_payload.map_or(UDP_PAYLOAD_PLAIN, |payload| {
        payload.clamp(UDP_PAYLOAD_PLAIN, UDP_PAYLOAD_CAP)
    })
}

/// The sections that fit the limit, and whether the response must say TC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Everything fits.
    Whole,
    /// Everything but the additional section fits. TC is set when that section held glue
    /// a referral needs (RFC 9471), and left clear for optional data.
    WithoutAdditionals {
        /// Whether TC must be set.
        truncated: bool,
    },
    /// Only the header, question and EDNS fit: TC, and the client retries over TCP.
    Truncated,
}

impl Fit {
    /// True if something the client needs was left out (the response says TC).
    pub fn truncated(self) -> bool {
        matches!(
            self,
            Self::Truncated | Self::WithoutAdditionals { truncated: true }
        )
    }
}

/// The sections of a response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sections<'a> {
    /// The answer section.
    pub answers: &'a [Record],
    /// The authority section.
    pub authority: &'a [Record],
    /// The additional section.
    pub additionals: &'a [Record],
}

impl<'a> Sections<'a> {
    /// The sections of a zone's answer.
    pub fn of(answer: &'a Message) -> Self {
        Self {
            answers: &answer.answers,
            authority: &answer.authorities,
            additionals: &answer.additionals,
        }
    }
}

/// Encodes a zone's answer to `query` within `limit` bytes, dropping what does not fit;
/// returns the bytes and how they fit. Every query response is encoded through here or
/// [`encode`], whichever path answered it.
pub fn encode_answer(
    metadata: Metadata,
    query: &Query,
    answer: &Message,
    edns: Option<&Edns>,
    limit: u16,
) -> (Vec<u8>, Fit) {
    let whole = Sections::of(answer);
    if let Some(bytes) = encode(&metadata, &[query], whole, edns, limit) {
        return (bytes, Fit::Whole);
    }
    // A referral's additionals are glue (answer empty, NS in authority, AA clear).
    let referral = !answer.metadata.authoritative && answer.answers.is_empty();
    let mut metadata = metadata;
    metadata.truncation = referral;
    let without_additionals = Sections {
        additionals: &[],
        ..whole
    };
    if let Some(bytes) = encode(&metadata, &[query], without_additionals, edns, limit) {
        let fit = Fit::WithoutAdditionals {
            truncated: referral,
        };
        return (bytes, fit);
    }
    metadata.truncation = true;
    let bytes = encode(&metadata, &[query], Sections::default(), edns, u16::MAX);
    (bytes.unwrap_or_default(), Fit::Truncated)
}

/// Encodes a response if it fits in `limit` bytes.
///
/// Names are compressed against the question as if it were lowercase: the question is
/// written lowercase first, so an owner equal to the question name (in any case) becomes
/// a pointer to it, and a name ending in one of its suffixes points into it; then the
/// question's labels are set back to the case the client used. The bytes therefore depend
/// on the client's case only in the question itself, as NSD's do, and a precomputed answer
/// needs only its question patched.
pub fn encode(
    metadata: &Metadata,
    questions: &[&Query],
    sections: Sections<'_>,
    edns: Option<&Edns>,
    limit: u16,
) -> Option<Vec<u8>> {
    let lowercase: Vec<Query> = questions
        .iter()
        .map(|query| {
            let mut lower = Query::query(query.name().to_lowercase(), query.query_type());
            lower.set_query_class(query.query_class());
            lower
        })
        .collect();
    // Encoded without TC, so that TC in the result means that something did not fit.
    let mut untruncated = *metadata;
    untruncated.truncation = false;
    let mut bytes = Vec::with_capacity(usize::from(limit.min(UDP_PAYLOAD_CAP)));
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(limit);
    let header = emit_message_parts(
        &untruncated,
        &mut lowercase.iter(),
        &mut sections.answers.iter(),
        &mut sections.authority.iter(),
        &mut sections.additionals.iter(),
        edns,
        None,
        &mut encoder,
    )
    .ok()?;
    if header.metadata.truncation {
        return None;
    }
    if metadata.truncation {
        bytes[2] |= TC_BIT;
    }
    restore_question_case(&mut bytes, questions);
    Some(bytes)
}

/// Sets the literal labels of each encoded question to the client's case.
fn restore_question_case(bytes: &mut [u8], questions: &[&Query]) {
    let mut at = HEADER_LEN;
    for query in questions {
        let mut compressed = false;
        for label in query.name().iter() {
            match bytes.get(at) {
                Some(&len) if usize::from(len) == label.len() && len & 0xC0 == 0 => {
                    if let Some(target) = bytes.get_mut(at + 1..at + 1 + label.len()) {
                        target.copy_from_slice(label);
                    }
                    at += 1 + label.len();
                }
                // A pointer (a later question compressed against an earlier one) ends
                // the literal labels.
                Some(len) if len & 0xC0 == 0xC0 => {
                    at += 2;
                    compressed = true;
                    break;
                }
                _ => return,
            }
        }
        if !compressed {
            // The root label that ends the name.
            at += 1;
        }
        // Type and class.
        at += 4;
    }
}

/// The length of a DNS header.
pub const HEADER_LEN: usize = 12;
/// The TC flag in the third byte of a header.
const TC_BIT: u8 = 0x02;
