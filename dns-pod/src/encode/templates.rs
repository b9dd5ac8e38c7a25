//! Answers precomputed in wire form when a zone version is built.
//!
//! - For every name of the zone, the whole response to each type it holds. ANY is answered
//!   by the first RRset (RFC 8482), so it shares that type's template; at a CNAME, A, AAAA
//!   and HTTPS are precomputed too (the chain is followed for them). A query for one of
//!   those names and types is answered by copying its template and patching the ID, two
//!   header flags, the question (the client's case and type) and the EDNS record.
//! - For the answers that many names share, a [`Relocatable`] answer: the zone's NXDOMAIN
//!   and no-data answers, each delegation's referral, and each type a wildcard holds.
//!   [`AnswerTemplates::find`] walks a name down from the apex as the lookup does (the
//!   first zone cut, else the closest encloser and its wildcard) to pick one.
//!
//! CNAME chains from a wildcard or to a type not precomputed are looked up in the index.
//! Each template is exactly what [`super::answer`] writes for the canonical query (ID 0,
//! no flags, lowercase question, no EDNS); the UDP fast path relies on that, and a test
//! compares the two paths byte for byte.

use hickory_proto::{
    rr::{Name, RecordType},
    serialize::binary::BinDecodable,
};

use super::{Pointer, Question, Reply, relocatable::Relocatable};
use crate::authority::{Answer, Node, Rcode, ZoneIndex};

/// The DS type code.
const TYPE_DS: u16 = 43;

/// Types precomputed at a CNAME besides the CNAME itself: the chain is followed for them.
const CHAINED_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::HTTPS];

/// The precomputed answers of one zone version.
#[derive(Debug, Default)]
pub struct AnswerTemplates {
    /// The answers at every name of the zone (empty non-terminals too), in the order of
    /// the index's nodes.
    names: Box<[NameAnswers]>,
    /// The whole answers of every name, back to back (see [`NameAnswers`]).
    bytes: Box<[u8]>,
    /// The NXDOMAIN answer, for every name below the apex.
    nxdomain: Option<Relocatable>,
    /// The no-data answer, for every name below the apex.
    no_data: Option<Relocatable>,
}

/// The answers at one name.
#[derive(Debug, Default)]
struct NameAnswers {
    /// Where its whole answers are in [`AnswerTemplates::bytes`], and their length: for
    /// each type, the type code (2 bytes), the response's length (2 bytes) and the
    /// response; the RRsets the name holds in type order, then the types chased through
    /// its CNAME.
    at: u32,
    len: u32,
    /// Whether `by_type` has every type the name holds (a template failed otherwise).
    complete: bool,
    /// Whether the name holds a CNAME (other types follow it, and are looked up).
    cname: bool,
    /// What the name answers for the names below it, if anything of its own (rare: a
    /// zone cut or a wildcard parent).
    below: Option<Box<Below>>,
}

/// What a name answers for names below it that the zone does not hold (without one, the
/// zone's NXDOMAIN).
#[derive(Debug)]
enum Below {
    /// It is a zone cut: its referral (`None` if it could not be precomputed).
    Referral(Option<Relocatable>),
    /// It has a wildcard child: that child's answers by type (`None` if they are not
    /// precomputed, as for a CNAME).
    Wildcard(Option<Box<[(u16, Relocatable)]>>),
}

