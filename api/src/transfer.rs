//! Zone transfer to secondaries, and the TSIG keys that authenticate it.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FQDN_PATTERN;

/// Who may transfer the zone (AXFR and IXFR over TCP). A request is allowed when it
/// matches at least one rule; with no rules (the default) every transfer is refused.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TransferSpec {
    /// The rules; a request matching any one of them may transfer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allow: Vec<TransferRule>,

    /// External secondaries to keep up to date. Each gets a NOTIFY (RFC 1996) once every
    /// ready DNS pod serves a new version, and again with backoff until its SOA shows the
    /// serial; `status.secondaries` shows the serial each serves. Listing a secondary does
    /// not allow it to transfer the zone: a rule in `allow` does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub secondaries: Vec<Secondary>,
}

/// An external secondary name server of the zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Secondary {
    /// Its IPv4 or IPv6 address.
    #[schemars(length(min = 2, max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("address must be an IPv4 or IPv6 address"))]
    pub address: String,

    /// Its DNS port. Default 53.
    #[serde(default = "default_dns_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,

    /// The name of one of the Zone's `tsigKeys` to sign NOTIFY messages with (the key the
    /// secondary expects from its primary). Omitted: unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub tsig_key: Option<String>,
}

fn default_dns_port() -> u16 {
    53
}

/// The external secondaries as the operator last saw them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecondariesStatus {
    /// Secondaries serving the serial every ready DNS pod serves, of all listed:
    /// `synced/total`.
    pub summary: String,
    /// Each secondary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<SecondaryStatus>,
}

/// One external secondary.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecondaryStatus {
    /// `address:port` (`[address]:port` for IPv6).
    pub address: String,
    /// The SOA serial it answered with last, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub serial: Option<u32>,
    /// True if it serves the serial the fleet serves (or a newer one).
    pub synced: bool,
    /// What went wrong last (no answer, a NOTIFY refused), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One rule: a request matches when it comes from one of `networks` (if given) and is
/// signed with `tsigKey` (if given). A rule must give at least one of the two.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.networks) || has(self.tsigKey)").message("a transfer rule needs networks, a tsigKey, or both"))]
pub struct TransferRule {
    /// Client networks in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`; a bare address
    /// is one host). Omitted: any address, as long as the request is signed with
    /// `tsigKey`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 2, max = 43)))]
    #[x_kube(validation = Rule::new("self.all(n, isCIDR(n) || isIP(n))").message("networks must be CIDRs or IP addresses"))]
    pub networks: Vec<String>,

    /// The name of one of the Zone's `tsigKeys` that must sign the request (RFC 8945).
    /// Omitted: no signature is needed, but `networks` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub tsig_key: Option<String>,
}

/// A TSIG key (RFC 8945) that clients of this zone sign with: secondaries transferring it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TsigKey {
    /// The key's name, as clients send it in the TSIG record (e.g.
    /// `transfer.example.com`, the name given to `tsig-keygen` or `keymgr`). Compared
    /// without regard to case.
    #[schemars(length(min = 1, max = 253), regex(pattern = FQDN_PATTERN))]
    pub name: String,

    /// The HMAC algorithm: `hmac-sha256` (default), `hmac-sha384`, `hmac-sha512`,
    /// `hmac-sha224`, `hmac-sha1` or `hmac-md5`.
    #[serde(default)]
    pub algorithm: TsigAlgorithm,

    /// The Secret, in the Zone's namespace, that holds the key's secret in base64, as
    /// `tsig-keygen` and `keymgr` print it.
    pub secret_ref: SecretKeyRef,
}

/// The HMAC algorithm of a TSIG key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsigAlgorithm {
    /// HMAC-SHA256.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// HMAC-SHA384.
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    /// HMAC-SHA512.
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
    /// HMAC-SHA224.
    #[serde(rename = "hmac-sha224")]
    HmacSha224,
    /// HMAC-SHA1 (legacy).
    #[serde(rename = "hmac-sha1")]
    HmacSha1,
    /// HMAC-MD5 (legacy).
    #[serde(rename = "hmac-md5")]
    HmacMd5,
}

impl TsigAlgorithm {
    /// The name used in configuration files and on the command line of DNS tools.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
            Self::HmacSha224 => "hmac-sha224",
            Self::HmacSha1 => "hmac-sha1",
            Self::HmacMd5 => "hmac-md5",
        }
    }
}

/// A key of a Secret in the referring object's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// The key in the Secret's data. Default `secret`.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "secret".into()
}
