//! Parsing a Record's values as zone-file rdata, with hickory-proto's zone-file parser, and
//! checking that every value the operator accepts is served: each rdata is encoded as a
//! snapshot carries it and decoded as a DNS pod decodes it, and must come back unchanged.
//!
//! TXT values are read in one of two ways. A value that starts with `"` is master-file
//! text: one or more quoted strings, with escapes. Any other value is one string, taken
//! literally (spaces included). Either way a string longer than 255 bytes (the DNS limit
//! of one character-string) is split into 255-byte strings, which is how long DKIM keys
//! and SPF policies are published.

use hickory_proto::{
    rr::{Name, RData, Record, RecordType, rdata::TXT},
    serialize::txt::Parser,
};

/// The most bytes of one DNS character-string (RFC 1035 §3.3).
pub const MAX_CHARACTER_STRING: usize = 255;

/// The most bytes of a DNS message over TCP (RFC 1035 §4.2.2): an RRset must fit in one
/// answer, with the header, the question and an EDNS OPT record.
pub const MAX_MESSAGE: usize = 65_535;

/// The fixed parts of an answer besides its records: the header (12 bytes), the question's
/// type and class (4) and an EDNS OPT record (11).
const ANSWER_OVERHEAD: usize = 12 + 4 + 11;

/// How much of a value a message quotes.
const QUOTED_VALUE_CHARS: usize = 80;

