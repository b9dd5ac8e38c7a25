//! The content digest (SHA-256 over the zone's records in canonical order, without the
//! serial; defined in `zonefleet_wire` so the DNS pods compute the same) and the canonical
//! order of rdata.

use hickory_proto::{
    rr::{Name, RData, Record, rdata::SOA},
    serialize::binary::BinEncodable,
};

use super::RrSet;

/// The wire form of rdata; empty if it cannot be encoded (it was parsed from the same
/// form, so that does not happen).
fn wire<T: BinEncodable>(item: &T) -> Vec<u8> {
    item.to_bytes().unwrap_or_default()
}

/// Sorts rdata by wire form and drops duplicates.
pub fn sort_rdata(rdata: &mut Vec<RData>) {
    rdata.sort_by_cached_key(wire);
    rdata.dedup();
}

/// The content digest ([`zonefleet_wire::zone_digest`], which the DNS pods check too) of
/// the SOA and every RRset.
pub fn zone_digest(origin: &Name, soa: &SOA, soa_ttl: u32, rrsets: &[RrSet]) -> [u8; 32] {
    let soa = Record::from_rdata(origin.clone(), soa_ttl, RData::SOA(soa.clone()));
    let records: Vec<Record> = std::iter::once(soa)
        .chain(rrsets.iter().flat_map(|set| {
            set.rdata
                .iter()
                .map(|rdata| Record::from_rdata(set.name.clone(), set.ttl, rdata.clone()))
        }))
        .collect();
    zonefleet_wire::zone_digest(origin, &records)
}

/// Lowercase hex, as the Zone's status shows a digest.
pub fn hex(digest: &[u8]) -> String {
    zonefleet_wire::hex(digest)
}
