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
