//! Who answers a question: the routing rules, written once, for the UDP fast path and the
//! general handler alike. A pure function of the served zones and the question.

use std::sync::Arc;

use hickory_proto::{op::ResponseCode, rr::RecordType};

use crate::zones::{ServedZone, ZoneSet};

/// Class IN.
const CLASS_IN: u16 = 1;

/// What a query may ask for beyond a lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct Permissions {
    /// The client may transfer zones (AXFR) over TCP.
    pub transfer: bool,
}

/// Who answers a question.
#[derive(Clone, Copy, Debug)]
pub enum Route<'z> {
    /// An error with empty sections.
    Error(ResponseCode),
    /// The zone answers from its index.
    Zone(&'z Arc<ServedZone>),
    /// A zone transfer the client may receive.
    Transfer(&'z Arc<ServedZone>),
}

/// Decides who answers a question for `lowercase_name` (wire form) of class `qclass` and
/// type `qtype`, over TCP or not (the request passed the opcode, count and EDNS checks).
pub fn route<'z>(
    zones: &'z ZoneSet,
    lowercase_name: &[u8],
    qclass: u16,
    qtype: u16,
    tcp: bool,
    permissions: Permissions,
) -> Route<'z> {
    if qclass != CLASS_IN {
        return Route::Error(ResponseCode::Refused);
    }
    match RecordType::from(qtype) {
        RecordType::AXFR | RecordType::IXFR => {
            // A transfer needs TCP and permission, and covers exactly one zone we serve.
            return match zones
                .find_wire(lowercase_name)
                .filter(|_| tcp && permissions.transfer)
            {
                Some(zone) => Route::Transfer(zone),
                None => Route::Error(ResponseCode::Refused),
            };
        }
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            return Route::Error(ResponseCode::FormErr);
        }
        _ => {}
    }
    match zone_for(zones, lowercase_name, qtype == u16::from(RecordType::DS)) {
        Some(zone) => Route::Zone(zone),
        None => Route::Error(ResponseCode::Refused),
    }
}

/// The closest enclosing zone of `lowercase_name` (wire form): the zone whose keys and
/// rules apply to a request about the name.
pub fn enclosing<'z>(zones: &'z ZoneSet, lowercase_name: &[u8]) -> Option<&'z Arc<ServedZone>> {
    suffixes(lowercase_name).find_map(|suffix| zones.find_wire(suffix))
}

/// The zone that answers: the closest enclosing zone, except that a DS question at the apex
/// of a child zone belongs to its parent when the parent is served too (RFC 4035 §3.1.4.1).
fn zone_for<'z>(
    zones: &'z ZoneSet,
    lowercase_name: &[u8],
    ds: bool,
) -> Option<&'z Arc<ServedZone>> {
    let mut enclosing = suffixes(lowercase_name)
        .filter_map(|suffix| zones.find_wire(suffix).map(|zone| (suffix, zone)));
    let (apex, zone) = enclosing.next()?;
    if ds
        && apex == lowercase_name
        && lowercase_name != [0]
        && let Some((_, parent)) = enclosing.next()
    {
        return Some(parent);
    }
    Some(zone)
}

/// The suffixes of a wire-form name, longest first, each itself a wire-form name (the
/// last is the root).
pub fn suffixes(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = Some(0);
    std::iter::from_fn(move || {
        let start = at?;
        let suffix = name.get(start..)?;
        let len = usize::from(*suffix.first()?);
        at = (len != 0).then_some(start + 1 + len);
        Some(suffix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_run_from_the_name_to_the_root() {
        let name = b"\x03www\x07example\x00";
        let all: Vec<&[u8]> = suffixes(name).collect();
        assert_eq!(all, vec![&name[..], &b"\x07example\x00"[..], &b"\x00"[..]]);
    }
}
