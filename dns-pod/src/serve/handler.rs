//! The general request handler: checks a parsed hickory-server request, asks
//! [`super::response`] what to answer, and encodes the response sized for the transport.
//! TCP, zone transfers, EDNS options and anything unusual are answered here; plain UDP
//! queries usually take [`super::fast`], which gives the same bytes.

use std::sync::Arc;

use hickory_proto::{
    op::{Metadata, OpCode, Query, ResponseCode},
    rr::Record,
};
use hickory_server::{
    net::xfer::Protocol,
    server::Request,
    zone_handler::{AuthLookup, LookupControlFlow, LookupError, LookupOptions, ZoneHandler},
};
use ipnet::IpNet;
use tracing::warn;

use super::response::{self, Permissions, Reply, Sections};
use crate::{metrics::DnsMetrics, zones::ZoneStore};

/// The most bytes of records per message of a zone transfer.
const TRANSFER_MESSAGE_BYTES: usize = 16 * 1024;

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
    pub async fn respond(&self, request: &Request) -> Vec<Vec<u8>> {
        let (responses, rcode) = self.responses(request).await;
        if let Some(rcode) = rcode {
            self.metrics.responses(rcode, 1);
        }
        responses
    }

    async fn responses(&self, request: &Request) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
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
        let zones = self.zones.load();
        match response::reply(&zones, query, tcp, permissions) {
            Reply::Error(rcode) => error(request, rcode),
            Reply::Transfer(records) => transfer(request, query, &records),
            Reply::Zone(zone) => match zone.search(request, LookupOptions::default()).await {
                (LookupControlFlow::Break(Ok(AuthLookup::Response(answer))), _) => {
                    let limit = if protocol == Protocol::Udp {
                        response::udp_limit(request.edns.as_ref())
                    } else {
                        u16::MAX
                    };
                    let metadata = response::metadata_for(
                        &request.metadata,
                        answer.metadata.response_code,
                        answer.metadata.authoritative,
                    );
                    let edns = response::response_edns(request.edns.as_ref());
                    let (bytes, fit) =
                        response::encode_answer(metadata, query, &answer, edns.as_ref(), limit);
                    self.metrics.response_size(bytes.len());
                    if fit.truncated() {
                        self.metrics.truncated(1);
                    }
                    (vec![bytes], Some(answer.metadata.response_code))
                }
                (LookupControlFlow::Break(Err(LookupError::ResponseCode(rcode))), _) => {
                    error(request, rcode)
                }
                (other, _) => {
                    warn!(zone = %zone.origin(), result = %other, "unexpected zone lookup result");
                    error(request, ResponseCode::ServFail)
                }
            },
        }
    }
}

/// An error response: the question echoed, empty sections.
fn error(request: &Request, rcode: ResponseCode) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    let edns = response::response_edns(request.edns.as_ref());
    let questions: Vec<&Query> = request
        .queries
        .queries()
        .iter()
        .map(|query| query.original())
        .collect();
    let bytes = response::encode(
        &metadata,
        &questions,
        Sections::default(),
        edns.as_ref(),
        u16::MAX,
    );
    (bytes.into_iter().collect(), Some(rcode))
}

/// A zone transfer as a sequence of messages (RFC 5936 §2.2), each holding as many records
/// as fit in [`TRANSFER_MESSAGE_BYTES`].
fn transfer(
    request: &Request,
    query: &Query,
    records: &[Record],
) -> (Vec<Vec<u8>>, Option<ResponseCode>) {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.authoritative = true;
    let messages = transfer_chunks(records)
        .into_iter()
        .filter_map(|chunk| {
            let sections = Sections {
                answers: chunk,
                ..Sections::default()
            };
            response::encode(&metadata, &[query], sections, None, u16::MAX)
        })
        .collect();
    (messages, Some(ResponseCode::NoError))
}

/// Splits records into runs of at most [`TRANSFER_MESSAGE_BYTES`] (by uncompressed size).
fn transfer_chunks(records: &[Record]) -> Vec<&[Record]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (at, record) in records.iter().enumerate() {
        let len = record_len(record);
        if at > start && size + len > TRANSFER_MESSAGE_BYTES {
            chunks.push(&records[start..at]);
            start = at;
            size = 0;
        }
        size += len;
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

fn record_len(record: &Record) -> usize {
    use hickory_proto::serialize::binary::BinEncodable;
    record.to_bytes().map_or(512, |bytes| bytes.len())
}
