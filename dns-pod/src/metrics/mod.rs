//! The pod's Prometheus metrics: queries and responses, TCP clients, zones and sync.

mod response_sizes;

pub use self::response_sizes::{ResponseSizes, SizeTally};

use std::time::Duration;

use hickory_proto::{op::ResponseCode, rr::RecordType};
use hickory_server::net::xfer::Protocol;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of a query.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// The question type, e.g. `A`.
    pub qtype: String,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
}

/// Labels of a response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RcodeLabels {
    /// The response code, e.g. `NXDOMAIN`.
    pub rcode: String,
}

/// Labels of a signed request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TsigLabels {
    /// `verified`, or why not: `BADKEY`, `BADSIG`, `BADTIME`, `BADTRUNC`, `FORMERR`.
    pub result: &'static str,
}

/// Labels of one zone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// The zone apex.
    pub zone: String,
}

/// Labels of a rejected sync message.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// Why it was rejected: `malformed`, `invalid_zone`, `digest` (the version itself is
    /// at fault: refused, see `/refused`), `unauthenticated`, `wrong_subject`, `nats`.
    pub reason: &'static str,
}

/// Labels of an applied update.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyLabels {
    /// `snapshot`, `delta`, `retract` or `stale`.
    pub kind: &'static str,
}

/// The DNS serving metrics.
#[derive(Debug)]
pub struct DnsMetrics {
    queries: Family<QueryLabels, Counter>,
    responses: Family<RcodeLabels, Counter>,
    response_bytes: ResponseSizes,
    truncated: Counter,
    tcp_open: Gauge,
    tcp_refused: Counter,
    signed_requests: Family<TsigLabels, Counter>,
}

/// The zone and sync metrics.
#[derive(Debug)]
pub struct SyncMetrics {
    /// Zones served.
    pub zones: Gauge,
    /// The serial served, per zone.
    pub serial: Family<ZoneLabels, Gauge>,
    /// Updates applied, by kind.
    pub applied: Family<ApplyLabels, Counter>,
    /// Time to build and swap in a zone version.
    pub apply_duration: Histogram,
    /// Seconds from the operator's publish to this pod serving it (the sync lag).
    pub lag: Histogram,
    /// Messages rejected, by reason.
    pub rejected: Family<RejectLabels, Counter>,
    /// Zones with a refused version not superseded yet.
    pub refused_zones: Gauge,
    /// 1 while connected to NATS.
    pub connected: Gauge,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

impl DnsMetrics {
    /// Creates the metrics and registers them under `zonefleet_dns`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            queries: Family::default(),
            responses: Family::default(),
            response_bytes: ResponseSizes::default(),
            truncated: Counter::default(),
            tcp_open: Gauge::default(),
            tcp_refused: Counter::default(),
            signed_requests: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("zonefleet_dns");
        r.register(
            "signed_requests",
            "TSIG-signed requests, by verification result",
            metrics.signed_requests.clone(),
        );
        r.register(
            "queries",
            "Queries by question type and transport",
            metrics.queries.clone(),
        );
        r.register(
            "responses",
            "Responses by response code",
            metrics.responses.clone(),
        );
        r.register(
            "response_size_bytes",
            "Size of the responses sent",
            metrics.response_bytes.clone(),
        );
        r.register(
            "truncated_responses",
            "UDP responses sent with TC=1",
            metrics.truncated.clone(),
        );
        r.register(
            "tcp_connections",
            "Open TCP connections",
            metrics.tcp_open.clone(),
        );
        r.register(
            "tcp_connections_refused",
            "TCP connections closed at accept because the cap was reached",
            metrics.tcp_refused.clone(),
        );
        metrics
    }

    /// `count` queries of one type were received.
    pub fn queries(&self, qtype: RecordType, protocol: Protocol, count: u64) {
        self.query_counter(qtype, protocol).inc_by(count);
    }

    /// The counter of queries of one type over one transport. It shares its count with
    /// the metric, so a worker can keep it and count without looking the labels up.
    pub fn query_counter(&self, qtype: RecordType, protocol: Protocol) -> Counter {
        let protocol = if protocol == Protocol::Udp {
            "udp"
        } else {
            "tcp"
        };
        self.queries
            .get_or_create(&QueryLabels {
                qtype: qtype.to_string(),
                protocol,
            })
            .clone()
    }

    /// `count` responses with one response code were sent.
    pub fn responses(&self, rcode: ResponseCode, count: u64) {
        self.response_counter(rcode).inc_by(count);
    }

    /// The counter of responses with one response code, shared with the metric (see
    /// [`Self::query_counter`]).
    pub fn response_counter(&self, rcode: ResponseCode) -> Counter {
        self.responses
            .get_or_create(&RcodeLabels {
                rcode: rcode_mnemonic(rcode),
            })
            .clone()
    }

