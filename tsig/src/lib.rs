//! TSIG (RFC 8945) for Zonefleet: shared-secret keys ([`Key`]), verification of a signed
//! request ([`verify_request`]), and the signatures of the responses to it
//! ([`ResponseSigner`]), chained from message to message in a zone transfer (§5.3.1).
//! The client side ([`sign_request`], [`ResponseVerifier`]) signs NOTIFY messages and lets
//! tests check what a server sent.
//!
//! The record format and the data a MAC covers are hickory-proto's; the HMACs are
//! RustCrypto's. Everything works on encoded messages, so any encoder's output can be
//! signed: the signer appends the TSIG record and counts it in the header.

mod key;

pub use key::{Algorithm, Key, KeyError};

use hickory_proto::rr::{Name, rdata::tsig::signed_bitmessage_to_buf};

pub use hickory_proto::rr::rdata::tsig::TsigError;

/// The fudge (seconds of clock difference allowed) of every signature we make, and the
/// most we accept: RFC 8945 §10 recommends 300.
pub const FUDGE: u16 = 300;

/// Record type TSIG.
const TYPE_TSIG: u16 = 250;
/// Class ANY.
const CLASS_ANY: u16 = 255;
/// Where ARCOUNT sits in a message header.
const ARCOUNT_AT: usize = 10;

/// Why a signed request is not accepted, and how to say so (RFC 8945 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The TSIG record or the message around it does not parse, or the MAC is longer
    /// than the algorithm's: answer FORMERR, unsigned.
    Malformed,
    /// A key or algorithm this server does not have for the request: NOTAUTH, BADKEY,
    /// unsigned.
    BadKey(Box<Unsigned>),
    /// A MAC that does not verify: NOTAUTH, BADSIG, unsigned.
    BadSig(Box<Unsigned>),
    /// A MAC shorter than the algorithm's: NOTAUTH, BADTRUNC, unsigned (truncated MACs
    /// are not accepted).
    BadTrunc(Box<Unsigned>),
    /// A good MAC outside the time window: NOTAUTH, BADTIME, signed, with our time.
    BadTime(Box<ResponseSigner>),
}

impl Failure {
    /// The TSIG error this failure answers with, if any.
    pub fn tsig_error(&self) -> Option<TsigError> {
        match self {
            Self::Malformed => None,
            Self::BadKey(_) => Some(TsigError::BadKey),
            Self::BadSig(_) => Some(TsigError::BadSig),
            Self::BadTrunc(_) => Some(TsigError::BadTrunc),
            Self::BadTime(_) => Some(TsigError::BadTime),
        }
    }

    /// Adds to an error response what this failure needs: nothing for a malformed request,
    /// an unsigned TSIG record naming the error, or (BADTIME) a signature with our time.
    pub fn finish(self, response: &mut Vec<u8>) {
        match self {
            Self::Malformed => {}
            Self::BadKey(unsigned) | Self::BadSig(unsigned) | Self::BadTrunc(unsigned) => {
                unsigned.append(response);
            }
            Self::BadTime(mut signer) => signer.sign(response),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed TSIG record"),
            Self::BadKey(unsigned) => write!(f, "BADKEY: unknown key {}", unsigned.key_name),
            Self::BadSig(unsigned) => write!(f, "BADSIG: wrong MAC for key {}", unsigned.key_name),
            Self::BadTrunc(unsigned) => {
                write!(f, "BADTRUNC: truncated MAC for key {}", unsigned.key_name)
            }
            Self::BadTime(signer) => write!(
                f,
                "BADTIME: signed at {} by key {}, more than {FUDGE} s from now",
                signer.time,
                signer.key.name()
            ),
        }
    }
}

/// The unsigned TSIG record of a BADKEY, BADSIG or BADTRUNC response: the request's key
/// name and algorithm, an empty MAC and the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsigned {
    key_name: Name,
    algorithm: Name,
    time: u64,
    original_id: u16,
    error: TsigError,
}

impl Unsigned {
    fn append(&self, message: &mut Vec<u8>) {
        let rdata = TsigFields {
            algorithm: &self.algorithm,
            time: self.time,
            fudge: FUDGE,
            original_id: self.original_id,
            error: Some(self.error),
            other: &[],
        };
        append_record(message, &self.key_name, &rdata, &[]);
    }
}