/// A precomputed answer to a query.
#[derive(Clone, Copy, Debug)]
pub enum Template<'t> {
    /// The whole response for exactly the name asked.
    Whole(&'t [u8]),
    /// A response for every name below a suffix.
    Relocatable(&'t Relocatable),
}

impl AnswerTemplates {
    /// Precomputes the answers for every name of a zone version.
    pub fn build(index: &ZoneIndex) -> Self {
        let apex = index.apex();
        let mut bytes = Vec::new();
        let names = index
            .nodes()
            .map(|node| {
                let name = node.name();
                let below = Below::build(index, apex.wire_name(), &name, node);
                NameAnswers::build(index, &name, node, below, &mut bytes)
            })
            .collect();
        let negative = |rcode: Rcode| {
            let answer = index.negative(rcode);
            Relocatable::derive(apex.wire_name(), |name| {
                Some(canonical_noting_pointers(name, RecordType::A, &answer))
            })
        };
        Self {
            names,
            bytes: bytes.into_boxed_slice(),
            nxdomain: negative(Rcode::NxDomain),
            no_data: negative(Rcode::NoError),
        }
    }

    /// The answers at a lowercase wire-form name of `index`.
    fn at(&self, index: &ZoneIndex, lowercase_name: &[u8]) -> Option<&NameAnswers> {
        self.names.get(index.position(lowercase_name)?)
    }

    /// The precomputed answer for a lowercase wire-form name of the zone (whose apex is
    /// the last `apex_len` bytes of it) and a type, found as the lookup would: the first
    /// zone cut on the way down from the apex, else the name itself, else the closest
    /// encloser's wildcard, else NXDOMAIN. `None` where the answer is not precomputed.
    pub fn find(
        &self,
        index: &ZoneIndex,
        lowercase_name: &[u8],
        apex_len: usize,
        qtype: u16,
    ) -> Option<Template<'_>> {
        let exact = self.at(index, lowercase_name);
        if let Some(whole) = exact.and_then(|name| name.get(&self.bytes, qtype)) {
            return Some(Template::Whole(whole));
        }
        let apex_at = lowercase_name.len().checked_sub(apex_len)?;
        // Where each label above the apex starts, from the name itself up.
        let mut starts = [0u8; MAX_WALK];
        let mut labels = 0;
        let mut at = 0;
        while at < apex_at {
            *starts.get_mut(labels)? = u8::try_from(at).ok()?;
            labels += 1;
            at += 1 + usize::from(lowercase_name[at]);
        }
        let mut encloser = self.at(index, lowercase_name.get(apex_at..)?)?;
        for &start in starts[..labels].iter().rev() {
            let name = if start == 0 {
                exact
            } else {
                self.at(index, &lowercase_name[usize::from(start)..])
            };
            match name {
                Some(node) => {
                    // A DS question at a cut is the parent's data, not a referral.
                    let parent_side = start == 0 && qtype == TYPE_DS;
                    if let Some(Below::Referral(referral)) = node.below.as_deref()
                        && !parent_side
                    {
                        return referral.as_ref().map(Template::Relocatable);
                    }
                    encloser = node;
                }
                None => return self.below(encloser, qtype),
            }
        }
        // The name exists, without this type.
        if encloser.cname || !encloser.complete {
            return None;
        }
        self.no_data.as_ref().map(Template::Relocatable)
    }

    /// The answer for a name that does not exist, below its closest encloser.
    fn below<'t>(&'t self, encloser: &'t NameAnswers, qtype: u16) -> Option<Template<'t>> {
        match encloser.below.as_deref() {
            None => self.nxdomain.as_ref().map(Template::Relocatable),
            Some(Below::Wildcard(Some(answers))) => match by_type(answers, qtype) {
                Some(answer) => Some(Template::Relocatable(answer)),
                None => self.no_data.as_ref().map(Template::Relocatable),
            },
            Some(Below::Wildcard(None) | Below::Referral(_)) => None,
        }
    }

    /// The number of names with templates.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True if no name has a template.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The most labels above the apex [`AnswerTemplates::find`] walks (a wire-form name has
/// at most 127).
const MAX_WALK: usize = 128;

impl NameAnswers {
    fn build(
        index: &ZoneIndex,
        name: &Name,
        node: Node<'_>,
        below: Option<Below>,
        bytes: &mut Vec<u8>,
    ) -> Self {
        let chained = node.rrset(RecordType::CNAME).is_some();
        let types = node
            .types()
            .chain(CHAINED_TYPES.into_iter().filter(|_| chained));
        let start = bytes.len();
        let mut held: Vec<u16> = Vec::new();
        let mut complete = true;
        for qtype in types {
            let code = u16::from(qtype);
            if held.contains(&code) {
                continue;
            }
            match template(index, name, qtype) {
                Some(template) => match u16::try_from(template.len()) {
                    Ok(len) => {
                        held.push(code);
                        bytes.extend_from_slice(&code.to_be_bytes());
                        bytes.extend_from_slice(&len.to_be_bytes());
                        bytes.extend_from_slice(&template);
                    }
                    Err(_) => complete = false,
                },
                None => complete = false,
            }
        }
        // A zone whose answers pass 4 GiB loses the templates past that; they are looked up.
        let (at, len) = match (u32::try_from(start), u32::try_from(bytes.len() - start)) {
            (Ok(at), Ok(len)) => (at, len),
            _ => {
                complete = false;
                bytes.truncate(start);
                (0, 0)
            }
        };
        Self {
            at,
            len,
            complete,
            cname: chained,
            below: below.map(Box::new),
        }
    }

    fn get<'b>(&self, bytes: &'b [u8], qtype: u16) -> Option<&'b [u8]> {
        let at = self.at as usize;
        let mut rest = bytes.get(at..at + self.len as usize)?;
        let any = qtype == u16::from(RecordType::ANY);
        while let [t0, t1, l0, l1, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            let (bytes, next) = tail.split_at_checked(len)?;
            // ANY takes the first (RFC 8482: the first RRset stands for all).
            if any || u16::from_be_bytes([*t0, *t1]) == qtype {
                return Some(bytes);
            }
            rest = next;
        }
        None
    }
}

