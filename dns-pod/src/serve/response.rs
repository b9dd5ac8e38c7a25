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
    request.map(|_| {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD_CAP);
        edns.set_version(0);
        edns.set_dnssec_ok(false);
        edns
    })
}

/// The largest response a UDP client can take: its EDNS payload size (at least 512), capped
/// at [`UDP_PAYLOAD_CAP`]; 512 without EDNS.
pub fn udp_limit(request: Option<&Edns>) -> u16 {
    request.map_or(UDP_PAYLOAD_PLAIN, |edns| {
        edns.max_payload().clamp(UDP_PAYLOAD_PLAIN, UDP_PAYLOAD_CAP)
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

/// Fits a zone's answer into `limit` bytes; returns the fit and the size of the response
/// sent.
pub fn fit(
    metadata: &Metadata,
    queries: &[Query],
    answer: &Message,
    edns: Option<&Edns>,
    limit: u16,
) -> (Fit, usize) {
    let fits = |additionals: &[Record]| {
        encodes_within(
            metadata,
            queries,
            &answer.answers,
            &answer.authorities,
            additionals,
            edns,
            limit,
        )
    };
    if let Some(size) = fits(&answer.additionals) {
        (Fit::Whole, size)
    } else if let Some(size) = fits(&[]) {
        // A referral's additionals are glue (answer empty, NS in authority, AA clear).
        let referral = !answer.metadata.authoritative && answer.answers.is_empty();
        let fit = Fit::WithoutAdditionals {
            truncated: referral,
        };
        (fit, size)
    } else {
        let size = encodes_within(metadata, queries, &[], &[], &[], edns, u16::MAX).unwrap_or(0);
        (Fit::Truncated, size)
    }
}

/// The encoded size (with name compression) if the message fits in `limit` bytes.
fn encodes_within(
    metadata: &Metadata,
    queries: &[Query],
    answers: &[Record],
    authority: &[Record],
    additionals: &[Record],
    edns: Option<&Edns>,
    limit: u16,
) -> Option<usize> {
    let mut bytes = Vec::with_capacity(usize::from(limit));
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(limit);
    match emit_message_parts(
        metadata,
        &mut queries.iter(),
        &mut answers.iter(),
        &mut authority.iter(),
        &mut additionals.iter(),
        edns,
        None,
        &mut encoder,
    ) {
        Ok(header) if !header.metadata.truncation => Some(bytes.len()),
        _ => None,
    }
}
