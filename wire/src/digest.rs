//! The content digest of a zone version: SHA-256 over its records in canonical order,
//! without the SOA serial.
//!
//! The operator computes it when it assembles a zone, and a DNS pod recomputes it after
//! applying a delta or loading a local snapshot, so both sides agree on what "the same
//! content" means. Input order never matters; case does, because the pods preserve it in
//! answers, so a change of case is a change of content.

use hickory_proto::{
    rr::{Name, RData, Record},
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
    let mut hasher = Sha256::new();
    hasher.update(SCHEME);
    hash_bytes(&mut hasher, &uncompressed(|e| origin.emit(e)));
    let mut group: Vec<Vec<u8>> = Vec::new();
    for same_name in order.chunk_by(|&a, &b| records[a].name == records[b].name) {
        group.clear();
        group.extend(same_name.iter().map(|&at| record_bytes(&records[at])));
        group.sort();
        group.dedup();
        for bytes in &group {
            hash_bytes(&mut hasher, bytes);
        }
    }
    hasher.finalize().into()
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
