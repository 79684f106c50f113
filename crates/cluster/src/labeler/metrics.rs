//! The controller's Prometheus metrics (`sidecar_kit_label_nodes_*`): nodes by class, label
//! writes, leadership, kubelet metrics reads, reconcile durations; and their exposition.

use super::Labeler;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

pub(super) struct Metrics {
    registry: Registry,
    nodes: Family<ClassLabel, Gauge>,
    writes: Family<ResultLabel, Counter>,
    pub(super) leader: Gauge,
    reads: Family<ResultLabel, Counter>,
    pub(super) duration: Histogram,
}

impl Metrics {
    pub(super) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sidecar_kit_label_nodes");
        let nodes = Family::<ClassLabel, Gauge>::default();
        registry.register(
            "nodes",
            "Nodes by the class their sidecar-kit.io/native-sidecars label says (unknown: no label)",
            nodes.clone(),
        );
        let writes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "label_writes",
            "Patches of a node's label and reason annotation, by result (success, failure)",
            writes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and writes labels",
            leader.clone(),
        );
        let reads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "node_metrics_reads",
            "Reads of a kubelet's metrics through the node proxy, by result (success, no-gate-line, forbidden, failure)",
            reads.clone(),
        );
        // 100 µs .. ~6.5 s: one node, including a node-proxy read and a patch.
        let duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 17));
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one node (gate read and patch included)",
            duration.clone(),
        );
        for class in ["capable", "unaware", "rejecting", "unknown"] {
            let _ = nodes.get_or_create(&ClassLabel {
                class: class.into(),
            });
        }
        Metrics {
            registry,
            nodes,
            writes,
            leader,
            reads,
            duration,
        }
    }

    fn count(family: &Family<ResultLabel, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// Counts a patch of a node by its result (`success`, `failure`).
    pub(super) fn count_write(&self, result: &str) {
        Metrics::count(&self.writes, result);
    }

    /// Counts a kubelet metrics read by its result (`success`, `no-gate-line`, `forbidden`,
    /// `failure`).
    pub(super) fn count_read(&self, result: &str) {
        Metrics::count(&self.reads, result);
    }
}

impl Labeler {
    /// The Prometheus exposition (OpenMetrics text).
    pub fn encode_metrics(&self) -> String {
        let counts = self.labelled();
        for (label, class) in [
            ("true", "capable"),
            ("false", "unaware"),
            ("rejected", "rejecting"),
            ("none", "unknown"),
        ] {
            let n = counts.get(label).copied().unwrap_or(0);
            self.shared
                .metrics
                .nodes
                .get_or_create(&ClassLabel {
                    class: class.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.shared.metrics.leader.set(i64::from(self.leading()));
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.shared.metrics.registry);
        s
    }
}
