//! Zone assembly: a Zone and the Records that reference it become one canonical zone.
//!
//! Pure and synchronous: the controller gathers the objects, [`assemble`] decides which
//! Records are accepted and builds the zone, and the controller writes the outcome back.
//!
//! The rules, in order, for each Record (oldest first, by creation time, then namespace and
//! name):
//! 1. its namespace must be allowed by the Zone's `recordNamespaces` (`NamespaceNotAllowed`);
//! 2. its owner must lie inside the zone (`OutOfZone`);
//! 3. its values must parse as rdata of its type (`InvalidRData`);
//! 4. it must not clash with the Zone's own data or an older Record: one Record per owner
//!    and type, and a CNAME shares its owner with nothing (RFC 1034 §3.6.2, RFC 2181 §10.1)
//!    (`Conflict`);
//! 5. below a delegation (an NS Record under the apex) only the glue addresses of the
//!    delegation's name servers are served, and at it only NS and DS (`Occluded`).

pub mod access;
pub mod digest;
pub mod names;
pub mod policy;
pub mod rdata;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    str::FromStr,
};

use hickory_proto::rr::{
    Name, RData, RecordType,
    rdata::{A, AAAA, NS, SOA},
};
use k8s_openapi::jiff::Timestamp;
use zonefleet_api::{RecordSpec, ZoneSpec};

/// The default SOA refresh, retry, expire and minimum (negative TTL), in seconds.
pub const SOA_DEFAULTS: (i32, i32, i32, i32) = (3600, 600, 1_209_600, 300);

/// A namespaced object's identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The identity of a namespaced Kubernetes object.
    pub fn of<K: kube::Resource>(object: &K) -> Self {
        Self {
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Record as assembly needs it.
#[derive(Clone, Debug)]
pub struct RecordInput {
    /// Which Record.
    pub key: ObjectKey,
    /// When it was created: older Records win conflicts.
    pub created: Option<Timestamp>,
    /// Its spec.
    pub spec: RecordSpec,
    /// Its namespace's labels, when the Zone admits namespaces by selector.
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

/// Why a Record is not part of its zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The values do not parse as rdata of the type.
    InvalidRData,
    /// Another Record or the Zone itself already holds this owner and type, or a CNAME clash.
    Conflict,
    /// The referenced Zone does not exist.
    ZoneNotFound,
    /// The Zone does not admit Records from this namespace.
    NamespaceNotAllowed,
    /// The owner name lies outside the zone.
    OutOfZone,
    /// The owner lies at or below a delegation, where this data is not served.
    Occluded,
    /// The Zone does not own its domain, so none of its Records are served.
    DomainConflict,
    /// The owner is written without a trailing dot but ends with the zone's domain, so it
    /// would mean a name with the domain twice (`api.example.com.example.com.`).
    AmbiguousName,
}

impl RejectReason {
    /// The condition reason.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidRData => "InvalidRData",
            RejectReason::Conflict => "Conflict",
            RejectReason::ZoneNotFound => "ZoneNotFound",
            RejectReason::NamespaceNotAllowed => "NamespaceNotAllowed",
            RejectReason::OutOfZone => "OutOfZone",
            RejectReason::Occluded => "Occluded",
            RejectReason::DomainConflict => "DomainConflict",
            RejectReason::AmbiguousName => "AmbiguousName",
        }
    }
}

/// The outcome for one Record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Part of the zone.
    Accepted,
    /// Not part of the zone, and why.
    Rejected {
        /// The condition reason.
        reason: RejectReason,
        /// A message for people.
        message: String,
    },
}

/// Every record of one type at one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrSet {
    /// The owner, with the case it was written in.
    pub name: Name,
    /// The type.
    pub record_type: RecordType,
    /// The TTL.
    pub ttl: u32,
    /// The records' data, sorted by wire form, without duplicates.
    pub rdata: Vec<RData>,
}

