//! One zone version as an immutable, packed index.
//!
//! Everything lives in a few flat buffers, so a name costs tens of bytes rather than the
//! hundreds hickory `Record`s and ordered maps take:
//! - `names`: every name (empty non-terminals too) lowercased in wire form, back to back,
//!   in canonical order (RFC 4034 §6.1);
//! - `data`: every name's RRsets, back to back: per RRset its type, class and length, then
//!   per record its TTL, data length and data (names in it written in full, as loaded),
//!   and the owner as loaded when its case differs from the lowercase name;
//! - `nodes`: where each name's bytes and RRsets are;
//! - `table`: a hash table from the lowercase wire-form name to its node.
//!
//! Records are decoded only when an answer needs them.

use std::{cmp::Ordering, hash::BuildHasher};

use hashbrown::{DefaultHashBuilder, HashTable};
use hickory_proto::{
    rr::{DNSClass, Name, RData, Record, RecordType, rdata::SOA},
    serialize::binary::{
        BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
    },
};
use zonefleet_wire::{DigestRecord, ZoneDigester};

/// A zone that cannot be indexed.
#[derive(Debug, thiserror::Error)]
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
    /// A record does not decode.
    #[error("malformed record: {0}")]
    Malformed(#[source] zonefleet_wire::WireError),
    /// The zone is larger than the index can address (4 GiB of names or data).
    #[error("the zone {0} is too large to index")]
    TooLarge(String),
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

/// Where one name's bytes and RRsets are.
#[derive(Clone, Copy, Debug)]
struct NodeEntry {
    name_at: u32,
    data_at: u32,
    data_len: u32,
    name_len: u8,
}

/// One zone version, indexed by lowercased owner name.
#[derive(Clone, Debug)]
pub struct ZoneIndex {
    origin: Name,
    soa: Record,
    names: Box<[u8]>,
    data: Box<[u8]>,
    nodes: Box<[NodeEntry]>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    record_count: usize,
    digest: [u8; 32],
}

/// Every RRset at one name; none for an empty non-terminal.
#[derive(Clone, Copy, Debug)]
pub struct Node<'z> {
    name: &'z [u8],
    data: &'z [u8],
}

/// The records of one type at one name, their data in wire form.
#[derive(Clone, Copy, Debug)]
pub struct Rrset<'z> {
    record_type: u16,
    dns_class: u16,
    records: &'z [u8],
}

impl ZoneIndex {
    /// Indexes the records of a zone. Every ancestor of an owner, up to the apex, gets a
    /// node, empty if it holds no data (an empty non-terminal). A record repeated (the
    /// same data, names in it compared without case) counts once.
    pub fn build(
        origin: &Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, BuildError> {
        Self::build_from(origin, records.into_iter().map(Ok))
    }

    /// [`Self::build`] from records decoded as they come; the first error stops it.
    pub fn build_from(
        origin: &Name,
        records: impl IntoIterator<Item = Result<Record, BuildError>>,
    ) -> Result<Self, BuildError> {
        let mut staged = Staged::default();
        let mut soa = None;
        for record in records {
            let record = record?;
            if !origin.zone_of(&record.name) {
                return Err(BuildError::OutOfZone {
                    owner: record.name.to_string(),
                    record_type: record.record_type().to_string(),
                    origin: origin.to_string(),
                });
            }
            if soa.is_none() && record.record_type() == RecordType::SOA && record.name == *origin {
                soa = Some(record.clone());
            }
            staged.add(&record)?;
        }
        let soa = soa.ok_or_else(|| BuildError::MissingSoa(origin.to_string()))?;
        let origin_wire = wire(&origin.to_lowercase())?;
        staged.pack(origin, &origin_wire, soa)
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The content digest of the records it was built from
    /// ([`zonefleet_wire::zone_digest`], computed as they were indexed).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(SOA { serial, .. }) => *serial,
            _ => 0,
        }
    }

