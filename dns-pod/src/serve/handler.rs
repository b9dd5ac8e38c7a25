//! The general request handler: checks a parsed hickory-server request, asks
//! [`crate::route`] who answers, and writes the response with [`crate::encode`], sized for
//! the transport. TCP, zone transfers, EDNS options and anything unusual are answered here;
//! plain UDP queries usually take [`super::fast`], which gives the same bytes. It never
//! waits: every answer is computed from the zones in memory.

use std::sync::Arc;

use hickory_proto::{
    op::{OpCode, Query, ResponseCode},
    rr::{RData, RecordType},
    serialize::binary::BinEncodable,
};
use hickory_server::{net::xfer::Protocol, server::Request};
use ipnet::IpNet;
use zonefleet_wire::{Delta, is_newer};

use crate::{
    encode::{self, Question, Reply},
    metrics::DnsMetrics,
    route::{self, Permissions, Route},
    zones::{ServedZone, ZoneStore},
};

/// An incremental transfer over more versions than this is condensed into one difference.
pub const CONDENSE_ABOVE: usize = 4;

/// Who may transfer zones.
#[derive(Clone, Debug, Default)]
pub struct TransferAcl {
    allowed: Vec<IpNet>,
}

impl TransferAcl {
    /// Allows the given networks; an empty list denies everyone.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// True if `ip` may transfer.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
    }
}

/// Answers queries from the served zones.
#[derive(Clone, Debug)]
pub struct QueryHandler {
    zones: Arc<ZoneStore>,
    transfer_acl: Arc<TransferAcl>,
    metrics: Arc<DnsMetrics>,
}

/// A question's name in wire form as sent, and its type and class.
struct SentQuestion {
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
}

impl SentQuestion {
    fn of(query: &Query) -> Self {
        Self {
            name: query.name().to_bytes().unwrap_or_default(),
            qtype: u16::from(query.query_type()),
            qclass: u16::from(query.query_class()),
        }
    }

    fn question(&self) -> Question<'_> {
        Question {
            name: &self.name,
            qtype: self.qtype,
            qclass: self.qclass,
        }
    }
}

impl QueryHandler {
    /// A handler over `zones`.
    pub fn new(zones: Arc<ZoneStore>, transfer_acl: TransferAcl, metrics: Arc<DnsMetrics>) -> Self {
        Self {
            zones,
            transfer_acl: Arc::new(transfer_acl),
            metrics,
        }
    }

    /// The served zones.
    pub fn zones(&self) -> &ZoneStore {
        &self.zones
    }

    /// The serving metrics.
    pub fn metrics(&self) -> &DnsMetrics {
        &self.metrics
    }

    /// The encoded responses to a request: none for a message that is itself a response,
    /// several for a zone transfer, one otherwise.
    pub fn respond(&self, request: &Request) -> Vec<Vec<u8>> {
        let (responses, rcode) = self.responses(request);
        if let Some(rcode) = rcode {
            self.metrics.responses(rcode, 1);
        }
        responses
    }

    fn responses(&self, request: &Request) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
        let metadata = &request.metadata;
        if metadata.message_type == hickory_proto::op::MessageType::Response {
            // Never answer an answer (RUSTSEC-2023-0041); the listeners drop these first.
            return (Vec::new(), None);
        }
        if metadata.op_code != OpCode::Query {
            return error(request, ResponseCode::NotImp);
        }
        let [query] = request.queries.queries() else {
            return error(request, ResponseCode::FormErr);
        };
        if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
            return error(request, ResponseCode::BADVERS);
        }
        let query = query.original();
        let protocol = request.protocol();
        self.metrics.queries(query.query_type(), protocol, 1);
        let tcp = protocol != Protocol::Udp;
        let permissions = Permissions {
            transfer: self.transfer_acl.allows(request.src().ip()),
        };
        let sent = SentQuestion::of(query);
        let lowercase_name = sent.name.to_ascii_lowercase();
        let reply = Reply::to(metadata, request.edns.is_some());
        let zones = self.zones.load();
        match route::route(
            &zones,
            &lowercase_name,
            sent.qclass,
            sent.qtype,
            tcp,
            permissions,
        ) {
            Route::Error(rcode) => error(request, rcode),
            Route::Transfer(zone) => {
                let reply = Reply {
                    edns: false,
                    ..reply
                };
                if query.query_type() != RecordType::IXFR {
                    let messages = encode::transfer(reply, sent.question(), &zone.index);
                    return (messages, Some(ResponseCode::NoError));
                }
                // RFC 1995 §3: the client's version is the SOA in the authority section.
                let Some(known) =
                    request
                        .authorities
                        .iter()
                        .find_map(|record| match &record.data {
                            RData::SOA(soa) => Some(soa.serial),
                            _ => None,
                        })
                else {
                    return error(request, ResponseCode::FormErr);
                };
                let messages = incremental_transfer(reply, sent.question(), zone, known);
                (messages, Some(ResponseCode::NoError))
            }
            Route::Zone(zone) => {
                let answer = zone
                    .index
                    .lookup(&query.name().to_lowercase(), query.query_type());
                let rcode = encode::response_code(answer.rcode);
                if rcode == ResponseCode::Refused {
                    return error(request, rcode);
                }
                let limit = if tcp {
                    u16::MAX
                } else {
                    encode::udp_limit(request.edns.as_ref())
                };
                let mut out = Vec::new();
                let fit = encode::answer(reply, sent.question(), &answer, limit, &mut out);
                self.metrics.response_size(out.len());
                if fit.truncated() {
                    self.metrics.truncated(1);
                }
                (vec![out], Some(rcode))
            }
        }
    }
}

/// An error response: the questions echoed, empty sections.
fn error(request: &Request, rcode: ResponseCode) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
    let sent: Vec<SentQuestion> = request
        .queries
        .queries()
        .iter()
        .map(|query| SentQuestion::of(query.original()))
        .collect();
    let questions: Vec<Question<'_>> = sent.iter().map(SentQuestion::question).collect();
    let mut out = Vec::new();
    let reply = Reply::to(&request.metadata, request.edns.is_some());
    encode::error(reply, &questions, rcode, &mut out);
    (vec![out], Some(rcode))
}

/// The IXFR response (RFC 1995) to a client at serial `known`: the differences from it
/// (condensed into one over a long chain, §5), our SOA alone if the client is not behind
/// (§2), or the whole zone when we have no differences from its version (§4).
fn incremental_transfer(
    reply: Reply,
    question: Question<'_>,
    zone: &ServedZone,
    known: u32,
) -> Vec<Vec<u8>> {
    match zone.deltas_since(known) {
        Some(deltas) if deltas.len() > CONDENSE_ABOVE => {
            match Delta::condensed(deltas.iter().map(Arc::as_ref)) {
                Some(one) => encode::incremental(reply, question, &zone.index, &[Arc::new(one)]),
                None => encode::transfer(reply, question, &zone.index),
            }
        }
        Some(deltas) => encode::incremental(reply, question, &zone.index, deltas),
        None if is_newer(known, zone.serial()) => {
            encode::incremental(reply, question, &zone.index, &[])
        }
        None => encode::transfer(reply, question, &zone.index),
    }
}
