//! The zone version format shared by the operator and the DNS pods.
//!
//! A message is a 16-byte header followed by a body of DNS wire-format data (RFC 1035
//! §4.1.3 resource records, names uncompressed and in their original case):
//!
//! ```text
//! header  "ZFW" | format version (1) | kind | flags (0) | reserved (2)
//!         | serial (u32) | from serial (u32, deltas; 0 otherwise)
//! body    origin (wire name) | digest length (u8) | digest
//!         | kind 1, snapshot: count (u32) | records
//!         | kind 2, delta:    removed count (u32) | records | added count (u32) | records
//!         | kind 3, retract:  nothing (the zone is no longer served)
//!         | kind 4, announce: nothing (a version exists; fetch its snapshot)
//! ```
//!
//! All integers are big-endian. A delta follows the IXFR model (RFC 1995): the records
//! removed from version `from serial` and those added to make version `serial`. Decoding
//! never panics: malformed input is an error.
//!
//! [`zone_digest`] is the content digest both sides compute, so a pod can check that what
//! it built is what the operator published.

mod digest;

pub use digest::{DigestRecord, ZoneDigester, hex, name_len, zone_digest};

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::{
    rr::{Name, Record},
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding},
};

/// The first bytes of every message.
pub const MAGIC: &[u8; 3] = b"ZFW";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The header's length.
pub const HEADER_LEN: usize = 16;

const KIND_SNAPSHOT: u8 = 1;
const KIND_DELTA: u8 = 2;
const KIND_RETRACT: u8 = 3;
const KIND_ANNOUNCE: u8 = 4;

/// A whole zone version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The zone's apex.
    pub origin: Name,
    /// The SOA serial of this version.
    pub serial: u32,
    /// The content digest (SHA-256 of the canonical zone without the serial).
    pub digest: Vec<u8>,
    /// Every record, the SOA included.
    pub records: Vec<Record>,
}

/// The change from one version to the next (IXFR model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    /// The zone's apex.
    pub origin: Name,
    /// The version this applies to.
    pub from_serial: u32,
    /// The version it makes.
    pub serial: u32,
    /// The content digest of the version it makes.
    pub digest: Vec<u8>,
    /// Records to remove (the old SOA among them).
    pub removed: Vec<Record>,
    /// Records to add (the new SOA among them).
    pub added: Vec<Record>,
}

/// A version without its records: a zone retracted at a serial, or a new version announced
/// whose records must be fetched as a snapshot (a delta too large to send, or no previous
/// version to diff against).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The zone's apex.
    pub origin: Name,
    /// The serial of the version retracted or announced.
    pub serial: u32,
    /// The content digest of an announced version; empty for a retraction.
    pub digest: Vec<u8>,
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole version.
    Snapshot(Snapshot),
    /// A change.
    Delta(Delta),
    /// The zone is no longer served.
    Retract(Marker),
    /// A new version exists; fetch its snapshot.
    Announce(Marker),
}

impl Message {
    /// The zone the message is about.
    pub fn origin(&self) -> &Name {
        match self {
            Self::Snapshot(s) => &s.origin,
            Self::Delta(d) => &d.origin,
            Self::Retract(m) | Self::Announce(m) => &m.origin,
        }
    }

    /// The serial of the version the message makes (or retracts).
    pub fn serial(&self) -> u32 {
        match self {
            Self::Snapshot(s) => s.serial,
            Self::Delta(d) => d.serial,
            Self::Retract(m) | Self::Announce(m) => m.serial,
        }
    }
}

/// Why a message cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message is shorter than its header or its counts say.
    #[error("truncated message: {0}")]
    Truncated(&'static str),
    /// Not a Zonefleet message.
    #[error("not a zone version message (bad magic)")]
    BadMagic,
    /// Written by a newer format.
    #[error("unsupported format version {0} (this reads {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    /// An unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A name or record does not decode.
    #[error("malformed DNS data: {0}")]
    Dns(String),
    /// Bytes after the last record.
    #[error("{0} unexpected bytes after the last record")]
    TrailingBytes(usize),
    /// A digest longer than 255 bytes.
    #[error("digest too long ({0} bytes)")]
    DigestTooLong(usize),
}

