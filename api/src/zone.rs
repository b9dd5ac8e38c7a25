//! The `Zone` resource: one DNS zone, its SOA and apex NS set.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    FQDN_PATTERN,
    transfer::{SecondariesStatus, TransferSpec, TsigKey},
};

/// A DNS zone served by the Zonefleet fleet.
///
/// The operator assembles the zone from this object and the Records that reference it,
/// versions it with an SOA serial, and publishes it to every DNS pod.
#[allow(clippy::duplicated_attributes)] // repeated `printcolumn(type_ = ...)` arguments
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dns.zonefleet.io",
    version = "v1alpha1",
    kind = "Zone",
    namespaced,
    status = "ZoneStatus",
    shortname = "zn",
    category = "zonefleet",
    doc = "A DNS zone served by the Zonefleet fleet.",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(name = "Serial", type_ = "integer", json_path = ".status.serial"),
    printcolumn(name = "Records", type_ = "integer", json_path = ".status.recordCount"),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.servers.summary"
    ),
    printcolumn(
        name = "Secondaries",
        type_ = "string",
        priority = 1,
        json_path = ".status.secondaries.summary"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    /// The zone's apex, a fully qualified domain name such as `example.com` (a trailing dot
    /// is allowed). Immutable: a zone for another domain is another Zone.
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("domain is immutable"))]
    pub domain: String,

    /// The default TTL, in seconds, of records that set none. 0 to 2147483647.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 0))]
    pub ttl: i32,

    /// The zone's SOA record. Every field has a default.
    #[serde(default)]
    pub soa: SoaSpec,

    /// The apex NS set: the zone's authoritative name servers. A name server inside the zone
    /// needs glue addresses.
    #[schemars(length(min = 1, max = 16))]
    pub name_servers: Vec<NameServer>,

    /// How the SOA serial advances when the zone's content changes: `Increment` (+1),
    /// `DateCounter` (YYYYMMDDnn) or `UnixTime` (seconds since 1970). The serial never goes
    /// backwards, also when the policy changes.
    #[serde(default)]
    pub serial_policy: SerialPolicy,

    /// Which namespaces may hold Records for this zone. By default only the Zone's own
    /// namespace may, so one tenant cannot add records to another's zone.
    #[serde(default)]
    pub record_namespaces: RecordNamespaces,

    /// Child zones that Zones in other namespaces may hold inside this zone's domain. A
    /// Zone in another namespace for a name inside this domain is refused
    /// (`DomainConflict`) unless an entry here names it (or a name above it) and its
    /// namespace. Child Zones in this Zone's own namespace need no entry. Either way, this
    /// zone's own data at or below a child zone's apex is not served (`Occluded`), as below
    /// any delegation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub delegations: Vec<Delegation>,

    /// Who may transfer the zone to a secondary (AXFR, IXFR). Refused to everyone unless
    /// a rule allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferSpec>,

    /// TSIG keys (RFC 8945) that the zone's clients sign with; `transfer` rules name them.
    /// Each secret is read from a Secret in the Zone's namespace and reaches the DNS pods
    /// sealed with the fleet's message key. Secrets are not watched: a Zone with keys is
    /// reconciled every 5 minutes, so a rotated secret reaches the pods within 5 minutes. A
    /// missing Secret or key, or a secret that is not base64, makes the Zone `InvalidSpec`
    /// (nothing is published) until it is fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(k, self.exists_one(o, o.name.lowerAscii() == k.name.lowerAscii()))").message("TSIG key names must be unique"))]
    pub tsig_keys: Vec<TsigKey>,
}

/// Permission for other namespaces to hold a child zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Delegation {
    /// The child zone's domain: relative to this zone (`mx1`, `eu.api`) or absolute
    /// (`mx1.example.com.`; a name that already ends with this zone's domain is taken as
    /// absolute even without the trailing dot). Zones at this name or below it may be held
    /// by the namespaces listed.
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub name: String,

    /// The namespaces that may hold Zones at or below `name`.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,
}

