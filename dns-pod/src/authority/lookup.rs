//! Answering a question from a [`ZoneIndex`]: which RRsets go in which section, under which
//! owner. The answer points into the index; nothing is decoded (the encoder writes the
//! packed records as they are).

use hickory_proto::{
    rr::{Name, Record, RecordType},
    serialize::binary::{BinDecodable, BinEncodable},
};

use super::{Node, Rrset, ZoneIndex};

/// The longest CNAME chain followed inside the zone.
const MAX_CHAIN: usize = 8;
/// The bytes of a SOA's data after its two names: serial, refresh, retry, expire, minimum.
const SOA_NUMBERS: usize = 20;

/// The response code of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// The name exists (possibly without data of the type).
    NoError,
    /// The name does not exist.
    NxDomain,
    /// The name is in no zone served here.
    Refused,
}

/// Whose name an RRset of an answer is written under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'z> {
    /// The name asked, as given to [`ZoneIndex::lookup`] ([`Answer::asked`]).
    Asked,
    /// A name in wire form (a CNAME target the chain reached), for every record.
    Name(&'z [u8]),
    /// The node's own name (lowercase wire form), each record under the spelling it was
    /// loaded with.
    AsLoaded(&'z [u8]),
}

/// One RRset of an answer, as the index holds it.
#[derive(Clone, Copy, Debug)]
pub struct AnswerRrset<'z> {
    /// Whose name it is written under.
    pub owner: Owner<'z>,
    /// The records.
    pub rrset: Rrset<'z>,
    /// A TTL that replaces the records' own (the negative-answer SOA's, RFC 2308 §3).
    pub ttl: Option<u32>,
    /// Only the first record is written (the SOA of a negative answer).
    pub first_only: bool,
}

impl<'z> AnswerRrset<'z> {
    fn of(owner: Owner<'z>, rrset: Rrset<'z>) -> Self {
        Self {
            owner,
            rrset,
            ttl: None,
            first_only: false,
        }
    }
}

/// The sections of an answer, before it is put on the wire: RRsets of the index.
#[derive(Clone, Debug)]
pub struct Answer<'z> {
    /// The response code.
    pub rcode: Rcode,
    /// The AA bit: set for data of this zone, clear for referrals and refusals.
    pub authoritative: bool,
    /// The name asked, in wire form and in the case given ([`Owner::Asked`]).
    pub asked: Vec<u8>,
    /// The answer section.
    pub answers: Vec<AnswerRrset<'z>>,
    /// The authority section.
    pub authority: Vec<AnswerRrset<'z>>,
    /// The additional section.
    pub additionals: Vec<AnswerRrset<'z>>,
}

/// An [`Answer`] decoded into hickory records (for hickory-server's `ZoneHandler` and for
/// tests; serving writes the packed records instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedAnswer {
    /// The response code.
    pub rcode: Rcode,
    /// The AA bit.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additionals: Vec<Record>,
}

impl<'z> Answer<'z> {
    fn new(rcode: Rcode, authoritative: bool, asked: Vec<u8>) -> Self {
        Self {
            rcode,
            authoritative,
            asked,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// The wire-form name `owner` stands for, for a record spelled `spelled` when loaded.
    pub fn owner_name<'a>(&'a self, owner: Owner<'a>, spelled: Option<&'a [u8]>) -> &'a [u8] {
        match owner {
            Owner::Asked => &self.asked,
            Owner::Name(name) => name,
            Owner::AsLoaded(node) => spelled.unwrap_or(node),
        }
    }

    /// The answer as hickory records.
    pub fn decode(&self) -> DecodedAnswer {
        let section = |rrsets: &[AnswerRrset<'_>]| -> Vec<Record> {
            rrsets
                .iter()
                .flat_map(|part| {
                    let mut records = part.rrset.decode(|spelled| {
                        Name::from_bytes(self.owner_name(part.owner, spelled)).unwrap_or_default()
                    });
                    if part.first_only {
                        records.truncate(1);
                    }
                    if let Some(ttl) = part.ttl {
                        records.iter_mut().for_each(|record| record.ttl = ttl);
                    }
                    records
                })
                .collect()
        };
        DecodedAnswer {
            rcode: self.rcode,
            authoritative: self.authoritative,
            answers: section(&self.answers),
            authority: section(&self.authority),
            additionals: section(&self.additionals),
        }
    }
}

