use hickory_proto::{
    rr::{Name, RecordType},
    serialize::txt::Parser,
};

use super::{DecodedAnswer, Rcode, ZoneIndex};

const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@           IN SOA   ns1 hostmaster 7 3600 600 1209600 300
@           IN NS    ns1
@           IN NS    ns.provider.net.
@           IN MX    10 mail
ns1         IN A     192.0.2.53
mail        IN A     192.0.2.25
www         IN CNAME web
web         IN CNAME Server
server      IN A     192.0.2.80
dangling    IN CNAME nowhere
outside     IN CNAME www.example.org.
loop1       IN CNAME loop2
loop2       IN CNAME loop1
a.b         IN TXT   "deep"
*.wild      IN A     192.0.2.99
host.wild   IN A     192.0.2.98
*.alias     IN CNAME server
sub         IN NS    ns1.sub
sub         IN NS    ns.elsewhere.org.
sub         IN DS    60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
ns1.sub     IN A     192.0.2.77
nods        IN NS    ns.elsewhere.org.
"#;

fn zone() -> ZoneIndex {
    let origin = Name::from_ascii("example.com.").unwrap();
    let (_, rrsets) = Parser::new(ZONE, None, Some(origin.clone()))
        .parse()
        .unwrap();
    let records = rrsets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    ZoneIndex::build(&origin, records).unwrap()
}

fn ask(name: &str, qtype: RecordType) -> DecodedAnswer {
    zone()
        .lookup(&Name::from_ascii(name).unwrap(), qtype)
        .decode()
}

