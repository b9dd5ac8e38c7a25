use hickory_proto::{
    rr::{Name, Record},
    serialize::txt::Parser,
};

use super::*;

fn records(text: &str) -> Vec<Record> {
    let origin = Name::from_ascii("example.com.").unwrap();
    let (_, rrsets) = Parser::new(text, None, Some(origin)).parse().unwrap();
    let mut records: Vec<Record> = rrsets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    records.sort_by(|a, b| {
        (&a.name, u16::from(a.record_type())).cmp(&(&b.name, u16::from(b.record_type())))
    });
    records
}

fn snapshot(serial: u32, body: &str) -> Snapshot {
    let text = format!(
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster {serial} 3600 600 1209600 300\n@ IN NS ns1\n{body}"
    );
    let origin = Name::from_ascii("Example.com.").unwrap();
    let records = records(&text);
    Snapshot {
        digest: zone_digest(&origin, &records).to_vec(),
        origin,
        serial,
        records,
    }
}

#[test]
fn snapshots_round_trip_with_case_preserved() {
    let mut original = snapshot(
        7,
        "www IN A 192.0.2.1\nmail IN MX 10 Mail\ntxt IN TXT \"hello world\"\n",
    );
    for record in &mut original.records {
        if record.name.to_ascii() == "www.example.com." {
            record.name = Name::from_ascii("WWW.example.com.").unwrap();
        }
    }
    let bytes = original.encode().unwrap();
    assert_eq!(&bytes[..3], MAGIC);
    let Message::Snapshot(decoded) = decode(&bytes).unwrap() else {
        panic!("not a snapshot")
    };
    assert_eq!(decoded, original);
    assert_eq!(decoded.origin.to_ascii(), "Example.com.");
    assert!(
        decoded
            .records
            .iter()
            .any(|r| r.name.to_ascii() == "WWW.example.com.")
    );
}

#[test]
fn deltas_carry_exactly_the_changes() {
    let old = snapshot(7, "www IN A 192.0.2.1\nold IN A 192.0.2.2\n");
    let new = snapshot(8, "www IN A 192.0.2.1\nnew IN A 192.0.2.3\n");
    let delta = Delta::between(&old, &new);
    assert_eq!((delta.from_serial, delta.serial), (7, 8));
    let names = |records: &[Record]| -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {}", r.name, r.record_type()))
            .collect()
    };
    // The SOA changes with the serial; "old" goes, "new" comes, "www" stays.
    assert_eq!(
        names(&delta.removed),
        ["example.com. SOA", "old.example.com. A"]
    );
    assert_eq!(
        names(&delta.added),
        ["example.com. SOA", "new.example.com. A"]
    );
    let bytes = delta.encode().unwrap();
    assert_eq!(decode(&bytes).unwrap(), Message::Delta(delta));
}

#[test]
fn a_ttl_change_is_a_change() {
    let old = snapshot(1, "www 60 IN A 192.0.2.1\n");
    let new = snapshot(2, "www 120 IN A 192.0.2.1\n");
    let delta = Delta::between(&old, &new);
    assert_eq!(delta.removed.len(), 2);
    assert_eq!(delta.added.len(), 2);
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let bytes = snapshot(7, "www IN A 192.0.2.1\n").encode().unwrap();
    // Every truncation.
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "a {len}-byte prefix decoded"
        );
    }
    // Every single-byte corruption decodes or fails, without panicking.
    for at in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0xff;
        let _ = decode(&corrupt);
    }
    assert!(matches!(
        decode(b"XYZ\x01\x01\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00"),
        Err(WireError::BadMagic)
    ));
    let mut newer = bytes.clone();
    newer[3] = 9;
    assert!(matches!(
        decode(&newer),
        Err(WireError::UnsupportedVersion(9))
    ));
    let mut unknown = bytes.clone();
    unknown[4] = 77;
    assert!(matches!(decode(&unknown), Err(WireError::UnknownKind(77))));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        decode(&trailing),
        Err(WireError::TrailingBytes(1))
    ));
}

