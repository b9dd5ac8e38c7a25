use super::*;

fn zone_key() -> ObjectKey {
    ObjectKey {
        namespace: "dns".into(),
        name: "example".into(),
    }
}

fn address(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 53))
}

fn zone(target: Option<u32>, secondaries: &[u8]) -> ZoneSecondaries {
    ZoneSecondaries {
        zone: zone_key(),
        origin: Name::from_ascii("example.test.").expect("name"),
        secondaries: secondaries
            .iter()
            .map(|last| SecondaryTarget {
                address: address(*last),
                key: None,
            })
            .collect(),
        target,
    }
}

fn kinds(commands: &[Command]) -> Vec<(&'static str, SocketAddr)> {
    commands
        .iter()
        .map(|command| match command {
            Command::Notify { address, .. } => ("notify", *address),
            Command::Probe { address, .. } => ("probe", *address),
        })
        .collect()
}

#[test]
fn a_new_serial_is_notified_at_once_then_checked_until_served() {
    let start = Instant::now();
    let mut tracker = Tracker::default();
    // First seen without a target: its serial is asked for, nothing notified.
    let report = tracker.set(zone(None, &[1]), start);
    assert!(matches!(report, Some(Report::Status { .. })));
    assert_eq!(kinds(&tracker.due(start)), vec![("probe", address(1))]);
    tracker.record(&zone_key(), address(1), Outcome::Probed(Ok(4)), start);
    assert!(tracker.due(start).is_empty(), "one probe per sweep");

    // The pods serve 5: NOTIFY now, probe shortly after the acknowledgement.
    tracker.set(zone(Some(5), &[1]), start);
    assert_eq!(tracker.status(&zone_key()).expect("tracked").summary, "0/1");
    assert_eq!(kinds(&tracker.due(start)), vec![("notify", address(1))]);
    assert!(tracker.due(start).is_empty(), "one command in flight");
    tracker.record(&zone_key(), address(1), Outcome::Notified(Ok(())), start);
    assert!(tracker.due(start).is_empty());
    let soon = start + AFTER_NOTIFY;
    assert_eq!(kinds(&tracker.due(soon)), vec![("probe", address(1))]);
    let reports = tracker.record(&zone_key(), address(1), Outcome::Probed(Ok(5)), soon);
    let Some(Report::Status { status, .. }) = reports.last() else {
        panic!("a status report: {reports:?}");
    };
    assert_eq!(status.summary, "1/1");
    assert_eq!(status.items[0].serial, Some(5));
    assert!(status.items[0].synced);
    // Synced: no NOTIFY again, the next probe a sweep later.
    assert!(tracker.due(soon + Duration::from_secs(29)).is_empty());
    assert_eq!(
        kinds(&tracker.due(soon + SWEEP)),
        vec![("probe", address(1))]
    );
}

#[test]
fn a_lagging_secondary_is_notified_with_backoff_and_reported_once() {
    let start = Instant::now();
    let mut tracker = Tracker::default();
    tracker.set(zone(Some(7), &[1]), start);
    let mut now = start;
    let mut notify_times = Vec::new();
    let mut events = Vec::new();
    // Forty seconds of a secondary that stays at serial 6.
    while now < start + Duration::from_secs(40) {
        for command in tracker.due(now) {
            let (outcome, address) = match command {
                Command::Notify { address, .. } => {
                    notify_times.push(now.duration_since(start).as_millis());
                    (Outcome::Notified(Ok(())), address)
                }
                Command::Probe { address, .. } => (Outcome::Probed(Ok(6)), address),
            };
            for report in tracker.record(&zone_key(), address, outcome, now) {
                if let Report::Event { reason, note, .. } = report {
                    events.push((reason, note));
                }
            }
        }
        now += Duration::from_millis(100);
    }
    // At 0, then 1, 2, 4, 8, 16 seconds after each.
    assert_eq!(notify_times, vec![0, 1000, 3000, 7000, 15000, 31000]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "SecondaryLagging");
    assert!(
        events[0]
            .1
            .contains("192.0.2.1:53 serves serial 6, the DNS pods serial 7"),
        "{}",
        events[0].1
    );

    // It catches up: one Normal Event, and the NOTIFYs stop.
    let next = tracker.due(now + LAGGING_PROBE);
    assert_eq!(kinds(&next), vec![("probe", address(1))]);
    let reports = tracker.record(
        &zone_key(),
        address(1),
        Outcome::Probed(Ok(7)),
        now + LAGGING_PROBE,
    );
    assert!(reports.iter().any(|report| matches!(
        report,
        Report::Event {
            reason: "SecondarySynced",
            warning: false,
            ..
        }
    )));
    assert!(tracker.due(now + Duration::from_secs(20)).is_empty());
}

#[test]
fn errors_show_in_the_status_and_a_newer_serial_counts_as_synced() {
    let start = Instant::now();
    let mut tracker = Tracker::default();
    tracker.set(zone(Some(10), &[1, 2]), start);
    let commands = tracker.due(start);
    assert_eq!(commands.len(), 2);
    tracker.record(
        &zone_key(),
        address(1),
        Outcome::Notified(Err("answered REFUSED".into())),
        start,
    );
    tracker.record(&zone_key(), address(2), Outcome::Notified(Ok(())), start);
    let later = start + AFTER_NOTIFY;
    for command in tracker.due(later) {
        let Command::Probe { address: at, .. } = command else {
            panic!("probes after the NOTIFYs");
        };
        let outcome = if at == address(1) {
            Outcome::Probed(Err("no answer within 1s".into()))
        } else {
            // Serial arithmetic: 11 is newer than 10.
            Outcome::Probed(Ok(11))
        };
        tracker.record(&zone_key(), at, outcome, later);
    }
    let status = tracker.status(&zone_key()).expect("tracked");
    assert_eq!(status.summary, "1/2");
    let first = &status.items[0];
    assert_eq!(first.address, "192.0.2.1:53");
    assert!(!first.synced);
    assert_eq!(first.serial, None);
    assert_eq!(
        first.message.as_deref(),
        Some("SOA query: no answer within 1s")
    );
    assert!(status.items[1].synced);
}

#[test]
fn the_list_follows_the_spec_and_keeps_what_is_known() {
    let start = Instant::now();
    let mut tracker = Tracker::default();
    tracker.set(zone(Some(3), &[1]), start);
    tracker.due(start);
    tracker.record(&zone_key(), address(1), Outcome::Probed(Ok(3)), start);
    // A second secondary is added: the first keeps its serial.
    tracker.set(zone(Some(3), &[1, 2]), start);
    let status = tracker.status(&zone_key()).expect("tracked");
    assert_eq!(status.summary, "1/2");
    assert_eq!(
        kinds(&tracker.due(start)),
        vec![("probe", address(2))],
        "the new one is asked first"
    );
    // No secondaries left: the zone is dropped.
    assert_eq!(tracker.set(zone(Some(3), &[]), start), None);
    assert!(tracker.status(&zone_key()).is_none());
}
