//! A DNS message writer: header, questions and records in wire form, names compressed
//! (RFC 1035 §4.1.4), within a size limit.
//!
//! Records come as the index packs them (type, class, TTL and data with its names
//! uncompressed), so nothing is decoded to be written. Names compress against every name
//! and suffix written before them when the bytes are equal (the case kept as written);
//! inside record data only the names of the types RFC 3597 §4 lets compress (NS, CNAME,
//! SOA, PTR, MX). The writer can also note every pointer it writes and where it points,
//! which is how a precomputed answer is moved to another name (see
//! [`super::relocatable`]).

use std::{cell::RefCell, hash::BuildHasher};

use hashbrown::{DefaultHashBuilder, HashTable};
pub use zonefleet_wire::name_len;

/// The length of a DNS header.
pub const HEADER_LEN: usize = 12;
/// The largest offset a compression pointer can hold.
const MAX_POINTER: usize = 0x3FFF;

const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_MX: u16 = 15;

/// The sections of a message, in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The question section.
    Question = 0,
    /// The answer section.
    Answer = 1,
    /// The authority section.
    Authority = 2,
    /// The additional section.
    Additional = 3,
}

/// What did not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// A compression pointer written: where it is, and the offset it points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pointer {
    /// Where the two pointer bytes are in the message.
    pub at: usize,
    /// The offset in the message it points to.
    pub target: usize,
}

/// A name (or suffix) written, that later names may point to.
#[derive(Clone, Copy, Debug)]
struct Target {
    hash: u64,
    /// The suffix's bytes in [`MessageWriter::suffixes`].
    bytes_at: u32,
    len: u8,
    /// Where it is in the message.
    offset: u16,
}

/// Where a message stood, to go back to when what follows does not fit.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    len: usize,
    counts: [u16; 4],
    suffixes_len: usize,
    targets_len: usize,
    pointers_len: usize,
}

/// Writes one message into a buffer.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    out: &'b mut Vec<u8>,
    limit: usize,
    counts: [u16; 4],
    names: Names,
    pointers: Option<Vec<Pointer>>,
}

/// The names written so far, that later names may point to. Its buffers are kept per
/// thread from one message to the next (see [`Names::take`]), so writing a message
/// allocates nothing once a thread has written one of its size.
#[derive(Debug, Default)]
struct Names {
    /// The uncompressed bytes of every suffix that can be pointed to, back to back.
    suffixes: Vec<u8>,
    table: HashTable<u32>,
    /// The targets, in the order written (the table holds their positions here).
    list: Vec<Target>,
    hasher: DefaultHashBuilder,
}

/// The most suffix bytes whose buffers are kept for the next message (a zone transfer's
/// messages hold far more; theirs are freed).
const KEEP_SUFFIX_BYTES: usize = 16 * 1024;

thread_local! {
    /// A thread's spare name buffers.
    static SPARE_NAMES: RefCell<Option<Names>> = const { RefCell::new(None) };
}

impl Names {
    /// This thread's spare buffers, emptied, or new ones.
    fn take() -> Self {
        let spare = SPARE_NAMES
            .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut slot| slot.take()))
            .ok()
            .flatten();
        let mut names = spare.unwrap_or_default();
        names.suffixes.clear();
        names.table.clear();
        names.list.clear();
        names
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if self.suffixes.capacity() > KEEP_SUFFIX_BYTES {
            return;
        }
        let _ = SPARE_NAMES.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut()
                && slot.is_none()
            {
                *slot = Some(std::mem::take(self));
            }
        });
    }
}

impl<'b> MessageWriter<'b> {
    /// Starts a message in `out` (cleared) that may take up to `limit` bytes; the header
    /// is written by [`Self::finish`].
    pub fn new(out: &'b mut Vec<u8>, limit: usize) -> Self {
        out.clear();
        out.resize(HEADER_LEN, 0);
        Self {
            out,
            limit,
            counts: [0; 4],
            names: Names::take(),
            pointers: None,
        }
    }

    /// Notes every compression pointer written from now on ([`Self::pointers`]).
    pub fn note_pointers(&mut self) {
        self.pointers = Some(Vec::new());
    }