    /// The node at a name (in any case).
    pub fn node(&self, name: &Name) -> Option<Node<'_>> {
        let key = wire(&name.to_lowercase()).ok()?;
        self.position(&key).map(|at| self.node_at(at))
    }

    /// Where the node of a lowercase wire-form name is, if the zone has it.
    pub fn position(&self, lowercase_name: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(lowercase_name);
        self.table
            .find(hash, |&at| self.name_at(at as usize) == lowercase_name)
            .map(|&at| at as usize)
    }

    /// The node at a position (from [`Self::position`] or the order of [`Self::nodes`]).
    pub fn node_at(&self, at: usize) -> Node<'_> {
        let entry = self.nodes[at];
        let data_at = entry.data_at as usize;
        Node {
            name: self.name_at(at),
            data: &self.data[data_at..data_at + entry.data_len as usize],
        }
    }

    fn name_at(&self, at: usize) -> &[u8] {
        let entry = self.nodes[at];
        let name_at = entry.name_at as usize;
        &self.names[name_at..name_at + usize::from(entry.name_len)]
    }

    /// The apex's node (the first in canonical order).
    pub fn apex(&self) -> Node<'_> {
        self.node_at(0)
    }

    /// Every node, in canonical order.
    pub fn nodes(&self) -> impl Iterator<Item = Node<'_>> {
        (0..self.nodes.len()).map(|at| self.node_at(at))
    }

    /// Every record of the zone, in canonical name order (the index holds each once).
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.nodes().flat_map(|node| {
            let owner = node.name();
            node.rrsets()
                .flat_map(move |rrset| rrset.records(&owner))
                .collect::<Vec<_>>()
        })
    }

    /// The number of records.
    pub fn record_count(&self) -> usize {
        self.record_count
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

impl<'z> Node<'z> {
    /// The name, lowercase, in wire form.
    pub fn wire_name(&self) -> &'z [u8] {
        self.name
    }

    /// The name, lowercase.
    pub fn name(&self) -> Name {
        Name::from_bytes(self.name).unwrap_or_default()
    }

    /// Its RRsets, in type order.
    pub fn rrsets(&self) -> impl Iterator<Item = Rrset<'z>> + use<'z> {
        let mut rest = self.data;
        std::iter::from_fn(move || {
            let (rrset, next) = Rrset::split(rest)?;
            rest = next;
            Some(rrset)
        })
    }

    /// The RRset of a type.
    pub fn rrset(&self, record_type: RecordType) -> Option<Rrset<'z>> {
        let code = u16::from(record_type);
        self.rrsets().find(|rrset| rrset.record_type == code)
    }

    /// The first RRset in type order (what ANY is answered with, RFC 8482).
    pub fn first_rrset(&self) -> Option<Rrset<'z>> {
        self.rrsets().next()
    }

    /// The types of the RRsets held, in type order.
    pub fn types(&self) -> impl Iterator<Item = RecordType> + use<'z> {
        self.rrsets()
            .map(|rrset| RecordType::from(rrset.record_type))
    }

    /// True for an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl<'z> Rrset<'z> {
    /// The type.
    pub fn record_type(&self) -> RecordType {
        RecordType::from(self.record_type)
    }

    /// The type code.
    pub fn type_code(&self) -> u16 {
        self.record_type
    }

    /// The class code.
    pub fn class_code(&self) -> u16 {
        self.dns_class
    }

    /// Its records as packed, in the order loaded.
    pub fn packed(&self) -> impl Iterator<Item = PackedRecord<'z>> + use<'z> {
        let mut rest = self.records;
        std::iter::from_fn(move || {
            let (record, next) = PackedRecord::split(rest)?;
            rest = next;
            Some(record)
        })
    }

    /// Its records, each with its owner as loaded (`owner` unless the case differed).
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        self.decode(|spelled| match spelled {
            Some(bytes) => Name::from_bytes(bytes).unwrap_or_else(|_| owner.clone()),
            None => owner.clone(),
        })
    }

    /// Its records decoded, each with the owner `owner` gives for its spelling as loaded.
    pub fn decode(&self, owner: impl Fn(Option<&[u8]>) -> Name) -> Vec<Record> {
        let mut records = Vec::new();
        for packed in self.packed() {
            let mut decoder = BinDecoder::new(packed.data);
            let length = Restrict::new(u16::try_from(packed.data.len()).unwrap_or(u16::MAX));
            // Each entry was written by `RData::emit` when the index was built.
            if let Ok(rdata) = RData::read(&mut decoder, self.record_type(), length) {
                let mut record = Record::from_rdata(owner(packed.owner), packed.ttl, rdata);
                record.dns_class = DNSClass::from(self.dns_class);
                records.push(record);
            }
        }
        records
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.packed().count()
    }

    /// True if it holds no record (never: an RRset is made from its records).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The RRset at the start of `bytes`, and what follows it.
    fn split(bytes: &'z [u8]) -> Option<(Self, &'z [u8])> {
        let record_type = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
        let dns_class = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
        let len = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
        let records = bytes.get(8..8 + len)?;
        let rrset = Self {
            record_type,
            dns_class,
            records,
        };
        Some((rrset, &bytes[8 + len..]))
    }
}

