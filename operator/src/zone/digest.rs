//! The content digest: SHA-256 over the zone's canonical wire form, without the serial.
//!
//! Input order never matters: RRsets are in canonical name order, then type, and each
//! RRset's records are sorted by their wire form. Case is kept, so a change of case (which
//! the DNS pods preserve in answers) is a change of content.

use hickory_proto::{
    rr::{Name, RData, rdata::SOA},
    serialize::binary::BinEncodable,
};
use sha2::{Digest, Sha256};

use super::RrSet;

/// The digest's version tag, so a change of the scheme never compares equal to an old digest.
const SCHEME: &[u8] = b"zonefleet-zone-digest-v1\0";

/// The wire form of a name or of rdata; empty if it cannot be encoded (it was parsed from
/// the same form, so that does not happen).
fn wire<T: BinEncodable>(item: &T) -> Vec<u8> {
    item.to_bytes().unwrap_or_default()
}

/// Sorts rdata by wire form and drops duplicates.
pub fn sort_rdata(rdata: &mut Vec<RData>) {
    rdata.sort_by_cached_key(wire);
    rdata.dedup();
}

/// The SHA-256 of the origin, the SOA (serial zeroed) and every RRset in order.
pub fn zone_digest(origin: &Name, soa: &SOA, soa_ttl: u32, rrsets: &[RrSet]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SCHEME);
    hasher.update(wire(origin));
    let mut unserialed = soa.clone();
    unserialed.serial = 0;
    hasher.update(soa_ttl.to_be_bytes());
    hash_bytes(&mut hasher, &wire(&RData::SOA(unserialed)));
    for set in rrsets {
        hasher.update(wire(&set.name));
        hasher.update(u16::from(set.record_type).to_be_bytes());
        hasher.update(set.ttl.to_be_bytes());
        hasher.update(
            u32::try_from(set.rdata.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for rdata in &set.rdata {
            hash_bytes(&mut hasher, &wire(rdata));
        }
    }
    hasher.finalize().into()
}

/// Lowercase hex, as the Zone's status shows a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Length-prefixed, so adjacent fields cannot run into each other.
fn hash_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    hasher.update(bytes);
}