    /// The pointers noted.
    pub fn pointers(&self) -> &[Pointer] {
        self.pointers.as_deref().unwrap_or_default()
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True if nothing but the header is written.
    pub fn is_empty(&self) -> bool {
        self.out.len() == HEADER_LEN
    }

    /// The number of entries written to a section.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Where the message stands now.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            counts: self.counts,
            suffixes_len: self.names.suffixes.len(),
            targets_len: self.names.list.len(),
            pointers_len: self.pointers.as_ref().map_or(0, Vec::len),
        }
    }

    /// Goes back to `mark`, forgetting everything written since.
    pub fn rewind(&mut self, mark: Mark) {
        self.out.truncate(mark.len);
        self.counts = mark.counts;
        self.names.suffixes.truncate(mark.suffixes_len);
        if self.names.list.len() > mark.targets_len {
            self.names.list.truncate(mark.targets_len);
            let kept = u32::try_from(mark.targets_len).unwrap_or(u32::MAX);
            self.names.table.retain(|&mut at| at < kept);
        }
        if let Some(pointers) = &mut self.pointers {
            pointers.truncate(mark.pointers_len);
        }
    }

    /// Writes a question: `name` in wire form (uncompressed), type and class.
    pub fn question(&mut self, name: &[u8], qtype: u16, qclass: u16) -> Result<(), Full> {
        let mark = self.mark();
        let written = self
            .name(name)
            .and_then(|()| self.bytes(&qtype.to_be_bytes()))
            .and_then(|()| self.bytes(&qclass.to_be_bytes()));
        self.finish_entry(mark, written, Section::Question)
    }

    /// Writes a record: its owner in wire form (uncompressed), type, class, TTL, and its
    /// data in wire form with the names in it uncompressed.
    pub fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        data: &[u8],
    ) -> Result<(), Full> {
        let mark = self.mark();
        let written = self.record_parts(owner, rtype, class, ttl, data);
        self.finish_entry(mark, written, section)
    }

    /// Writes an OPT record (RFC 6891) with no options: `payload` as its class, and
    /// `extended_rcode` (the upper 8 bits of a 12-bit response code) in its TTL. It is
    /// written whatever the limit (callers keep room for its 11 bytes).
    pub fn opt(&mut self, payload: u16, extended_rcode: u8) {
        self.out.push(0);
        self.out.extend_from_slice(&41u16.to_be_bytes());
        self.out.extend_from_slice(&payload.to_be_bytes());
        self.out.extend_from_slice(&[extended_rcode, 0, 0, 0, 0, 0]);
        self.counts[Section::Additional as usize] += 1;
    }

    /// Writes the header (ID, flags and the section counts) and returns the message.
    pub fn finish(self, id: u16, flags: u16) -> &'b mut Vec<u8> {
        self.out[0..2].copy_from_slice(&id.to_be_bytes());
        self.out[2..4].copy_from_slice(&flags.to_be_bytes());
        for (at, count) in self.counts.iter().enumerate() {
            self.out[4 + 2 * at..6 + 2 * at].copy_from_slice(&count.to_be_bytes());
        }
        self.out
    }

    fn finish_entry(
        &mut self,
        mark: Mark,
        written: Result<(), Full>,
        section: Section,
    ) -> Result<(), Full> {
        let counted = written.and_then(|()| {
            let count = &mut self.counts[section as usize];
            *count = count.checked_add(1).ok_or(Full)?;
            Ok(())
        });
        if counted.is_err() {
            self.rewind(mark);
        }
        counted
    }

    fn record_parts(
        &mut self,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        data: &[u8],
    ) -> Result<(), Full> {
        self.name(owner)?;
        self.bytes(&rtype.to_be_bytes())?;
        self.bytes(&class.to_be_bytes())?;
        self.bytes(&ttl.to_be_bytes())?;
        let length_at = self.out.len();
        self.bytes(&[0, 0])?;
        match rtype {
            TYPE_NS | TYPE_CNAME | TYPE_PTR => self.data_names(data, 0, 1)?,
            TYPE_MX => self.data_names(data, 2, 1)?,
            TYPE_SOA => self.data_names(data, 0, 2)?,
            _ => self.bytes(data)?,
        }
        let length = u16::try_from(self.out.len() - length_at - 2).map_err(|_| Full)?;
        self.out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// Writes record data that holds `names` names after `skip` bytes, the names
    /// compressed and the rest as it is. Data that does not parse so is written as it is.
    fn data_names(&mut self, data: &[u8], skip: usize, names: usize) -> Result<(), Full> {
        let mut ends = [0usize; 2];
        let mut at = skip;
        for end in ends.iter_mut().take(names) {
            match name_len(data.get(at..).unwrap_or_default()) {
                Some(len) => {
                    at += len;
                    *end = at;
                }
                None => return self.bytes(data),
            }
        }
        self.bytes(&data[..skip])?;
        let mut start = skip;
        for &end in &ends[..names] {
            self.name(&data[start..end])?;
            start = end;
        }
        self.bytes(&data[start..])
    }

    /// Appends bytes within the limit.
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Full> {
        if self.out.len() + bytes.len() > self.limit {
            return Err(Full);
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes a wire-form name, pointing to the longest suffix written before, and makes
    /// its own suffixes targets for later names.
    fn name(&mut self, name: &[u8]) -> Result<(), Full> {
        let mut at = 0;
        while let Some(&len) = name.get(at) {
            if len == 0 {
                break;
            }
            let suffix = &name[at..];
            if let Some(target) = self.names.find(suffix) {
                let pointer = 0xC000 | target;
                let pointer_at = self.out.len();
                self.bytes(&pointer.to_be_bytes())?;
                if let Some(pointers) = &mut self.pointers {
                    pointers.push(Pointer {
                        at: pointer_at,
                        target: usize::from(target),
                    });
                }
                return Ok(());
            }
            let offset = self.out.len();
            let label = name.get(at..at + 1 + usize::from(len)).ok_or(Full)?;
            self.bytes(label)?;
            self.names.remember(suffix, offset);
            at += 1 + usize::from(len);
        }
        self.bytes(&[0])
    }
}

impl Names {
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        let hash = self.hasher.hash_one(suffix);
        self.table
            .find(hash, |&at| {
                let target = self.list[at as usize];
                target.hash == hash && self.suffix_bytes(target) == suffix
            })
            .map(|&at| self.list[at as usize].offset)
    }

    fn suffix_bytes(&self, target: Target) -> &[u8] {
        let at = target.bytes_at as usize;
        &self.suffixes[at..at + usize::from(target.len)]
    }

    fn remember(&mut self, suffix: &[u8], offset: usize) {
        let (Ok(offset), Ok(len), Ok(bytes_at), Ok(position)) = (
            u16::try_from(offset),
            u8::try_from(suffix.len()),
            u32::try_from(self.suffixes.len()),
            u32::try_from(self.list.len()),
        ) else {
            return;
        };
        if usize::from(offset) > MAX_POINTER || self.find(suffix).is_some() {
            return;
        }
        let hash = self.hasher.hash_one(suffix);
        self.suffixes.extend_from_slice(suffix);
        self.list.push(Target {
            hash,
            bytes_at,
            len,
            offset,
        });
        let list = &self.list;
        self.table
            .insert_unique(hash, position, |&at| list[at as usize].hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &[u8] = b"\x07example\x03com\x00";
    const WWW: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn names_point_to_the_longest_suffix_written_before() {
        let mut out = Vec::new();
        let mut writer = MessageWriter::new(&mut out, 512);
        writer.note_pointers();
        writer.question(WWW, 1, 1).unwrap();
        writer
            .record(Section::Answer, WWW, 1, 1, 60, &[192, 0, 2, 1])
            .unwrap();
        // A CNAME to mail.example.com: "mail" then a pointer to example.com in the
        // question.
        writer
            .record(
                Section::Answer,
                WWW,
                5,
                1,
                60,
                b"\x04mail\x07example\x03com\x00",
            )
            .unwrap();
        assert_eq!(
            writer.pointers(),
            [
                Pointer { at: 33, target: 12 },
                Pointer { at: 49, target: 12 },
                Pointer { at: 66, target: 16 },
            ]
        );
        let message = writer.finish(7, 0x8400).clone();
        assert_eq!(&message[..12], &[0, 7, 0x84, 0, 0, 1, 0, 2, 0, 0, 0, 0]);
        // RDLENGTH of the CNAME: 1+4 bytes of "mail" and a 2-byte pointer.
        assert_eq!(&message[59..61], &[0, 7]);
        assert_eq!(&message[61..68], b"\x04mail\xC0\x10");
    }

    #[test]
    fn data_of_other_types_is_written_as_it_is_and_case_is_kept() {
        let mut out = Vec::new();
        let mut writer = MessageWriter::new(&mut out, 512);
        writer.question(WWW, 33, 1).unwrap();
        // SRV: its target is never compressed (RFC 2782).
        let srv = [&[0, 1, 0, 2, 0, 80][..], WWW].concat();
        writer
            .record(
                Section::Answer,
                b"\x03WWW\x07example\x03com\x00",
                33,
                1,
                60,
                &srv,
            )
            .unwrap();
        let message = writer.finish(0, 0).clone();
        // The owner differs in case from the question: "WWW" then a pointer to example.com.
        assert_eq!(&message[33..39], b"\x03WWW\xC0\x10");
        assert!(message.ends_with(&srv));
    }

    #[test]
    fn what_does_not_fit_is_not_written() {
        let mut out = Vec::new();
        // Room for the question (29 bytes) and the second record (24), not the first (45).
        let mut writer = MessageWriter::new(&mut out, 60);
        writer.question(EXAMPLE, 1, 1).unwrap();
        let before = writer.len();
        assert_eq!(
            writer.record(
                Section::Answer,
                b"\x04long\x04name\x03org\x00",
                16,
                1,
                60,
                &[0; 20]
            ),
            Err(Full)
        );
        assert_eq!(writer.len(), before);
        assert_eq!(writer.count(Section::Answer), 0);
        // The suffixes of the record that did not fit are not pointed to.
        writer
            .record(Section::Answer, b"\x04name\x03org\x00", 1, 1, 60, &[0; 4])
            .unwrap();
        assert_eq!(
            &writer.finish(0, 0)[before..before + 10],
            b"\x04name\x03org\x00"
        );
    }

    #[test]
    fn name_lengths_stop_at_the_root_and_refuse_pointers() {
        assert_eq!(name_len(WWW), Some(WWW.len()));
        assert_eq!(name_len(b"\x03www\xC0\x0C"), None);
        assert_eq!(name_len(b"\x03ww"), None);
    }
}
