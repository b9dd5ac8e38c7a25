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
//! The answer is written once for a sample name with the pointers noted
//! ([`super::answer_noting_pointers`]): those into the suffix or past the question move,
//! the one to the whole question name stays. The result is checked against fresh encodings
//! of three more sample names (among them one with [`MAX_PREFIX_LABELS`] labels) before it
//! is used. A name whose label just above the suffix also appears in the answer could
//! compress differently (a name of the answer could then point into the question beyond
//! the suffix), and [`Relocatable::write`] leaves those names to the index.

use hickory_proto::op::ResponseCode;

use super::{HEADER_LEN, Pointer};

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
    /// Derives the relocatable form of the answers below `suffix` (lowercase, wire form).
    /// `encode` writes the canonical response (ID 0, no flags, lowercase question, no
    /// EDNS) to a lowercase wire-form name below `suffix` and returns it with the pointers
    /// it wrote, or `None` if the name has no such answer. `None` if the answers are not
    /// one family.
    pub fn derive(
        suffix: &[u8],
        encode: impl Fn(&[u8]) -> Option<(Vec<u8>, Vec<Pointer>)>,
    ) -> Option<Self> {
        let suffix_len = suffix.len();
        let name = |prefix: &[&str]| -> Vec<u8> {
            let mut name = Vec::new();
            for label in prefix {
                name.push(u8::try_from(label.len()).unwrap_or(0));
                name.extend_from_slice(label.as_bytes());
            }
            name.extend_from_slice(suffix);
            name
        };
        let first = name(&["-"]);
        let (bytes, pointers) = encode(&first)?;
        let prefix_len = first.len() - suffix_len;
        let question_end = HEADER_LEN + first.len() + QUESTION_TAIL;
        let mut body = bytes.get(question_end..)?.to_vec();
        let mut moving = Vec::new();
        for Pointer { at, target } in pointers {
            let in_body = at.checked_sub(question_end)?;
            if target == HEADER_LEN {
                // The whole question name (a synthesised owner): the same for every name.
                continue;
            }
            if target < HEADER_LEN + prefix_len {
                // Into the name's own labels: this answer depends on the name asked.
                return None;
            }
            // Written as if the question name were the suffix itself.
            add_to_pointer(&mut body, in_body, u16::try_from(prefix_len).ok()?, false)?;
            moving.push(u16::try_from(in_body).ok()?);
        }
        let relocatable = Self {
            header: bytes.get(..HEADER_LEN)?.try_into().ok()?,
            body: body.into_boxed_slice(),
            pointers: moving.into_boxed_slice(),
            suffix_len,
        };
        let deepest = ["_"; MAX_PREFIX_LABELS];
        for prefix in [&["_-"][..], &["-", "_"][..], &deepest[..]] {
            let sample = name(prefix);
            let (expected, _) = encode(&sample)?;
            let question = expected.get(HEADER_LEN..HEADER_LEN + sample.len() + QUESTION_TAIL)?;
            let mut written = Vec::new();
            relocatable.relocate(question, sample.len(), &mut written)?;
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