/// Why a delta does not apply to a version.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// The delta starts from another version.
    #[error("the delta applies to serial {expected}, not {actual}")]
    WrongBase {
        /// The delta's from-serial.
        expected: u32,
        /// The serial of the version it was applied to.
        actual: u32,
    },
    /// A record to remove is not in the version.
    #[error("the record {0} to remove is not in the zone")]
    MissingRecord(String),
    /// The result does not have the digest the delta announces.
    #[error("the result's digest {actual} differs from the published {expected}")]
    DigestMismatch {
        /// The published digest (hex).
        expected: String,
        /// The digest of the result (hex).
        actual: String,
    },
}

/// The records a delta removes that the base version has not shown yet (see
/// [`Delta::removal`]). Each removed record takes out one equal record (same name, class,
/// type, TTL and data).
#[derive(Debug)]
pub struct Removal<'d> {
    delta: &'d Delta,
    remaining: std::collections::HashMap<Vec<u8>, usize>,
}

impl Removal<'_> {
    /// False if the delta removes `record` (it is then counted as removed).
    pub fn keeps(&mut self, record: &Record) -> bool {
        if self.remaining.is_empty() {
            return true;
        }
        let identity = record_identity(record);
        match self.remaining.get_mut(&identity) {
            Some(count) => {
                *count -= 1;
                if *count == 0 {
                    self.remaining.remove(&identity);
                }
                false
            }
            None => true,
        }
    }

    /// Fails if the base version lacked a record the delta removes.
    pub fn finish(self) -> Result<(), ApplyError> {
        let remaining = &self.remaining;
        match self
            .delta
            .removed
            .iter()
            .find(|record| remaining.contains_key(&record_identity(record)))
        {
            Some(missing) => Err(ApplyError::MissingRecord(missing.to_string())),
            None => Ok(()),
        }
    }
}

fn dns<E: std::fmt::Display>(e: E) -> WireError {
    WireError::Dns(e.to_string())
}

impl Snapshot {
    /// Encodes the snapshot.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_snapshot(
            &self.origin,
            self.serial,
            &self.digest,
            self.records.len(),
            self.records.iter().cloned(),
        )
    }
}

/// True if SOA serial `serial` is newer than `than` under RFC 1982 sequence-space
/// arithmetic: the one comparison the operator and the DNS pods both use.
pub fn is_newer(serial: u32, than: u32) -> bool {
    hickory_proto::rr::SerialNumber::new(serial) > hickory_proto::rr::SerialNumber::new(than)
}

/// Encodes a snapshot from its parts, taking the records one at a time (a caller that
/// keeps them in another form need not collect them); `count` must be their number.
pub fn encode_snapshot(
    origin: &Name,
    serial: u32,
    digest: &[u8],
    count: usize,
    records: impl IntoIterator<Item = Record>,
) -> Result<Vec<u8>, WireError> {
    let mut out = header(KIND_SNAPSHOT, serial, 0);
    body_start(&mut out, origin, digest)?;
    let count_u32 = u32::try_from(count).map_err(|_| WireError::Dns("too many records".into()))?;
    out.extend_from_slice(&count_u32.to_be_bytes());
    let mut written = 0;
    for record in records {
        emit(&mut out, |encoder| record.emit(encoder))?;
        written += 1;
    }
    if written != count {
        return Err(WireError::Dns(format!(
            "{written} records given for a count of {count}"
        )));
    }
    Ok(out)
}

impl Snapshot {
    /// Checks that the records have the digest the snapshot carries.
    pub fn verify(&self) -> Result<(), ApplyError> {
        let actual = zone_digest(&self.origin, &self.records);
        if actual.as_slice() == self.digest.as_slice() {
            Ok(())
        } else {
            Err(ApplyError::DigestMismatch {
                expected: hex(&self.digest),
                actual: hex(&actual),
            })
        }
    }
}

