//! Raw request bytes in, response bytes out: the checks a listener makes before the
//! handler (too short, a response, unparsable), then the general handler. Both listeners
//! fall back to this, and tests feed it arbitrary bytes.

use std::net::SocketAddr;

use hickory_proto::{
    op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode},
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable},
};
use hickory_server::{net::xfer::Protocol, server::Request};

use super::QueryHandler;

/// Answers one raw message. Returns the encoded responses: none for a message that must
/// not be answered (shorter than a header, or itself a response), one FORMERR for an
/// unparsable query, several for a zone transfer.
pub fn respond(
    handler: &QueryHandler,
    bytes: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Vec<Vec<u8>> {
    let Ok(header) = Header::read(&mut BinDecoder::new(&bytes)) else {
        return Vec::new();
    };
    if header.metadata.message_type == MessageType::Response {
        return Vec::new();
    }
    match Request::from_bytes(bytes, src, protocol) {
        Ok(request) => handler.respond(&request),
        Err(_) => vec![format_error(&header.metadata)],
    }
}

/// A FORMERR with the request's ID and nothing else.
fn format_error(request: &Metadata) -> Vec<u8> {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::FormErr;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    header.to_bytes().unwrap_or_default()
}