#[test]
fn a_record_count_the_bytes_cannot_hold_is_refused_before_reading() {
    let mut bytes = snapshot(7, "").encode().unwrap();
    // The count follows the header, the origin (13 bytes) and the digest (1 + 32 bytes).
    let at = HEADER_LEN + 13 + 33;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode(&bytes),
        Err(WireError::Truncated("records"))
    ));
}

#[test]
fn a_delta_applied_to_its_base_makes_the_new_version() {
    let old = snapshot(
        7,
        "www IN A 192.0.2.1\nold IN A 192.0.2.2\nWWW IN TXT \"x\"\n",
    );
    let new = snapshot(8, "www IN A 192.0.2.1\nnew IN A 192.0.2.3\n");
    let delta = Delta::between(&old, &new);
    let applied = delta.apply(old.clone()).unwrap();
    assert_eq!(applied.serial, 8);
    assert_eq!(
        zone_digest(&applied.origin, &applied.records),
        zone_digest(&new.origin, &new.records)
    );
    applied.verify().unwrap();
}

#[test]
fn a_delta_refuses_the_wrong_base_and_a_wrong_result() {
    let v7 = snapshot(7, "a IN A 192.0.2.1\n");
    let v8 = snapshot(8, "a IN A 192.0.2.2\n");
    let v9 = snapshot(9, "a IN A 192.0.2.3\n");
    let delta = Delta::between(&v8, &v9);
    assert_eq!(
        delta.apply(v7.clone()),
        Err(ApplyError::WrongBase {
            expected: 8,
            actual: 7
        })
    );
    // Same serial, other content: a record to remove is missing.
    let mut diverged = v7.clone();
    diverged.serial = 8;
    assert!(matches!(
        delta.apply(diverged),
        Err(ApplyError::MissingRecord(_))
    ));
    // A digest that does not match the result.
    let mut lying = delta.clone();
    lying.digest = vec![0; 32];
    assert!(matches!(
        lying.apply(v8.clone()),
        Err(ApplyError::DigestMismatch { .. })
    ));
}

#[test]
fn the_digest_ignores_order_and_serial_but_not_case_or_ttl() {
    let base = snapshot(1, "a IN A 192.0.2.1\nb IN A 192.0.2.2\n");
    let mut reversed = base.records.clone();
    reversed.reverse();
    let digest = zone_digest(&base.origin, &base.records);
    assert_eq!(zone_digest(&base.origin, &reversed), digest);
    let later = snapshot(99, "a IN A 192.0.2.1\nb IN A 192.0.2.2\n");
    assert_eq!(zone_digest(&later.origin, &later.records), digest);
    let ttl = snapshot(1, "a 60 IN A 192.0.2.1\nb IN A 192.0.2.2\n");
    assert_ne!(zone_digest(&ttl.origin, &ttl.records), digest);
    let mut cased = base.records.clone();
    for record in &mut cased {
        if record.name.to_ascii() == "a.example.com." {
            record.name = Name::from_ascii("A.example.com.").unwrap();
        }
    }
    assert_ne!(zone_digest(&base.origin, &cased), digest);
    let mut snapshot = base.clone();
    snapshot.verify().unwrap();
    snapshot.records.pop();
    assert!(snapshot.verify().is_err());
}

#[test]
fn retractions_and_announcements_round_trip() {
    let marker = Marker {
        origin: Name::from_ascii("Example.com.").unwrap(),
        serial: 42,
        digest: vec![],
    };
    let decoded = decode(&marker.encode_retract().unwrap()).unwrap();
    assert_eq!(decoded, Message::Retract(marker.clone()));
    assert_eq!(
        (decoded.origin().to_ascii().as_str(), decoded.serial()),
        ("Example.com.", 42)
    );
    let announced = Marker {
        digest: vec![7; 32],
        ..marker
    };
    assert_eq!(
        decode(&announced.encode_announce().unwrap()).unwrap(),
        Message::Announce(announced)
    );
}