fn default_ttl() -> i32 {
    3600
}

/// The SOA record's fields (RFC 1035 §3.3.13). The serial is managed by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SoaSpec {
    /// The primary name server (MNAME). Defaults to the first of `nameServers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub primary: Option<String>,

    /// The mailbox of the person responsible for the zone (RNAME), either as an address
    /// (`hostmaster@example.com`) or in DNS form (`hostmaster.example.com.`). Defaults to
    /// `hostmaster` at the zone's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub responsible: Option<String>,

    /// Seconds between secondary refresh checks. Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub refresh: Option<i32>,

    /// Seconds before a failed refresh is retried. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub retry: Option<i32>,

    /// Seconds after which a secondary that cannot refresh stops answering. Default 1209600
    /// (two weeks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub expire: Option<i32>,

    /// The negative-caching TTL (RFC 2308), in seconds. Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub minimum: Option<i32>,
}

/// One of the zone's authoritative name servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NameServer {
    /// The name server's host name, such as `ns1.example.com`.
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub name: String,

    /// Glue: the name server's IPv4 and IPv6 addresses. Required when the name server is
    /// inside the zone, ignored otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(max = 45)))]
    #[x_kube(validation = Rule::new("self.all(a, isIP(a))").message("addresses must be IPv4 or IPv6 addresses"))]
    pub addresses: Vec<String>,
}

/// How the SOA serial advances.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SerialPolicy {
    /// The serial goes up by one for each new version.
    #[default]
    Increment,
    /// `YYYYMMDDnn`: today's date and a counter from 00 to 99.
    DateCounter,
    /// The number of seconds since 1970-01-01 UTC.
    UnixTime,
}

/// The namespaces whose Records may attach to a Zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.from != 'Selector' || has(self.selector)").message("selector is required when from is Selector"))]
pub struct RecordNamespaces {
    /// `Same` (default): only the Zone's namespace. `All`: any namespace. `Selector`:
    /// namespaces whose labels match `selector`.
    #[serde(default)]
    pub from: NamespaceSelection,

    /// The namespace label selector, when `from` is `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Which namespaces a rule admits.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NamespaceSelection {
    /// Only the Zone's own namespace.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces matching a label selector.
    Selector,
}

/// The observed state of a Zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStatus {
    /// The SOA serial of the latest published version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub serial: Option<u32>,

    /// The SHA-256 digest (hex) of the zone's content, without the SOA serial. The serial
    /// changes exactly when this does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// The number of resource records in the published version, SOA and NS included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub record_count: Option<u32>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: the current spec and Records are published and every ready DNS pod serves
    /// that serial (`Served`); otherwise the reason says why not: `Progressing`,
    /// `PublishFailed`, `ServersNotSynced`, `DomainConflict`, `InvalidSpec` (`Published`
    /// when fleet health checking is off). `Synced`: every ready DNS pod serves the current
    /// serial. `Degraded`: something needs attention; the reason says what. `Reconciling`
    /// and `Stalled` (kstatus): `Ready` is false for a reason that resolves itself, or
    /// until someone changes something. Each condition's `observedGeneration` is the
    /// generation it describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// How many DNS pods serve the latest version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<ServerSummary>,

    /// The external secondaries of `spec.transfer.secondaries`: the serial each serves,
    /// and how many serve what the DNS pods serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondaries: Option<SecondariesStatus>,
}

/// The serving fleet as seen by the health checker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerSummary {
    /// Ready DNS pods.
    #[schemars(range(min = 0))]
    pub total: i32,
    /// Ready DNS pods that serve the latest serial and content.
    #[schemars(range(min = 0))]
    pub synced: i32,
    /// The pods that do not, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<String>,
    /// `synced/total`, for `kubectl get zones`.
    pub summary: String,
}
