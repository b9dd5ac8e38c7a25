//! The operator's Prometheus metrics.

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of reconcile outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `zone` or `record`.
    pub kind: &'static str,
    /// `success` or an error category.
    pub result: &'static str,
}

/// Labels of a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `zone` or `record`.
    pub kind: &'static str,
}

/// Labels of Record verdicts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// `Accepted` or the rejection reason.
    pub reason: &'static str,
}

/// Labels of one zone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// The Zone, `namespace/name`.
    pub zone: String,
}

/// Labels of an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok`, `error` or `timeout`.
    pub result: &'static str,
}

/// Labels of an error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorKindLabels {
    /// The kind, e.g. `timeout`.
    pub kind: &'static str,
}

/// The fleet health checker's metrics.
#[derive(Debug)]
pub struct FleetMetrics {
    /// Ready pods that do not serve a zone's latest version, per zone.
    pub out_of_sync: Family<ZoneLabels, Gauge>,
    /// (pod, zone) pairs out of sync, over every zone.
    pub out_of_sync_pairs: Gauge,
    /// Re-sync requests sent, by result.
    pub resyncs: Family<ResultLabels, Counter>,
    /// Time from a publish until every ready pod serves it.
    pub propagation: Histogram,
    /// Duration of a full sweep.
    pub sweep_duration: Histogram,
    /// Failed checks, by kind.
    pub check_errors: Family<ErrorKindLabels, Counter>,
    /// Ready DNS pods.
    pub pods: Gauge,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Zones reconciled successfully and present.
    pub zones: Gauge,
    /// Records in the zones, by verdict reason.
    pub records: Family<VerdictLabels, Gauge>,
    /// Time to publish a zone version.
    pub publish_duration: Histogram,
    /// Zone versions published.
    pub published_versions: Counter,
    /// Fleet health.
    pub fleet: FleetMetrics,
    /// NOTIFYs sent to external secondaries, by result (`acknowledged`, `failed`).
    pub secondary_notifies: Family<ResultLabels, Counter>,
    /// External secondaries not serving what the DNS pods serve, per zone.
    pub secondaries_out_of_sync: Family<ZoneLabels, Gauge>,
}

fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
    .into_iter()
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            zones: Gauge::default(),
            records: Family::default(),
            publish_duration: Histogram::new(duration_buckets()),
            published_versions: Counter::default(),
            secondary_notifies: Family::default(),
            secondaries_out_of_sync: Family::default(),
            fleet: FleetMetrics {
                out_of_sync: Family::default(),
                out_of_sync_pairs: Gauge::default(),
                resyncs: Family::default(),
                propagation: Histogram::new(duration_buckets()),
                sweep_duration: Histogram::new(duration_buckets()),
                check_errors: Family::default(),
                pods: Gauge::default(),
            },
        };
        let r = registry.sub_registry_with_prefix("zonefleet_operator");
        r.register(
            "reconciles",
            "Reconciles by kind and result",
            metrics.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            metrics.reconcile_duration.clone(),
        );
        r.register("zones", "Zones being served", metrics.zones.clone());
        r.register(
            "records",
            "Records by verdict (Accepted or the rejection reason)",
            metrics.records.clone(),
        );
        r.register(
            "publish_duration_seconds",
            "Time to publish a zone version",
            metrics.publish_duration.clone(),
        );
        r.register(
            "published_versions",
            "Zone versions published",
            metrics.published_versions.clone(),
        );
        let fleet = &metrics.fleet;
        r.register(
            "pods_out_of_sync",
            "Ready DNS pods that do not serve the zone's latest version",
            fleet.out_of_sync.clone(),
        );
        r.register(
            "pod_zone_pairs_out_of_sync",
            "(pod, zone) pairs where a ready DNS pod does not serve the zone's latest version",
            fleet.out_of_sync_pairs.clone(),
        );
        r.register(
            "resync_requests",
            "Re-sync requests sent to DNS pods, by result",
            fleet.resyncs.clone(),
        );
        r.register(
            "propagation_seconds",
            "Time from publishing a version until every ready DNS pod serves it",
            fleet.propagation.clone(),
        );
        r.register(
            "sweep_duration_seconds",
            "Duration of a full check of every pod and zone",
            fleet.sweep_duration.clone(),
        );
        r.register(
            "check_errors",
            "Failed pod checks, by kind",
            fleet.check_errors.clone(),
        );
        r.register("dns_pods", "Ready DNS pods", fleet.pods.clone());
        r.register(
            "secondary_notifies",
            "NOTIFY messages sent to external secondaries, by result",
            metrics.secondary_notifies.clone(),
        );
        r.register(
            "secondaries_out_of_sync",
            "External secondaries not serving the serial the DNS pods serve, per zone",
            metrics.secondaries_out_of_sync.clone(),
        );
        metrics
    }

    /// Counts one NOTIFY.
    pub fn secondary_notify(&self, acknowledged: bool) {
        let result = if acknowledged {
            "acknowledged"
        } else {
            "failed"
        };
        self.secondary_notifies
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Removes the series of a deleted zone.
    pub fn forget_zone(&self, zone: &crate::zone::ObjectKey) {
        let labels = ZoneLabels {
            zone: zone.to_string(),
        };
        self.fleet.out_of_sync.remove(&labels);
        self.secondaries_out_of_sync.remove(&labels);
    }

    /// Counts one reconcile.
    pub fn observe_reconcile(&self, kind: &'static str, result: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }
}
