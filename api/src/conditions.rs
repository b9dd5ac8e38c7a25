//! The condition types and reasons of Zones and Records, as users see them
//! (`kubectl wait --for=condition=...`, GitOps health checks); `docs/operations.md` says
//! what each means.

/// Condition types.
pub mod kinds {
    /// Zone: the current spec and Records are published and every ready DNS pod serves
    /// that serial. Record: accepted and programmed.
    pub const READY: &str = "Ready";
    /// Zone: every ready DNS pod serves the latest version.
    pub const SYNCED: &str = "Synced";
    /// Zone: something needs attention; the reason says what.
    pub const DEGRADED: &str = "Degraded";
    /// Zone: the operator is still working towards `Ready` (kstatus).
    pub const RECONCILING: &str = "Reconciling";
    /// Zone: it cannot become `Ready` without a change by someone (kstatus).
    pub const STALLED: &str = "Stalled";
    /// Record: the record is valid and part of its zone.
    pub const ACCEPTED: &str = "Accepted";
    /// Record: every ready DNS pod serves a zone version that includes it as it is now.
    pub const PROGRAMMED: &str = "Programmed";
}

/// Condition reasons.
pub mod reasons {
    /// Every ready DNS pod serves the current version.
    pub const SERVED: &str = "Served";
    /// Published, and serving is not checked (the fleet health checker is off).
    pub const PUBLISHED: &str = "Published";
    /// Published; the DNS pods are picking it up.
    pub const PROGRESSING: &str = "Progressing";
    /// The version could not be published.
    pub const PUBLISH_FAILED: &str = "PublishFailed";
    /// Some ready DNS pods do not serve the version and could not be repaired, or there
    /// are no ready DNS pods.
    pub const SERVERS_NOT_SYNCED: &str = "ServersNotSynced";
    /// Another Zone owns the domain, or the enclosing Zone does not delegate it.
    pub const DOMAIN_CONFLICT: &str = "DomainConflict";
    /// The Zone's spec cannot be assembled.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The Record is not part of its zone.
    pub const NOT_ACCEPTED: &str = "NotAccepted";
    /// Not every ready DNS pod serves the Record yet.
    pub const NOT_SERVED: &str = "NotServed";
    /// There are no ready DNS pods.
    pub const NO_SERVERS: &str = "NoServers";
    /// Nothing needs attention.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// Some Records are not part of the zone; the message lists them.
    pub const RECORDS_REJECTED: &str = "RecordsRejected";
    /// A name server inside the zone has no address.
    pub const MISSING_GLUE: &str = "MissingGlue";
    /// Serving is not checked: the fleet health checker is off.
    pub const NOT_CHECKED: &str = "NotChecked";
    /// The Record is part of its zone.
    pub const ACCEPTED: &str = "Accepted";
}
