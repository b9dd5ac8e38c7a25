use serde_json::json;

use super::*;

fn zone_spec(extra: serde_json::Value) -> ZoneSpec {
    let mut spec = json!({
        "domain": "example.com",
        "ttl": 3600,
        "nameServers": [
            {"name": "ns1.example.com", "addresses": ["192.0.2.53"]},
            {"name": "ns.provider.net"},
        ],
    });
    if let (Some(base), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(spec).unwrap()
}

fn record(name: &str, age: i64, spec: serde_json::Value) -> RecordInput {
    record_in("dns", name, age, spec)
}

fn record_in(namespace: &str, name: &str, age: i64, spec: serde_json::Value) -> RecordInput {
    RecordInput {
        key: ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        },
        created: Some(Timestamp::from_second(1_700_000_000 + age).unwrap()),
        spec: serde_json::from_value(spec).unwrap(),
        namespace_labels: None,
    }
}

fn rr(owner: &str, record_type: &str, values: &[&str]) -> serde_json::Value {
    json!({"zoneRef": {"name": "example"}, "name": owner, "type": record_type, "values": values})
}

fn verdict<'a>(assembly: &'a Assembly, name: &str) -> &'a Verdict {
    &assembly.verdicts[&ObjectKey {
        namespace: "dns".into(),
        name: name.into(),
    }]
}

fn reason(assembly: &Assembly, name: &str) -> Option<RejectReason> {
    match verdict(assembly, name) {
        Verdict::Accepted => None,
        Verdict::Rejected { reason, .. } => Some(*reason),
    }
}

fn rrset<'a>(assembly: &'a Assembly, owner: &str, record_type: RecordType) -> Option<&'a RrSet> {
    let owner = Name::from_ascii(owner).unwrap();
    assembly
        .zone
        .rrsets
        .iter()
        .find(|s| s.name == owner && s.record_type == record_type)
}

