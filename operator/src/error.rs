//! The operator's errors, each with a category for metrics and Events.

use crate::zone::{ZoneSpecError, access::AccessSpecError};

/// What can go wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] Box<kube::Error>),
    /// The finalizer could not be added or removed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The Zone's spec cannot be assembled.
    #[error("invalid Zone spec: {0}")]
    InvalidSpec(#[from] ZoneSpecError),
    /// The Zone's transfer rules or TSIG keys cannot be published (a key's Secret may be
    /// missing).
    #[error("invalid Zone spec: {0}")]
    InvalidAccess(#[from] AccessSpecError),
    /// The object could not be read as a Zone or Record (kube keeps only the
    /// deserializer's message).
    #[error("malformed object: {0}")]
    Malformed(#[source] Box<kube::core::error_boundary::InvalidObject>),
    /// Publishing a zone version failed.
    #[error("publishing: {0}")]
    Publish(#[from] crate::publish::PublishError),
    /// This replica lost leadership; it stops writing.
    #[error("not the leader")]
    NotLeader,
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(Box::new(e))
    }
}

impl Error {
    /// A short, stable label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(e) => match e.as_ref() {
                kube::Error::Api(s) if s.code == 409 => "conflict",
                kube::Error::Api(s) if s.code == 403 => "forbidden",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Error::Finalizer(_) => "finalizer",
            Error::InvalidSpec(_) | Error::InvalidAccess(_) => "invalid_spec",
            Error::Malformed(_) => "malformed",
            Error::Publish(_) => "publish",
            Error::NotLeader => "not_leader",
        }
    }

    /// Whether retrying can help (an invalid spec waits for a change instead, unless what is
    /// wrong is a Secret, which is not watched).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::InvalidSpec(_) | Error::Malformed(_) => false,
            Error::InvalidAccess(e) => e.depends_on_secrets(),
            _ => true,
        }
    }
}

/// The result type of the operator.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_is_retried_and_a_bad_rule_waits_for_a_change() {
        let missing = Error::from(AccessSpecError::SecretNotFound(Box::new(
            crate::zone::access::SecretSource {
                index: 0,
                name: "k.".into(),
                namespace: "dns".into(),
                secret: "xfr".into(),
                key: "secret".into(),
            },
        )));
        assert!(missing.is_transient());
        assert_eq!(missing.category(), "invalid_spec");
        let unknown = Error::from(AccessSpecError::UnknownKey {
            rule: 0,
            key: "x".into(),
        });
        assert!(!unknown.is_transient());
    }
}