/// A zone's content, in canonical order, without a serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembledZone {
    /// The apex.
    pub origin: Name,
    /// The SOA, with serial 0; [`AssembledZone::soa_with_serial`] sets it.
    pub soa: SOA,
    /// The SOA's TTL.
    pub soa_ttl: u32,
    /// Every RRset but the SOA: apex NS, glue, and the accepted Records, in canonical order.
    pub rrsets: Vec<RrSet>,
    /// SHA-256 of the content without the serial.
    pub digest: [u8; 32],
    /// Resource records, SOA included.
    pub record_count: u32,
}

impl AssembledZone {
    /// Every record of the version with `serial`, the SOA first, in canonical order.
    pub fn records(&self, serial: u32) -> Vec<hickory_proto::rr::Record> {
        use hickory_proto::rr::Record;
        let soa = Record::from_rdata(
            self.origin.clone(),
            self.soa_ttl,
            RData::SOA(self.soa_with_serial(serial)),
        );
        std::iter::once(soa)
            .chain(self.rrsets.iter().flat_map(|set| {
                set.rdata
                    .iter()
                    .map(|rdata| Record::from_rdata(set.name.clone(), set.ttl, rdata.clone()))
            }))
            .collect()
    }

    /// The digest in hex, as the Zone's status shows it.
    pub fn digest_hex(&self) -> String {
        digest::hex(&self.digest)
    }

    /// The version with `serial` in the distribution format.
    pub fn snapshot(&self, serial: u32) -> zonefleet_wire::Snapshot {
        zonefleet_wire::Snapshot {
            origin: self.origin.clone(),
            serial,
            digest: self.digest.to_vec(),
            records: self.records(serial),
        }
    }

    /// The SOA of the version with `serial`.
    pub fn soa_with_serial(&self, serial: u32) -> SOA {
        let mut soa = self.soa.clone();
        soa.serial = serial;
        soa
    }
}

/// The result of assembling a zone.
#[derive(Clone, Debug)]
pub struct Assembly {
    /// The zone.
    pub zone: AssembledZone,
    /// The outcome for every Record given.
    pub verdicts: BTreeMap<ObjectKey, Verdict>,
    /// Problems that do not stop the zone from being served (they set `Degraded`).
    pub warnings: Vec<String>,
}

/// A Zone spec that cannot be assembled at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneSpecError {
    /// A name in the spec is not a DNS name.
    #[error(transparent)]
    InvalidName(#[from] names::InvalidName),
    /// A glue address is not an IP address.
    #[error("name server {name_server}: {address:?} is not an IP address")]
    InvalidAddress {
        /// The name server.
        name_server: String,
        /// The address as written.
        address: String,
    },
    /// A number in the spec is out of range.
    #[error("{0}")]
    OutOfRange(String),
}

/// Assembles the zone of `spec` (in namespace `zone_namespace`) from `records`.
pub fn assemble(
    zone_namespace: &str,
    spec: &ZoneSpec,
    records: &[RecordInput],
) -> Result<Assembly, ZoneSpecError> {
    assemble_with_children(zone_namespace, spec, records, &[])
}