#[test]
fn the_digest_scheme_does_not_change() {
    // Operators and pods of different releases must agree: this value is the scheme's.
    let mut zone = snapshot(
        5,
        "www IN A 192.0.2.1\nwww IN A 192.0.2.1\nWWW IN AAAA 2001:db8::1\nmail IN MX 10 Mail\n\
         a.b.c IN TXT \"deep\"\n*.wild IN CNAME www\nzz IN A 192.0.2.9\n",
    );
    let mut shuffled = zone.records.clone();
    shuffled.rotate_left(3);
    zone.records.extend(shuffled);
    assert_eq!(
        hex(&zone_digest(&zone.origin, &zone.records)),
        "d38ba6f6934cf908d80ee9d88f6d34ff2491a6bb43ead9027c0f3f8431160d1b"
    );
}

#[test]
fn a_snapshot_reads_one_record_at_a_time_as_it_decodes() {
    let original = snapshot(
        3,
        "www IN A 192.0.2.1\nmail IN MX 10 Mail\ntxt IN TXT \"hello world\"\n",
    );
    let bytes = original.encode().unwrap();
    let reader = SnapshotReader::new(&bytes).unwrap();
    assert_eq!(reader.origin, original.origin);
    assert_eq!((reader.serial, &reader.digest), (3, &original.digest));
    assert_eq!(reader.remaining(), original.records.len());
    let records: Vec<Record> = reader.map(Result::unwrap).collect();
    assert_eq!(records, original.records);

    // Bytes after the last record, a record cut short, another kind: errors.
    let mut trailing = bytes.clone();
    trailing.push(0);
    let last = SnapshotReader::new(&trailing).unwrap().last().unwrap();
    assert!(matches!(last, Err(WireError::TrailingBytes(1))), "{last:?}");
    let short = &bytes[..bytes.len() - 3];
    assert!(SnapshotReader::new(short).unwrap().any(|r| r.is_err()));
    let delta = Delta::between(&original, &original).encode().unwrap();
    assert!(SnapshotReader::new(&delta).is_err());
}

#[test]
fn peek_names_the_version_of_a_message_whose_records_do_not_decode() {
    let original = snapshot(9, "www IN A 192.0.2.1\n");
    let bytes = original.encode().unwrap();
    // Cut into the last record: the records no longer decode, the header still reads.
    let cut = &bytes[..bytes.len() - 2];
    assert!(decode(cut).is_err());
    let (origin, serial) = peek(cut).unwrap();
    assert_eq!(origin, original.origin);
    assert_eq!(serial, 9);
    assert!(matches!(
        peek(b"not a message"),
        Err(WireError::Truncated(_))
    ));
    assert!(matches!(
        peek(b"XYZ0000000000000000"),
        Err(WireError::BadMagic)
    ));
}

#[test]
fn a_condensed_chain_is_the_delta_between_its_ends() {
    let v1 = snapshot(1, "www IN A 192.0.2.1\ngone IN A 192.0.2.9\n");
    let v2 = snapshot(
        2,
        "www IN A 192.0.2.2\ngone IN A 192.0.2.9\nbrief IN A 192.0.2.7\n",
    );
    let v3 = snapshot(3, "www IN A 192.0.2.1\nnew IN TXT \"3\"\n");
    let d1 = Delta::between(&v1, &v2);
    let d2 = Delta::between(&v2, &v3);
    let condensed = Delta::condensed([&d1, &d2]).unwrap();
    let direct = Delta::between(&v1, &v3);
    let identities =
        |records: &[Record]| -> BTreeSet<Vec<u8>> { records.iter().map(record_identity).collect() };
    assert_eq!(identities(&condensed.removed), identities(&direct.removed));
    assert_eq!(identities(&condensed.added), identities(&direct.added));
    // www went to .2 and back, `brief` came and went: neither is in the difference.
    assert_eq!(condensed.removed.len(), 2, "SOA 1 and gone");
    assert_eq!(condensed.added.len(), 2, "SOA 3 and new");
    assert_eq!((condensed.from_serial, condensed.serial), (1, 3));
    assert_eq!(condensed.digest, v3.digest);
    assert_eq!(
        zone_digest(&v3.origin, &condensed.apply(v1).unwrap().records),
        zone_digest(&v3.origin, &v3.records)
    );
    // Deltas that do not follow each other, or none, do not condense.
    assert!(Delta::condensed([&d2, &d1]).is_none());
    assert!(Delta::condensed(std::iter::empty()).is_none());
}
