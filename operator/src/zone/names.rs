//! Turning the names users write into DNS names.

use hickory_proto::rr::Name;

/// A name that is not a valid DNS name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name:?} is not a valid DNS name: {reason}")]
pub struct InvalidName {
    /// The name as written.
    pub name: String,
    /// The parser's reason.
    pub reason: String,
}

/// A fully qualified name from the Zone spec (`example.com` or `example.com.`).
pub fn absolute(name: &str) -> Result<Name, InvalidName> {
    let mut parsed = Name::from_ascii(name).map_err(|e| InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A Record's owner: `@` is the apex, a name with a trailing dot is absolute, anything else
/// is relative to the zone.
pub fn owner(name: &str, origin: &Name) -> Result<Name, InvalidName> {
    if name == "@" {
        return Ok(origin.clone());
    }
    let parsed = Name::from_ascii(name).map_err(|e| InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    if parsed.is_fqdn() {
        Ok(parsed)
    } else {
        parsed.append_domain(origin).map_err(|e| InvalidName {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// An owner written without a trailing dot that ends with the zone's domain: relative names
/// get the domain appended, so `api.example.com` in `example.com` would mean
/// `api.example.com.example.com.`, which is almost never what was meant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{written:?} has no trailing dot, so it is relative to the zone and would mean \
     {would_mean}; write {relative:?} (relative) or {absolute:?} (absolute)"
)]
pub struct AmbiguousName {
    /// The name as written.
    pub written: String,
    /// What it would mean as a relative name.
    pub would_mean: String,
    /// The same owner written relative to the zone (`@` for the apex).
    pub relative: String,
    /// The same owner written absolute, with its trailing dot.
    pub absolute: String,
}

/// Refuses an owner that is written relative (no trailing dot) but ends, label by label and
/// ignoring case, with the zone's domain (`api.example.com` or `example.com` in
/// `example.com`). `@` and absolute names pass, and so does a name that is not valid (the
/// caller reports that).
pub fn unambiguous(name: &str, origin: &Name) -> Result<(), AmbiguousName> {
    if name == "@" {
        return Ok(());
    }
    let Ok(written) = Name::from_ascii(name) else {
        return Ok(());
    };
    // Count labels by iterating: `num_labels` leaves out a leading `*`.
    let zone_labels = origin.iter().count();
    let labels = written.iter().count();
    if written.is_fqdn() || labels < zone_labels {
        return Ok(());
    }
    let ends_with_zone = written
        .iter()
        .skip(labels - zone_labels)
        .zip(origin.iter())
        .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !ends_with_zone {
        return Ok(());
    }
    let prefix: Vec<&[u8]> = written.iter().take(labels - zone_labels).collect();
    let relative = match Name::from_labels(prefix) {
        Ok(prefix) if !prefix.is_root() => prefix.to_ascii().trim_end_matches('.').to_owned(),
        _ => "@".to_owned(),
    };
    let would_mean = written
        .append_domain(origin)
        .map_or_else(|_| format!("{name}.{origin}"), |meant| meant.to_ascii());
    Err(AmbiguousName {
        written: name.to_owned(),
        would_mean,
        relative,
        absolute: format!("{}.", name.trim_end_matches('.')),
    })
}

/// The SOA RNAME: `hostmaster@example.com` becomes `hostmaster.example.com.` (a dot in the
/// local part is kept inside its label); a name in DNS form is taken as it is.
pub fn mailbox(mailbox: &str) -> Result<Name, InvalidName> {
    let invalid = |reason: String| InvalidName {
        name: mailbox.to_owned(),
        reason,
    };
    match mailbox.split_once('@') {
        Some((local, domain)) => {
            let domain = absolute(domain)?;
            let local =
                Name::from_labels([local.as_bytes()]).map_err(|e| invalid(e.to_string()))?;
            local
                .append_domain(&domain)
                .map_err(|e| invalid(e.to_string()))
        }
        None => absolute(mailbox),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_resolve_against_the_origin() {
        let origin = absolute("example.com").unwrap();
        assert_eq!(owner("@", &origin).unwrap().to_ascii(), "example.com.");
        assert_eq!(
            owner("www", &origin).unwrap().to_ascii(),
            "www.example.com."
        );
        assert_eq!(
            owner("*.dev", &origin).unwrap().to_ascii(),
            "*.dev.example.com."
        );
        assert_eq!(
            owner("Mail.Example.COM.", &origin).unwrap().to_ascii(),
            "Mail.Example.COM."
        );
        assert_eq!(
            owner("other.org.", &origin).unwrap().to_ascii(),
            "other.org."
        );
        assert!(owner("a..b", &origin).is_err());
    }

    #[test]
    fn relative_owners_that_repeat_the_zone_are_ambiguous() {
        let origin = absolute("acme.test").unwrap();
        let err = unambiguous("api.acme.test", &origin).unwrap_err();
        assert_eq!(err.would_mean, "api.acme.test.acme.test.");
        assert_eq!(err.relative, "api");
        assert_eq!(err.absolute, "api.acme.test.");
        let message = err.to_string();
        assert!(
            message.contains("api.acme.test.acme.test.")
                && message.contains("\"api\"")
                && message.contains("\"api.acme.test.\""),
            "{message}"
        );
        let apex = unambiguous("Acme.TEST", &origin).unwrap_err();
        assert_eq!(apex.relative, "@");
        assert_eq!(apex.absolute, "Acme.TEST.");
        assert_eq!(
            unambiguous("*.dev.acme.test", &origin)
                .unwrap_err()
                .relative,
            "*.dev"
        );
        for fine in [
            "@",
            "api",
            "api.acme.test.",
            "acme",
            "api.acme",
            "xacme.test",
            "test",
        ] {
            assert_eq!(unambiguous(fine, &origin), Ok(()), "{fine}");
        }
    }

    #[test]
    fn mailboxes_take_either_form() {
        assert_eq!(
            mailbox("hostmaster@example.com").unwrap().to_ascii(),
            "hostmaster.example.com."
        );
        assert_eq!(
            mailbox("john.doe@example.com").unwrap().to_ascii(),
            "john\\.doe.example.com."
        );
        assert_eq!(
            mailbox("hostmaster.example.com.").unwrap().to_ascii(),
            "hostmaster.example.com."
        );
    }
}