/// Verifies a request that carries a TSIG record (the last additional record), with the
/// key `find_key` gives for the record's key name, at Unix time `now`. On success, the
/// signer of the responses.
pub fn verify_request<'k>(
    message: &[u8],
    find_key: impl FnOnce(&Name) -> Option<&'k Key>,
    now: u64,
) -> Result<ResponseSigner, Failure> {
    let (covered, record) =
        signed_bitmessage_to_buf(message, None, true).map_err(|_| Failure::Malformed)?;
    let tsig = &record.data;
    let key_name = record.name.to_lowercase();
    let unsigned = |error| {
        Box::new(Unsigned {
            key_name: key_name.clone(),
            algorithm: tsig.algorithm.to_name(),
            time: tsig.time,
            original_id: tsig.oid,
            error,
        })
    };
    let key = find_key(&key_name)
        .filter(|key| Algorithm::from_hickory(&tsig.algorithm) == Some(key.algorithm()))
        .ok_or_else(|| Failure::BadKey(unsigned(TsigError::BadKey)))?;
    let full = key.algorithm().mac_len();
    if tsig.mac.len() > full {
        return Err(Failure::Malformed);
    }
    if tsig.mac.len() < full {
        return Err(Failure::BadTrunc(unsigned(TsigError::BadTrunc)));
    }
    if !key.verifies(&covered, &tsig.mac) {
        return Err(Failure::BadSig(unsigned(TsigError::BadSig)));
    }
    let mut signer = ResponseSigner {
        key: key.clone(),
        previous_mac: tsig.mac.clone(),
        first: true,
        time: now,
        original_id: tsig.oid,
        error: None,
        other: Vec::new(),
    };
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge.min(FUDGE)) {
        // §5.2.3: signed, with the request's time and ours in Other Data.
        signer.time = tsig.time;
        signer.error = Some(TsigError::BadTime);
        signer.other = now.to_be_bytes()[2..].to_vec();
        return Err(Failure::BadTime(Box::new(signer)));
    }
    Ok(signer)
}

/// Signs the responses to one verified request: the first with the request's MAC, each
/// later one (the messages of a zone transfer) with the MAC before it (RFC 8945 §5.3.1).
/// Every message is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseSigner {
    key: Key,
    previous_mac: Vec<u8>,
    first: bool,
    time: u64,
    original_id: u16,
    error: Option<TsigError>,
    other: Vec<u8>,
}

impl ResponseSigner {
    /// The key that signed the request.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Signs `message` (a complete response without TSIG): appends the TSIG record and
    /// counts it in the header.
    pub fn sign(&mut self, message: &mut Vec<u8>) {
        let algorithm = wire_algorithm(self.key.algorithm());
        let fields = TsigFields {
            algorithm: &algorithm,
            time: self.time,
            fudge: FUDGE,
            original_id: self.original_id,
            error: self.error,
            other: &self.other,
        };
        let mut covered = Vec::with_capacity(message.len() + 128);
        push_u16(&mut covered, self.previous_mac.len());
        covered.extend_from_slice(&self.previous_mac);
        covered.extend_from_slice(message);
        if self.first {
            fields.variables(self.key.name(), &mut covered);
        } else {
            fields.timers(&mut covered);
        }
        let mac = self.key.mac(&covered);
        append_record(message, self.key.name(), &fields, &mac);
        self.previous_mac = mac;
        self.first = false;
    }

    /// The bytes a signature adds to a message: what an encoder must leave free.
    pub fn overhead(&self) -> usize {
        record_len(
            self.key.name(),
            &wire_algorithm(self.key.algorithm()),
            self.key.algorithm().mac_len(),
            self.other.len(),
        )
    }
}

/// Signs a request (a NOTIFY, or a test's query) with `key` at Unix time `now`: appends
/// the TSIG record. Returns the verifier of the responses.
pub fn sign_request(message: &mut Vec<u8>, key: &Key, now: u64) -> ResponseVerifier {
    let original_id = message
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    let algorithm = wire_algorithm(key.algorithm());
    let fields = TsigFields {
        algorithm: &algorithm,
        time: now,
        fudge: FUDGE,
        original_id,
        error: None,
        other: &[],
    };
    let mut covered = message.clone();
    fields.variables(key.name(), &mut covered);
    let mac = key.mac(&covered);
    append_record(message, key.name(), &fields, &mac);
    ResponseVerifier {
        key: key.clone(),
        previous_mac: mac,
        first: true,
    }
}

/// Checks the signed responses to a request, in order.
#[derive(Clone, Debug)]
pub struct ResponseVerifier {
    key: Key,
    previous_mac: Vec<u8>,
    first: bool,
}

