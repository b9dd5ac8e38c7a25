//! Answers precomputed for a whole family of names: every name below a known suffix that
//! gets the same sections — the zone's NXDOMAIN and no-data answers (suffix: the apex), a
//! delegation's referral (suffix: the zone cut), and a wildcard's synthesised answer
//! (suffix: its closest encloser, and every owner the name asked).
//!
//! Such an answer's bytes depend on the question only through where the suffix sits in
//! it: the encoder compresses names against the question, so each pointer into the
//! suffix, and each pointer past the question, moves with the length of the part of the
//! name before the suffix. A pointer to the whole question name (a synthesised owner)
//! stays at offset 12. [`Relocatable`] keeps the bytes after the question with the
//! pointers that move, and writes an answer for any name of the family by copying them
//! and adding the prefix length to those pointers.
//!
//! The pointers that move are found by encoding the answer for two sample names of
//! different lengths and comparing, and the result is checked against fresh encodings of
//! three more sample names (among them one with [`MAX_PREFIX_LABELS`] labels) before it is
//! used. Two things could make another name compress differently, and [`Relocatable::write`]
//! leaves those names to the index: a name deeper than the samples (more compression
//! candidates than the encoder keeps), and a name whose label just above the suffix also
//! appears in the answer (a name of the answer could then point into the question beyond
//! the suffix).

use hickory_proto::{op::ResponseCode, rr::Name, serialize::binary::BinEncodable};

use crate::serve::response::HEADER_LEN;

/// The deepest prefix (labels before the suffix) a relocated answer is written for; the
/// deepest sample checked has this many labels.
pub const MAX_PREFIX_LABELS: usize = 8;

/// The bytes of a question after its name: type and class.
const QUESTION_TAIL: usize = 4;
/// The bits of a compression pointer that hold the offset.
const POINTER_OFFSET: u16 = 0x3FFF;

/// An answer for every name below a suffix, relocatable to any of them.
#[derive(Debug)]
pub struct Relocatable {
    /// The header of the canonical response (ID 0, RD and CD clear).
    header: [u8; HEADER_LEN],
    /// Everything after the question, as if the question name were the suffix itself.
    body: Box<[u8]>,
    /// Offsets in `body` of the pointers that move with the suffix.
    pointers: Box<[u16]>,
    /// The length of the suffix in wire form.
    suffix_len: usize,
}

impl Relocatable {
    /// Derives the relocatable form of the answers below `suffix`. `encode` gives the
    /// canonical response (ID 0, no flags, lowercase question, no EDNS) to a name below
    /// `suffix`, or `None` if it has no such answer. `None` if the answers are not one
    /// family (they differ in more than the moving pointers).
    pub fn derive(suffix: &Name, encode: impl Fn(&Name) -> Option<Vec<u8>>) -> Option<Self> {
        let suffix_len = suffix.to_bytes().ok()?.len();
        let sample = |prefix: &[&str]| -> Option<(Name, Vec<u8>)> {
            let name = Name::from_labels(prefix.iter().map(|l| l.as_bytes()))
                .ok()?
                .append_domain(suffix)
                .ok()?;
            let bytes = encode(&name)?;
            Some((name, bytes))
        };
        let (short_name, short) = sample(&["-"])?;
        let (long_name, long) = sample(&["--", "---"])?;
        let (short_end, long_end) = (question_end(&short_name)?, question_end(&long_name)?);
        let short_body = short.get(short_end..)?;
        let long_body = long.get(long_end..)?;
        if short.get(..HEADER_LEN) != long.get(..HEADER_LEN) || short_body.len() != long_body.len()
        {
            return None;
        }
        let shift = u16::try_from(long_end.checked_sub(short_end)?).ok()?;
        let pointers = moving_pointers(short_body, long_body, shift)?;
        let mut body = short_body.to_vec();
        let short_prefix = u16::try_from(short_name.to_bytes().ok()?.len() - suffix_len).ok()?;
        for &at in &pointers {
            add_to_pointer(&mut body, usize::from(at), short_prefix, false)?;
        }
        let relocatable = Self {
            header: short.get(..HEADER_LEN)?.try_into().ok()?,
            body: body.into_boxed_slice(),
            pointers: pointers.into_boxed_slice(),
            suffix_len,
        };
        let deepest = ["_"; MAX_PREFIX_LABELS];
        for prefix in [&["_-"][..], &["-", "_"][..], &deepest[..]] {
            let (name, expected) = sample(prefix)?;
            let question = expected.get(HEADER_LEN..question_end(&name)?)?;
            let mut written = Vec::new();
            relocatable.relocate(question, name.to_bytes().ok()?.len(), &mut written)?;
            if written != expected {
                return None;
            }
        }
        Some(relocatable)
    }

