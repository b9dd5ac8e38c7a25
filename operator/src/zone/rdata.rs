//! Parsing a Record's values as zone-file rdata, with hickory-proto's zone-file parser.

use hickory_proto::{
    rr::{Name, RData, RecordType},
    serialize::txt::Parser,
};

/// Values that are not valid rdata for their type; the message is the parser's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("value {index} ({value:?}): {message}")]
pub struct InvalidRData {
    /// The position of the value in `values`.
    pub index: usize,
    /// The value as written.
    pub value: String,
    /// Why it does not parse.
    pub message: String,
}

/// Parses each value as rdata of `record_type` for `owner`, with names relative to `origin`.
/// Duplicate values collapse into one.
pub fn parse_values(
    values: &[String],
    record_type: RecordType,
    owner: &Name,
    origin: &Name,
) -> Result<Vec<RData>, InvalidRData> {
    let mut parsed: Vec<RData> = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let rdata =
            parse_value(value, record_type, owner, origin).map_err(|message| InvalidRData {
                index,
                value: value.clone(),
                message,
            })?;
        if !parsed.contains(&rdata) {
            parsed.push(rdata);
        }
    }
    Ok(parsed)
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

    #[test]
    fn refuses_values_that_would_add_other_records() {
        let err = parse(RecordType::A, &["192.0.2.1\nevil 300 IN A 203.0.113.66"]).unwrap_err();
        assert!(err.message.contains("single line"), "{}", err.message);
        assert!(parse(RecordType::A, &[" "]).is_err());
    }
}