/// Why a response's signature is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    /// No TSIG record, or one that does not parse.
    #[error("the response is not signed, or its TSIG record does not parse")]
    Unsigned,
    /// Signed with another key or algorithm.
    #[error("the response is signed with another key")]
    WrongKey,
    /// The MAC does not verify.
    #[error("the response's MAC does not verify")]
    BadMac,
    /// The server reports a TSIG error.
    #[error("the server reports TSIG error {0:?}")]
    Reported(TsigError),
}

impl ResponseVerifier {
    /// Verifies the next response.
    pub fn verify(&mut self, message: &[u8]) -> Result<(), ResponseError> {
        let (covered, record) =
            signed_bitmessage_to_buf(message, Some(&self.previous_mac), self.first)
                .map_err(|_| ResponseError::Unsigned)?;
        let tsig = &record.data;
        if let Some(error) = tsig.error {
            return Err(ResponseError::Reported(error));
        }
        if record.name.to_lowercase() != *self.key.name()
            || Algorithm::from_hickory(&tsig.algorithm) != Some(self.key.algorithm())
        {
            return Err(ResponseError::WrongKey);
        }
        if !self.key.verifies(&covered, &tsig.mac) {
            return Err(ResponseError::BadMac);
        }
        self.previous_mac = tsig.mac.clone();
        self.first = false;
        Ok(())
    }
}

/// Seconds since 1970: the time TSIG signs with and checks against.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The TSIG RDATA fields besides the MAC.
struct TsigFields<'a> {
    algorithm: &'a Name,
    time: u64,
    fudge: u16,
    original_id: u16,
    error: Option<TsigError>,
    other: &'a [u8],
}

impl TsigFields<'_> {
    fn error_code(&self) -> u16 {
        self.error.map_or(0, u16::from)
    }

    /// The TSIG variables a first message's MAC covers (§4.3.3), canonical names.
    fn variables(&self, key_name: &Name, out: &mut Vec<u8>) {
        push_name(out, key_name);
        push_u16(out, usize::from(CLASS_ANY));
        out.extend_from_slice(&0u32.to_be_bytes());
        push_name(out, self.algorithm);
        self.timers(out);
        out.extend_from_slice(&self.error_code().to_be_bytes());
        push_u16(out, self.other.len());
        out.extend_from_slice(self.other);
    }

    /// Time Signed and Fudge, all a later message's MAC covers of them (§5.3.1).
    fn timers(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.time.to_be_bytes()[2..]);
        out.extend_from_slice(&self.fudge.to_be_bytes());
    }
}

/// The algorithm's name as we write it: lowercase.
fn wire_algorithm(algorithm: Algorithm) -> Name {
    algorithm.to_hickory().to_name().to_lowercase()
}

fn record_len(key_name: &Name, algorithm: &Name, mac_len: usize, other_len: usize) -> usize {
    let name_len = |name: &Name| name.iter().map(|label| label.len() + 1).sum::<usize>() + 1;
    name_len(key_name) + 10 + name_len(algorithm) + 16 + mac_len + other_len
}

/// Appends a TSIG record and counts it in ARCOUNT.
fn append_record(message: &mut Vec<u8>, key_name: &Name, fields: &TsigFields<'_>, mac: &[u8]) {
    push_name(message, key_name);
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let rdlength_at = message.len();
    message.extend_from_slice(&[0, 0]);
    push_name(message, fields.algorithm);
    fields.timers(message);
    push_u16(message, mac.len());
    message.extend_from_slice(mac);
    message.extend_from_slice(&fields.original_id.to_be_bytes());
    message.extend_from_slice(&fields.error_code().to_be_bytes());
    push_u16(message, fields.other.len());
    message.extend_from_slice(fields.other);
    let rdlength = u16::try_from(message.len() - rdlength_at - 2).unwrap_or(u16::MAX);
    message[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
    if let Some(count) = message.get_mut(ARCOUNT_AT..ARCOUNT_AT + 2) {
        let arcount = u16::from_be_bytes([count[0], count[1]]).saturating_add(1);
        count.copy_from_slice(&arcount.to_be_bytes());
    }
}

/// A name uncompressed and lowercase (the canonical form MACs cover).
fn push_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

fn push_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u16::try_from(value).unwrap_or(u16::MAX).to_be_bytes());
}

#[cfg(test)]
mod tests;