#[test]
fn assembles_soa_apex_ns_glue_and_records() {
    let records = [
        record("www", 1, rr("www", "A", &["192.0.2.10"])),
        record("mx", 2, rr("@", "MX", &["10 mail"])),
        record("mail", 3, rr("mail", "AAAA", &["2001:db8::25"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert!(
        assembly.verdicts.values().all(|v| *v == Verdict::Accepted),
        "{:?}",
        assembly.verdicts
    );
    let zone = &assembly.zone;
    assert_eq!(zone.origin.to_ascii(), "example.com.");
    assert_eq!(zone.soa.mname.to_ascii(), "ns1.example.com.");
    assert_eq!(zone.soa.rname.to_ascii(), "hostmaster.example.com.");
    assert_eq!(
        (
            zone.soa.refresh,
            zone.soa.retry,
            zone.soa.expire,
            zone.soa.minimum
        ),
        (3600, 600, 1_209_600, 300)
    );
    assert_eq!(
        rrset(&assembly, "example.com.", RecordType::NS)
            .unwrap()
            .rdata
            .len(),
        2
    );
    assert!(
        rrset(&assembly, "ns1.example.com.", RecordType::A).is_some(),
        "glue for the in-zone server"
    );
    assert_eq!(
        rrset(&assembly, "example.com.", RecordType::MX)
            .unwrap()
            .rdata[0]
            .to_string(),
        "10 mail.example.com."
    );
    // SOA + 2 NS + glue + 3 records.
    assert_eq!(zone.record_count, 7);
    assert!(assembly.warnings.is_empty());
    // Canonical order: the apex first, then names by their labels from the right.
    let order: Vec<String> = zone
        .rrsets
        .iter()
        .map(|s| format!("{} {}", s.name, s.record_type))
        .collect();
    assert_eq!(
        order,
        [
            "example.com. NS",
            "example.com. MX",
            "mail.example.com. AAAA",
            "ns1.example.com. A",
            "www.example.com. A",
        ]
    );
}

#[test]
fn record_ttl_defaults_to_the_zone_ttl() {
    let records = [
        record(
            "a",
            1,
            json!({"zoneRef": {"name": "example"}, "name": "a", "type": "A", "ttl": 60, "values": ["192.0.2.1"]}),
        ),
        record("b", 2, rr("b", "A", &["192.0.2.2"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({"ttl": 900})), &records).unwrap();
    assert_eq!(
        rrset(&assembly, "a.example.com.", RecordType::A)
            .unwrap()
            .ttl,
        60
    );
    assert_eq!(
        rrset(&assembly, "b.example.com.", RecordType::A)
            .unwrap()
            .ttl,
        900
    );
}

#[test]
fn the_oldest_record_wins_a_conflict() {
    let records = [
        record("newer", 20, rr("www", "A", &["192.0.2.2"])),
        record("older", 10, rr("www", "A", &["192.0.2.1"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "older"), None);
    assert_eq!(reason(&assembly, "newer"), Some(RejectReason::Conflict));
    let Verdict::Rejected { message, .. } = verdict(&assembly, "newer") else {
        unreachable!()
    };
    assert!(message.contains("dns/older"), "{message}");
    assert_eq!(
        rrset(&assembly, "www.example.com.", RecordType::A)
            .unwrap()
            .rdata[0]
            .to_string(),
        "192.0.2.1"
    );
}

#[test]
fn same_age_conflicts_break_on_the_name() {
    let records = [
        record("b", 5, rr("www", "A", &["192.0.2.2"])),
        record("a", 5, rr("www", "A", &["192.0.2.1"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "a"), None);
    assert_eq!(reason(&assembly, "b"), Some(RejectReason::Conflict));
}

#[test]
fn a_cname_shares_its_owner_with_nothing() {
    let records = [
        record("alias", 1, rr("web", "CNAME", &["www"])),
        record("txt", 2, rr("web", "TXT", &["\"hello\""])),
        record("a", 3, rr("www", "A", &["192.0.2.1"])),
        record("late-cname", 4, rr("www", "CNAME", &["web"])),
        record("apex", 5, rr("@", "CNAME", &["www"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "alias"), None);
    assert_eq!(reason(&assembly, "txt"), Some(RejectReason::Conflict));
    assert_eq!(reason(&assembly, "a"), None);
    assert_eq!(
        reason(&assembly, "late-cname"),
        Some(RejectReason::Conflict)
    );
    assert_eq!(reason(&assembly, "apex"), Some(RejectReason::Conflict));
}

#[test]
fn owner_names_match_case_insensitively() {
    let records = [
        record("upper", 1, rr("WWW", "A", &["192.0.2.1"])),
        record("lower", 2, rr("www", "A", &["192.0.2.2"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "lower"), Some(RejectReason::Conflict));
    let set = rrset(&assembly, "www.example.com.", RecordType::A).unwrap();
    assert_eq!(
        set.name.to_ascii(),
        "WWW.example.com.",
        "the case as written is kept"
    );
}

#[test]
fn the_zones_own_data_wins_over_records() {
    let records = [
        record("apex-ns", 1, rr("@", "NS", &["ns9.other.net."])),
        record("glue", 2, rr("ns1", "A", &["198.51.100.1"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "apex-ns"), Some(RejectReason::Conflict));
    assert_eq!(reason(&assembly, "glue"), Some(RejectReason::Conflict));
}

#[test]
fn names_below_a_delegation_are_occluded_except_glue() {
    let records = [
        record("cut", 1, rr("sub", "NS", &["ns1.sub", "ns.elsewhere.org."])),
        record(
            "ds",
            2,
            rr(
                "sub",
                "DS",
                &["60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"],
            ),
        ),
        record("glue", 3, rr("ns1.sub", "A", &["192.0.2.77"])),
        record("hidden", 4, rr("www.sub", "A", &["192.0.2.78"])),
        record("at-cut", 5, rr("sub", "TXT", &["\"not served\""])),
        record("nested", 6, rr("deeper.sub", "NS", &["ns.deeper.org."])),
        record("beside", 7, rr("subway", "A", &["192.0.2.79"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    for served in ["cut", "ds", "glue", "beside"] {
        assert_eq!(reason(&assembly, served), None, "{served}");
    }
    for hidden in ["hidden", "at-cut", "nested"] {
        assert_eq!(
            reason(&assembly, hidden),
            Some(RejectReason::Occluded),
            "{hidden}"
        );
    }
    assert!(rrset(&assembly, "www.sub.example.com.", RecordType::A).is_none());
    assert!(rrset(&assembly, "ns1.sub.example.com.", RecordType::A).is_some());
}

#[test]
fn out_of_zone_owners_are_rejected() {
    let records = [
        record("foreign", 1, rr("www.example.org.", "A", &["192.0.2.1"])),
        record(
            "absolute-inside",
            2,
            rr("www.example.com.", "A", &["192.0.2.2"]),
        ),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "foreign"), Some(RejectReason::OutOfZone));
    assert_eq!(reason(&assembly, "absolute-inside"), None);
}

#[test]
fn invalid_rdata_is_rejected_with_the_parsers_message() {
    let records = [record(
        "bad",
        1,
        rr("www", "A", &["192.0.2.1", "999.1.1.1"]),
    )];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    let Verdict::Rejected { reason, message } = verdict(&assembly, "bad") else {
        panic!("accepted")
    };
    assert_eq!(*reason, RejectReason::InvalidRData);
    assert!(message.contains("999.1.1.1"), "{message}");
    assert!(
        rrset(&assembly, "www.example.com.", RecordType::A).is_none(),
        "nothing of it is served"
    );
}

#[test]
fn records_from_other_namespaces_need_the_zones_permission() {
    let foreign = record_in("tenant-b", "hijack", 1, rr("www", "A", &["203.0.113.66"]));
    let assembly = assemble("dns", &zone_spec(json!({})), std::slice::from_ref(&foreign)).unwrap();
    assert_eq!(
        assembly.verdicts[&foreign.key],
        Verdict::Rejected {
            reason: RejectReason::NamespaceNotAllowed,
            message: "the Zone in namespace dns does not admit Records from namespace tenant-b"
                .into()
        }
    );
    let open = zone_spec(json!({"recordNamespaces": {"from": "All"}}));
    let assembly = assemble("dns", &open, std::slice::from_ref(&foreign)).unwrap();
    assert_eq!(assembly.verdicts[&foreign.key], Verdict::Accepted);
}

#[test]
fn the_digest_ignores_input_order_and_tracks_content() {
    let a = record("a", 1, rr("a", "A", &["192.0.2.1", "192.0.2.2"]));
    let b = record("b", 2, rr("b", "TXT", &["\"x\""]));
    let b_reordered = record("b", 2, rr("b", "TXT", &["\"x\""]));
    let a_reordered = record("a", 1, rr("a", "A", &["192.0.2.2", "192.0.2.1"]));
    let spec = zone_spec(json!({}));
    let first = assemble("dns", &spec, &[a.clone(), b.clone()])
        .unwrap()
        .zone
        .digest;
    let second = assemble("dns", &spec, &[b_reordered, a_reordered])
        .unwrap()
        .zone
        .digest;
    assert_eq!(first, second);
    assert_eq!(first.len(), 32, "a SHA-256");

    let changed = record("a", 1, rr("a", "A", &["192.0.2.1", "192.0.2.3"]));
    assert_ne!(
        assemble("dns", &spec, &[changed, b.clone()])
            .unwrap()
            .zone
            .digest,
        first
    );
    let other_ttl = zone_spec(json!({"ttl": 60}));
    assert_ne!(
        assemble("dns", &other_ttl, &[a.clone(), b.clone()])
            .unwrap()
            .zone
            .digest,
        first
    );
    let other_soa = zone_spec(json!({"soa": {"minimum": 60}}));
    assert_ne!(
        assemble("dns", &other_soa, &[a, b]).unwrap().zone.digest,
        first
    );
}

#[test]
fn the_serial_is_not_part_of_the_digest() {
    let assembly = assemble("dns", &zone_spec(json!({})), &[]).unwrap();
    let with_serial = assembly.zone.soa_with_serial(42);
    assert_eq!(with_serial.serial, 42);
    assert_eq!(
        digest::zone_digest(
            &assembly.zone.origin,
            &with_serial,
            assembly.zone.soa_ttl,
            &assembly.zone.rrsets
        ),
        assembly.zone.digest
    );
}

#[test]
fn in_zone_name_servers_without_an_address_are_a_warning() {
    let spec = zone_spec(
        json!({"nameServers": [{"name": "ns1.example.com"}, {"name": "ns2.example.com"}]}),
    );
    let records = [record("ns2", 1, rr("ns2", "AAAA", &["2001:db8::53"]))];
    let assembly = assemble("dns", &spec, &records).unwrap();
    assert_eq!(assembly.warnings.len(), 1);
    assert!(
        assembly.warnings[0].contains("ns1.example.com."),
        "{:?}",
        assembly.warnings
    );
}

#[test]
fn soa_fields_can_be_set() {
    let spec = zone_spec(
        json!({"soa": {"primary": "ns.provider.net", "responsible": "dns.admin@example.org",
                                        "refresh": 7200, "retry": 900, "expire": 604800, "minimum": 60}}),
    );
    let soa = assemble("dns", &spec, &[]).unwrap().zone.soa;
    assert_eq!(soa.mname.to_ascii(), "ns.provider.net.");
    assert_eq!(soa.rname.to_ascii(), "dns\\.admin.example.org.");
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (7200, 900, 604_800, 60)
    );
}

#[test]
fn invalid_glue_fails_the_zone() {
    let spec = zone_spec(
        json!({"nameServers": [{"name": "ns1.example.com", "addresses": ["not-an-ip"]}]}),
    );
    let err = assemble("dns", &spec, &[]).unwrap_err();
    assert!(matches!(err, ZoneSpecError::InvalidAddress { .. }), "{err}");
}

#[test]
fn a_version_becomes_a_snapshot_that_round_trips() {
    let records = [
        record("www", 1, rr("www", "A", &["192.0.2.10", "192.0.2.11"])),
        record("mx", 2, rr("@", "MX", &["10 mail"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    let snapshot = assembly.zone.snapshot(42);
    assert_eq!(snapshot.serial, 42);
    assert_eq!(snapshot.digest.len(), 32);
    assert_eq!(snapshot.records.len() as u32, assembly.zone.record_count);
    let soa = &snapshot.records[0];
    assert!(
        matches!(&soa.data, RData::SOA(s) if s.serial == 42),
        "the SOA comes first, with the serial"
    );
    let bytes = snapshot.encode().unwrap();
    assert_eq!(
        zonefleet_wire::decode(&bytes).unwrap(),
        zonefleet_wire::Message::Snapshot(snapshot)
    );
}

fn message<'a>(assembly: &'a Assembly, name: &str) -> &'a str {
    match verdict(assembly, name) {
        Verdict::Accepted => panic!("{name} was accepted"),
        Verdict::Rejected { message, .. } => message,
    }
}

#[test]
fn a_long_dkim_key_is_accepted_and_publishes() {
    let key = format!(
        "v=DKIM1; k=rsa; p={}",
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A".repeat(12)
    );
    let quoted = format!("\"{key}\"");
    let records = [
        record("dkim", 1, rr("sel._domainkey", "TXT", &[&key])),
        record("dkim-quoted", 2, rr("other._domainkey", "TXT", &[&quoted])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "dkim"), None);
    assert_eq!(reason(&assembly, "dkim-quoted"), None);
    let bytes = assembly
        .zone
        .snapshot(1)
        .encode()
        .expect("the version encodes");
    let zonefleet_wire::Message::Snapshot(decoded) = zonefleet_wire::decode(&bytes).unwrap() else {
        panic!("not a snapshot")
    };
    assert_eq!(decoded.records, assembly.zone.records(1));
}

#[test]
fn a_caa_value_the_pods_cannot_decode_is_rejected_not_published() {
    let records = [
        record("bogus", 1, rr("@", "CAA", &["0 bogus-tag \"x\""])),
        record("www", 2, rr("www", "A", &["192.0.2.1"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(reason(&assembly, "bogus"), Some(RejectReason::InvalidRData));
    assert!(
        message(&assembly, "bogus").contains("issuewild"),
        "{}",
        message(&assembly, "bogus")
    );
    assert_eq!(reason(&assembly, "www"), None, "the zone is not wedged");
    let bytes = assembly.zone.snapshot(1).encode().unwrap();
    assert!(zonefleet_wire::decode(&bytes).is_ok());
}

#[test]
fn an_unquoted_spf_policy_is_one_string() {
    let spf = "v=spf1 include:_spf.example.net ~all";
    let records = [record("spf", 1, rr("@", "TXT", &[spf]))];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    let set = rrset(&assembly, "example.com.", RecordType::TXT).unwrap();
    let RData::TXT(txt) = &set.rdata[0] else {
        panic!("not TXT")
    };
    assert_eq!(txt.txt_data.len(), 1);
    assert_eq!(&*txt.txt_data[0], spf.as_bytes());
}

#[test]
fn a_relative_owner_ending_with_the_domain_is_rejected_as_ambiguous() {
    let records = [
        record("repeated", 1, rr("api.example.com", "A", &["192.0.2.1"])),
        record("apex", 2, rr("Example.Com", "TXT", &["x"])),
        record("relative", 3, rr("api", "AAAA", &["2001:db8::1"])),
        record("absolute", 4, rr("api.example.com.", "A", &["192.0.2.2"])),
    ];
    let assembly = assemble("dns", &zone_spec(json!({})), &records).unwrap();
    assert_eq!(
        reason(&assembly, "repeated"),
        Some(RejectReason::AmbiguousName)
    );
    let text = message(&assembly, "repeated");
    assert!(
        text.contains("api.example.com.example.com.")
            && text.contains("\"api\"")
            && text.contains("\"api.example.com.\""),
        "{text}"
    );
    assert_eq!(reason(&assembly, "apex"), Some(RejectReason::AmbiguousName));
    assert!(message(&assembly, "apex").contains("\"@\""));
    assert_eq!(reason(&assembly, "relative"), None);
    assert_eq!(reason(&assembly, "absolute"), None);
    assert!(rrset(&assembly, "api.example.com.example.com.", RecordType::A).is_none());
    assert_eq!(RejectReason::AmbiguousName.as_str(), "AmbiguousName");
}
