//! Answers precomputed in wire form when a zone version is built: for every name of the
//! zone, the whole response to each type it holds. ANY is answered by the first RRset
//! (RFC 8482), so it shares that type's template; at a CNAME, A, AAAA and HTTPS are
//! precomputed too (the chain is followed for them). Every other question — no data of the
//! type, names that do not exist — is looked up in the index. A query for one of those
//! names and types is answered by copying its template and patching the ID, two header
//! flags, the question (the client's case and type) and the EDNS record.
//!
//! Each template is exactly what [`response::encode_answer`] gives the canonical query
//! (ID 0, no flags, lowercase question, no EDNS); [`super::answer`] relies on that, and a
//! test compares the two paths byte for byte.

use std::collections::HashMap;

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
    serialize::binary::BinEncodable,
};

use crate::{serve::response, zones::ServedZone};

/// Types precomputed at a CNAME besides the CNAME itself: the chain is followed for them.
const CHAINED_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::HTTPS];

/// The precomputed answers of one zone version.
#[derive(Debug, Default)]
pub struct AnswerTemplates {
    names: HashMap<Box<[u8]>, NameTemplates>,
}

/// The answers for one name, by type code: the RRsets it holds in type order, then the
/// types chased through its CNAME.
type NameTemplates = Box<[(u16, Box<[u8]>)]>;

impl AnswerTemplates {
    /// Precomputes the answers for every name of `zone`.
    pub fn build(zone: &ServedZone) -> Self {
        let names = zone
            .index
            .nodes()
            .filter(|(_, node)| !node.is_empty())
            .filter_map(|(name, node)| {
                let key = name.to_bytes().ok()?.into_boxed_slice();
                let chained = node.rrset(RecordType::CNAME).is_some();
                let types = node
                    .rrsets
                    .keys()
                    .map(|&code| RecordType::from(code))
                    .chain(CHAINED_TYPES.into_iter().filter(|_| chained));
                let mut templates: Vec<(u16, Box<[u8]>)> = Vec::new();
                for qtype in types {
                    let code = u16::from(qtype);
                    if templates.iter().all(|(held, _)| *held != code) {
                        templates.push((code, template(zone, name, qtype)?));
                    }
                }
                Some((key, templates.into_boxed_slice()))
            })
            .collect();
        Self { names }
    }

    /// The template for a lowercase wire-form name and a type, if there is one.
    pub fn get(&self, lowercase_name: &[u8], qtype: u16) -> Option<&[u8]> {
        let templates = self.names.get(lowercase_name)?;
        let found = if qtype == u16::from(RecordType::ANY) {
            // RFC 8482: the first RRset (in type order, which the templates keep) stands
            // for all.
            templates.first()
        } else {
            templates.iter().find(|(held, _)| *held == qtype)
        };
        found.map(|(_, bytes)| &**bytes)
    }

    /// The number of names with templates.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True if no name has a template.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The encoded answer to the canonical query for `name`/`qtype`.
fn template(zone: &ServedZone, name: &Name, qtype: RecordType) -> Option<Box<[u8]>> {
    let answer = zone.answer_message(name, qtype).ok()?;
    let request = Message::new(0, MessageType::Query, OpCode::Query).metadata;
    let metadata = response::metadata_for(
        &request,
        answer.metadata.response_code,
        answer.metadata.authoritative,
    );
    let query = Query::query(name.clone(), qtype);
    let (bytes, _) = response::encode_answer(metadata, &query, &answer, None, u16::MAX);
    Some(bytes.into_boxed_slice())
}
