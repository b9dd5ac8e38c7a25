//! The general request handler: checks a parsed hickory-server request, asks
//! [`crate::route`] who answers, and writes the response with [`crate::encode`], sized for
//! the transport. TCP, zone transfers, EDNS options and anything unusual are answered here;
//! plain UDP queries usually take [`super::fast`], which gives the same bytes. It never
//! waits: every answer is computed from the zones in memory.

use std::sync::Arc;

use hickory_proto::{
    op::{OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType},
    serialize::binary::BinEncodable,
};
use hickory_server::{net::xfer::Protocol, server::Request};
use ipnet::IpNet;
use tracing::debug;
use zonefleet_tsig::{Failure, ResponseSigner, TsigError};
use zonefleet_wire::{Delta, is_newer};

use crate::{
    access::AccessStore,
    encode::{self, Question, Reply},
    metrics::DnsMetrics,
    route::{self, Permissions, Route},
    zones::{ServedZone, ZoneSet, ZoneStore},
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
    access: Arc<AccessStore>,
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
    /// A handler over `zones`, with each zone's transfer rules and keys in `access`, and
    /// the networks of `transfer_acl` allowed to transfer every zone.
    pub fn new(
        zones: Arc<ZoneStore>,
        access: Arc<AccessStore>,
        transfer_acl: TransferAcl,
        metrics: Arc<DnsMetrics>,
    ) -> Self {
        Self {
            zones,
            access,
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
        let sent = SentQuestion::of(query);
        let lowercase_name = sent.name.to_ascii_lowercase();
        let zones = self.zones.load();
        let transfer = matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR);
        // The zone's keys and rules matter only to signed requests and transfers.
        let access = (transfer || request.signature.is_some())
            .then(|| route::enclosing(&zones, &lowercase_name))
            .flatten()
            .and_then(|zone| self.access.get(&zone.origin().to_lowercase()));
        let mut signer = match request.signature {
            None => None,
            Some(_) => {
                let find_key = |name: &Name| access.as_deref().and_then(|a| a.key(name));
                match zonefleet_tsig::verify_request(
                    request.as_slice(),
                    find_key,
                    zonefleet_tsig::unix_now(),
                ) {
                    Ok(signer) => {
                        self.metrics.signed_request("verified");
                        Some(signer)
                    }
                    Err(failure) => return self.refuse_signature(request, failure),
                }
            }
        };
        let ip = request.src().ip();
        let permissions = Permissions {
            transfer: transfer
                && (self.transfer_acl.allows(ip)
                    || access.as_deref().is_some_and(|access| {
                        access.allows_transfer(ip, signer.as_ref().map(|s| s.key().name()))
                    })),
        };
        let room = signer.as_ref().map_or(0, ResponseSigner::overhead);
        let routed = Routed {
            request,
            query,
            sent: &sent,
            lowercase_name: &lowercase_name,
            tcp: protocol != Protocol::Udp,
            room,
        };
        let (mut messages, rcode) = self.routed(&zones, &routed, permissions);
        if let Some(signer) = &mut signer {
            for message in &mut messages {
                signer.sign(message);
            }
        }
        (messages, rcode)
    }

    /// The answer to a request that passed every check, before any signature.
    fn routed(
        &self,
        zones: &ZoneSet,
        routed: &Routed<'_>,
        permissions: Permissions,
    ) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
        let Routed {
            request,
            query,
            sent,
            lowercase_name,
            tcp,
            room,
        } = *routed;
        let reply = Reply::to(&request.metadata, request.edns.is_some());
        match route::route(
            zones,
            lowercase_name,
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
                let limit = limit.saturating_sub(u16::try_from(room).unwrap_or(u16::MAX));
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

    /// The answer to a signed request whose signature is not accepted (RFC 8945 §5.2):
    /// NOTAUTH with the TSIG error (FORMERR for a garbled record), unsigned but for BADTIME.
    fn refuse_signature(
        &self,
        request: &Request,
        failure: Failure,
    ) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
        let (rcode, result) = match failure.tsig_error() {
            None => (ResponseCode::FormErr, "FORMERR"),
            Some(TsigError::BadKey) => (ResponseCode::NotAuth, "BADKEY"),
            Some(TsigError::BadSig) => (ResponseCode::NotAuth, "BADSIG"),
            Some(TsigError::BadTime) => (ResponseCode::NotAuth, "BADTIME"),
            Some(_) => (ResponseCode::NotAuth, "BADTRUNC"),
        };
        self.metrics.signed_request(result);
        debug!(src = %request.src(), %failure, "signed request refused");
        let (mut messages, rcode) = error(request, rcode);
        if let Some(message) = messages.first_mut() {
            failure.finish(message);
        }
        (messages, rcode)
    }
}

/// A checked request on its way to [`QueryHandler::routed`].
#[derive(Clone, Copy)]
struct Routed<'r> {
    request: &'r Request,
    query: &'r Query,
    sent: &'r SentQuestion,
    lowercase_name: &'r [u8],
    tcp: bool,
    /// Bytes to leave free for a signature.
    room: usize,
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
