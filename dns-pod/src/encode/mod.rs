//! Putting answers on the wire: one encoder for every response, whichever path answers.
//!
//! - [`writer`]: the message writer (names compressed, a size limit, pointers noted);
//! - this module: a response to one question from an index [`Answer`], sized for the
//!   transport ([`Fit`]), error responses and zone transfers;
//! - [`templates`] and [`relocatable`]: answers precomputed per zone version with the same
//!   functions, which the UDP fast path copies.
//!
//! Responses are written from the index's packed records as they are; nothing is decoded.
//! The question is written lowercase while the rest is compressed against it, then set
//! back to the client's case, so a response depends on the client's case only in the
//! question itself (as NSD's do), and a precomputed answer needs only its question
//! patched.

pub mod relocatable;
pub mod templates;
mod writer;

use std::sync::Arc;

use hickory_proto::{
    op::{Edns, Metadata, ResponseCode},
    rr::{Record, RecordType},
};
use tracing::warn;
use zonefleet_wire::Delta;

pub use self::writer::{Full, HEADER_LEN, MessageWriter, Pointer, Section, name_len};
use crate::authority::{Answer, AnswerRrset, Rcode, ZoneIndex};

/// The largest UDP response we send, whatever the client offers (DNS Flag Day 2020).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
/// The UDP limit for clients without EDNS (RFC 1035 §4.2.1).
pub const UDP_PAYLOAD_PLAIN: u16 = 512;
/// The length of our OPT record (root owner, no options).
pub const OPT_LEN: usize = 11;
/// Room every transfer message leaves for a TSIG record (RFC 8945): a key name of up to
/// 255 bytes, our longest algorithm name, a 64-byte MAC and 6 bytes of other data fit.
pub const SIGNATURE_ROOM: usize = 512;
/// The most bytes of records per message of a zone transfer.
const TRANSFER_MESSAGE_BYTES: usize = 16 * 1024;
/// Class IN.
const CLASS_IN: u16 = 1;
/// Type SOA.
const TYPE_SOA: u16 = 6;

/// The largest response a UDP client can take: its EDNS payload size (at least 512), capped
/// at [`UDP_PAYLOAD_CAP`]; 512 without EDNS.
pub fn udp_limit(request: Option<&Edns>) -> u16 {
    udp_limit_for(request.map(Edns::max_payload))
}

/// [`udp_limit`] from the EDNS payload size offered, if any.
pub fn udp_limit_for(edns_payload: Option<u16>) -> u16 {
    edns_payload.map_or(UDP_PAYLOAD_PLAIN, |payload| {
        payload.clamp(UDP_PAYLOAD_PLAIN, UDP_PAYLOAD_CAP)
    })
}

/// The header fields of a response that come from its request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The request's ID.
    pub id: u16,
    /// The request's opcode.
    pub opcode: u8,
    /// The request's RD bit.
    pub recursion_desired: bool,
    /// The request's CD bit.
    pub checking_disabled: bool,
    /// Whether the response carries our OPT record (the request had EDNS).
    pub edns: bool,
}

impl Reply {
    /// The reply to a request with this header.
    pub fn to(request: &Metadata, edns: bool) -> Self {
        Self {
            id: request.id,
            opcode: u8::from(request.op_code),
            recursion_desired: request.recursion_desired,
            checking_disabled: request.checking_disabled,
            edns,
        }
    }

    /// The reply to the canonical query precomputed answers are made for: ID 0, opcode
    /// QUERY, no flags, no EDNS.
    pub fn canonical() -> Self {
        Self::default()
    }

    /// The header flags of a response with this `rcode` (its low 4 bits), AA and TC.
    fn flags(&self, rcode: ResponseCode, authoritative: bool, truncated: bool) -> u16 {
        let mut flags = 0x8000 | (u16::from(self.opcode & 0x0F) << 11);
        flags |= u16::from(authoritative) << 10;
        flags |= u16::from(truncated) << 9;
        flags |= u16::from(self.recursion_desired) << 8;
        flags |= u16::from(self.checking_disabled) << 4;
        flags | (u16::from(rcode.low()))
    }

