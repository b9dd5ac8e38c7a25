//! The hickory-server request handler: checks the request, asks [`super::response`] what to
//! answer, sizes it for the transport, and sends it.

use std::{iter, sync::Arc};

use async_trait::async_trait;
use hickory_proto::{
    op::{Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode},
    rr::Record,
    serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding},
};
use hickory_server::{
    net::{runtime::Time, xfer::Protocol},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::{
        AuthLookup, LookupControlFlow, LookupError, LookupOptions, MessageResponseBuilder, Queries,
        ZoneHandler,
    },
};
use ipnet::IpNet;
use tracing::{debug, warn};

use super::response::{self, Fit, Permissions, Reply};
use crate::{metrics::DnsMetrics, zones::ZoneStore};

/// The most bytes of records per message of a zone transfer.
const TRANSFER_MESSAGE_BYTES: usize = 16 * 1024;

/// Why a request got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unanswered {
    /// The request is itself a response.
    IsResponse,
    /// The response could not be sent.
    SendFailed,
}

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

    async fn answer<R: ResponseHandler>(
        &self,
        request: &Request,
        handle: R,
    ) -> Result<ResponseInfo, Unanswered> {
        let metadata = &request.metadata;
        if metadata.message_type == MessageType::Response {
            // Never answer an answer (RUSTSEC-2023-0041); the listeners drop these first.
            return Err(Unanswered::IsResponse);
        }
        if metadata.op_code != OpCode::Query {
            return send_error(request, ResponseCode::NotImp, handle).await;
        }
        let [query] = request.queries.queries() else {
            return send_error(request, ResponseCode::FormErr, handle).await;
        };
        if request.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
            return send_error(request, ResponseCode::BADVERS, handle).await;
        }
        let query = query.original();
        self.metrics.query(query.query_type(), request.protocol());
        let tcp = request.protocol() != Protocol::Udp;
        let permissions = Permissions {
            transfer: self.transfer_acl.allows(request.src().ip()),
        };
        let zones = self.zones.load();
        match response::reply(&zones, query, tcp, permissions) {
            Reply::Error(rcode) => send_error(request, rcode, handle).await,
            Reply::Transfer(records) => send_transfer(request, &records, handle).await,
            Reply::Zone(zone) => match zone.search(request, LookupOptions::default()).await {
                (LookupControlFlow::Break(Ok(AuthLookup::Response(answer))), _) => {
                    self.send_answer(request, query, &answer, handle).await
                }
                (LookupControlFlow::Break(Err(LookupError::ResponseCode(rcode))), _) => {
                    send_error(request, rcode, handle).await
                }
                (other, _) => {
                    warn!(zone = %zone.origin(), result = %other, "unexpected zone lookup result");
                    send_error(request, ResponseCode::ServFail, handle).await
                }
            },
        }
    }

    /// Sends a zone's answer, sized for the transport.
    async fn send_answer<R: ResponseHandler>(
        &self,
        request: &Request,
        query: &Query,
        answer: &Message,
        mut handle: R,
    ) -> Result<ResponseInfo, Unanswered> {
        let mut metadata = response::metadata_for(
            &request.metadata,
            answer.metadata.response_code,
            answer.metadata.authoritative,
        );
        let edns = response::response_edns(request.edns.as_ref());
        let limit = if request.protocol() == Protocol::Udp {
            response::udp_limit(request.edns.as_ref())
        } else {
            u16::MAX
        };
        let queries = [query.clone()];
        let (fit, size) = response::fit(&metadata, &queries, answer, edns.as_ref(), limit);
        self.metrics.response_size(size);
        let (answers, authority, additionals): (&[Record], &[Record], &[Record]) = match fit {
            Fit::Whole => (&answer.answers, &answer.authorities, &answer.additionals),
            Fit::WithoutAdditionals { truncated } => {
                metadata.truncation = truncated;
                (&answer.answers, &answer.authorities, &[])
            }
            Fit::Truncated => {
                metadata.truncation = true;
                (&[], &[], &[])
            }
        };
        if metadata.truncation {
            self.metrics.truncated();
        }
        let echoed = echoed_queries(&request.queries);
        let queries = echoed.as_ref().unwrap_or(&request.queries);
        let message = MessageResponseBuilder::new(queries, edns.as_ref()).build(
            metadata,
            answers.iter(),
            authority.iter(),
            iter::empty(),
            additionals.iter(),
        );
        handle
            .send_response(message)
            .await
            .map_err(|_| Unanswered::SendFailed)
    }
}

#[async_trait]
impl RequestHandler for QueryHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        match self.answer(request, response_handle).await {
            Ok(info) => {
                self.metrics.response(&info);
                info
            }
            Err(reason) => {
                debug!(src = %request.src(), ?reason, "no response sent");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// Sends an error response: the question echoed, empty sections.
async fn send_error<R: ResponseHandler>(
    request: &Request,
    rcode: ResponseCode,
    mut handle: R,
) -> Result<ResponseInfo, Unanswered> {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    let mut edns = response::response_edns(request.edns.as_ref());
    if let Some(edns) = &mut edns {
        edns.set_rcode_high(rcode.high());
    }
    let echoed = echoed_queries(&request.queries);
    let queries = echoed.as_ref().unwrap_or(&request.queries);
    let message = MessageResponseBuilder::new(queries, edns.as_ref()).build(
        metadata,
        iter::empty(),
        iter::empty(),
        iter::empty(),
        iter::empty(),
    );
    handle
        .send_response(message)
        .await
        .map_err(|_| Unanswered::SendFailed)
}

/// Sends a zone transfer as a sequence of messages (RFC 5936 §2.2), each holding as many
/// records as fit in [`TRANSFER_MESSAGE_BYTES`].
async fn send_transfer<R: ResponseHandler>(
    request: &Request,
    records: &[Record],
    mut handle: R,
) -> Result<ResponseInfo, Unanswered> {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.authoritative = true;
    let mut last = None;
    let echoed = echoed_queries(&request.queries);
    let queries = echoed.as_ref().unwrap_or(&request.queries);
    for chunk in transfer_chunks(records) {
        let message = MessageResponseBuilder::new(queries, None).build(
            metadata,
            chunk.iter(),
            iter::empty(),
            iter::empty(),
            iter::empty(),
        );
        last = Some(
            handle
                .send_response(message)
                .await
                .map_err(|_| Unanswered::SendFailed)?,
        );
    }
    last.ok_or(Unanswered::SendFailed)
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

/// The question to echo in a response. hickory-server copies the request's question bytes
/// as they came; if they hold a compression pointer, it points into the request and means
/// something else in the response. Such a question is re-encoded without compression.
fn echoed_queries(queries: &Queries) -> Option<Queries> {
    if !has_pointer(queries.as_bytes()) {
        return None;
    }
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for query in queries.queries() {
        query.original().emit(&mut encoder).ok()?;
    }
    Queries::read(&mut BinDecoder::new(&bytes), queries.len()).ok()
}

/// True if wire-format questions use a compression pointer.
fn has_pointer(mut questions: &[u8]) -> bool {
    while let Some((&len, rest)) = questions.split_first() {
        match len {
            0 => questions = rest.get(4..).unwrap_or_default(),
            len if len & 0xC0 != 0 => return true,
            len => questions = rest.get(usize::from(len)..).unwrap_or_default(),
        }
    }
    false
}
