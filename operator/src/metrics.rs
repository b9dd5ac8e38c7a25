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
        metrics
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