    /// Our OPT record, if the request had EDNS (payload [`UDP_PAYLOAD_CAP`], version 0, no
    /// DNSSEC, no options), with the upper bits of `rcode`.
    fn opt(&self, writer: &mut MessageWriter<'_>, rcode: ResponseCode) {
        if self.edns {
            writer.opt(UDP_PAYLOAD_CAP, rcode.high());
        }
    }

    /// `limit` less the room our OPT record takes.
    fn room(&self, limit: u16) -> usize {
        usize::from(limit).saturating_sub(if self.edns { OPT_LEN } else { 0 })
    }
}

/// A question as the client sent it.
#[derive(Clone, Copy, Debug)]
pub struct Question<'q> {
    /// The name in wire form, uncompressed, in the client's case.
    pub name: &'q [u8],
    /// The type code.
    pub qtype: u16,
    /// The class code.
    pub qclass: u16,
}

impl Question<'_> {
    /// Writes the question with its name lowercase (see the module documentation).
    fn write_lowercase(&self, writer: &mut MessageWriter<'_>) -> Result<(), Full> {
        // Length bytes are below 64, so lowercasing the whole name touches letters only.
        let lowercase = self.name.to_ascii_lowercase();
        writer.question(&lowercase, self.qtype, self.qclass)
    }
}

/// The sections that fit the limit, and whether the response must say TC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Everything fits.
    Whole,
    /// Everything but the additional section fits. TC is set when that section held glue
    /// a referral needs (RFC 9471), and left clear for optional data.
    WithoutAdditionals {
        /// Whether TC must be set.
        truncated: bool,
    },
    /// Only the header, question and EDNS fit: TC, and the client retries over TCP.
    Truncated,
}

impl Fit {
    /// True if something the client needs was left out (the response says TC).
    pub fn truncated(self) -> bool {
        matches!(
            self,
            Self::Truncated | Self::WithoutAdditionals { truncated: true }
        )
    }
}

/// The response code of an answer on the wire.
pub fn response_code(rcode: Rcode) -> ResponseCode {
    match rcode {
        Rcode::NoError => ResponseCode::NoError,
        Rcode::NxDomain => ResponseCode::NXDomain,
        Rcode::Refused => ResponseCode::Refused,
    }
}