/// What one name resolves to.
enum Step<'a> {
    /// The RRset to answer with (owner: the name being resolved); `cname` if it is a CNAME
    /// to follow.
    Data { rrset: Rrset<'a>, cname: bool },
    /// The name exists, but not with this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The name is at or below a zone cut (its node).
    Delegation(Node<'a>),
}

impl ZoneIndex {
    /// Answers `qname`/`qtype` (RFC 1034 §4.3.2). RRsets at the name asked (and at a
    /// wildcard standing for it) are written under the name as given.
    pub fn lookup(&self, qname: &Name, qtype: RecordType) -> Answer<'_> {
        let asked = qname.to_bytes().unwrap_or_default();
        if !self.origin().zone_of(qname) {
            return Answer::new(Rcode::Refused, false, asked);
        }
        let mut answer = Answer::new(Rcode::NoError, true, asked);
        let mut name = qname.clone();
        let mut owner = Owner::Asked;
        let mut seen: Vec<Name> = Vec::new();
        for _ in 0..MAX_CHAIN {
            seen.push(name.to_lowercase());
            match self.resolve(&name, qtype) {
                Step::Data { rrset, cname } => {
                    answer.answers.push(AnswerRrset::of(owner, rrset));
                    let target = rrset.packed().next().map(|record| record.data);
                    let Some(target) = target.filter(|_| cname) else {
                        return answer;
                    };
                    let Ok(next) = Name::from_bytes(target) else {
                        return answer;
                    };
                    // Follow the chain while it stays in the zone and does not loop.
                    if !self.origin().zone_of(&next) || seen.contains(&next.to_lowercase()) {
                        return answer;
                    }
                    name = next;
                    owner = Owner::Name(target);
                }
                Step::NoData => {
                    answer.authority.extend(self.negative_soa());
                    return answer;
                }
                Step::NxDomain => {
                    answer.rcode = Rcode::NxDomain;
                    answer.authority.extend(self.negative_soa());
                    return answer;
                }
                Step::Delegation(cut) => {
                    // A referral: not authoritative unless it ends a chain of our own data.
                    answer.authoritative = !answer.answers.is_empty();
                    if let Some(ns) = cut.rrset(RecordType::NS) {
                        answer
                            .authority
                            .push(AnswerRrset::of(Owner::AsLoaded(cut.wire_name()), ns));
                        answer.additionals.extend(self.glue(ns));
                    }
                    return answer;
                }
            }
        }
        answer
    }

    fn resolve(&self, name: &Name, qtype: RecordType) -> Step<'_> {
        let key = name.to_lowercase();
        if let Some(cut) = self.zone_cut(&key, qtype) {
            return Step::Delegation(cut);
        }
        if let Some(node) = self.node(&key) {
            return answer_from(node, qtype);
        }
        // The name does not exist: a wildcard at the closest encloser may stand for it.
        let mut encloser = key.base_name();
        while self.node(&encloser).is_none() && encloser.num_labels() > self.origin().num_labels() {
            encloser = encloser.base_name();
        }
        let wildcard = Name::from_labels([b"*".as_slice()])
            .and_then(|star| star.append_domain(&encloser))
            .ok()
            .and_then(|w| self.node(&w));
        match wildcard {
            Some(node) => answer_from(node, qtype),
            None => Step::NxDomain,
        }
    }

    /// The delegation at or above `key` (below the apex), if any. A DS question at the cut
    /// itself is the parent's to answer.
    fn zone_cut(&self, key: &Name, qtype: RecordType) -> Option<Node<'_>> {
        let apex_labels = self.origin().num_labels();
        (apex_labels + 1..=key.num_labels()).find_map(|labels| {
            let candidate = key.trim_to(labels as usize);
            if candidate == *key && qtype == RecordType::DS {
                return None;
            }
            self.node(&candidate)
                .filter(|node| node.rrset(RecordType::NS).is_some())
        })
    }

    /// Glue: the in-zone addresses of a delegation's name servers.
    fn glue<'a>(&'a self, ns: Rrset<'a>) -> impl Iterator<Item = AnswerRrset<'a>> + 'a {
        ns.packed()
            .filter_map(|record| {
                let target = Name::from_bytes(record.data).ok()?;
                if !self.origin().zone_of(&target) {
                    return None;
                }
                self.node(&target)
            })
            .flat_map(|node| {
                [RecordType::A, RecordType::AAAA]
                    .into_iter()
                    .filter_map(move |t| node.rrset(t))
                    .map(move |rrset| AnswerRrset::of(Owner::AsLoaded(node.wire_name()), rrset))
            })
    }

    /// The negative answer of this zone (NXDOMAIN, or no data with [`Rcode::NoError`]):
    /// the same for every name it is given for, whatever the name.
    pub fn negative(&self, rcode: Rcode) -> Answer<'_> {
        let mut answer = Answer::new(rcode, true, Vec::new());
        answer.authority.extend(self.negative_soa());
        answer
    }

    /// The SOA for a negative answer, with TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    fn negative_soa(&self) -> Option<AnswerRrset<'_>> {
        let apex = self.apex();
        let rrset = apex.rrset(RecordType::SOA)?;
        let soa = rrset.packed().next()?;
        let minimum = soa_minimum(soa.data)?;
        Some(AnswerRrset {
            owner: Owner::AsLoaded(apex.wire_name()),
            rrset,
            ttl: Some(soa.ttl.min(minimum)),
            first_only: true,
        })
    }
}

/// The MINIMUM field of a SOA's data in wire form (it ends the data).
fn soa_minimum(data: &[u8]) -> Option<u32> {
    let at = data.len().checked_sub(4)?;
    // Two names and five numbers: at least the root label twice.
    (data.len() >= 2 + SOA_NUMBERS).then_some(())?;
    Some(u32::from_be_bytes(data.get(at..)?.try_into().ok()?))
}

fn answer_from(node: Node<'_>, qtype: RecordType) -> Step<'_> {
    if node.is_empty() {
        return Step::NoData;
    }
    // A CNAME answers every type but itself and ANY, which take the CNAME as it is.
    if !matches!(qtype, RecordType::CNAME | RecordType::ANY)
        && let Some(rrset) = node.rrset(RecordType::CNAME)
    {
        return Step::Data { rrset, cname: true };
    }
    let rrset = if qtype == RecordType::ANY {
        // RFC 8482: one RRset stands for all.
        node.first_rrset()
    } else {
        node.rrset(qtype)
    };
    match rrset {
        Some(rrset) => Step::Data {
            rrset,
            cname: false,
        },
        None => Step::NoData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soa_minimum_is_read_from_the_end_of_its_data() {
        let mut data = vec![0, 0];
        data.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 1, 44]);
        assert_eq!(soa_minimum(&data), Some(300));
        assert_eq!(soa_minimum(&data[..10]), None);
    }
}
