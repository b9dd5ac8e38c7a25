//! The fast path for plain UDP queries (see [`query::PlainQuery`]) for names in a served
//! zone. A name the zone holds is answered from its precomputed template
//! ([`templates::AnswerTemplates`]); any other name (NXDOMAIN, wildcard, below a
//! delegation) is looked up in the zone index and encoded by the same function as the
//! general path. Everything else — other classes, zone transfers, DS (whose zone depends on
//! the parent), EDNS options, names in no zone, and answers too large for the client —
//! returns `None` and is answered by [`super::QueryHandler`]. Either way the bytes are the
//! same.

pub mod query;
pub mod templates;

use hickory_proto::{
    op::{Header, Query, ResponseCode},
    rr::RecordType,
    serialize::binary::{BinDecodable, BinDecoder},
};

use self::query::{PlainQuery, suffixes};
use super::response::{self, HEADER_LEN, UDP_PAYLOAD_CAP};
use crate::zones::{ServedZone, ZoneSet};

/// The OPT record of every EDNS response: root owner, our payload size, version 0, no
/// flags, no options (what [`response::response_edns`] encodes to).
const RESPONSE_OPT: [u8; 11] = {
    let payload = UDP_PAYLOAD_CAP.to_be_bytes();
    [0, 0, 41, payload[0], payload[1], 0, 0, 0, 0, 0, 0]
};

/// Types the fast path leaves to the general handler.
const GENERAL_TYPES: [RecordType; 6] = [
    RecordType::AXFR,
    RecordType::IXFR,
    RecordType::OPT,
    RecordType::TSIG,
    RecordType::SIG,
    RecordType::DS,
];

/// What the fast path answered, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastAnswer {
    /// The question type.
    pub qtype: RecordType,
    /// The response code.
    pub rcode: ResponseCode,
    /// Whether part of the answer was left out for size.
    pub truncated: bool,
    /// Whether it came from a precomputed template (else from an index lookup).
    pub precomputed: bool,
}

/// Answers `packet` into `out` if it is a plain query for a name in a served zone;
/// `None` leaves it to the general handler.
pub fn answer(zones: &ZoneSet, packet: &[u8], out: &mut Vec<u8>) -> Option<FastAnswer> {
    let query = PlainQuery::parse(packet)?;
    let qtype = RecordType::from(query.qtype());
    if GENERAL_TYPES.contains(&qtype) {
        return None;
    }
    let zone = suffixes(query.lowercase_name()).find_map(|apex| zones.find_wire(apex))?;
    let limit = response::udp_limit_for(query.edns_payload());
    match zone
        .fast_answers()
        .and_then(|templates| templates.get(query.lowercase_name(), query.qtype()))
    {
        Some(template) => from_template(template, &query, limit, out).map(|rcode| FastAnswer {
            qtype,
            rcode,
            truncated: false,
            precomputed: true,
        }),
        None => looked_up(zone, &query, limit, out),
    }
}

/// Copies a template and patches it for the query; `None` if it does not fit `limit`.
fn from_template(
    template: &[u8],
    query: &PlainQuery<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<ResponseCode> {
    let edns_len = if query.edns_payload().is_some() {
        RESPONSE_OPT.len()
    } else {
        0
    };
    if template.len() + edns_len > usize::from(limit) {
        return None;
    }
    let packet = query.packet();
    let question = query.question();
    out.clear();
    out.extend_from_slice(template);
    // ID; RD and CD are copied from the query (the template has them clear).
    out[..2].copy_from_slice(&packet[..2]);
    out[2] |= packet[2] & 0x01;
    out[3] |= packet[3] & 0x10;
    out.get_mut(HEADER_LEN..HEADER_LEN + question.len())?
        .copy_from_slice(question);
    if edns_len > 0 {
        let additionals = u16::from_be_bytes([out[10], out[11]]).checked_add(1)?;
        out[10..12].copy_from_slice(&additionals.to_be_bytes());
        out.extend_from_slice(&RESPONSE_OPT);
    }
    Some(ResponseCode::from(0, out[3] & 0x0F))
}

/// Looks the name up in the zone index and encodes the answer as the general path does.
fn looked_up(
    zone: &ServedZone,
    query: &PlainQuery<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<FastAnswer> {
    let packet = query.packet();
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    let question = Query::read(&mut BinDecoder::new(&packet[HEADER_LEN..])).ok()?;
    let answer = zone
        .answer_message(&question.name().to_lowercase(), question.query_type())
        .ok()?;
    let metadata = response::metadata_for(
        &header.metadata,
        answer.metadata.response_code,
        answer.metadata.authoritative,
    );
    let edns = query.edns_payload().map(|_| response::our_edns());
    let (bytes, fit) = response::encode_answer(metadata, &question, &answer, edns.as_ref(), limit);
    *out = bytes;
    Some(FastAnswer {
        qtype: question.query_type(),
        rcode: answer.metadata.response_code,
        truncated: fit.truncated(),
        precomputed: false,
    })
}
