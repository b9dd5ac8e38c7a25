//! Recognising a plain UDP query straight from its bytes, without allocating: one
//! question of class IN, no answer or authority records, and at most a bare EDNS version 0
//! OPT record. Anything else is not plain and goes to the general handler.

use crate::encode::HEADER_LEN;

/// The longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 255;
/// Type code of an OPT record.
const TYPE_OPT: u16 = 41;
/// Class code IN.
const CLASS_IN: u16 = 1;

/// A plain query, borrowed from the packet it came in.
#[derive(Clone, Debug)]
pub struct PlainQuery<'p> {
    packet: &'p [u8],
    /// The question name lowercased (ASCII), in wire form with its root label.
    lowercase_name: [u8; MAX_NAME_LEN],
    name_len: usize,
    qtype: u16,
    /// The EDNS payload size the client offered, if it sent EDNS.
    edns_payload: Option<u16>,
}

impl<'p> PlainQuery<'p> {
    /// Parses `packet` if it is a plain query.
    pub fn parse(packet: &'p [u8]) -> Option<Self> {
        let header = packet.get(..HEADER_LEN)?;
        let is_response = header[2] & 0x80 != 0;
        let opcode = (header[2] >> 3) & 0x0F;
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let (questions, answers, authority, additionals) =
            (count(4), count(6), count(8), count(10));
        if is_response || opcode != 0 || questions != 1 || answers != 0 || authority != 0 {
            return None;
        }
        if additionals > 1 {
            return None;
        }
        let mut lowercase_name = [0; MAX_NAME_LEN];
        let mut at = HEADER_LEN;
        let mut name_len = 0;
        loop {
            let len = usize::from(*packet.get(at)?);
            if len & 0xC0 != 0 || name_len + 1 + len > MAX_NAME_LEN {
                return None;
            }
            let label = packet.get(at..at + 1 + len)?;
            for (to, from) in lowercase_name[name_len..name_len + 1 + len]
                .iter_mut()
                .zip(label)
            {
                *to = from.to_ascii_lowercase();
            }
            name_len += 1 + len;
            at += 1 + len;
            if len == 0 {
                break;
            }
        }
        let qtype = read_u16(packet, at)?;
        if read_u16(packet, at + 2)? != CLASS_IN {
            return None;
        }
        at += 4;
        let edns_payload = if additionals == 1 {
            let (payload, end) = bare_opt(packet, at)?;
            at = end;
            Some(payload)
        } else {
            None
        };
        (at == packet.len()).then_some(Self {
            packet,
            lowercase_name,
            name_len,
            qtype,
            edns_payload,
        })
    }

    /// The whole packet.
    pub fn packet(&self) -> &'p [u8] {
        self.packet
    }

    /// The question name, lowercased, in wire form.
    pub fn lowercase_name(&self) -> &[u8] {
        &self.lowercase_name[..self.name_len]
    }

    /// The question section as sent (name in the client's case, type, class).
    pub fn question(&self) -> &'p [u8] {
        &self.packet[HEADER_LEN..HEADER_LEN + self.name_len + 4]
    }

    /// The question type code.
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    /// The EDNS payload size offered, if the query has EDNS.
    pub fn edns_payload(&self) -> Option<u16> {
        self.edns_payload
    }
}

/// An OPT record with the root owner, version 0 and no options, at `at`; returns its
/// payload size and where it ends.
fn bare_opt(packet: &[u8], at: usize) -> Option<(u16, usize)> {
    if *packet.get(at)? != 0 || read_u16(packet, at + 1)? != TYPE_OPT {
        return None;
    }
    let payload = read_u16(packet, at + 3)?;
    let version = *packet.get(at + 6)?;
    let options_len = read_u16(packet, at + 9)?;
    (version == 0 && options_len == 0).then_some((payload, at + 11))
}

fn read_u16(packet: &[u8], at: usize) -> Option<u16> {
    let bytes = packet.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `Www.Example.com` A with an ID, RD set, and optional EDNS.
    fn query(edns: Option<&[u8]>) -> Vec<u8> {
        let mut packet = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        packet.extend_from_slice(b"\x03Www\x07Example\x03com\x00\x00\x01\x00\x01");
        if let Some(opt) = edns {
            packet[11] = 1;
            packet.extend_from_slice(opt);
        }
        packet
    }

    const OPT: &[u8] = &[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn a_plain_query_is_lowercased_and_keeps_its_question() {
        let packet = query(None);
        let plain = PlainQuery::parse(&packet).expect("plain");
        assert_eq!(plain.lowercase_name(), b"\x03www\x07example\x03com\x00");
        assert_eq!(plain.question(), &packet[12..]);
        assert_eq!(plain.qtype(), 1);
        assert_eq!(plain.edns_payload(), None);
    }

    #[test]
    fn a_bare_opt_record_gives_the_payload_size() {
        let packet = query(Some(OPT));
        let plain = PlainQuery::parse(&packet).expect("plain with EDNS");
        assert_eq!(plain.edns_payload(), Some(4096));
    }

    #[test]
    fn anything_unusual_is_not_plain() {
        let mut response = query(None);
        response[2] |= 0x80;
        let mut notify = query(None);
        notify[2] = 4 << 3;
        let mut two_questions = query(None);
        two_questions[5] = 2;
        let mut chaos = query(None);
        let last = chaos.len() - 1;
        chaos[last] = 3;
        let mut trailing = query(None);
        trailing.push(0);
        let version_1 = query(Some(&[0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0]));
        let with_option = query(Some(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 0]));
        let mut pointer = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        let short = query(None)[..20].to_vec();
        for (what, packet) in [
            ("response", response),
            ("NOTIFY", notify),
            ("two questions", two_questions),
            ("class CH", chaos),
            ("trailing byte", trailing),
            ("EDNS version 1", version_1),
            ("EDNS option", with_option),
            ("compressed question", pointer),
            ("cut short", short),
        ] {
            assert!(
                PlainQuery::parse(&packet).is_none(),
                "{what} was taken as plain"
            );
        }
    }
}