impl Marker {
    /// Encodes a retraction.
    pub fn encode_retract(&self) -> Result<Vec<u8>, WireError> {
        let mut out = header(KIND_RETRACT, self.serial, 0);
        body_start(&mut out, &self.origin, &[])?;
        Ok(out)
    }

    /// Encodes an announcement.
    pub fn encode_announce(&self) -> Result<Vec<u8>, WireError> {
        let mut out = header(KIND_ANNOUNCE, self.serial, 0);
        body_start(&mut out, &self.origin, &self.digest)?;
        Ok(out)
    }
}

impl Delta {
    /// Applies the delta to `base` (the version `from_serial`) and returns the version it
    /// makes, checked against the delta's digest. `base` is taken, and its records are
    /// edited in place (no second copy of a large zone); on error nothing is returned.
    pub fn apply(&self, base: Snapshot) -> Result<Snapshot, ApplyError> {
        self.check_base(base.serial)?;
        let mut removal = self.removal();
        let mut records = base.records;
        records.retain(|record| removal.keeps(record));
        removal.finish()?;
        records.extend(self.added.iter().cloned());
        let next = Snapshot {
            origin: base.origin,
            serial: self.serial,
            digest: self.digest.clone(),
            records,
        };
        next.verify()?;
        Ok(next)
    }

    /// Fails unless the delta starts from the version with `serial`.
    pub fn check_base(&self, serial: u32) -> Result<(), ApplyError> {
        if serial == self.from_serial {
            Ok(())
        } else {
            Err(ApplyError::WrongBase {
                expected: self.from_serial,
                actual: serial,
            })
        }
    }

    /// The delta's removals, to take out of the base version's records one at a time: the
    /// one rule for applying a delta, whether the version is held as records (here) or as a
    /// packed index (the DNS pod).
    pub fn removal(&self) -> Removal<'_> {
        let mut remaining: std::collections::HashMap<Vec<u8>, usize> =
            std::collections::HashMap::new();
        for record in &self.removed {
            *remaining.entry(record_identity(record)).or_default() += 1;
        }
        Removal {
            delta: self,
            remaining,
        }
    }

    /// The delta that turns `old` into `new`: records in `old` but not in `new` are removed,
    /// records in `new` but not in `old` are added (TTL and data included in the comparison).
    pub fn between(old: &Snapshot, new: &Snapshot) -> Self {
        let old_keys: BTreeSet<Vec<u8>> = old.records.iter().map(record_identity).collect();
        let new_keys: BTreeSet<Vec<u8>> = new.records.iter().map(record_identity).collect();
        let removed = old
            .records
            .iter()
            .filter(|r| !new_keys.contains(&record_identity(r)))
            .cloned()
            .collect();
        let added = new
            .records
            .iter()
            .filter(|r| !old_keys.contains(&record_identity(r)))
            .cloned()
            .collect();
        Self {
            origin: new.origin.clone(),
            from_serial: old.serial,
            serial: new.serial,
            digest: new.digest.clone(),
            removed,
            added,
        }
    }

    /// One delta with the effect of `chain` (consecutive deltas, oldest first): what one
    /// removes and a later one adds back (or adds and a later one removes) cancels out, so
    /// each record appears at most once (RFC 1995 §5, condensation). `None` for an empty
    /// chain or one whose deltas do not follow each other.
    pub fn condensed<'d>(chain: impl IntoIterator<Item = &'d Delta>) -> Option<Self> {
        let mut chain = chain.into_iter();
        let first = chain.next()?;
        let mut result = first.clone();
        let keyed = |records: &mut Vec<Record>| -> BTreeMap<Vec<u8>, Record> {
            records
                .drain(..)
                .map(|r| (record_identity(&r), r))
                .collect()
        };
        for next in chain {
            if next.from_serial != result.serial {
                return None;
            }
            let mut added = keyed(&mut result.added);
            let mut removed = keyed(&mut result.removed);
            for record in &next.removed {
                let identity = record_identity(record);
                if added.remove(&identity).is_none() {
                    removed.insert(identity, record.clone());
                }
            }
            for record in &next.added {
                let identity = record_identity(record);
                if removed.remove(&identity).is_none() {
                    added.insert(identity, record.clone());
                }
            }
            result.removed = removed.into_values().collect();
            result.added = added.into_values().collect();
            result.serial = next.serial;
            result.digest.clone_from(&next.digest);
        }
        Some(result)
    }

    /// Encodes the delta.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = header(KIND_DELTA, self.serial, self.from_serial);
        body_start(&mut out, &self.origin, &self.digest)?;
        records(&mut out, &self.removed)?;
        records(&mut out, &self.added)?;
        Ok(out)
    }
}

