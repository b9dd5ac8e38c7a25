//! SOA serial policy: the next serial for a new zone version.
//!
//! Serials compare under RFC 1982 sequence-space arithmetic. Whatever the policy proposes,
//! the next serial is always greater than the current one in that sense, so secondaries and
//! the DNS pods see it as newer, also across a change of policy and across wrap-around.

use hickory_proto::rr::SerialNumber;
use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use zonefleet_api::SerialPolicy;

/// The serial of a zone's first version under each policy, and of every later version:
/// the policy's proposal when it is newer than `current`, else `current + 1`.
pub fn next_serial(current: Option<u32>, policy: SerialPolicy, now: Timestamp) -> u32 {
    let proposal = propose(policy, now);
    match (current, proposal) {
        (None, proposal) => proposal.unwrap_or(1),
        (Some(current), Some(proposal)) if is_newer(proposal, current) => proposal,
        (Some(current), _) => (SerialNumber::new(current) + SerialNumber::new(1)).get(),
    }
}

pub use zonefleet_wire::is_newer;

/// The serial a policy would like; `Increment` only counts on.
fn propose(policy: SerialPolicy, now: Timestamp) -> Option<u32> {
    Some(match policy {
        SerialPolicy::Increment => return None,
        SerialPolicy::DateCounter => {
            let date = now.to_zoned(TimeZone::UTC).date();
            let yyyymmdd = i64::from(date.year()) * 10_000
                + i64::from(date.month()) * 100
                + i64::from(date.day());
            u32::try_from(yyyymmdd * 100).unwrap_or(u32::MAX)
        }
        SerialPolicy::UnixTime => u32::try_from(now.as_second()).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> Timestamp {
        date.parse().unwrap()
    }

    #[test]
    fn increment_starts_at_one_and_counts_up() {
        let now = at("2026-11-22T10:00:00Z");
        assert_eq!(next_serial(None, SerialPolicy::Increment, now), 1);
        assert_eq!(next_serial(Some(1), SerialPolicy::Increment, now), 2);
        assert_eq!(next_serial(Some(41), SerialPolicy::Increment, now), 42);
    }

    #[test]
    fn increment_wraps_around_under_rfc_1982() {
        let now = at("2026-11-22T10:00:00Z");
        let next = next_serial(Some(u32::MAX), SerialPolicy::Increment, now);
        assert_eq!(next, 0);
        assert!(is_newer(next, u32::MAX));
        assert_eq!(next_serial(Some(0), SerialPolicy::Increment, now), 1);
        // Half-way round the sequence space still counts on by one.
        assert_eq!(
            next_serial(Some((1 << 31) + 5), SerialPolicy::Increment, now),
            (1 << 31) + 6
        );
    }

    #[test]
    fn date_counter_uses_the_date_then_counts_within_the_day() {
        let day = at("2026-11-22T23:59:00Z");
        assert_eq!(
            next_serial(None, SerialPolicy::DateCounter, day),
            2026112200
        );
        assert_eq!(
            next_serial(Some(2026112200), SerialPolicy::DateCounter, day),
            2026112201
        );
        assert_eq!(
            next_serial(Some(2026112107), SerialPolicy::DateCounter, day),
            2026112200
        );
        // The 101st change of a day runs into the next day's numbers, as BIND does.
        assert_eq!(
            next_serial(Some(2026112299), SerialPolicy::DateCounter, day),
            2026112300
        );
        let next_day = at("2026-11-23T00:00:01Z");
        assert_eq!(
            next_serial(Some(2026112300), SerialPolicy::DateCounter, next_day),
            2026112301
        );
    }

    #[test]
    fn unix_time_uses_seconds_and_never_repeats() {
        let now = at("2026-11-22T10:00:00Z");
        let secs = u32::try_from(now.as_second()).unwrap();
        assert_eq!(next_serial(None, SerialPolicy::UnixTime, now), secs);
        assert_eq!(
            next_serial(Some(secs - 5), SerialPolicy::UnixTime, now),
            secs
        );
        // Two versions in the same second.
        assert_eq!(
            next_serial(Some(secs), SerialPolicy::UnixTime, now),
            secs + 1
        );
    }

    #[test]
    fn a_policy_change_never_moves_the_serial_backwards() {
        let now = at("2026-11-22T10:00:00Z");
        // UnixTime (about 1.8e9) to DateCounter (about 2.0e9) moves forward...
        let unix = next_serial(None, SerialPolicy::UnixTime, now);
        let date = next_serial(Some(unix), SerialPolicy::DateCounter, now);
        assert!(is_newer(date, unix));
        // ...and DateCounter back to Increment keeps counting from where it was.
        assert_eq!(
            next_serial(Some(date), SerialPolicy::Increment, now),
            date + 1
        );
        // A date that RFC 1982 calls older than the current serial is not taken.
        assert_eq!(
            next_serial(Some(3_000_000_000), SerialPolicy::DateCounter, now),
            3_000_000_001
        );
    }
}