/// One record as packed: TTL (4 bytes), data length (2), data, owner length (1) and the
/// owner as loaded if its case differs from the node's name.
#[derive(Clone, Copy, Debug)]
pub struct PackedRecord<'z> {
    /// The TTL.
    pub ttl: u32,
    /// The record data in wire form, names in it uncompressed and in the case loaded.
    pub data: &'z [u8],
    /// The owner in wire form as loaded, when its case differs from the node's name.
    pub owner: Option<&'z [u8]>,
}

impl<'z> PackedRecord<'z> {
    fn split(bytes: &'z [u8]) -> Option<(Self, &'z [u8])> {
        let ttl = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let len = usize::from(u16::from_be_bytes(bytes.get(4..6)?.try_into().ok()?));
        let data = bytes.get(6..6 + len)?;
        let owner_len = usize::from(*bytes.get(6 + len)?);
        let owner_at = 7 + len;
        let owner = bytes.get(owner_at..owner_at + owner_len)?;
        let record = Self {
            ttl,
            data,
            owner: (owner_len > 0).then_some(owner),
        };
        Some((record, &bytes[owner_at + owner_len..]))
    }

    /// Appends a record in packed form; the owner is written only if its case differs
    /// from `key` (the lowercase wire-form name).
    fn write(out: &mut Vec<u8>, record: &Record, key: &[u8]) -> Result<(), BuildError> {
        let unencodable = |error: String| BuildError::Unencodable {
            owner: record.name.to_string(),
            record_type: record.record_type().to_string(),
            error,
        };
        let mut data = Vec::new();
        let mut encoder = BinEncoder::new(&mut data);
        // Uncompressed, as the digest takes it.
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        record
            .data
            .emit(&mut encoder)
            .map_err(|error| unencodable(error.to_string()))?;
        let len = u16::try_from(data.len())
            .map_err(|_| unencodable("record data longer than 65535 bytes".into()))?;
        let spelled = wire(&record.name)?;
        let owner: &[u8] = if spelled == key { &[] } else { &spelled };
        out.extend_from_slice(&record.ttl.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&data);
        // A wire-form name is at most 255 bytes.
        out.push(u8::try_from(owner.len()).unwrap_or(0));
        out.extend_from_slice(owner);
        Ok(())
    }
}

/// Records as they arrive, before they are sorted and packed.
#[derive(Default)]
struct Staged {
    /// Each record's lowercase wire-form owner, then its packed form.
    bytes: Vec<u8>,
    records: Vec<StagedRecord>,
}

/// Where one staged record is in [`Staged::bytes`].
#[derive(Clone, Copy)]
struct StagedRecord {
    at: u32,
    name_len: u8,
    record_type: u16,
    dns_class: u16,
}

impl StagedRecord {
    fn name<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let at = self.at as usize;
        &bytes[at..at + usize::from(self.name_len)]
    }

    fn packed<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let at = self.at as usize + usize::from(self.name_len);
        PackedRecord::split(&bytes[at..]).map_or(&[], |(_, rest)| {
            let end = bytes.len() - rest.len();
            &bytes[at..end]
        })
    }
}