/// A record's identity for deltas: its lowercased owner and its wire form (type, class,
/// TTL and data). A delta removes the records with the identities of its removed ones.
pub fn record_identity(record: &Record) -> Vec<u8> {
    let mut bytes = record.name.to_lowercase().to_bytes().unwrap_or_default();
    bytes.extend(record.to_bytes().unwrap_or_default());
    bytes
}

/// One record in the form a snapshot carries it (uncompressed names in their original case),
/// so the operator can check a record before it publishes it.
pub fn encode_record(record: &Record) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    emit(&mut out, |encoder| record.emit(encoder))?;
    Ok(out)
}

/// Decodes one record as a DNS pod reads it from a snapshot; bytes left over are an error.
pub fn decode_record(bytes: &[u8]) -> Result<Record, WireError> {
    let mut decoder = BinDecoder::new(bytes);
    let record = Record::read(&mut decoder).map_err(dns)?;
    if !decoder.is_empty() {
        return Err(WireError::TrailingBytes(decoder.len()));
    }
    Ok(record)
}

fn header(kind: u8, serial: u32, from_serial: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, kind, 0, 0, 0]);
    out.extend_from_slice(&serial.to_be_bytes());
    out.extend_from_slice(&from_serial.to_be_bytes());
    out
}

fn body_start(out: &mut Vec<u8>, origin: &Name, digest: &[u8]) -> Result<(), WireError> {
    let digest_len =
        u8::try_from(digest.len()).map_err(|_| WireError::DigestTooLong(digest.len()))?;
    emit(out, |encoder| origin.emit(encoder))?;
    out.push(digest_len);
    out.extend_from_slice(digest);
    Ok(())
}

fn records(out: &mut Vec<u8>, records: &[Record]) -> Result<(), WireError> {
    let count =
        u32::try_from(records.len()).map_err(|_| WireError::Dns("too many records".into()))?;
    out.extend_from_slice(&count.to_be_bytes());
    for record in records {
        emit(out, |encoder| record.emit(encoder))?;
    }
    Ok(())
}

/// Appends one item in uncompressed, case-preserving wire form.
fn emit(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut BinEncoder<'_>) -> Result<(), hickory_proto::ProtoError>,
) -> Result<(), WireError> {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    write(&mut encoder).map_err(dns)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// A snapshot read one record at a time, so a large zone is never held as `Record`s all
/// at once.
pub struct SnapshotReader<'a> {
    /// The zone's apex.
    pub origin: Name,
    /// The SOA serial of this version.
    pub serial: u32,
    /// The content digest it carries.
    pub digest: Vec<u8>,
    decoder: BinDecoder<'a>,
    remaining: u32,
    failed: bool,
}

impl std::fmt::Debug for SnapshotReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("origin", &self.origin)
            .field("serial", &self.serial)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<'a> SnapshotReader<'a> {
    /// Reads a snapshot's header; its records follow through [`Iterator::next`], each
    /// decoded when asked for. Any other kind of message is an error.
    pub fn new(bytes: &'a [u8]) -> Result<Self, WireError> {
        let opened = open(bytes)?;
        if opened.kind != KIND_SNAPSHOT {
            return Err(WireError::UnknownKind(opened.kind));
        }
        let mut decoder = opened.decoder;
        let remaining = read_count(&mut decoder)?;
        Ok(Self {
            origin: opened.origin,
            serial: opened.serial,
            digest: opened.digest,
            decoder,
            remaining,
            failed: false,
        })
    }

    /// The records not read yet.
    pub fn remaining(&self) -> usize {
        usize::try_from(self.remaining).unwrap_or(usize::MAX)
    }
}

