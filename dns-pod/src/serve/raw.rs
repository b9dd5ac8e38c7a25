//! Raw request bytes in, response bytes out: the checks a listener makes before the
//! handler (too short, a response, unparsable), then the handler with a response sink that
//! keeps the encoded messages. The TCP listener serves through this, and tests feed it
//! arbitrary bytes.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use hickory_proto::{
    op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode},
    rr::Record,
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder},
};
use hickory_server::{
    net::{NetError, runtime::TokioTime, xfer::Protocol},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponse,
};

/// Answers one raw message. Returns the encoded responses: none for a message that must
/// not be answered (shorter than a header, or itself a response), one FORMERR for an
/// unparsable query, several for a zone transfer.
pub async fn respond<H: RequestHandler>(
    handler: &H,
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
    let request = match Request::from_bytes(bytes, src, protocol) {
        Ok(request) => request,
        Err(_) => return vec![format_error(&header.metadata)],
    };
    let sink = ResponseSink::default();
    handler
        .handle_request::<_, TokioTime>(&request, sink.clone())
        .await;
    sink.take()
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

/// Keeps the encoded responses the handler sends.
#[derive(Clone, Debug, Default)]
pub struct ResponseSink {
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ResponseSink {
    /// The messages sent so far.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl ResponseHandler for ResponseSink {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        let info = response
            .destructive_emit(&mut encoder)
            .map_err(|error| NetError::from(error.to_string()))?;
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(bytes);
        Ok(info)
    }
}