/// Assembles the zone of `spec` like [`assemble`], with `child_zones` (apex and the Zone
/// serving it) as cuts: this zone's data at or below them is not served, as below a
/// delegation.
pub fn assemble_with_children(
    zone_namespace: &str,
    spec: &ZoneSpec,
    records: &[RecordInput],
    child_zones: &[(Name, ObjectKey)],
) -> Result<Assembly, ZoneSpecError> {
    let origin = names::absolute(&spec.domain)?;
    let default_ttl = non_negative("ttl", spec.ttl)?;
    let mut builder = ZoneBuilder::new(origin.clone(), default_ttl);
    builder.child_zones = child_zones
        .iter()
        .map(|(apex, zone)| (apex.to_lowercase(), zone.clone()))
        .filter(|(apex, _)| *apex != origin.to_lowercase() && origin.zone_of(apex))
        .collect();

    // The Zone's own data: the apex NS set and the glue of in-zone name servers.
    let mut glue_names = BTreeSet::new();
    let mut name_server_names = Vec::new();
    for ns in &spec.name_servers {
        let name = names::absolute(&ns.name)?;
        builder.add_zone_data(origin.clone(), RecordType::NS, RData::NS(NS(name.clone())));
        if origin.zone_of(&name) {
            for address in &ns.addresses {
                let ip = IpAddr::from_str(address).map_err(|_| ZoneSpecError::InvalidAddress {
                    name_server: ns.name.clone(),
                    address: address.clone(),
                })?;
                let (record_type, rdata) = match ip {
                    IpAddr::V4(v4) => (RecordType::A, RData::A(A(v4))),
                    IpAddr::V6(v6) => (RecordType::AAAA, RData::AAAA(AAAA(v6))),
                };
                builder.add_zone_data(name.clone(), record_type, rdata);
                glue_names.insert(name.to_lowercase());
            }
        }
        name_server_names.push(name);
    }
    let soa = soa_of(spec, &origin, name_server_names.first())?;

    let mut ordered: Vec<&RecordInput> = records.iter().collect();
    ordered.sort_by(|a, b| (a.created, &a.key).cmp(&(b.created, &b.key)));
    for record in ordered {
        builder.consider(zone_namespace, spec, record);
    }
    builder.occlude();

    let mut warnings = Vec::new();
    for name in &name_server_names {
        let has_address = builder
            .owners
            .get(&name.to_lowercase())
            .is_some_and(|types| {
                types.contains_key(&u16::from(RecordType::A))
                    || types.contains_key(&u16::from(RecordType::AAAA))
            });
        if origin.zone_of(name) && !has_address {
            warnings.push(format!(
                "name server {name} is inside the zone but has no address: add glue addresses or an A/AAAA Record"
            ));
        }
    }
    Ok(builder.finish(soa, default_ttl, warnings))
}

/// A TTL or timer from the spec; the schema keeps them at 0 or more.
fn non_negative(field: &str, value: i32) -> Result<u32, ZoneSpecError> {
    u32::try_from(value)
        .map_err(|_| ZoneSpecError::OutOfRange(format!("{field} {value} is negative")))
}

fn soa_of(spec: &ZoneSpec, origin: &Name, first_ns: Option<&Name>) -> Result<SOA, ZoneSpecError> {
    let mname = match &spec.soa.primary {
        Some(primary) => names::absolute(primary)?,
        None => first_ns.cloned().unwrap_or_else(|| origin.clone()),
    };
    let rname = match &spec.soa.responsible {
        Some(mailbox) => names::mailbox(mailbox)?,
        None => Name::from_labels([b"hostmaster".as_slice()])
            .and_then(|local| local.append_domain(origin))
            .map_err(|e| names::InvalidName {
                name: spec.domain.clone(),
                reason: e.to_string(),
            })?,
    };
    let (refresh, retry, expire, minimum) = SOA_DEFAULTS;
    let timer = |field: &str, value: Option<i32>, default: i32| {
        let value = value.unwrap_or(default);
        non_negative(&format!("soa.{field}"), value).map(|_| value)
    };
    Ok(SOA::new(
        mname,
        rname,
        0,
        timer("refresh", spec.soa.refresh, refresh)?,
        timer("retry", spec.soa.retry, retry)?,
        timer("expire", spec.soa.expire, expire)?,
        non_negative("soa.minimum", spec.soa.minimum.unwrap_or(minimum))?,
    ))
}

/// Who holds an RRset.
#[derive(Clone, Debug)]
enum Holder {
    Zone,
    Record(ObjectKey),
}

#[derive(Clone, Debug)]
struct Held {
    holder: Holder,
    set: RrSet,
}

struct ZoneBuilder {
    origin: Name,
    default_ttl: u32,
    /// Lowercased owner → type code → RRset.
    owners: BTreeMap<Name, BTreeMap<u16, Held>>,
    verdicts: BTreeMap<ObjectKey, Verdict>,
    /// Lowercased apexes of child zones served by other Zones, with those Zones.
    child_zones: BTreeMap<Name, ObjectKey>,
}