/// Values that are not valid rdata for their type, or would not be served as written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("value {index} ({}): {message}", abbreviated(value))]
pub struct InvalidRData {
    /// The position of the value in `values`.
    pub index: usize,
    /// The value as written.
    pub value: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// The value quoted, cut after [`QUOTED_VALUE_CHARS`] characters.
fn abbreviated(value: &str) -> String {
    match value.char_indices().nth(QUOTED_VALUE_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// Parses each value as rdata of `record_type` for `owner`, with names relative to `origin`,
/// and checks that each survives the trip to the DNS pods and that the RRset fits in one
/// DNS message. Duplicate values collapse into one. The rdata returned are as the pods
/// decode them.
pub fn parse_values(
    values: &[String],
    record_type: RecordType,
    owner: &Name,
    origin: &Name,
) -> Result<Vec<RData>, InvalidRData> {
    let mut parsed: Vec<RData> = Vec::with_capacity(values.len());
    let mut answer_size = ANSWER_OVERHEAD + wire_name_len(owner);
    for (index, value) in values.iter().enumerate() {
        let invalid = |message: String| InvalidRData {
            index,
            value: value.clone(),
            message,
        };
        let rdata = parse_value(value, record_type, owner, origin)
            .map_err(|message| invalid(with_hint(&message, record_type)))?;
        let (rdata, record_len) = round_trip(owner, rdata)
            .map_err(|message| invalid(with_hint(&message, record_type)))?;
        if parsed.contains(&rdata) {
            continue;
        }
        answer_size += record_len;
        if answer_size > MAX_MESSAGE {
            return Err(invalid(format!(
                "with this value the {record_type} RRset takes more than {MAX_MESSAGE} bytes, \
                 more than one DNS message can carry: use fewer or shorter values"
            )));
        }
        parsed.push(rdata);
    }
    Ok(parsed)
}

/// The length of `name` in uncompressed wire form.
fn wire_name_len(name: &Name) -> usize {
    name.iter().map(|label| label.len() + 1).sum::<usize>() + 1
}

fn parse_value(
    value: &str,
    record_type: RecordType,
    owner: &Name,
    origin: &Name,
) -> Result<RData, String> {
    // One value is one zone-file line: a line break could smuggle in another record.
    if value.contains(['\n', '\r']) {
        return Err("a value must be a single line".into());
    }
    if value.trim().is_empty() {
        return Err("a value must not be empty".into());
    }
    if record_type == RecordType::TXT {
        return parse_txt(value, owner, origin);
    }
    parse_master_file(value, record_type, owner, origin)
}

/// A TXT value: master-file text if it starts with `"`, otherwise one literal string;
/// strings longer than 255 bytes are split.
fn parse_txt(value: &str, owner: &Name, origin: &Name) -> Result<RData, String> {
    if !value.starts_with('"') {
        return Ok(RData::TXT(split_long_strings(&[value.as_bytes()])));
    }
    match parse_master_file(value, RecordType::TXT, owner, origin)? {
        RData::TXT(txt) => Ok(RData::TXT(split_long_strings(&txt.txt_data))),
        other => Err(format!("not a TXT record: {other}")),
    }
}

/// TXT data with every string longer than 255 bytes split into 255-byte strings (the last
/// one shorter); an empty string stays one empty string.
fn split_long_strings<S: AsRef<[u8]>>(strings: &[S]) -> TXT {
    let split: Vec<&[u8]> = strings
        .iter()
        .map(AsRef::as_ref)
        .flat_map(|string| {
            let chunks: Vec<&[u8]> = if string.is_empty() {
                vec![string]
            } else {
                string.chunks(MAX_CHARACTER_STRING).collect()
            };
            chunks
        })
        .collect();
    TXT::from_bytes(split)
}

/// One value parsed by hickory-proto's zone-file parser, as the line `owner 0 IN type value`.
fn parse_master_file(
    value: &str,
    record_type: RecordType,
    owner: &Name,
    origin: &Name,
) -> Result<RData, String> {
    let line = format!("{} 0 IN {record_type} {value}\n", owner.to_ascii());
    let (_, mut rrsets) = Parser::new(line, None, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    // Exactly the one record asked for, or the text said something else.
    let (key, rrset) = match (rrsets.pop_first(), rrsets.is_empty()) {
        (Some(entry), true) => entry,
        _ => return Err(format!("not a single {record_type} record")),
    };
    if key.record_type != record_type || rrset.records_count() != 1 {
        return Err(format!("not a single {record_type} record"));
    }
    rrset
        .records_without_rrsigs()
        .next()
        .map(|record| record.data.clone())
        .ok_or_else(|| format!("not a single {record_type} record"))
}

/// Encodes `rdata` as a snapshot carries it, decodes it as a DNS pod does, and requires
/// the same bytes again. Returns the decoded rdata and the record's length on the wire.
fn round_trip(owner: &Name, rdata: RData) -> Result<(RData, usize), String> {
    let record = Record::from_rdata(owner.clone(), 0, rdata);
    let bytes = zonefleet_wire::encode_record(&record)
        .map_err(|e| format!("it cannot be encoded for the DNS pods: {e}"))?;
    let decoded = zonefleet_wire::decode_record(&bytes)
        .map_err(|e| format!("the DNS pods could not decode it: {e}"))?;
    let again = zonefleet_wire::encode_record(&decoded)
        .map_err(|e| format!("the DNS pods could not encode it again: {e}"))?;
    if again != bytes {
        return Err(format!(
            "the DNS pods would serve it differently, as {}",
            decoded.data
        ));
    }
    Ok((decoded.data, bytes.len()))
}

/// `message`, followed by what to write for `record_type`.
fn with_hint(message: &str, record_type: RecordType) -> String {
    format!("{message}; {}", hint(record_type))
}

/// What a valid value of `record_type` looks like.
fn hint(record_type: RecordType) -> &'static str {
    match record_type {
        RecordType::A => "write an IPv4 address such as 192.0.2.1",
        RecordType::AAAA => "write an IPv6 address such as 2001:db8::1",
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            "write a host name, relative to the zone or absolute with a trailing dot"
        }
        RecordType::MX => "write a preference and a host name, such as 10 mail.example.com.",
        RecordType::TXT => {
            "write the text as it is (one string), or quoted strings such as \"v=spf1 -all\""
        }
        RecordType::SRV => {
            "write priority, weight, port and target, such as 0 5 5060 sip.example.com."
        }
        RecordType::CAA => {
            "write flags (0 or 128), a tag and a quoted value, such as 0 issue \"ca.example.net\"; \
             the tag must be issue, issuewild, iodef or another tag of 1 to 15 letters and digits"
        }
        RecordType::DS => {
            "write key tag, algorithm, digest type and the digest in hex, such as \
             60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"
        }
        RecordType::TLSA => {
            "write usage, selector, matching type and the data in hex, such as 3 1 1 0123456789ABCDEF"
        }
        RecordType::SSHFP => {
            "write algorithm, fingerprint type and the fingerprint in hex, such as \
             2 1 123456789abcdef67890123456789abcdef67890"
        }
        RecordType::NAPTR => {
            "write order, preference, flags, services, regexp and replacement, such as \
             100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" . \
             (each quoted string at most 255 bytes)"
        }
        RecordType::SVCB | RecordType::HTTPS => {
            "write priority, target and parameters, such as 1 . alpn=h2,h3 port=443"
        }
        _ => "write the value in the type's zone-file presentation format",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn parse(record_type: RecordType, values: &[&str]) -> Result<Vec<RData>, InvalidRData> {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let owner = Name::from_ascii("www.example.com.").unwrap();
        parse_values(&values, record_type, &owner, &origin())
    }

    #[test]
    fn parses_common_types_with_relative_names() {
        let mx = parse(RecordType::MX, &["10 mail"]).unwrap();
        assert_eq!(mx[0].to_string(), "10 mail.example.com.");
        let a = parse(RecordType::A, &["192.0.2.1", "192.0.2.2", "192.0.2.1"]).unwrap();
        assert_eq!(a.len(), 2, "duplicates collapse");
        let txt = parse(RecordType::TXT, &["\"v=spf1 -all\""]).unwrap();
        assert!(txt[0].to_string().contains("v=spf1 -all"));
        assert!(parse(RecordType::SRV, &["0 5 5060 sip.example.com."]).is_ok());
        assert!(parse(RecordType::CAA, &["0 issue \"letsencrypt.org\""]).is_ok());
        assert!(parse(RecordType::AAAA, &["2001:db8::1"]).is_ok());
    }

    #[test]
    fn every_type_of_the_api_parses() {
        let samples = [
            (RecordType::A, "192.0.2.1"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::CNAME, "target"),
            (RecordType::MX, "10 mail"),
            (RecordType::TXT, "\"hello world\""),
            (RecordType::SRV, "0 5 5060 sip"),
            (RecordType::CAA, "0 issue \"ca.example\""),
            (RecordType::NS, "ns1.sub"),
            (RecordType::PTR, "host.example.com."),
            (
                RecordType::DS,
                "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            ),
            (RecordType::TLSA, "3 1 1 0123456789ABCDEF"),
            (
                RecordType::SSHFP,
                "2 1 123456789abcdef67890123456789abcdef67890",
            ),
            (
                RecordType::NAPTR,
                "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
            ),
            (RecordType::SVCB, "1 . alpn=h2"),
            (RecordType::HTTPS, "1 . alpn=h2,h3"),
        ];
        for (record_type, value) in samples {
            let parsed = parse(record_type, &[value]);
            assert!(parsed.is_ok(), "{record_type} {value}: {parsed:?}");
        }
    }

    #[test]
    fn reports_the_parsers_message_and_the_value() {
        let err = parse(RecordType::A, &["192.0.2.1", "not-an-address"]).unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.value, "not-an-address");
        assert!(!err.message.is_empty());
        assert!(
            parse(RecordType::MX, &["mail.example.com."]).is_err(),
            "MX needs a preference"
        );
        assert!(parse(RecordType::AAAA, &["192.0.2.1"]).is_err());
    }

    fn txt_strings(rdata: &RData) -> Vec<Vec<u8>> {
        match rdata {
            RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
            other => panic!("not TXT: {other:?}"),
        }
    }

    #[test]
    fn a_txt_string_over_255_bytes_is_split_into_255_byte_strings() {
        // A 2048-bit DKIM key: one string of about 400 bytes.
        let key = format!(
            "v=DKIM1; k=rsa; p={}",
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A".repeat(12)
        );
        assert!(key.len() > 255);
        for value in [key.clone(), format!("\"{key}\"")] {
            let txt = parse(RecordType::TXT, &[&value]).unwrap();
            let strings = txt_strings(&txt[0]);
            assert_eq!(strings.len(), key.len().div_ceil(255), "{value}");
            assert!(strings.iter().all(|s| s.len() <= 255));
            assert_eq!(strings[0].len(), 255);
            assert_eq!(strings.concat(), key.as_bytes(), "nothing lost or added");
        }
        // Quoted strings are split one by one; short ones stay as they are.
        let long = "x".repeat(300);
        let txt = parse(RecordType::TXT, &[&format!("\"a\" \"{long}\" \"b\"")]).unwrap();
        let lengths: Vec<usize> = txt_strings(&txt[0]).iter().map(Vec::len).collect();
        assert_eq!(lengths, [1, 255, 45, 1]);
    }

    #[test]
    fn an_unquoted_txt_value_is_one_string_taken_literally() {
        let spf = "v=spf1 include:_spf.example.net ~all";
        let txt = parse(RecordType::TXT, &[spf]).unwrap();
        assert_eq!(txt_strings(&txt[0]), [spf.as_bytes().to_vec()]);
        // Quotes, backslashes and semicolons inside are part of the text.
        let literal = r#"a "b" c\d; e"#;
        let txt = parse(RecordType::TXT, &[literal]).unwrap();
        assert_eq!(txt_strings(&txt[0]), [literal.as_bytes().to_vec()]);
        // A quoted value keeps master-file syntax: several strings.
        let txt = parse(RecordType::TXT, &["\"v=spf1\" \"-all\""]).unwrap();
        assert_eq!(txt_strings(&txt[0]), [b"v=spf1".to_vec(), b"-all".to_vec()]);
        let empty = parse(RecordType::TXT, &["\"\""]).unwrap();
        assert_eq!(txt_strings(&empty[0]), [Vec::<u8>::new()]);
    }

    #[test]
    fn a_caa_tag_the_pods_cannot_decode_is_refused_with_advice() {
        let err = parse(RecordType::CAA, &["0 bogus-tag \"x\""]).unwrap_err();
        assert!(err.message.contains("could not decode"), "{}", err.message);
        assert!(
            err.message.contains("issue, issuewild, iodef"),
            "the message says what to write: {}",
            err.message
        );
        for good in [
            "0 issue \"letsencrypt.org\"",
            "128 issue \"ca.example\"",
            "0 issue \";\"",
            "0 issuewild \"ca.example\"",
            "0 iodef \"mailto:security@example.com\"",
            "0 contactemail \"security@example.com\"",
        ] {
            assert!(parse(RecordType::CAA, &[good]).is_ok(), "{good}");
        }
    }

    #[test]
    fn every_accepted_rdata_is_what_the_pods_decode() {
        let values = [
            "0 issue \"ca.example\"",
            "128 iodef \"https://ca.example/\"",
        ];
        for rdata in parse(RecordType::CAA, &values).unwrap() {
            let owner = Name::from_ascii("www.example.com.").unwrap();
            let record = Record::from_rdata(owner, 0, rdata.clone());
            let bytes = zonefleet_wire::encode_record(&record).unwrap();
            assert_eq!(zonefleet_wire::decode_record(&bytes).unwrap().data, rdata);
        }
    }

    #[test]
    fn an_rrset_larger_than_a_dns_message_is_refused() {
        let value = "t".repeat(4000);
        let values: Vec<String> = (0..20).map(|i| format!("{i:02}{value}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let err = parse(RecordType::TXT, &refs).unwrap_err();
        assert!(err.index > 10, "{err}");
        assert!(err.message.contains("65535"), "{}", err.message);
        assert!(parse(RecordType::TXT, &refs[..10]).is_ok());
    }

    #[test]
    fn messages_quote_long_values_abbreviated() {
        let err = parse(RecordType::A, &[&"9".repeat(500)]).unwrap_err();
        assert_eq!(err.value.len(), 500);
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn refuses_values_that_would_add_other_records() {
        let err = parse(RecordType::A, &["192.0.2.1\nevil 300 IN A 203.0.113.66"]).unwrap_err();
        assert!(err.message.contains("single line"), "{}", err.message);
        assert!(parse(RecordType::A, &[" "]).is_err());
    }
}
