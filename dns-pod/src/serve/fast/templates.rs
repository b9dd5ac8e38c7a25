//! Answers precomputed in wire form when a zone version is built: for every name of the
//! zone, the whole response to each type it holds (and to ANY and CNAME), and one response
//! for every other type. At a CNAME the answer to other types depends on the type (the
//! chain is followed for it), so there the common address types are precomputed and the
//! rest are looked up. A query for one of those names is answered by copying its
//! template and patching the ID, two header flags, the question (the client's case and
//! type) and the EDNS record.
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

/// Types answered differently from an absent type even when the name holds no such RRset.
const SPECIAL_TYPES: [RecordType; 2] = [RecordType::ANY, RecordType::CNAME];
/// Types precomputed at a CNAME, whose chain is followed for the type asked.
const CHAINED_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::HTTPS];

/// The precomputed answers of one zone version.
#[derive(Debug, Default)]
pub struct AnswerTemplates {
    names: HashMap<Box<[u8]>, NameTemplates>,
}

/// The answers for one name.
#[derive(Debug)]
struct NameTemplates {
    /// Answers for particular types, where they differ from `other`.
    by_type: Box<[(u16, Box<[u8]>)]>,
    /// The answer for any other type; none at a CNAME.
    other: Option<Box<[u8]>>,
}

impl AnswerTemplates {
    /// Precomputes the answers for every name of `zone`.
    pub fn build(zone: &ServedZone) -> Self {
        let names = zone
            .index
            .nodes()
            .filter_map(|(name, node)| {
                let key = name.to_bytes().ok()?.into_boxed_slice();
                let chained = node.rrset(RecordType::CNAME).is_some();
                let other = if chained {
                    None
                } else {
                    Some(template(
                        zone,
                        name,
                        absent_type(node.rrsets.keys().copied()),
                    )?)
                };
                let mut types: Vec<RecordType> = node
                    .rrsets
                    .keys()
                    .map(|&code| RecordType::from(code))
                    .chain(SPECIAL_TYPES)
                    .chain(CHAINED_TYPES.into_iter().filter(|_| chained))
                    .collect();
                types.sort_by_key(|qtype| u16::from(*qtype));
                types.dedup();
                let mut by_type: Vec<(u16, Box<[u8]>)> = Vec::with_capacity(types.len());
                for qtype in types {
                    let bytes = template(zone, name, qtype)?;
                    if other.as_ref() != Some(&bytes) {
                        by_type.push((u16::from(qtype), bytes));
                    }
                }
                let by_type = by_type.into_boxed_slice();
                Some((key, NameTemplates { by_type, other }))
            })
            .collect();
        Self { names }
    }

    /// The template for a lowercase wire-form name and a type, if the name is in the zone.
    pub fn get(&self, lowercase_name: &[u8], qtype: u16) -> Option<&[u8]> {
        let name = self.names.get(lowercase_name)?;
        match name.by_type.iter().find(|(code, _)| *code == qtype) {
            Some((_, bytes)) => Some(bytes),
            None => name.other.as_deref(),
        }
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

/// A type code the name does not hold (from the private-use range).
fn absent_type(held: impl Iterator<Item = u16> + Clone) -> RecordType {
    let code = (0xFF00..=u16::MAX)
        .find(|code| !held.clone().any(|held| held == *code))
        .unwrap_or(0xFF00);
    RecordType::from(code)
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
