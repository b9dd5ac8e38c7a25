//! The authoritative answer algorithm of RFC 1034 §4.3.2 (with RFC 2181, RFC 2308 and
//! RFC 4592), as a pure function over an immutable zone index.
//!
//! [`ZoneIndex`] holds one zone version; [`ZoneIndex::lookup`] answers a question without
//! scanning: every step is a lookup in a hash table from lowercase wire-form names (O(1)),
//! and the index holds the empty non-terminals, so closest-encloser and wildcard checks
//! are lookups too.

mod index;
mod lookup;

pub use index::{BuildError, Node, PackedRecord, Rrset, ZoneIndex};
pub use lookup::{Answer, AnswerRrset, DecodedAnswer, Owner, Rcode};

#[cfg(test)]
mod tests;