impl ZoneBuilder {
    fn new(origin: Name, default_ttl: u32) -> Self {
        Self {
            origin,
            default_ttl,
            owners: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            child_zones: BTreeMap::new(),
        }
    }

    fn add_zone_data(&mut self, name: Name, record_type: RecordType, rdata: RData) {
        let ttl = self.default_ttl;
        let held = self
            .owners
            .entry(name.to_lowercase())
            .or_default()
            .entry(u16::from(record_type))
            .or_insert_with(|| Held {
                holder: Holder::Zone,
                set: RrSet {
                    name,
                    record_type,
                    ttl,
                    rdata: Vec::new(),
                },
            });
        if !held.set.rdata.contains(&rdata) {
            held.set.rdata.push(rdata);
        }
    }

    fn reject(&mut self, key: &ObjectKey, reason: RejectReason, message: String) {
        self.verdicts
            .insert(key.clone(), Verdict::Rejected { reason, message });
    }

    fn consider(&mut self, zone_namespace: &str, spec: &ZoneSpec, record: &RecordInput) {
        let key = &record.key;
        if !policy::namespace_allowed(
            &spec.record_namespaces,
            zone_namespace,
            &key.namespace,
            record.namespace_labels.as_ref(),
        ) {
            let message = format!(
                "the Zone in namespace {zone_namespace} does not admit Records from namespace {}",
                key.namespace
            );
            return self.reject(key, RejectReason::NamespaceNotAllowed, message);
        }
        let owner = match names::owner(&record.spec.name, &self.origin) {
            Ok(owner) => owner,
            Err(e) => return self.reject(key, RejectReason::InvalidRData, e.to_string()),
        };
        if let Err(e) = names::unambiguous(&record.spec.name, &self.origin) {
            return self.reject(key, RejectReason::AmbiguousName, e.to_string());
        }
        if !self.origin.zone_of(&owner) {
            let message = format!("{owner} is outside the zone {}", self.origin);
            return self.reject(key, RejectReason::OutOfZone, message);
        }
        let record_type = match RecordType::from_str(record.spec.type_.as_str()) {
            Ok(t) => t,
            Err(e) => return self.reject(key, RejectReason::InvalidRData, e.to_string()),
        };
        let rdata =
            match rdata::parse_values(&record.spec.values, record_type, &owner, &self.origin) {
                Ok(rdata) => rdata,
                Err(e) => return self.reject(key, RejectReason::InvalidRData, e.to_string()),
            };
        if let Some(message) = self.conflict(&owner, record_type) {
            return self.reject(key, RejectReason::Conflict, message);
        }
        let ttl = record
            .spec
            .ttl
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(self.default_ttl);
        self.owners.entry(owner.to_lowercase()).or_default().insert(
            u16::from(record_type),
            Held {
                holder: Holder::Record(key.clone()),
                set: RrSet {
                    name: owner,
                    record_type,
                    ttl,
                    rdata,
                },
            },
        );
        self.verdicts.insert(key.clone(), Verdict::Accepted);
    }