fn rendered(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

#[test]
fn answers_data_authoritatively_in_the_case_asked() {
    let answer = ask("MAIL.Example.COM.", RecordType::A);
    assert_eq!(answer.rcode, Rcode::NoError);
    assert!(answer.authoritative);
    assert_eq!(
        rendered(&answer.answers),
        ["MAIL.Example.COM. 3600 A 192.0.2.25"]
    );
    assert!(answer.authority.is_empty());
}

#[test]
fn negative_answers_carry_the_soa_with_the_rfc_2308_ttl() {
    let nodata = ask("mail.example.com.", RecordType::AAAA);
    assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
    assert_eq!(nodata.authority.len(), 1);
    assert_eq!(nodata.authority[0].record_type(), RecordType::SOA);
    assert_eq!(
        nodata.authority[0].ttl, 300,
        "min(SOA TTL 3600, MINIMUM 300)"
    );

    let nxdomain = ask("missing.example.com.", RecordType::A);
    assert_eq!(nxdomain.rcode, Rcode::NxDomain);
    assert!(nxdomain.authoritative);
    assert_eq!(nxdomain.authority[0].ttl, 300);
}

#[test]
fn empty_non_terminals_are_nodata_not_nxdomain() {
    let answer = ask("b.example.com.", RecordType::A);
    assert_eq!(answer.rcode, Rcode::NoError);
    assert!(answer.answers.is_empty());
    assert_eq!(answer.authority[0].record_type(), RecordType::SOA);
}

#[test]
fn cname_chains_are_followed_inside_the_zone() {
    let answer = ask("www.example.com.", RecordType::A);
    assert_eq!(
        rendered(&answer.answers),
        [
            "www.example.com. 3600 CNAME web.example.com.",
            "web.example.com. 3600 CNAME server.example.com.",
            "server.example.com. 3600 A 192.0.2.80",
        ]
    );
    // Asking for the CNAME itself stops at it.
    assert_eq!(ask("www.example.com.", RecordType::CNAME).answers.len(), 1);
}

#[test]
fn a_dangling_cname_ends_in_nxdomain_and_a_foreign_one_ends_the_chain() {
    let dangling = ask("dangling.example.com.", RecordType::A);
    assert_eq!(dangling.rcode, Rcode::NxDomain);
    assert_eq!(dangling.answers.len(), 1);
    assert_eq!(dangling.authority[0].record_type(), RecordType::SOA);

    let outside = ask("outside.example.com.", RecordType::A);
    assert_eq!((outside.rcode, outside.answers.len()), (Rcode::NoError, 1));
    assert!(outside.authority.is_empty());

    let looped = ask("loop1.example.com.", RecordType::A);
    assert_eq!(looped.answers.len(), 2, "each CNAME once, then stop");
}

#[test]
fn wildcards_synthesise_for_names_with_no_closer_match() {
    let answer = ask("Anything.wild.example.com.", RecordType::A);
    assert_eq!(
        rendered(&answer.answers),
        ["Anything.wild.example.com. 3600 A 192.0.2.99"]
    );
    // NODATA at a wildcard.
    let nodata = ask("anything.wild.example.com.", RecordType::TXT);
    assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
    // An existing name blocks the wildcard for itself and below it.
    assert_eq!(
        rendered(&ask("host.wild.example.com.", RecordType::A).answers),
        ["host.wild.example.com. 3600 A 192.0.2.98"]
    );
    assert_eq!(
        ask("x.host.wild.example.com.", RecordType::A).rcode,
        Rcode::NxDomain
    );
    // Two labels below the wildcard's parent are covered too.
    assert_eq!(ask("a.b.wild.example.com.", RecordType::A).answers.len(), 1);
}

#[test]
fn wildcard_cnames_are_followed() {
    let answer = ask("x.alias.example.com.", RecordType::A);
    assert_eq!(
        rendered(&answer.answers),
        [
            "x.alias.example.com. 3600 CNAME server.example.com.",
            "server.example.com. 3600 A 192.0.2.80"
        ]
    );
}

#[test]
fn names_at_or_below_a_cut_get_a_referral_with_glue() {
    for name in [
        "sub.example.com.",
        "www.sub.example.com.",
        "deep.www.sub.example.com.",
    ] {
        let answer = ask(name, RecordType::A);
        assert_eq!(answer.rcode, Rcode::NoError, "{name}");
        assert!(
            !answer.authoritative,
            "{name}: a referral is not authoritative"
        );
        assert!(answer.answers.is_empty());
        assert_eq!(answer.authority.len(), 2);
        assert!(
            answer
                .authority
                .iter()
                .all(|r| r.record_type() == RecordType::NS)
        );
        assert_eq!(
            rendered(&answer.additionals),
            ["ns1.sub.example.com. 3600 A 192.0.2.77"]
        );
    }
    // An NS question at the cut is a referral too.
    assert!(!ask("sub.example.com.", RecordType::NS).authoritative);
}

#[test]
fn ds_at_a_cut_is_answered_by_the_parent() {
    let answer = ask("sub.example.com.", RecordType::DS);
    assert!(answer.authoritative);
    assert_eq!(answer.answers.len(), 1);
    let none = ask("nods.example.com.", RecordType::DS);
    assert!(none.authoritative);
    assert_eq!(
        (none.answers.len(), none.authority[0].record_type()),
        (0, RecordType::SOA)
    );
}

#[test]
fn names_outside_the_zone_are_refused() {
    let answer = ask("www.example.org.", RecordType::A);
    assert_eq!(answer.rcode, Rcode::Refused);
    assert!(!answer.authoritative);
}

#[test]
fn any_is_answered_minimally() {
    let answer = ask("example.com.", RecordType::ANY);
    let types: std::collections::BTreeSet<_> =
        answer.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "one RRset (RFC 8482), got {types:?}");
}

#[test]
fn the_index_holds_empty_non_terminals_and_the_serial() {
    let zone = zone();
    assert_eq!(zone.serial(), 7);
    assert!(
        zone.node(&Name::from_ascii("b.example.com.").unwrap())
            .is_some_and(|n| n.is_empty())
    );
}

#[test]
fn a_zone_without_soa_or_with_foreign_records_is_refused_at_build() {
    let origin = Name::from_ascii("example.com.").unwrap();
    assert!(ZoneIndex::build(&origin, []).is_err());
    let other = Name::from_ascii("other.org.").unwrap();
    let (_, rrsets) = Parser::new("other.org. 60 IN A 192.0.2.1\n", None, Some(other))
        .parse()
        .unwrap();
    let records = rrsets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    assert!(ZoneIndex::build(&origin, records).is_err());
}

