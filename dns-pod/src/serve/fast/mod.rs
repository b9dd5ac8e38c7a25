//! The fast path for plain UDP queries (see [`query::PlainQuery`]) for names in a served
//! zone. [`crate::route`] decides who answers, as for every query; when a zone does, most
//! queries are answered from the answers precomputed per zone version
//! ([`crate::encode::templates`]): a name the zone holds from its own template, and a name
//! below a zone cut, a name the zone does not hold, or a type a name does not hold from the
//! answer shared by all of them ([`crate::encode::relocatable`]). The rest (CNAME chains to
//! types not precomputed, names a shared answer cannot be relocated to, and answers too
//! large for the client) are looked up in the zone index and written by the same encoder
//! as the general path. Everything else — other classes, zone transfers, errors, EDNS
//! options, names in no zone — returns `None` and is answered by [`super::QueryHandler`].
//! Whichever way, the bytes are the same.

pub mod query;

use hickory_proto::{
    op::ResponseCode,
    rr::{Name, RecordType},
    serialize::binary::BinDecodable,
};

use self::query::PlainQuery;
use crate::{
    encode::{
        self, HEADER_LEN, Question, Reply, UDP_PAYLOAD_CAP, relocatable::Relocatable,
        templates::Template,
    },
    route::{self, Permissions, Route},
    zones::{ServedZone, ZoneSet},
};

/// The OPT record of every EDNS response: root owner, our payload size, version 0, no
/// flags, no options (what the encoder writes for a request with EDNS).
const RESPONSE_OPT: [u8; 11] = {
    let payload = UDP_PAYLOAD_CAP.to_be_bytes();
    [0, 0, 41, payload[0], payload[1], 0, 0, 0, 0, 0, 0]
};
/// Class IN (a plain query has no other).
const CLASS_IN: u16 = 1;

/// What the fast path answered, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastAnswer {
    /// The question type.
    pub qtype: RecordType,
    /// The response code.
    pub rcode: ResponseCode,
    /// Whether part of the answer was left out for size.
    pub truncated: bool,
    /// Where the answer came from.
    pub source: Source,
}

/// Where a fast answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The precomputed answer for exactly the name asked.
    Whole,
    /// A precomputed answer shared by the names below a suffix (negative, referral,
    /// wildcard), relocated to the name asked.
    Relocated,
    /// An index lookup, encoded as the general path does.
    LookedUp,
}

/// Answers `packet` into `out` if it is a plain query for a name in a served zone;
/// `None` leaves it to the general handler.
pub fn answer(zones: &ZoneSet, packet: &[u8], out: &mut Vec<u8>) -> Option<FastAnswer> {
    let query = PlainQuery::parse(packet)?;
    let qtype = RecordType::from(query.qtype());
    let name = query.lowercase_name();
    let Route::Zone(zone) = route::route(
        zones,
        name,
        CLASS_IN,
        query.qtype(),
        false,
        Permissions::default(),
    ) else {
        return None;
    };
    let limit = encode::udp_limit_for(query.edns_payload());
    let template = zone.fast_answers().and_then(|templates| {
        templates.find(&zone.index, name, zone.wire_origin().len(), query.qtype())
    });
    let precomputed = match template {
        Some(Template::Whole(template)) => {
            from_template(template, &query, limit, out).map(|rcode| (rcode, Source::Whole))
        }
        Some(Template::Relocatable(template)) => {
            from_relocatable(template, &query, limit, out).map(|rcode| (rcode, Source::Relocated))
        }
        None => None,
    };
    match precomputed {
        Some((rcode, source)) => Some(FastAnswer {
            qtype,
            rcode,
            truncated: false,
            source,
        }),
        None => looked_up(zone, &query, limit, out),
    }
}

/// The length of the OPT record the response to `query` carries.
fn response_opt_len(query: &PlainQuery<'_>) -> usize {
    if query.edns_payload().is_some() {
        RESPONSE_OPT.len()
    } else {
        0
    }
}

/// Copies a template and patches it for the query; `None` if it does not fit `limit`.
fn from_template(
    template: &[u8],
    query: &PlainQuery<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<ResponseCode> {
    if template.len() + response_opt_len(query) > usize::from(limit) {
        return None;
    }
    let question = query.question();
    out.clear();
    out.extend_from_slice(template);
    out.get_mut(HEADER_LEN..HEADER_LEN + question.len())?
        .copy_from_slice(question);
    finish(query, out)
}

/// Writes a relocatable answer for the query; `None` if it does not fit `limit` or cannot
/// be relocated to this name.
fn from_relocatable(
    template: &Relocatable,
    query: &PlainQuery<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<ResponseCode> {
    template.write(
        query.lowercase_name(),
        query.question(),
        usize::from(limit),
        response_opt_len(query),
        out,
    )?;
    finish(query, out)
}

/// Patches a canonical response in `out` for the query: its ID, the RD and CD flags it
/// set (the canonical response has them clear), and our OPT record if it has EDNS.
fn finish(query: &PlainQuery<'_>, out: &mut Vec<u8>) -> Option<ResponseCode> {
    let packet = query.packet();
    out[..2].copy_from_slice(&packet[..2]);
    out[2] |= packet[2] & 0x01;
    out[3] |= packet[3] & 0x10;
    if query.edns_payload().is_some() {
        let additionals = u16::from_be_bytes([out[10], out[11]]).checked_add(1)?;
        out[10..12].copy_from_slice(&additionals.to_be_bytes());
        out.extend_from_slice(&RESPONSE_OPT);
    }
    Some(ResponseCode::from(0, out[3] & 0x0F))
}

/// Looks the name up in the zone index and writes the answer as the general path does.
fn looked_up(
    zone: &ServedZone,
    query: &PlainQuery<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Option<FastAnswer> {
    let packet = query.packet();
    let name = Name::from_bytes(query.lowercase_name()).ok()?;
    let qtype = RecordType::from(query.qtype());
    let answer = zone.index.lookup(&name, qtype);
    let rcode = encode::response_code(answer.rcode);
    if rcode == ResponseCode::Refused {
        return None;
    }
    let reply = Reply {
        id: u16::from_be_bytes([packet[0], packet[1]]),
        opcode: 0,
        recursion_desired: packet[2] & 0x01 != 0,
        checking_disabled: packet[3] & 0x10 != 0,
        edns: query.edns_payload().is_some(),
    };
    let question = query.question();
    let sent = Question {
        name: question.get(..question.len().checked_sub(4)?)?,
        qtype: query.qtype(),
        qclass: CLASS_IN,
    };
    let fit = encode::answer(reply, sent, &answer, limit, out);
    Some(FastAnswer {
        qtype,
        rcode,
        truncated: fit.truncated(),
        source: Source::LookedUp,
    })
}