impl Iterator for SnapshotReader<'_> {
    type Item = Result<Record, WireError>;

    /// The next record; after the last, an error if bytes are left over.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.decoder.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(WireError::TrailingBytes(self.decoder.len())));
        }
        self.remaining -= 1;
        let record = Record::read(&mut self.decoder).map_err(dns);
        self.failed = record.is_err();
        Some(record)
    }
}

/// A message's header and body start, decoded.
struct Opened<'a> {
    kind: u8,
    serial: u32,
    from_serial: u32,
    origin: Name,
    digest: Vec<u8>,
    /// The body after the digest.
    decoder: BinDecoder<'a>,
}

fn open(bytes: &[u8]) -> Result<Opened<'_>, WireError> {
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or(WireError::Truncated("header"))?;
    if &header[..3] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if header[3] != FORMAT_VERSION {
        return Err(WireError::UnsupportedVersion(header[3]));
    }
    let u32_at = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let mut decoder = BinDecoder::new(&bytes[HEADER_LEN..]);
    let origin = Name::read(&mut decoder).map_err(dns)?;
    let digest_len = usize::from(decoder.pop().map_err(dns)?.unverified());
    let digest = decoder
        .read_slice(digest_len)
        .map_err(dns)?
        .unverified()
        .to_vec();
    Ok(Opened {
        kind: header[4],
        serial: u32_at(8),
        from_serial: u32_at(12),
        origin,
        digest,
        decoder,
    })
}

/// The zone and serial of a message, read from its header and the start of its body
/// without decoding its records: enough to name a version whose records do not decode.
pub fn peek(bytes: &[u8]) -> Result<(Name, u32), WireError> {
    let opened = open(bytes)?;
    Ok((opened.origin, opened.serial))
}

/// Decodes a message.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let Opened {
        kind,
        serial,
        from_serial,
        origin,
        digest,
        mut decoder,
    } = open(bytes)?;
    let message = match kind {
        KIND_SNAPSHOT => Message::Snapshot(Snapshot {
            origin,
            serial,
            digest,
            records: read_records(&mut decoder)?,
        }),
        KIND_DELTA => {
            let removed = read_records(&mut decoder)?;
            let added = read_records(&mut decoder)?;
            Message::Delta(Delta {
                origin,
                from_serial,
                serial,
                digest,
                removed,
                added,
            })
        }
        KIND_RETRACT => Message::Retract(Marker {
            origin,
            serial,
            digest,
        }),
        KIND_ANNOUNCE => Message::Announce(Marker {
            origin,
            serial,
            digest,
        }),
        other => return Err(WireError::UnknownKind(other)),
    };
    if !decoder.is_empty() {
        return Err(WireError::TrailingBytes(decoder.len()));
    }
    Ok(message)
}

fn read_records(decoder: &mut BinDecoder<'_>) -> Result<Vec<Record>, WireError> {
    let count = read_count(decoder)?;
    (0..count)
        .map(|_| Record::read(decoder).map_err(dns))
        .collect()
}

/// A record count, checked against the bytes left (each record takes at least 11 bytes:
/// never trust a count the bytes cannot hold).
fn read_count(decoder: &mut BinDecoder<'_>) -> Result<u32, WireError> {
    let count_bytes = decoder
        .read_slice(4)
        .map_err(|_| WireError::Truncated("record count"))?
        .unverified();
    let count = u32::from_be_bytes([
        count_bytes[0],
        count_bytes[1],
        count_bytes[2],
        count_bytes[3],
    ]);
    let remaining = decoder.len();
    if usize::try_from(count).unwrap_or(usize::MAX) > remaining / 11 {
        return Err(WireError::Truncated("records"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
