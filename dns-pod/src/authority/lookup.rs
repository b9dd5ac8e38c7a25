//! Answering a question from a [`ZoneIndex`].

use std::collections::HashSet;

use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::SOA};

use super::{Node, Rrset, ZoneIndex};

/// The longest CNAME chain followed inside the zone.
const MAX_CHAIN: usize = 8;

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

/// The sections of an answer, before it is put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The response code.
    pub rcode: Rcode,
    /// The AA bit: set for data of this zone, clear for referrals and refusals.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additionals: Vec<Record>,
}

impl Answer {
    fn new(rcode: Rcode, authoritative: bool) -> Self {
        Self {
            rcode,
            authoritative,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// What one name resolves to.
enum Step<'a> {
    /// The RRset to answer with (owner: the name asked); `cname` if it is a CNAME to
    /// follow.
    Data { rrset: Rrset<'a>, cname: bool },
    /// The name exists, but not with this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The name is at or below a zone cut (its lowercase name and node).
    Delegation(Name, Node<'a>),
}

impl ZoneIndex {
    /// Answers `qname`/`qtype` (RFC 1034 §4.3.2).
    pub fn lookup(&self, qname: &Name, qtype: RecordType) -> Answer {
        if !self.origin().zone_of(qname) {
            return Answer::new(Rcode::Refused, false);
        }
        let mut answer = Answer::new(Rcode::NoError, true);
        let mut name = qname.clone();
        let mut seen = HashSet::new();
        for _ in 0..MAX_CHAIN {
            seen.insert(name.to_lowercase());
            match self.resolve(&name, qtype) {
                Step::Data { rrset, cname } => {
                    let records = rrset.records_as(&name);
                    let target = match (cname, records.first().map(|r| &r.data)) {
                        (true, Some(RData::CNAME(target))) => Some(target.0.clone()),
                        _ => None,
                    };
                    answer.answers.extend(records);
                    let Some(target) = target else {
                        return answer;
                    };
                    // Follow the chain while it stays in the zone and does not loop.
                    if !self.origin().zone_of(&target) || seen.contains(&target.to_lowercase()) {
                        return answer;
                    }
                    name = target;
                }
                Step::NoData => {
                    answer.authority.push(self.negative_soa());
                    return answer;
                }
                Step::NxDomain => {
                    answer.rcode = Rcode::NxDomain;
                    answer.authority.push(self.negative_soa());
                    return answer;
                }
                Step::Delegation(cut_name, cut) => {
                    // A referral: not authoritative unless it ends a chain of our own data.
                    answer.authoritative = !answer.answers.is_empty();
                    let ns = cut
                        .rrset(RecordType::NS)
                        .map(|rrset| rrset.records(&cut_name))
                        .unwrap_or_default();
                    answer.additionals.extend(self.glue(&ns));
                    answer.authority.extend(ns);
                    return answer;
                }
            }
        }
        answer
    }

    fn resolve(&self, name: &Name, qtype: RecordType) -> Step<'_> {
        let key = name.to_lowercase();
        if let Some((cut_name, cut)) = self.zone_cut(&key, qtype) {
            return Step::Delegation(cut_name, cut);
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
    fn zone_cut(&self, key: &Name, qtype: RecordType) -> Option<(Name, Node<'_>)> {
        let apex_labels = self.origin().num_labels();
        (apex_labels + 1..=key.num_labels()).find_map(|labels| {
            let candidate = key.trim_to(labels as usize);
            if candidate == *key && qtype == RecordType::DS {
                return None;
            }
            let node = self
                .node(&candidate)
                .filter(|node| node.rrset(RecordType::NS).is_some())?;
            Some((candidate, node))
        })
    }

    /// Glue: the in-zone addresses of a delegation's name servers.
    fn glue<'a>(&'a self, ns: &'a [Record]) -> impl Iterator<Item = Record> + 'a {
        ns.iter()
            .filter_map(|record| match &record.data {
                RData::NS(target) if self.origin().zone_of(&target.0) => {
                    let key = target.0.to_lowercase();
                    let node = self.node(&key)?;
                    Some((key, node))
                }
                _ => None,
            })
            .flat_map(|(owner, node)| {
                [RecordType::A, RecordType::AAAA]
                    .into_iter()
                    .filter_map(|t| node.rrset(t))
                    .flat_map(|rrset| rrset.records(&owner))
                    .collect::<Vec<_>>()
            })
    }

    /// The negative answer of this zone (NXDOMAIN, or no data with [`Rcode::NoError`]):
    /// the same for every name it is given for, whatever the name.
    pub fn negative(&self, rcode: Rcode) -> Answer {
        let mut answer = Answer::new(rcode, true);
        answer.authority.push(self.negative_soa());
        answer
    }

    /// The SOA for a negative answer, with TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa().clone();
        if let RData::SOA(SOA { minimum, .. }) = &soa.data {
            soa.ttl = soa.ttl.min(*minimum);
        }
        soa
    }
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
