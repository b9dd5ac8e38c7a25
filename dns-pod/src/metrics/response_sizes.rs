//! The histogram of response sizes, filled a batch at a time.
//!
//! prometheus-client's `Histogram` takes a lock for every observation, which the UDP
//! workers would share for every response they send. Here a worker counts a batch into
//! its own [`SizeTally`] and adds it with one atomic addition per bucket it touched.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// The upper bounds (bytes) of the buckets; a last one takes everything larger.
const BOUNDS: [usize; 8] = [64, 128, 256, 512, 1232, 4096, 16384, 65535];
/// The buckets, the last being `+Inf`.
const BUCKETS: usize = BOUNDS.len() + 1;

/// The sizes of the responses sent, as a Prometheus histogram. Clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct ResponseSizes {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Responses per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    /// Bytes of all responses.
    sum: AtomicU64,
}

/// A worker's own counts of the responses it sent since it last added them.
#[derive(Debug, Default)]
pub struct SizeTally {
    buckets: [u64; BUCKETS],
    sum: u64,
}

impl SizeTally {
    /// Counts one response of `bytes`.
    pub fn observe(&mut self, bytes: usize) {
        let bucket = BOUNDS.partition_point(|&bound| bound < bytes);
        self.buckets[bucket] += 1;
        self.sum += bytes as u64;
    }
}

impl ResponseSizes {
    /// Counts one response of `bytes`.
    pub fn observe(&self, bytes: usize) {
        let mut tally = SizeTally::default();
        tally.observe(bytes);
        self.add(&mut tally);
    }

    /// Adds a worker's counts and clears them.
    pub fn add(&self, tally: &mut SizeTally) {
        for (bucket, count) in self.counts.buckets.iter().zip(&mut tally.buckets) {
            if *count > 0 {
                bucket.fetch_add(std::mem::take(count), Ordering::Relaxed);
            }
        }
        if tally.sum > 0 {
            self.counts
                .sum
                .fetch_add(std::mem::take(&mut tally.sum), Ordering::Relaxed);
        }
    }
}

impl TypedMetric for ResponseSizes {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ResponseSizes {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .counts
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .map(|&bound| bound as f64)
            .chain([f64::INFINITY])
            .zip(counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            self.counts.sum.load(Ordering::Relaxed) as f64,
            counts.iter().sum(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::{encoding::text::encode, registry::Registry};

    use super::*;

    fn exposition(sizes: &ResponseSizes) -> String {
        let mut registry = Registry::default();
        registry.register("sizes", "Sizes", sizes.clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn a_batch_added_at_once_reads_as_each_response_observed_alone() {
        let sizes = ResponseSizes::default();
        let mut tally = SizeTally::default();
        for bytes in [12, 64, 65, 99, 1232, 1233, 70_000] {
            tally.observe(bytes);
        }
        sizes.add(&mut tally);
        let one_by_one = ResponseSizes::default();
        for bytes in [12, 64, 65, 99, 1232, 1233, 70_000] {
            one_by_one.observe(bytes);
        }
        let text = exposition(&sizes);
        assert_eq!(text, exposition(&one_by_one));
        for line in [
            "sizes_sum 72705.0",
            "sizes_count 7",
            "sizes_bucket{le=\"64.0\"} 2",
            "sizes_bucket{le=\"128.0\"} 4",
            "sizes_bucket{le=\"512.0\"} 4",
            "sizes_bucket{le=\"1232.0\"} 5",
            "sizes_bucket{le=\"4096.0\"} 6",
            "sizes_bucket{le=\"65535.0\"} 6",
            "sizes_bucket{le=\"+Inf\"} 7",
            "# TYPE sizes histogram",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn adding_clears_the_tally() {
        let sizes = ResponseSizes::default();
        let mut tally = SizeTally::default();
        tally.observe(100);
        sizes.add(&mut tally);
        sizes.add(&mut tally);
        assert!(exposition(&sizes).contains("sizes_count 1\n"));
    }
}
