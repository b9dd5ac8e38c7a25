//! What a distribution message does to the served version of its zone: a pure decision,
//! keyed by (zone, serial), so duplicates and stale versions change nothing.

use zonefleet_wire::{Delta, Message, Snapshot};

/// What to do with a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan<'m> {
    /// Nothing: a duplicate or an older version.
    Ignore(&'static str),
    /// Serve this snapshot.
    Replace(&'m Snapshot),
    /// Apply this delta to the served version.
    Apply(&'m Delta),
    /// Fetch the zone's snapshot from the store (an announcement, or a delta whose base is
    /// not served: a gap).
    Fetch,
    /// Stop serving the zone.
    Remove,
}

/// The served version of the message's zone, if any: serial and digest.
pub type Served<'s> = Option<(u32, &'s [u8])>;

pub use zonefleet_wire::is_newer;

/// Decides what `message` does, given the served version of its zone.
pub fn plan<'m>(served: Served<'_>, message: &'m Message) -> Plan<'m> {
    match message {
        Message::Retract(_) => match served {
            Some(_) => Plan::Remove,
            None => Plan::Ignore("retraction of a zone not served"),
        },
        Message::Snapshot(snapshot) => match served {
            None => Plan::Replace(snapshot),
            Some((serial, digest)) if snapshot.serial == serial && snapshot.digest == digest => {
                Plan::Ignore("duplicate")
            }
            Some((serial, _)) if is_newer(serial, snapshot.serial) => Plan::Ignore("stale"),
            // Newer, or the same serial with other content: the publisher's version wins.
            Some(_) => Plan::Replace(snapshot),
        },
        Message::Delta(delta) => match served {
            None => Plan::Fetch,
            Some((serial, _)) if serial == delta.serial || is_newer(serial, delta.serial) => {
                Plan::Ignore("stale")
            }
            Some((serial, _)) if serial == delta.from_serial => Plan::Apply(delta),
            Some(_) => Plan::Fetch,
        },
        Message::Announce(marker) => match served {
            Some((serial, digest)) if serial == marker.serial && digest == marker.digest => {
                Plan::Ignore("duplicate")
            }
            Some((serial, _)) if is_newer(serial, marker.serial) => Plan::Ignore("stale"),
            _ => Plan::Fetch,
        },
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;
    use zonefleet_wire::Marker;

    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn snapshot(serial: u32, digest: u8) -> Message {
        Message::Snapshot(Snapshot {
            origin: origin(),
            serial,
            digest: vec![digest],
            records: Vec::new(),
        })
    }

    fn delta(from: u32, to: u32) -> Message {
        Message::Delta(Delta {
            origin: origin(),
            from_serial: from,
            serial: to,
            digest: vec![0],
            removed: Vec::new(),
            added: Vec::new(),
        })
    }

    fn marker(serial: u32, digest: u8) -> Marker {
        Marker {
            origin: origin(),
            serial,
            digest: vec![digest],
        }
    }

    #[test]
    fn snapshots_replace_unless_duplicate_or_stale() {
        let message = snapshot(5, 1);
        assert!(matches!(plan(None, &message), Plan::Replace(_)));
        assert_eq!(plan(Some((5, &[1])), &message), Plan::Ignore("duplicate"));
        assert_eq!(plan(Some((6, &[1])), &message), Plan::Ignore("stale"));
        assert!(matches!(plan(Some((4, &[1])), &message), Plan::Replace(_)));
        // Same serial, other content: repaired.
        assert!(matches!(plan(Some((5, &[9])), &message), Plan::Replace(_)));
    }

    #[test]
    fn deltas_apply_to_their_base_and_fetch_on_a_gap() {
        let message = delta(5, 6);
        assert!(matches!(plan(Some((5, &[0])), &message), Plan::Apply(_)));
        assert_eq!(plan(Some((6, &[0])), &message), Plan::Ignore("stale"));
        assert_eq!(plan(Some((7, &[0])), &message), Plan::Ignore("stale"));
        assert_eq!(plan(Some((3, &[0])), &message), Plan::Fetch);
        assert_eq!(plan(None, &message), Plan::Fetch);
    }

    #[test]
    fn after_a_refused_version_later_versions_still_apply() {
        // Serving 5; version 6 was refused, so 5 is still served.
        let served = Some((5, &[5][..]));
        // The delta from the refused version: a gap, so the snapshot is fetched.
        assert_eq!(plan(served, &delta(6, 7)), Plan::Fetch);
        // A later snapshot replaces, an announcement fetches.
        assert!(matches!(plan(served, &snapshot(7, 7)), Plan::Replace(_)));
        assert_eq!(plan(served, &Message::Announce(marker(7, 7))), Plan::Fetch);
        // The refused version published again (repaired, same serial): tried again.
        assert!(matches!(plan(served, &snapshot(6, 6)), Plan::Replace(_)));
        // A delta from the served version applies.
        assert!(matches!(plan(served, &delta(5, 7)), Plan::Apply(_)));
    }

    #[test]
    fn serials_compare_under_rfc_1982() {
        // 1 follows 4294967295.
        let message = delta(u32::MAX, 1);
        assert!(matches!(
            plan(Some((u32::MAX, &[0])), &message),
            Plan::Apply(_)
        ));
        assert_eq!(plan(Some((2, &[0])), &message), Plan::Ignore("stale"));
    }

    #[test]
    fn announcements_fetch_and_retractions_remove() {
        let announce = Message::Announce(marker(8, 3));
        assert_eq!(plan(None, &announce), Plan::Fetch);
        assert_eq!(plan(Some((7, &[3])), &announce), Plan::Fetch);
        assert_eq!(plan(Some((8, &[3])), &announce), Plan::Ignore("duplicate"));
        assert_eq!(plan(Some((9, &[3])), &announce), Plan::Ignore("stale"));
        let retract = Message::Retract(marker(0, 0));
        assert_eq!(plan(Some((8, &[3])), &retract), Plan::Remove);
        assert!(matches!(plan(None, &retract), Plan::Ignore(_)));
    }
}
