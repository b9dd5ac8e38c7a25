//! Each served zone version as a hickory-server [`ZoneHandler`], so the zones plug into
//! hickory's `Catalog`. (The pod's own listeners answer through [`crate::serve`], which
//! writes responses straight from the index; the answers are the same.)
//!
//! A lookup answers with the complete response of RFC 1034 §4.3.2 as
//! [`AuthLookup::Response`]: the response code, the AA bit and every section are the
//! zone's own (a referral is not authoritative, a negative answer carries the RFC 2308
//! SOA). Transfers are not decided here: the zone knows no clients, and
//! [`ZoneHandler::axfr_policy`] is `Deny`.

use async_trait::async_trait;
use hickory_proto::{
    op::{Message, MessageType, OpCode},
    rr::{LowerName, Name, RecordType, TSigResponseContext},
};
use hickory_server::{
    server::{Request, RequestInfo},
    zone_handler::{
        AuthLookup, AxfrPolicy, LookupControlFlow, LookupError, LookupOptions, ZoneHandler,
        ZoneType,
    },
};

use crate::{authority::Rcode, encode::response_code, zones::ServedZone};

/// The zone's answer to `qname`/`qtype` as a message (ID 0, no question), or REFUSED for
/// a name outside the zone.
fn answer_message(
    zone: &ServedZone,
    qname: &Name,
    qtype: RecordType,
) -> Result<Message, LookupError> {
    let answer = zone.index.lookup(qname, qtype);
    if answer.rcode == Rcode::Refused {
        return Err(LookupError::ResponseCode(response_code(answer.rcode)));
    }
    let decoded = answer.decode();
    let mut message = Message::new(0, MessageType::Response, OpCode::Query);
    message.metadata.response_code = response_code(decoded.rcode);
    message.metadata.authoritative = decoded.authoritative;
    message.answers = decoded.answers;
    message.authorities = decoded.authority;
    message.additionals = decoded.additionals;
    Ok(message)
}

fn flow(zone: &ServedZone, qname: &Name, qtype: RecordType) -> LookupControlFlow<AuthLookup> {
    LookupControlFlow::Break(answer_message(zone, qname, qtype).map(AuthLookup::Response))
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
        flow(self, &Name::from(name), rtype)
    }

    async fn search(
        &self,
        request: &Request,
        _lookup_options: LookupOptions,
    ) -> (LookupControlFlow<AuthLookup>, Option<TSigResponseContext>) {
        let flow = match request.request_info() {
            Ok(info) => {
                let query = info.query.original();
                flow(self, &query.name().to_lowercase(), query.query_type())
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