    /// Why `owner`/`record_type` cannot be added, if it cannot.
    fn conflict(&self, owner: &Name, record_type: RecordType) -> Option<String> {
        let lower = owner.to_lowercase();
        if lower == self.origin.to_lowercase() && record_type == RecordType::CNAME {
            return Some(format!(
                "a CNAME cannot be at the zone apex {owner}, which holds the SOA and NS"
            ));
        }
        for held in self
            .owners
            .get(&lower)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            let existing_type = &held.set.record_type;
            let clash = *existing_type == record_type
                || *existing_type == RecordType::CNAME
                || record_type == RecordType::CNAME;
            if clash {
                let holder = match &held.holder {
                    Holder::Zone if *existing_type == RecordType::NS => {
                        "the Zone's nameServers".to_owned()
                    }
                    Holder::Zone => "the Zone's name server glue".to_owned(),
                    Holder::Record(k) => format!("Record {k}"),
                };
                let what = if *existing_type == record_type {
                    format!("{owner} already has a {record_type} RRset, from {holder}")
                } else {
                    format!(
                        "a CNAME cannot share {owner} with other data: {existing_type} from {holder}"
                    )
                };
                return Some(what);
            }
        }
        None
    }

    /// Applies zone cuts (delegations, and child zones other Zones serve): at a cut only NS
    /// and DS stay, below it only glue.
    fn occlude(&mut self) {
        let origin = self.origin.to_lowercase();
        let ns = u16::from(RecordType::NS);
        let mut cuts: Vec<Name> = self
            .owners
            .iter()
            .filter(|(name, types)| types.contains_key(&ns) && **name != origin)
            .map(|(name, _)| name.clone())
            .chain(self.child_zones.keys().cloned())
            .collect();
        cuts.sort();
        cuts.dedup();
        // A delegation below another is itself occluded.
        cuts.sort_by_key(Name::num_labels);
        let mut effective: Vec<Name> = Vec::new();
        for cut in cuts {
            if !effective.iter().any(|outer| outer.zone_of(&cut)) {
                effective.push(cut);
            }
        }
        let glue: BTreeSet<Name> = effective
            .iter()
            .filter_map(|cut| self.owners.get(cut).and_then(|types| types.get(&ns)))
            .flat_map(|held| held.set.rdata.iter())
            .filter_map(|rdata| match rdata {
                RData::NS(ns) => Some(ns.0.to_lowercase()),
                _ => None,
            })
            .collect();
        // Only names under a cut are examined: each cut's subtree is a range of the map,
        // because canonical order puts a name's descendants right after it.
        let mut occluded = Vec::new();
        for cut in &effective {
            for (name, types) in self
                .owners
                .range(cut.clone()..)
                .take_while(|(name, _)| cut.zone_of(name))
            {
                for (code, held) in types {
                    let record_type = held.set.record_type;
                    let served = if name == cut {
                        matches!(record_type, RecordType::NS | RecordType::DS)
                    } else {
                        matches!(record_type, RecordType::A | RecordType::AAAA)
                            && glue.contains(name)
                    };
                    if !served {
                        occluded.push((name.clone(), *code, held.clone(), cut.clone()));
                    }
                }
            }
        }
        for (name, code, held, cut) in occluded {
            if let Some(types) = self.owners.get_mut(&name) {
                types.remove(&code);
            }
            if let Holder::Record(record) = held.holder {
                let message = match self.child_zones.get(&cut) {
                    Some(child) => format!(
                        "{} {} is at or below {cut}, the apex of the zone that Zone {child} serves; only NS and DS at the cut and glue are served here",
                        held.set.name, held.set.record_type
                    ),
                    None => format!(
                        "{} {} is at or below the delegation {cut}, where only NS, DS and glue for its name servers are served",
                        held.set.name, held.set.record_type
                    ),
                };
                self.reject(&record, RejectReason::Occluded, message);
            }
        }
    }

    fn finish(self, soa: SOA, soa_ttl: u32, warnings: Vec<String>) -> Assembly {
        let mut rrsets: Vec<RrSet> = self
            .owners
            .into_values()
            .flat_map(BTreeMap::into_values)
            .map(|held| held.set)
            .collect();
        for set in &mut rrsets {
            digest::sort_rdata(&mut set.rdata);
        }
        rrsets.sort_by(|a, b| {
            (&a.name, u16::from(a.record_type)).cmp(&(&b.name, u16::from(b.record_type)))
        });
        let record_count = 1 + rrsets.iter().map(|s| s.rdata.len()).sum::<usize>();
        let digest = digest::zone_digest(&self.origin, &soa, soa_ttl, &rrsets);
        Assembly {
            zone: AssembledZone {
                origin: self.origin,
                soa,
                soa_ttl,
                rrsets,
                digest,
                record_count: u32::try_from(record_count).unwrap_or(u32::MAX),
            },
            verdicts: self.verdicts,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests;