impl Staged {
    fn add(&mut self, record: &Record) -> Result<(), BuildError> {
        let key = wire(&record.name.to_lowercase())?;
        let at = u32::try_from(self.bytes.len())
            .map_err(|_| BuildError::TooLarge(record.name.to_string()))?;
        self.bytes.extend_from_slice(&key);
        PackedRecord::write(&mut self.bytes, record, &key)?;
        self.records.push(StagedRecord {
            at,
            name_len: u8::try_from(key.len()).unwrap_or(u8::MAX),
            record_type: u16::from(record.record_type()),
            dns_class: u16::from(record.dns_class),
        });
        Ok(())
    }

    /// Sorts the records into canonical order and packs them, node by node.
    fn pack(
        mut self,
        origin: &Name,
        origin_wire: &[u8],
        soa: Record,
    ) -> Result<ZoneIndex, BuildError> {
        let bytes = std::mem::take(&mut self.bytes);
        // Stable: a repeated record keeps its first spelling.
        self.records.sort_by(|a, b| {
            canonical_cmp(a.name(&bytes), b.name(&bytes))
                .then_with(|| a.record_type.cmp(&b.record_type))
        });
        let too_large = || BuildError::TooLarge(origin.to_string());
        let digest = self.digest(origin, &bytes);
        let hasher = DefaultHashBuilder::default();
        let mut builder = Packer {
            names: Vec::new(),
            data: Vec::new(),
            nodes: Vec::new(),
            table: HashTable::with_capacity(self.records.len()),
            hasher: &hasher,
        };
        let mut record_count = 0;
        for owned in self
            .records
            .chunk_by(|a, b| a.name(&bytes) == b.name(&bytes))
        {
            let key = owned[0].name(&bytes);
            builder.ancestors(key, origin_wire).ok_or_else(too_large)?;
            let data_at = u32::try_from(builder.data.len()).map_err(|_| too_large())?;
            for rrset in owned.chunk_by(|a, b| a.record_type == b.record_type) {
                let header_at = builder.data.len();
                builder
                    .data
                    .extend_from_slice(&rrset[0].record_type.to_be_bytes());
                builder
                    .data
                    .extend_from_slice(&rrset[0].dns_class.to_be_bytes());
                builder.data.extend_from_slice(&[0; 4]);
                let mut kept: Vec<&[u8]> = Vec::with_capacity(rrset.len());
                for staged in rrset {
                    let packed = staged.packed(&bytes);
                    if kept
                        .iter()
                        .any(|other| same_data(other, packed, staged.record_type))
                    {
                        continue;
                    }
                    kept.push(packed);
                    builder.data.extend_from_slice(packed);
                    record_count += 1;
                }
                let len =
                    u32::try_from(builder.data.len() - header_at - 8).map_err(|_| too_large())?;
                builder.data[header_at + 4..header_at + 8].copy_from_slice(&len.to_be_bytes());
            }
            let data_len = u32::try_from(builder.data.len()).map_err(|_| too_large())? - data_at;
            builder.push(key, data_at, data_len).ok_or_else(too_large)?;
        }
        let Packer {
            names,
            data,
            nodes,
            table,
            ..
        } = builder;
        Ok(ZoneIndex {
            origin: origin.clone(),
            soa,
            names: names.into_boxed_slice(),
            data: data.into_boxed_slice(),
            nodes: nodes.into_boxed_slice(),
            table,
            hasher,
            record_count,
            digest,
        })
    }

    /// The digest of every record staged (repeats and all), names in canonical order.
    fn digest(&self, origin: &Name, bytes: &[u8]) -> [u8; 32] {
        let mut digester = ZoneDigester::new(origin);
        for owned in self.records.chunk_by(|a, b| a.name(bytes) == b.name(bytes)) {
            digester.add_name(owned.iter().filter_map(|staged| {
                let (packed, _) = PackedRecord::split(staged.packed(bytes))?;
                DigestRecord {
                    owner: packed.owner.unwrap_or(staged.name(bytes)),
                    record_type: staged.record_type,
                    dns_class: staged.dns_class,
                    ttl: packed.ttl,
                    data: packed.data,
                }
                .bytes()
            }));
        }
        digester.finish()
    }
}

/// The index as it is filled, node by node in canonical order.
struct Packer<'h> {
    names: Vec<u8>,
    data: Vec<u8>,
    nodes: Vec<NodeEntry>,
    table: HashTable<u32>,
    hasher: &'h DefaultHashBuilder,
}