/// Writes the response to `question` with a zone's `answer` into `out`, within `limit`
/// bytes, dropping what does not fit; returns how it fit.
pub fn answer(
    reply: Reply,
    question: Question<'_>,
    answer: &Answer<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> Fit {
    write_answer(reply, question, answer, limit, out, false).0
}

/// [`answer`], also returning every compression pointer written and its target.
pub fn answer_noting_pointers(
    reply: Reply,
    question: Question<'_>,
    answer: &Answer<'_>,
    limit: u16,
    out: &mut Vec<u8>,
) -> (Fit, Vec<Pointer>) {
    write_answer(reply, question, answer, limit, out, true)
}

fn write_answer(
    reply: Reply,
    question: Question<'_>,
    answer: &Answer<'_>,
    limit: u16,
    out: &mut Vec<u8>,
    note_pointers: bool,
) -> (Fit, Vec<Pointer>) {
    let rcode = response_code(answer.rcode);
    let mut writer = MessageWriter::new(out, reply.room(limit));
    if note_pointers {
        writer.note_pointers();
    }
    // The question always fits: a name is at most 255 bytes, a limit at least 512.
    let _ = question.write_lowercase(&mut writer);
    let after_question = writer.mark();
    let sections = rrsets(&mut writer, answer, Section::Answer, &answer.answers)
        .and_then(|()| rrsets(&mut writer, answer, Section::Authority, &answer.authority));
    let fit = match sections {
        Err(Full) => {
            writer.rewind(after_question);
            Fit::Truncated
        }
        Ok(()) => {
            let before_additionals = writer.mark();
            match rrsets(
                &mut writer,
                answer,
                Section::Additional,
                &answer.additionals,
            ) {
                Ok(()) => Fit::Whole,
                Err(Full) => {
                    writer.rewind(before_additionals);
                    // A referral's additionals are glue (answer empty, AA clear).
                    let referral = !answer.authoritative && answer.answers.is_empty();
                    Fit::WithoutAdditionals {
                        truncated: referral,
                    }
                }
            }
        }
    };
    reply.opt(&mut writer, rcode);
    let pointers = writer.pointers().to_vec();
    let flags = Reply { opcode: 0, ..reply }.flags(rcode, answer.authoritative, fit.truncated());
    let out = writer.finish(reply.id, flags);
    restore_question_case(out, question.name);
    (fit, pointers)
}

/// Writes the RRsets of one section.
fn rrsets(
    writer: &mut MessageWriter<'_>,
    answer: &Answer<'_>,
    section: Section,
    rrsets: &[AnswerRrset<'_>],
) -> Result<(), Full> {
    for part in rrsets {
        let (rtype, class) = (part.rrset.type_code(), part.rrset.class_code());
        let records = part
            .rrset
            .packed()
            .take(if part.first_only { 1 } else { usize::MAX });
        for record in records {
            let owner = answer.owner_name(part.owner, record.owner);
            let ttl = part.ttl.unwrap_or(record.ttl);
            writer.record(section, owner, rtype, class, ttl, record.data)?;
        }
    }
    Ok(())
}

/// Sets the first question's name back to the client's case (same bytes but for case).
fn restore_question_case(out: &mut [u8], name: &[u8]) {
    if let Some(written) = out.get_mut(HEADER_LEN..HEADER_LEN + name.len()) {
        written.copy_from_slice(name);
    }
}

/// Writes an error response to `questions` into `out`: the questions echoed as sent,
/// empty sections, our OPT record if the request had EDNS.
pub fn error(reply: Reply, questions: &[Question<'_>], rcode: ResponseCode, out: &mut Vec<u8>) {
    let mut writer = MessageWriter::new(out, usize::from(u16::MAX) - OPT_LEN);
    for question in questions {
        if writer
            .question(question.name, question.qtype, question.qclass)
            .is_err()
        {
            break;
        }
    }
    reply.opt(&mut writer, rcode);
    let flags = reply.flags(rcode, false, false);
    writer.finish(reply.id, flags);
}

/// One record to transfer: owner (wire form), type, class, TTL and data (wire form, names
/// uncompressed).
type TransferRecord<'r> = (&'r [u8], u16, u16, u32, &'r [u8]);

/// A zone transfer of `zone` (RFC 5936 §2.2): the SOA first and last, every other record
/// in canonical order between, in messages of about [`TRANSFER_MESSAGE_BYTES`] each
/// carrying the question.
pub fn transfer(reply: Reply, question: Question<'_>, zone: &ZoneIndex) -> Vec<Vec<u8>> {
    let apex = zone.apex();
    let soa = apex.rrset(RecordType::SOA);
    let soa_record = soa.and_then(|soa| soa.packed().next());
    let Some((soa, soa_record)) = soa.zip(soa_record) else {
        return Vec::new();
    };
    let soa_entry = (
        soa_record.owner.unwrap_or(apex.wire_name()),
        TYPE_SOA,
        soa.class_code(),
        soa_record.ttl,
        soa_record.data,
    );
    let others = zone.nodes().flat_map(|node| {
        node.rrsets()
            .filter(|rrset| rrset.type_code() != TYPE_SOA)
            .flat_map(move |rrset| {
                rrset.packed().map(move |record| {
                    (
                        record.owner.unwrap_or(node.wire_name()),
                        rrset.type_code(),
                        rrset.class_code(),
                        record.ttl,
                        record.data,
                    )
                })
            })
    });
    transfer_messages(
        reply,
        question,
        std::iter::once(soa_entry)
            .chain(others)
            .chain(std::iter::once(soa_entry)),
    )
}

/// An incremental zone transfer (RFC 1995 §4) of `zone`, whose version the `deltas` (oldest
/// first, from the client's version) lead to: the current SOA; for each delta the SOA it
/// starts from, the records it removes, the SOA it makes and the records it adds; the
/// current SOA again. With no delta (the client has this version) the current SOA alone.
pub fn incremental(
    reply: Reply,
    question: Question<'_>,
    zone: &ZoneIndex,
    deltas: &[Arc<Delta>],
) -> Vec<Vec<u8>> {
    let Some(current) = wire_record(zone.soa()) else {
        return Vec::new();
    };
    let soa_of = |records: &[Record]| {
        records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .and_then(wire_record)
    };
    let others = |records: &[Record]| -> Vec<OwnedRecord> {
        records
            .iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .filter_map(wire_record)
            .collect()
    };
    let mut records = vec![current.clone()];
    for delta in deltas {
        let (Some(old_soa), Some(new_soa)) = (soa_of(&delta.removed), soa_of(&delta.added)) else {
            // A delta without its SOAs cannot be told as a difference: send the zone whole.
            return transfer(reply, question, zone);
        };
        records.push(old_soa);
        records.extend(others(&delta.removed));
        records.push(new_soa);
        records.extend(others(&delta.added));
    }
    if !deltas.is_empty() {
        records.push(current);
    }
    transfer_messages(
        reply,
        question,
        records.iter().map(|(owner, rtype, class, ttl, data)| {
            (owner.as_slice(), *rtype, *class, *ttl, data.as_slice())
        }),
    )
}

/// A record in the form [`TransferRecord`] borrows.
type OwnedRecord = (Vec<u8>, u16, u16, u32, Vec<u8>);

/// A hickory record's owner and data in wire form (names uncompressed).
fn wire_record(record: &Record) -> Option<OwnedRecord> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let owner = record.name.to_bytes().ok()?;
    let mut data = Vec::new();
    let mut encoder = BinEncoder::new(&mut data);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.data.emit(&mut encoder).ok()?;
    Some((
        owner,
        u16::from(record.record_type()),
        u16::from(record.dns_class),
        record.ttl,
        data,
    ))
}

/// Transfer records in messages of about [`TRANSFER_MESSAGE_BYTES`], each carrying the
/// question, AA set.
fn transfer_messages<'r>(
    reply: Reply,
    question: Question<'_>,
    records: impl Iterator<Item = TransferRecord<'r>>,
) -> Vec<Vec<u8>> {
    let flags = reply.flags(ResponseCode::NoError, true, false);
    let mut messages = Vec::new();
    let mut buffer = Vec::new();
    let mut writer = transfer_message(&mut buffer, question);
    for (owner, rtype, class, ttl, data) in records {
        if writer.len() >= TRANSFER_MESSAGE_BYTES
            || writer
                .record(Section::Answer, owner, rtype, class, ttl, data)
                .is_err()
        {
            if writer.count(Section::Answer) > 0 {
                messages.push(writer.finish(reply.id, flags).clone());
                writer = transfer_message(&mut buffer, question);
            }
            if writer.count(Section::Answer) == 0
                && writer
                    .record(Section::Answer, owner, rtype, class, ttl, data)
                    .is_err()
            {
                warn!(
                    record_type = rtype,
                    "a record too large for a transfer message is left out"
                );
            }
        }
    }
    if writer.count(Section::Answer) > 0 {
        messages.push(writer.finish(reply.id, flags).clone());
    }
    messages
}

fn transfer_message<'b>(buffer: &'b mut Vec<u8>, question: Question<'_>) -> MessageWriter<'b> {
    let mut writer = MessageWriter::new(buffer, usize::from(u16::MAX) - SIGNATURE_ROOM);
    let _ = writer.question(question.name, question.qtype, question.qclass);
    writer
}

/// The canonical response to `lowercase_name`/`qtype` of class IN with `answer`: what the
/// fast path's templates hold (ID 0, no flags, lowercase question, no EDNS, no limit).
pub fn canonical(lowercase_name: &[u8], qtype: u16, answer: &Answer<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let question = Question {
        name: lowercase_name,
        qtype,
        qclass: CLASS_IN,
    };
    self::answer(Reply::canonical(), question, answer, u16::MAX, &mut out);
    out
}