#[test]
fn any_at_a_cname_is_the_cname_alone() {
    // As NSD and Knot answer: ANY takes the CNAME as it is, with no chain, even when the
    // chain would dangle.
    for name in [
        "www.example.com.",
        "dangling.example.com.",
        "x.alias.example.com.",
    ] {
        let answer = ask(name, RecordType::ANY);
        assert_eq!(answer.rcode, Rcode::NoError, "{name}");
        assert_eq!(answer.answers.len(), 1, "{name}");
        assert_eq!(answer.answers[0].record_type(), RecordType::CNAME, "{name}");
        assert!(answer.authority.is_empty(), "{name}");
    }
}

#[test]
fn names_sort_in_canonical_order() {
    // RFC 4034 §6.1's example, lowercased.
    let ordered: Vec<Vec<u8>> = [
        &b"\x07example\x00"[..],
        b"\x01a\x07example\x00",
        b"\x08yljkjljk\x01a\x07example\x00",
        b"\x01z\x01a\x07example\x00",
        b"\x04zabc\x01a\x07example\x00",
        b"\x01z\x07example\x00",
        b"\x01\x01\x01z\x07example\x00",
        b"\x01*\x01z\x07example\x00",
        b"\x01\xc8\x01z\x07example\x00",
    ]
    .iter()
    .map(|name| name.to_vec())
    .collect();
    let mut shuffled = ordered.clone();
    shuffled.reverse();
    shuffled.swap(1, 5);
    shuffled.sort_by(|a, b| super::index::canonical_cmp(a, b));
    assert_eq!(shuffled, ordered);
}

#[test]
fn each_record_keeps_the_case_it_was_loaded_with_and_repeats_count_once() {
    use hickory_proto::rr::{RData, Record, rdata};
    let name = |text: &str| Name::from_ascii(text).unwrap();
    let origin = name("example.com.");
    let soa = rdata::SOA::new(
        name("ns1.example.com."),
        name("hostmaster.example.com."),
        1,
        60,
        60,
        60,
        60,
    );
    let records = [
        Record::from_rdata(origin.clone(), 60, RData::SOA(soa)),
        Record::from_rdata(
            name("WWW.example.com."),
            60,
            RData::A("192.0.2.1".parse().unwrap()),
        ),
        Record::from_rdata(
            name("www.example.com."),
            60,
            RData::A("192.0.2.2".parse().unwrap()),
        ),
        Record::from_rdata(
            origin.clone(),
            60,
            RData::NS(rdata::NS(name("ns1.example.com."))),
        ),
        Record::from_rdata(
            origin.clone(),
            60,
            RData::NS(rdata::NS(name("NS1.example.com."))),
        ),
    ];
    let zone = ZoneIndex::build(&origin, records).unwrap();
    let owners: Vec<String> = zone
        .records()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        owners,
        ["WWW.example.com. 192.0.2.1", "www.example.com. 192.0.2.2"]
    );
    // The NS pair differs only in the case of its target: one record.
    assert_eq!(zone.record_count(), 4);
    // Answers take the case asked.
    let answer = zone
        .lookup(&name("wWw.example.com."), RecordType::A)
        .decode();
    assert_eq!(answer.answers.len(), 2);
    assert!(
        answer
            .answers
            .iter()
            .all(|r| r.name.to_string() == "wWw.example.com.")
    );
}

#[test]
fn the_index_digest_is_the_digest_the_operator_publishes() {
    use hickory_proto::rr::{RData, Record, rdata};
    let origin = Name::from_ascii("Example.com.").unwrap();
    let (_, rrsets) = Parser::new(ZONE, None, Some(origin.clone()))
        .parse()
        .unwrap();
    let mut records: Vec<Record> = rrsets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    // A repeat, and a record that differs from another only in the case of its data: the
    // digest counts the first once and both of the second, whatever the index keeps.
    records.push(records[3].clone());
    let ns1 = Name::from_ascii("NS1.example.com.").unwrap();
    records.push(Record::from_rdata(
        origin.clone(),
        3600,
        RData::NS(rdata::NS(ns1)),
    ));
    records.reverse();
    let zone = ZoneIndex::build(&origin, records.clone()).unwrap();
    assert_eq!(
        zone.digest(),
        &zonefleet_wire::zone_digest(&origin, &records)
    );
}
