//! The zone version format shared by the operator and the DNS pods.
//!
//! A message is a 16-byte header followed by a body of DNS wire-format data (RFC 1035
//! §4.1.3 resource records, names uncompressed and in their original case):
//!
//! ```text
//! header  "ZFW" | format version (1) | kind (1 snapshot, 2 delta) | flags (0) | reserved (2)
//!         | serial (u32) | from serial (u32, deltas; 0 in snapshots)
//! body    origin (wire name) | digest length (u8) | digest
//!         | snapshot: count (u32) | records
//!         | delta:    removed count (u32) | records | added count (u32) | records
//! ```
//!
//! All integers are big-endian. A delta follows the IXFR model (RFC 1995): the records
//! removed from version `from serial` and those added to make version `serial`. Decoding
//! never panics: malformed input is an error.

use std::collections::BTreeSet;

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

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A whole version.
    Snapshot(Snapshot),
    /// A change.
    Delta(Delta),
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

fn dns<E: std::fmt::Display>(e: E) -> WireError {
    WireError::Dns(e.to_string())
}

impl Snapshot {
    /// Encodes the snapshot.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = header(KIND_SNAPSHOT, self.serial, 0);
        body_start(&mut out, &self.origin, &self.digest)?;
        records(&mut out, &self.records)?;
        Ok(out)
    }
}

impl Delta {
    /// The delta that turns `old` into `new`: records in `old` but not in `new` are removed,
    /// records in `new` but not in `old` are added (TTL and data included in the comparison).
    pub fn between(old: &Snapshot, new: &Snapshot) -> Result<Self, WireError> {
        let key = |r: &Record| -> Result<Vec<u8>, WireError> {
            let mut bytes = r.name.to_lowercase().to_bytes().map_err(dns)?;
            bytes.extend(r.to_bytes().map_err(dns)?);
            Ok(bytes)
        };
        let old_keys = old
            .records
            .iter()
            .map(key)
            .collect::<Result<BTreeSet<_>, _>>()?;
        let new_keys = new
            .records
            .iter()
            .map(key)
            .collect::<Result<BTreeSet<_>, _>>()?;
        let mut removed = Vec::new();
        for record in &old.records {
            if !new_keys.contains(&key(record)?) {
                removed.push(record.clone());
            }
        }
        let mut added = Vec::new();
        for record in &new.records {
            if !old_keys.contains(&key(record)?) {
                added.push(record.clone());
            }
        }
        Ok(Self {
            origin: new.origin.clone(),
            from_serial: old.serial,
            serial: new.serial,
            digest: new.digest.clone(),
            removed,
            added,
        })
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

/// Decodes a message.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or(WireError::Truncated("header"))?;
    if &header[..3] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if header[3] != FORMAT_VERSION {
        return Err(WireError::UnsupportedVersion(header[3]));
    }
    let kind = header[4];
    let u32_at = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (serial, from_serial) = (u32_at(8), u32_at(12));
    let body = &bytes[HEADER_LEN..];
    let mut decoder = BinDecoder::new(body);
    let origin = Name::read(&mut decoder).map_err(dns)?;
    let digest_len = usize::from(decoder.pop().map_err(dns)?.unverified());
    let digest = decoder
        .read_slice(digest_len)
        .map_err(dns)?
        .unverified()
        .to_vec();
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
        other => return Err(WireError::UnknownKind(other)),
    };
    if !decoder.is_empty() {
        return Err(WireError::TrailingBytes(body.len() - decoder.index()));
    }
    Ok(message)
}

fn read_records(decoder: &mut BinDecoder<'_>) -> Result<Vec<Record>, WireError> {
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
    // Each record takes at least 11 bytes: never trust a count the bytes cannot hold.
    let remaining = decoder.len();
    if usize::try_from(count).unwrap_or(usize::MAX) > remaining / 11 {
        return Err(WireError::Truncated("records"));
    }
    (0..count)
        .map(|_| Record::read(decoder).map_err(dns))
        .collect()
}

#[cfg(test)]
mod tests;
