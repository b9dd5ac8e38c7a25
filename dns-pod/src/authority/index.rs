//! One zone version as an immutable index.
//!
//! The index keeps each RRset's data in wire form ([`Rrset`]) rather than as hickory
//! `Record`s (272 bytes each before their names), and gives records back on demand. A name
//! is stored once, as its key; its case as loaded is kept beside it only where it differs.

use std::collections::BTreeMap;

use hickory_proto::{
    rr::{DNSClass, Name, RData, Record, RecordType, rdata::SOA},
    serialize::binary::{BinDecoder, BinEncodable, BinEncoder, Restrict},
};

/// Every RRset at one name; none for an empty non-terminal.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// The owner as loaded, if its case differs from the (lowercase) key.
    cased: Option<Box<Name>>,
    /// The RRsets, in type order.
    rrsets: Box<[Rrset]>,
}

/// The records of one type at one name, their data in wire form.
#[derive(Clone, Debug)]
pub struct Rrset {
    record_type: u16,
    dns_class: u16,
    /// For each record: its TTL (4 bytes), its data length (2 bytes) and its data, each
    /// name in it written in full (uncompressed, as loaded).
    records: Box<[u8]>,
}

impl Node {
    /// The RRset of a type.
    pub fn rrset(&self, record_type: RecordType) -> Option<&Rrset> {
        let code = u16::from(record_type);
        self.rrsets.iter().find(|rrset| rrset.record_type == code)
    }

    /// The first RRset in type order (what ANY is answered with, RFC 8482).
    pub fn first_rrset(&self) -> Option<&Rrset> {
        self.rrsets.first()
    }

    /// The types of the RRsets held, in type order.
    pub fn types(&self) -> impl Iterator<Item = RecordType> + '_ {
        self.rrsets
            .iter()
            .map(|rrset| RecordType::from(rrset.record_type))
    }

    /// The RRsets, in type order.
    pub fn rrsets(&self) -> &[Rrset] {
        &self.rrsets
    }

    /// True for an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }

    /// The owner name of its records: as loaded, given the lowercase key.
    pub fn owner(&self, key: &Name) -> Name {
        self.cased.as_deref().unwrap_or(key).clone()
    }
}

impl Rrset {
    /// Its records, with `owner` as their owner.
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        let mut records = Vec::new();
        let mut rest: &[u8] = &self.records;
        while let Some((ttl, data, next)) = split_record(rest) {
            rest = next;
            let mut decoder = BinDecoder::new(data);
            let length = Restrict::new(u16::try_from(data.len()).unwrap_or(u16::MAX));
            // Each entry was written by `RData::emit` when the index was built.
            if let Ok(rdata) = RData::read(&mut decoder, RecordType::from(self.record_type), length)
            {
                let mut record = Record::from_rdata(owner.clone(), ttl, rdata);
                record.dns_class = DNSClass::from(self.dns_class);
                records.push(record);
            }
        }
        records
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        let mut count = 0;
        let mut rest: &[u8] = &self.records;
        while let Some((_, _, next)) = split_record(rest) {
            rest = next;
            count += 1;
        }
        count
    }

    /// True if it holds no record (never: an RRset is made from its records).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Packs the records of one RRset (all of one type and class).
    fn pack(records: &[&Record]) -> Result<Self, BuildError> {
        let first = records.first().ok_or(BuildError::EmptyRrset)?;
        let mut packed = Vec::new();
        for record in records {
            let mut data = Vec::new();
            let mut encoder = BinEncoder::new(&mut data);
            record
                .data
                .emit(&mut encoder)
                .map_err(|error| BuildError::Unencodable {
                    owner: record.name.to_string(),
                    record_type: record.record_type().to_string(),
                    error: error.to_string(),
                })?;
            let length = u16::try_from(data.len()).map_err(|_| BuildError::Unencodable {
                owner: record.name.to_string(),
                record_type: record.record_type().to_string(),
                error: "record data longer than 65535 bytes".into(),
            })?;
            packed.extend_from_slice(&record.ttl.to_be_bytes());
            packed.extend_from_slice(&length.to_be_bytes());
            packed.extend_from_slice(&data);
        }
        Ok(Self {
            record_type: u16::from(first.record_type()),
            dns_class: u16::from(first.dns_class),
            records: packed.into_boxed_slice(),
        })
    }
}

/// The first packed record of `bytes`: its TTL, its data and what follows.
fn split_record(bytes: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let ttl = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let length = usize::from(u16::from_be_bytes(bytes.get(4..6)?.try_into().ok()?));
    let data = bytes.get(6..6 + length)?;
    Some((ttl, data, &bytes[6 + length..]))
}

/// A zone that cannot be indexed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// There is no SOA at the apex.
    #[error("the zone {0} has no SOA record at its apex")]
    MissingSoa(String),
    /// A record's data cannot be put in wire form.
    #[error("the record {owner} {record_type} cannot be encoded: {error}")]
    Unencodable {
        /// The record's owner.
        owner: String,
        /// Its type.
        record_type: String,
        /// Why.
        error: String,
    },
    /// An RRset without records (a bug in the index builder).
    #[error("an RRset without records")]
    EmptyRrset,
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
        let mut records: Vec<Record> = records.into_iter().collect();
        if let Some(outside) = records.iter().find(|r| !origin.zone_of(&r.name)) {
            return Err(BuildError::OutOfZone {
                owner: outside.name.to_string(),
                record_type: outside.record_type().to_string(),
                origin: origin.to_string(),
            });
        }
        // Canonical order, names compared without case; stable, so the first record of
        // a name gives its case.
        records.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| u16::from(a.record_type()).cmp(&u16::from(b.record_type())))
        });
        let soa = records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA && r.name == origin_key)
            .cloned()
            .ok_or_else(|| BuildError::MissingSoa(origin.to_string()))?;
        let mut nodes: BTreeMap<Name, Node> = BTreeMap::new();
        for owned in records.chunk_by(|a, b| a.name == b.name) {
            let owner = &owned[0].name;
            let key = owner.to_lowercase();
            // Empty non-terminals between the owner and the apex (an ancestor with data
            // sorts first, and is kept).
            let mut ancestor = key.base_name();
            while ancestor.num_labels() >= origin_key.num_labels() && ancestor != origin_key {
                nodes.entry(ancestor.clone()).or_default();
                ancestor = ancestor.base_name();
            }
            let rrsets = owned
                .chunk_by(|a, b| a.record_type() == b.record_type())
                .map(|rrset| {
                    // Duplicates are judged on the data (names in it compared without case).
                    let mut unique: Vec<&Record> = Vec::with_capacity(rrset.len());
                    for record in rrset {
                        if !unique.iter().any(|kept| kept.data == record.data) {
                            unique.push(record);
                        }
                    }
                    Rrset::pack(&unique)
                })
                .collect::<Result<Box<[Rrset]>, _>>()?;
            let cased = (!owner.iter().eq(key.iter())).then(|| Box::new(owner.clone()));
            nodes.insert(key, Node { cased, rrsets });
        }
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
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.nodes.iter().flat_map(|(key, node)| {
            let owner = node.owner(key);
            node.rrsets
                .iter()
                .flat_map(move |rrset| rrset.records(&owner))
        })
    }

    /// The number of records.
    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .map(|node| node.rrsets.iter().map(Rrset::len).sum::<usize>())
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
