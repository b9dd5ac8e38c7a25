//! One zone version as an immutable index.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::SOA};

/// Every RRset at one name; empty for an empty non-terminal.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// The owner, with the case it was loaded with.
    pub name: Option<Name>,
    /// Type code → the records of that RRset.
    pub rrsets: BTreeMap<u16, Vec<Record>>,
}

impl Node {
    /// The RRset of a type.
    pub fn rrset(&self, record_type: RecordType) -> Option<&[Record]> {
        self.rrsets.get(&u16::from(record_type)).map(Vec::as_slice)
    }

    /// True for an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// A zone that cannot be indexed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// There is no SOA at the apex.
    #[error("the zone {0} has no SOA record at its apex")]
    MissingSoa(String),
    /// A record lies outside the zone.
    #[error("the record {owner} {record_type} lies outside the zone {origin}")]
    OutOfZone {
        /// The record's owner.
        owner: String,
        /// Its type.
        record_type: String,
        /// The zone.
        origin: String,
    },
}

/// One zone version, indexed by lowercased owner name in canonical order.
#[derive(Clone, Debug)]
pub struct ZoneIndex {
    origin: Name,
    soa: Record,
    nodes: BTreeMap<Name, Node>,
}

impl ZoneIndex {
    /// Indexes the records of a zone. Every ancestor of an owner, up to the apex, gets a
    /// node, empty if it holds no data (an empty non-terminal).
    pub fn build(
        origin: &Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, BuildError> {
        let origin_key = origin.to_lowercase();
        let mut nodes: BTreeMap<Name, Node> = BTreeMap::new();
        for record in records {
            let owner = record.name.clone();
            if !origin.zone_of(&owner) {
                return Err(BuildError::OutOfZone {
                    owner: owner.to_string(),
                    record_type: record.record_type().to_string(),
                    origin: origin.to_string(),
                });
            }
            let key = owner.to_lowercase();
            let node = nodes.entry(key.clone()).or_default();
            node.name.get_or_insert_with(|| owner.clone());
            let rrset = node
                .rrsets
                .entry(u16::from(record.record_type()))
                .or_default();
            if !rrset.iter().any(|r| r.data == record.data) {
                rrset.push(record);
            }
            // Empty non-terminals between the owner and the apex.
            let mut ancestor = key.base_name();
            while ancestor.num_labels() >= origin_key.num_labels() && ancestor != origin_key {
                nodes.entry(ancestor.clone()).or_default();
                ancestor = ancestor.base_name();
            }
        }
        let soa = nodes
            .get(&origin_key)
            .and_then(|apex| apex.rrset(RecordType::SOA))
            .and_then(|set| set.first())
            .cloned()
            .ok_or_else(|| BuildError::MissingSoa(origin.to_string()))?;
        Ok(Self {
            origin: origin.clone(),
            soa,
            nodes,
        })
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(SOA { serial, .. }) => *serial,
            _ => 0,
        }
    }

    /// The node at a (lowercased) name.
    pub fn node(&self, lowercase_name: &Name) -> Option<&Node> {
        self.nodes.get(lowercase_name)
    }

    /// Every name (lowercase) and its node, in canonical order.
    pub fn nodes(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.nodes.iter()
    }

    /// Every record of the zone, in canonical name order (the index holds each once).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.nodes
            .values()
            .flat_map(|node| node.rrsets.values().flatten())
    }

    /// The number of records.
    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .map(|node| node.rrsets.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// The number of names, empty non-terminals included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the zone has no names (never: the apex holds the SOA).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
