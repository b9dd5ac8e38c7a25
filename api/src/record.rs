//! The `Record` resource: one RRset of a Zone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An owner name relative to the zone: `@` for the apex, `www`, `_sip._tcp`, or a wildcard
/// such as `*` or `*.dev`; with a trailing dot, an absolute name.
const OWNER_PATTERN: &str = r"^(@|(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?)$";
/// One line of text: a value may not smuggle in a second zone-file line.
const SINGLE_LINE_PATTERN: &str = r"^[^\r\n]*$";
/// A Kubernetes object name (RFC 1123 subdomain).
const OBJECT_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Kubernetes namespace name (RFC 1123 label).
const NAMESPACE_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// One RRset of a Zone: every record of one type at one name.
///
/// The operator parses the values as zone-file rdata, checks the record against the zone
/// (CNAME exclusivity, zone cuts, the namespace rule), and reports the outcome in the
/// `Accepted` condition.
#[allow(clippy::duplicated_attributes)] // repeated `printcolumn(type_ = ...)` arguments
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dns.zonefleet.io",
    version = "v1alpha1",
    kind = "Record",
    namespaced,
    status = "RecordStatus",
    shortname = "rec",
    category = "zonefleet",
    doc = "One RRset of a Zone: every record of one type at one name.",
    printcolumn(name = "Zone", type_ = "string", json_path = ".spec.zoneRef.name"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "TTL", type_ = "integer", json_path = ".spec.ttl"),
    printcolumn(name = "Values", type_ = "string", json_path = ".status.values"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'CNAME' || size(self.values) == 1").message("a CNAME record has exactly one value"))]
#[x_kube(validation = Rule::new("!(self.name == '@' && self.type in ['CNAME', 'NS'])").message("the apex cannot hold a CNAME, and its NS set comes from the Zone's nameServers"))]
pub struct RecordSpec {
    /// The Zone this record belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("zoneRef is immutable"))]
    pub zone_ref: ZoneReference,

    /// The owner name relative to the zone: `@` for the apex, `www`, `_dmarc`, `*.dev`. A
    /// name with a trailing dot is absolute and must lie inside the zone. A name without a
    /// trailing dot that ends with the zone's domain (`api.example.com` in `example.com`)
    /// is rejected as `AmbiguousName`: write `api` or `api.example.com.`. Immutable.
    #[schemars(length(min = 1, max = 253), regex(pattern = OWNER_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("name is immutable"))]
    pub name: String,

    /// The record type. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable"))]
    pub type_: RecordType,

    /// The TTL in seconds, 0 to 2147483647. Defaults to the Zone's `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl: Option<i32>,

    /// The records' data in zone-file presentation format, one record per value:
    /// `192.0.2.1` for A, `10 mail.example.com.` for MX, `0 issue "ca.example.net"` for
    /// CAA. Names without a trailing dot are relative to the zone. A TXT value that starts
    /// with `"` is zone-file text (`"v=spf1" "-all"` is two strings, escapes apply); any
    /// other TXT value is one string taken literally, spaces included (`v=spf1 mx -all`).
    /// A TXT string longer than 255 bytes is split into 255-byte strings. A value that
    /// the DNS pods could not serve as written is rejected as `InvalidRData`.
    #[schemars(length(min = 1, max = 256), inner(length(min = 1, max = 4096), regex(pattern = SINGLE_LINE_PATTERN)))]
    pub values: Vec<String>,
}

/// A reference to a Zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ZoneReference {
    /// The Zone's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = OBJECT_NAME_PATTERN))]
    pub name: String,

    /// The Zone's namespace; defaults to the Record's own. The Zone's `recordNamespaces`
    /// decides whether a Record from another namespace is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAMESPACE_PATTERN))]
    pub namespace: Option<String>,
}

/// The record types a Record can hold.
#[allow(clippy::upper_case_acronyms)]
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    AAAA,
    /// Canonical name (alias); no other data may share its owner.
    CNAME,
    /// Mail exchanger.
    MX,
    /// Text.
    TXT,
    /// Service location.
    SRV,
    /// Certification authority authorization.
    CAA,
    /// Name server; below the apex it delegates a subzone.
    NS,
    /// Pointer, for reverse zones.
    PTR,
    /// Delegation signer, at a delegation point.
    DS,
    /// TLS certificate association (DANE).
    TLSA,
    /// SSH fingerprint.
    SSHFP,
    /// Naming authority pointer.
    NAPTR,
    /// Service binding.
    SVCB,
    /// Service binding for HTTPS.
    HTTPS,
}

impl RecordType {
    /// The type's mnemonic, as in zone files.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
            RecordType::MX => "MX",
            RecordType::TXT => "TXT",
            RecordType::SRV => "SRV",
            RecordType::CAA => "CAA",
            RecordType::NS => "NS",
            RecordType::PTR => "PTR",
            RecordType::DS => "DS",
            RecordType::TLSA => "TLSA",
            RecordType::SSHFP => "SSHFP",
            RecordType::NAPTR => "NAPTR",
            RecordType::SVCB => "SVCB",
            RecordType::HTTPS => "HTTPS",
        }
    }
}

/// The observed state of a Record.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RecordStatus {
    /// `Ready`: accepted and programmed (for `kubectl wait` and GitOps health).
    /// `Accepted`: the record is valid and part of its zone, or the reason it is not
    /// (`InvalidRData`, `AmbiguousName`, `Conflict`, `ZoneNotFound`, `NamespaceNotAllowed`,
    /// `OutOfZone`, `Occluded`, `DomainConflict`). `Programmed`: every ready DNS pod serves a
    /// zone version that includes the record's current generation (`Served`), or not yet
    /// (`NotServed`, `ServersNotSynced`), or it is not part of a zone (`NotAccepted`). Each
    /// condition's `observedGeneration` is the generation it describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The zone serial of the first version that included this record as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub zone_serial: Option<u32>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The values, abbreviated, for `kubectl get records`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
}