impl Below {
    /// `apex` (wire form) and `name` are lowercase.
    fn build(index: &ZoneIndex, apex: &[u8], name: &Name, node: Node<'_>) -> Option<Self> {
        if node.rrset(RecordType::NS).is_some() && node.wire_name() != apex {
            let referral = Relocatable::derive(node.wire_name(), |sample| {
                let name = Name::from_bytes(sample).ok()?;
                let answer = index.lookup(&name, RecordType::A);
                Some(canonical_noting_pointers(sample, RecordType::A, &answer))
            });
            return Some(Self::Referral(referral));
        }
        let wildcard = Name::from_labels([b"*".as_slice()])
            .and_then(|star| star.append_domain(name))
            .ok()
            .and_then(|wildcard| index.node(&wildcard))?;
        if wildcard.rrset(RecordType::CNAME).is_some() {
            return Some(Self::Wildcard(None));
        }
        let answers: Option<Vec<(u16, Relocatable)>> = wildcard
            .types()
            .map(|qtype| {
                let code = u16::from(qtype);
                let answer = Relocatable::derive(node.wire_name(), |sample| {
                    // A sample the zone holds would not be answered by the wildcard.
                    if index.position(sample).is_some() {
                        return None;
                    }
                    let name = Name::from_bytes(sample).ok()?;
                    let answer = index.lookup(&name, qtype);
                    Some(canonical_noting_pointers(sample, qtype, &answer))
                })?;
                Some((code, answer))
            })
            .collect();
        Some(Self::Wildcard(answers.map(Vec::into_boxed_slice)))
    }
}

/// The entry for `qtype` in a list kept in type order; ANY takes the first (RFC 8482: the
/// first RRset stands for all).
fn by_type<T>(entries: &[(u16, T)], qtype: u16) -> Option<&T> {
    let found = if qtype == u16::from(RecordType::ANY) {
        entries.first()
    } else {
        entries.iter().find(|(held, _)| *held == qtype)
    };
    found.map(|(_, entry)| entry)
}

/// The encoded answer to the canonical query for `name`/`qtype`, if the zone answers it.
fn template(index: &ZoneIndex, name: &Name, qtype: RecordType) -> Option<Box<[u8]>> {
    let answer = index.lookup(name, qtype);
    if answer.rcode == Rcode::Refused {
        return None;
    }
    Some(super::canonical(&answer.asked, u16::from(qtype), &answer).into_boxed_slice())
}

/// The canonical answer to `lowercase_name`/`qtype`, with the pointers written; `None` for
/// a name the zone refuses.
fn canonical_noting_pointers(
    lowercase_name: &[u8],
    qtype: RecordType,
    answer: &Answer<'_>,
) -> (Vec<u8>, Vec<Pointer>) {
    let mut out = Vec::new();
    let question = Question {
        name: lowercase_name,
        qtype: u16::from(qtype),
        qclass: 1,
    };
    let (_, pointers) =
        super::answer_noting_pointers(Reply::canonical(), question, answer, u16::MAX, &mut out);
    (out, pointers)
}