    /// The encoded size of a response.
    pub fn response_size(&self, bytes: usize) {
        self.response_bytes.observe(bytes);
    }

    /// Adds a worker's count of response sizes (and clears it).
    pub fn response_sizes(&self, tally: &mut SizeTally) {
        self.response_bytes.add(tally);
    }

    /// `count` UDP responses were truncated.
    pub fn truncated(&self, count: u64) {
        self.truncated.inc_by(count);
    }

    /// A TCP connection opened.
    pub fn tcp_opened(&self) {
        self.tcp_open.inc();
    }

    /// A TCP connection closed.
    pub fn tcp_closed(&self) {
        self.tcp_open.dec();
    }

    /// A TCP connection was refused at the cap.
    pub fn tcp_refused(&self) {
        self.tcp_refused.inc();
    }

    /// A signed request was verified (`verified`) or refused (the TSIG error).
    pub fn signed_request(&self, result: &'static str) {
        self.signed_requests
            .get_or_create(&TsigLabels { result })
            .inc();
    }
}

/// The IANA mnemonic of a response code (`NXDOMAIN`, `BADVERS`; `UNKNOWN(4000)` for one
/// hickory does not name). hickory's `Display` gives prose ("Non-Existent Domain").
fn rcode_mnemonic(rcode: ResponseCode) -> String {
    format!("{rcode:?}").to_uppercase()
}

impl SyncMetrics {
    /// Creates the metrics and registers them under `zonefleet_dns`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            zones: Gauge::default(),
            serial: Family::default(),
            applied: Family::default(),
            apply_duration: Histogram::new(seconds_buckets()),
            lag: Histogram::new(seconds_buckets()),
            rejected: Family::default(),
            refused_zones: Gauge::default(),
            connected: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("zonefleet_dns");
        r.register("zones", "Zones served", metrics.zones.clone());
        r.register(
            "zone_serial",
            "The SOA serial served, per zone",
            metrics.serial.clone(),
        );
        r.register(
            "updates_applied",
            "Zone updates applied, by kind (stale ones are ignored)",
            metrics.applied.clone(),
        );
        r.register(
            "apply_duration_seconds",
            "Time to build and swap in a zone version",
            metrics.apply_duration.clone(),
        );
        r.register(
            "sync_lag_seconds",
            "Time from the operator publishing a version to this pod serving it",
            metrics.lag.clone(),
        );
        r.register(
            "sync_rejected_messages",
            "Distribution messages rejected, by reason; they change nothing",
            metrics.rejected.clone(),
        );
        r.register(
            "refused_zones",
            "Zones whose last refused version (see /refused) this pod has not served a version as new as since",
            metrics.refused_zones.clone(),
        );
        r.register(
            "nats_connected",
            "1 while connected to NATS",
            metrics.connected.clone(),
        );
        metrics
    }

    /// A zone is served at `serial`.
    pub fn served(&self, zone: &str, serial: u32) {
        self.serial
            .get_or_create(&ZoneLabels {
                zone: zone.to_owned(),
            })
            .set(i64::from(serial));
    }

    /// The number of zones served.
    pub fn zone_count(&self, count: usize) {
        self.zones.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A zone is no longer served.
    pub fn retracted(&self, zone: &str) {
        self.serial.remove(&ZoneLabels {
            zone: zone.to_owned(),
        });
    }

    /// An update was applied.
    pub fn applied(&self, kind: &'static str, took: Duration) {
        self.applied.get_or_create(&ApplyLabels { kind }).inc();
        self.apply_duration.observe(took.as_secs_f64());
    }

    /// A message was rejected.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    /// The number of zones with a refused version.
    pub fn refused_zones(&self, count: usize) {
        self.refused_zones
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_are_labelled_by_their_mnemonics() {
        let labels: Vec<String> = [
            ResponseCode::NoError,
            ResponseCode::FormErr,
            ResponseCode::ServFail,
            ResponseCode::NXDomain,
            ResponseCode::NotImp,
            ResponseCode::Refused,
            ResponseCode::NotAuth,
            ResponseCode::BADVERS,
            ResponseCode::Unknown(4000),
        ]
        .into_iter()
        .map(rcode_mnemonic)
        .collect();
        assert_eq!(
            labels,
            [
                "NOERROR",
                "FORMERR",
                "SERVFAIL",
                "NXDOMAIN",
                "NOTIMP",
                "REFUSED",
                "NOTAUTH",
                "BADVERS",
                "UNKNOWN(4000)"
            ]
        );
    }
}