impl Packer<'_> {
    fn find(&self, name: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&at| {
                let entry = self.nodes[at as usize];
                let start = entry.name_at as usize;
                &self.names[start..start + usize::from(entry.name_len)] == name
            })
            .copied()
    }

    fn push(&mut self, name: &[u8], data_at: u32, data_len: u32) -> Option<()> {
        let at = u32::try_from(self.nodes.len()).ok()?;
        let name_at = u32::try_from(self.names.len()).ok()?;
        self.names.extend_from_slice(name);
        self.nodes.push(NodeEntry {
            name_at,
            data_at,
            data_len,
            name_len: u8::try_from(name.len()).ok()?,
        });
        let (names, nodes, hasher) = (&self.names, &self.nodes, self.hasher);
        let hash = hasher.hash_one(name);
        self.table.insert_unique(hash, at, |&other| {
            let entry = nodes[other as usize];
            let start = entry.name_at as usize;
            hasher.hash_one(&names[start..start + usize::from(entry.name_len)])
        });
        Some(())
    }

    /// Adds the empty non-terminals between the apex and `name` (exclusive) that are not
    /// there yet, top down. In canonical order a name's subtree follows it directly, so
    /// an ancestor not seen yet belongs right here.
    fn ancestors(&mut self, name: &[u8], origin: &[u8]) -> Option<()> {
        let mut missing = Vec::new();
        let mut at = 0;
        while name.len() - at > origin.len() {
            at += 1 + usize::from(name[at]);
            let ancestor = &name[at..];
            if ancestor.len() <= origin.len() || self.find(ancestor).is_some() {
                break;
            }
            missing.push(ancestor);
        }
        let data_at = u32::try_from(self.data.len()).ok()?;
        for ancestor in missing.into_iter().rev() {
            self.push(ancestor, data_at, 0)?;
        }
        Some(())
    }
}

/// Whether two packed records hold the same data: the same bytes, or data that differ only
/// in the case of the names in them.
fn same_data(a: &[u8], b: &[u8], record_type: u16) -> bool {
    let (Some((a, _)), Some((b, _))) = (PackedRecord::split(a), PackedRecord::split(b)) else {
        return false;
    };
    if a.data == b.data {
        return true;
    }
    if !a.data.eq_ignore_ascii_case(b.data) {
        return false;
    }
    let read = |data: &[u8]| {
        let length = Restrict::new(u16::try_from(data.len()).unwrap_or(u16::MAX));
        RData::read(
            &mut BinDecoder::new(data),
            RecordType::from(record_type),
            length,
        )
        .ok()
    };
    matches!((read(a.data), read(b.data)), (Some(x), Some(y)) if x == y)
}

/// A name in wire form, uncompressed, in the case it has.
fn wire(name: &Name) -> Result<Vec<u8>, BuildError> {
    name.to_bytes().map_err(|error| BuildError::Unencodable {
        owner: name.to_string(),
        record_type: "owner".into(),
        error: error.to_string(),
    })
}

/// The canonical order of two lowercase wire-form names (RFC 4034 §6.1): label by label
/// from the right, each compared as a string of octets, a missing label first.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (a_labels, a_count) = label_starts(a);
    let (b_labels, b_count) = label_starts(b);
    for (&x, &y) in a_labels[..a_count]
        .iter()
        .rev()
        .zip(b_labels[..b_count].iter().rev())
    {
        match label(a, x).cmp(label(b, y)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a_count.cmp(&b_count)
}

/// The label that starts at `at` in a wire-form name.
fn label(name: &[u8], at: u8) -> &[u8] {
    let at = usize::from(at);
    let len = usize::from(name[at]);
    &name[at + 1..at + 1 + len]
}

/// Where each label of a wire-form name starts (the root label excluded).
fn label_starts(name: &[u8]) -> ([u8; 128], usize) {
    let mut starts = [0u8; 128];
    let mut count = 0;
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 || count == starts.len() {
            break;
        }
        starts[count] = u8::try_from(at).unwrap_or(u8::MAX);
        count += 1;
        at += 1 + usize::from(len);
    }
    (starts, count)
}
