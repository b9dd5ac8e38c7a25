//! Each served zone version as a hickory-server [`ZoneHandler`].
//!
//! A lookup answers with the complete response of RFC 1034 §4.3.2 as
//! [`AuthLookup::Response`]: the response code, the AA bit and every section are the
//! zone's own (a referral is not authoritative, a negative answer carries the RFC 2308
//! SOA), so whoever serves it sends exactly what NSD and Knot would. The request handler
//! serves every query through [`ZoneHandler::search`]; the zones also plug into hickory's
//! `Catalog`.
//!
//! Transfers are not decided here: the zone knows no clients. [`ZoneHandler::axfr_policy`]
//! is `Deny`, and the request handler checks its transfer ACL before it asks the zone for
//! [`ServedZone::transfer_records`].

use std::iter;

use async_trait::async_trait;
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{LowerName, Name, Record, RecordType, TSigResponseContext},
};
use hickory_server::{
    server::{Request, RequestInfo},
    zone_handler::{
        AuthLookup, AxfrPolicy, LookupControlFlow, LookupError, LookupOptions, ZoneHandler,
        ZoneType,
    },
};

use crate::{
    authority::{Answer, Rcode},
    zones::ServedZone,
};

impl ServedZone {
    /// The response to `qname`/`qtype` as a message (ID 0, no question; the caller adds
    /// those), or REFUSED for a name outside the zone.
    pub fn answer_message(&self, qname: &Name, qtype: RecordType) -> Result<Message, LookupError> {
        Self::message_for(self.index.lookup(qname, qtype))
    }

    /// An answer of the index as a message (ID 0, no question), or REFUSED.
    pub fn message_for(answer: Answer) -> Result<Message, LookupError> {
        let rcode = match answer.rcode {
            Rcode::NoError => ResponseCode::NoError,
            Rcode::NxDomain => ResponseCode::NXDomain,
            Rcode::Refused => return Err(LookupError::ResponseCode(ResponseCode::Refused)),
        };
        let mut message = Message::new(0, MessageType::Response, OpCode::Query);
        message.metadata.response_code = rcode;
        message.metadata.authoritative = answer.authoritative;
        message.answers = answer.answers;
        message.authorities = answer.authority;
        message.additionals = answer.additionals;
        Ok(message)
    }

    /// Every record for a zone transfer: the SOA first and last (RFC 5936).
    pub fn transfer_records(&self) -> Vec<Record> {
        let soa = self.index.soa().clone();
        iter::once(soa.clone())
            .chain(
                self.index
                    .records()
                    .filter(|r| r.record_type() != RecordType::SOA),
            )
            .chain(iter::once(soa))
            .collect()
    }

    fn flow(&self, qname: &Name, qtype: RecordType) -> LookupControlFlow<AuthLookup> {
        LookupControlFlow::Break(self.answer_message(qname, qtype).map(AuthLookup::Response))
    }
}

#[async_trait]
impl ZoneHandler for ServedZone {
    fn zone_type(&self) -> ZoneType {
        ZoneType::Primary
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        AxfrPolicy::Deny
    }

    fn origin(&self) -> &LowerName {
        self.lower_origin()
    }

    async fn lookup(
        &self,
        name: &LowerName,
        rtype: RecordType,
        _request_info: Option<&RequestInfo<'_>>,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        self.flow(&Name::from(name), rtype)
    }

    async fn search(
        &self,
        request: &Request,
        _lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        let flow = match request.request_info() {
            // Owners come out lowercase; the encoder points them at the question, which
            // shows them in the case the client used.
            Ok(info) => {
                let query = info.query.original();
                self.flow(&query.name().to_lowercase(), query.query_type())
            }
            Err(error) => LookupControlFlow::Break(Err(error)),
        };
        (flow, None)
    }

    async fn nsec_records(
        &self,
        _name: &LowerName,
        _lookup_options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        // Zones are served unsigned: there are no NSEC records.
        LookupControlFlow::Break(Ok(AuthLookup::Empty))
    }
}
