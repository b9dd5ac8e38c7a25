//! The content digest of a zone version: SHA-256 over its records in canonical order,
//! without the SOA serial.
//!
//! The operator computes it when it assembles a zone, and a DNS pod recomputes it after
//! applying a delta or loading a local snapshot, so both sides agree on what "the same
//! content" means. Input order never matters; case does, because the pods preserve it in
//! answers, so a change of case is a change of content.

use hickory_proto::{
    rr::{Name, RData, Record, RecordType},
    serialize::binary::{BinEncodable, BinEncoder, NameEncoding},
};
use sha2::{Digest, Sha256};

/// The scheme's version tag, so a change of the scheme never compares equal to an old digest.
const SCHEME: &[u8] = b"zonefleet-zone-digest-v2\0";

/// The SHA-256 of a zone's records: each record's owner, type, class, TTL and rdata, in
/// canonical order (RFC 4034 §6), with the SOA serial set to zero. Duplicate records count
/// once.
pub fn zone_digest(origin: &Name, records: &[Record]) -> [u8; 32] {
    // Sorted by name through indices, and encoded one name at a time: for a million records
    // that holds 4 MB of indices rather than a name and a buffer per record.
    let mut order: Vec<usize> = (0..records.len()).collect();
    // `Name`'s order is the canonical one (case-insensitive, rightmost label first).
    order.sort_by(|&a, &b| records[a].name.cmp(&records[b].name));
    let mut digester = ZoneDigester::new(origin);
    for same_name in order.chunk_by(|&a, &b| records[a].name == records[b].name) {
        digester.add_name(same_name.iter().map(|&at| record_bytes(&records[at])));
    }
    digester.finish()
}

/// [`zone_digest`] fed one name at a time, for a caller that already has the records in
/// canonical name order (a DNS pod's index) and need not hold them as `Record`s.
#[derive(Debug)]
pub struct ZoneDigester {
    hasher: Sha256,
    group: Vec<Vec<u8>>,
}

impl ZoneDigester {
    /// Starts the digest of the zone at `origin`.
    pub fn new(origin: &Name) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(SCHEME);
        hash_bytes(&mut hasher, &uncompressed(|e| origin.emit(e)));
        Self {
            hasher,
            group: Vec::new(),
        }
    }

    /// Adds every record of one name, each as [`DigestRecord::bytes`] gives it. Names must
    /// come in canonical order (RFC 4034 §6.1), each once; the records of a name in any
    /// order, repeats counting once.
    pub fn add_name(&mut self, records: impl IntoIterator<Item = Vec<u8>>) {
        self.group.clear();
        self.group.extend(records);
        self.group.sort();
        self.group.dedup();
        for bytes in &self.group {
            hash_bytes(&mut self.hasher, bytes);
        }
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

/// One record as the digest takes it, from its parts in wire form.
#[derive(Clone, Copy, Debug)]
pub struct DigestRecord<'a> {
    /// The owner, uncompressed, in its own case.
    pub owner: &'a [u8],
    /// The type code.
    pub record_type: u16,
    /// The class code.
    pub dns_class: u16,
    /// The TTL.
    pub ttl: u32,
    /// The data, names uncompressed (`NameEncoding::Uncompressed`), in their own case.
    pub data: &'a [u8],
}

impl DigestRecord<'_> {
    /// The bytes the digest hashes for this record: what [`zone_digest`] computes from the
    /// same record as a `Record`. `None` for an SOA whose data is malformed.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let mut bytes = Vec::with_capacity(12 + self.owner.len() + self.data.len());
        bytes.extend_from_slice(&self.record_type.to_be_bytes());
        bytes.extend_from_slice(self.owner);
        bytes.extend_from_slice(&self.record_type.to_be_bytes());
        bytes.extend_from_slice(&self.dns_class.to_be_bytes());
        bytes.extend_from_slice(&self.ttl.to_be_bytes());
        bytes.extend_from_slice(&u16::try_from(self.data.len()).ok()?.to_be_bytes());
        let data_at = bytes.len();
        bytes.extend_from_slice(self.data);
        if self.record_type == u16::from(RecordType::SOA) {
            // The serial follows the two names (MNAME, RNAME).
            let serial_at = data_at + name_len(self.data)?;
            let serial_at = serial_at + name_len(bytes.get(serial_at..)?)?;
            bytes.get_mut(serial_at..serial_at + 4)?.fill(0);
        }
        Some(bytes)
    }
}

/// The length of the uncompressed wire-form name at the start of `bytes`; `None` if it is
/// cut short, compressed, or longer than a name may be (255 bytes).
pub fn name_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            return (at <= 255).then_some(at);
        }
    }
}

/// Lowercase hex, as statuses and the pods' `/zones` show a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The record's wire form with its type code first, so records sort by type within a
/// name, and the SOA serial zeroed.
fn record_bytes(record: &Record) -> Vec<u8> {
    let mut unserialed;
    let record = match &record.data {
        RData::SOA(soa) if soa.serial != 0 => {
            let mut soa = soa.clone();
            soa.serial = 0;
            unserialed = record.clone();
            unserialed.data = RData::SOA(soa);
            &unserialed
        }
        _ => record,
    };
    let mut bytes = u16::from(record.record_type()).to_be_bytes().to_vec();
    bytes.extend(uncompressed(|e| record.emit(e)));
    bytes
}

/// An item in uncompressed, case-preserving wire form; empty if it cannot be encoded (every
/// record here was decoded or parsed from the same form, so that does not happen).
fn uncompressed(
    write: impl FnOnce(&mut BinEncoder<'_>) -> Result<(), hickory_proto::ProtoError>,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    match write(&mut encoder) {
        Ok(()) => bytes,
        Err(_) => Vec::new(),
    }
}

/// Length-prefixed, so adjacent fields cannot run into each other.
fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use hickory_proto::serialize::txt::Parser;

    use super::*;

    #[test]
    fn digest_records_from_parts_match_the_records() {
        let origin = Name::from_ascii("Example.com.").unwrap();
        let text = "$ORIGIN Example.com.\n$TTL 300\n\
                    @ IN SOA Ns1 hostmaster.Example.com. 2024010101 3600 600 86400 60\n\
                    @ IN MX 10 Mail\nWWW IN CNAME Web.Example.org.\n\
                    t IN TXT \"a b\" \"c\"\n_s._tcp IN SRV 1 2 3 Host\nv6 IN AAAA 2001:db8::1\n";
        let (_, rrsets) = Parser::new(text, None, Some(origin)).parse().unwrap();
        let records: Vec<Record> = rrsets
            .into_values()
            .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
            .collect();
        assert_eq!(records.len(), 6);
        for record in &records {
            let owner = uncompressed(|e| record.name.emit(e));
            let data = uncompressed(|e| record.data.emit(e));
            let parts = DigestRecord {
                owner: &owner,
                record_type: u16::from(record.record_type()),
                dns_class: u16::from(record.dns_class),
                ttl: record.ttl,
                data: &data,
            };
            assert_eq!(parts.bytes(), Some(record_bytes(record)), "{record}");
        }
    }
}