    /// Writes the canonical response to a query for `lowercase_name` (a name below the
    /// suffix, in lowercase wire form) with `question` (as sent) into `out`, if it fits in
    /// `limit` bytes with `extra` more; returns the response code. `None` for the names
    /// this answer cannot be relocated to (see the module documentation).
    pub fn write(
        &self,
        lowercase_name: &[u8],
        question: &[u8],
        limit: usize,
        extra: usize,
        out: &mut Vec<u8>,
    ) -> Option<ResponseCode> {
        let prefix_len = lowercase_name.len().checked_sub(self.suffix_len)?;
        let mut labels = 0;
        let mut last_label: &[u8] = &[];
        let mut at = 0;
        while at < prefix_len {
            let len = usize::from(lowercase_name[at]);
            last_label = lowercase_name.get(at..at + 1 + len)?;
            at += 1 + len;
            labels += 1;
        }
        if at != prefix_len || labels > MAX_PREFIX_LABELS || self.mentions(last_label) {
            return None;
        }
        if HEADER_LEN + question.len() + self.body.len() + extra > limit {
            return None;
        }
        self.relocate(question, lowercase_name.len(), out)?;
        Some(ResponseCode::from(0, self.header[3] & 0x0F))
    }

    /// Header, question and the body with its pointers moved for a name of `name_len`.
    fn relocate(&self, question: &[u8], name_len: usize, out: &mut Vec<u8>) -> Option<()> {
        let shift = u16::try_from(name_len.checked_sub(self.suffix_len)?).ok()?;
        out.clear();
        out.extend_from_slice(&self.header);
        out.extend_from_slice(question);
        let start = out.len();
        out.extend_from_slice(&self.body);
        let body = &mut out[start..];
        for &at in &self.pointers {
            add_to_pointer(body, usize::from(at), shift, true)?;
        }
        Some(())
    }

    /// True if the body holds `label` (length byte and bytes) anywhere: a name ending in
    /// that label and the suffix might then compress into a question that has it.
    fn mentions(&self, label: &[u8]) -> bool {
        !label.is_empty() && self.body.windows(label.len()).any(|window| window == label)
    }
}

/// Where the question ends in a canonical response to `name`.
fn question_end(name: &Name) -> Option<usize> {
    Some(HEADER_LEN + name.to_bytes().ok()?.len() + QUESTION_TAIL)
}

/// The offsets of the two-byte pointers that differ by `shift` between two encodings of
/// the same answer; `None` if they differ in anything else.
fn moving_pointers(short: &[u8], long: &[u8], shift: u16) -> Option<Vec<u16>> {
    let read = |bytes: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    };
    let is_moved_pointer = |at: usize| -> bool {
        matches!(
            (read(short, at), read(long, at)),
            (Some(from), Some(to)) if from & !POINTER_OFFSET == 0xC000
                && from.checked_add(shift) == Some(to)
        )
    };
    let mut pointers = Vec::new();
    let mut at = 0;
    while at < short.len() {
        if short[at] == long[at] {
            at += 1;
            continue;
        }
        // Usually only the low byte differs; the high byte too when the offset carried.
        let start = if is_moved_pointer(at) {
            at
        } else {
            at.checked_sub(1)?
        };
        if !is_moved_pointer(start) {
            return None;
        }
        pointers.push(u16::try_from(start).ok()?);
        at = start + 2;
    }
    Some(pointers)
}

/// Moves the pointer at `at` by `shift` (forward, or back if not `forward`).
fn add_to_pointer(bytes: &mut [u8], at: usize, shift: u16, forward: bool) -> Option<()> {
    let field = bytes.get_mut(at..at + 2)?;
    let pointer = u16::from_be_bytes([field[0], field[1]]);
    let offset = pointer & POINTER_OFFSET;
    let moved = if forward {
        offset.checked_add(shift)?
    } else {
        offset.checked_sub(shift)?
    };
    if moved > POINTER_OFFSET {
        return None;
    }
    field.copy_from_slice(&((pointer & !POINTER_OFFSET) | moved).to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_that_move_are_found_even_when_the_offset_carries() {
        let short = [0, 7, 0xC0, 0x0C, 1, 0xC0, 0xFE, 0xC0, 0x20];
        let long = [0, 7, 0xC0, 0x0F, 1, 0xC1, 0x01, 0xC0, 0x20];
        assert_eq!(moving_pointers(&short, &long, 3), Some(vec![2, 5]));
    }

    #[test]
    fn differences_that_are_not_pointers_are_refused() {
        let short = [0, 7, 0x00, 0x0C];
        let long = [0, 7, 0x00, 0x0F];
        assert_eq!(moving_pointers(&short, &long, 3), None);
        let short = [0xC0, 0x0C];
        let long = [0xC0, 0x0D];
        assert_eq!(moving_pointers(&short, &long, 3), None);
    }

    #[test]
    fn a_label_the_answer_mentions_is_not_relocated_to() {
        let relocatable = Relocatable {
            header: [0; HEADER_LEN],
            body: b"\x00\x06\x00\x01\x03ns1\xC0\x0C"
                .to_vec()
                .into_boxed_slice(),
            pointers: vec![8].into_boxed_slice(),
            suffix_len: 13,
        };
        let mut out = Vec::new();
        let ns1 = b"\x03ns1\x07example\x03com\x00";
        let www = b"\x03www\x07example\x03com\x00";
        let question = |name: &[u8]| [name, &[0, 1, 0, 1][..]].concat();
        assert!(
            relocatable
                .write(ns1, &question(ns1), 512, 0, &mut out)
                .is_none()
        );
        assert!(
            relocatable
                .write(www, &question(www), 512, 0, &mut out)
                .is_some()
        );
        // The pointer to the suffix moved past "www".
        assert_eq!(&out[out.len() - 2..], &[0xC0, 0x10]);
    }
}
