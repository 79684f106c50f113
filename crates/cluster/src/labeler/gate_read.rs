//! Where a node's gate comes from: a current reading, the annotation an earlier leader wrote,
//! a read of the kubelet's metrics through the node proxy (time-limited, bounded
//! concurrency), or the version; each read's outcome goes into the gate book, and the
//! turns it takes are logged.

use super::Labeler;
use super::gate_book::{Attempt, Plan, Turns};
use super::reconcile::Evidence;
use super::watch::NodeEntry;
use crate::ClusterError;
use crate::apiserver;
use sidecar_kit_core::labeling::NodeReason;
use sidecar_kit_core::version::{GateState, KubeVersion};
use std::time::Instant;

/// Whether a kubelet's class depends on its gate (1.28 and newer); older or unparseable
/// versions are decided by the version alone and their metrics are never read.
pub fn gate_matters(kubelet_version: &str) -> bool {
    KubeVersion::parse(kubelet_version).is_some_and(|v| v.at_least(1, 28))
}

/// The gate an annotation written for `kubelet_version` recorded from metrics, if any.
fn gate_from_reason(reason: &str, kubelet_version: &str) -> Option<GateState> {
    NodeReason::parse(reason)?.metrics_gate_for(kubelet_version)
}

/// A fraction in [0, 1) fixed per node name (FNV-1a), to spread re-reads over an interval.
fn spread(name: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 10_000.0
}

impl Labeler {
    /// The gate evidence for a node: a current reading, the annotation of an earlier
    /// leader, a fresh read, or the version.
    pub(super) async fn evidence(&self, name: &str, entry: &NodeEntry) -> Evidence {
        if !gate_matters(&entry.version) {
            return Evidence::Version;
        }
        let now = Instant::now();
        let interval = self.cfg().node_metrics_interval;
        // Forbidden or disabled: the version decides. After an interval one worker
        // probes the permission again, with a read of its own node.
        let plan = self.book().plan(name, &entry.version, now, interval);
        let previous = match plan {
            Plan::Known(evidence) => return evidence,
            Plan::Probe => return self.read_gate(name, entry, None).await,
            Plan::Read(previous) => previous,
        };
        if previous.is_none()
            && let Some(g) = entry
                .reason
                .as_deref()
                .and_then(|r| gate_from_reason(r, &entry.version))
        {
            let ev = Evidence::Metrics(g);
            let due = now + interval.mul_f64(spread(name));
            self.book().remember(name, &entry.version, ev, due);
            return ev;
        }
        self.read_gate(name, entry, previous).await
    }

    async fn read_gate(
        &self,
        name: &str,
        entry: &NodeEntry,
        previous: Option<Evidence>,
    ) -> Evidence {
        let Ok(_permit) = self.shared.reads.acquire().await else {
            return Evidence::Version;
        };
        let read = Attempt {
            name,
            version: &entry.version,
            previous,
            generation: self.book().generation(),
        };
        let path = format!("/api/v1/nodes/{name}/proxy/metrics");
        let result =
            apiserver::metrics_gate(&self.shared.client, &path, self.cfg().node_metrics_timeout)
                .await;
        let now = Instant::now();
        let interval = self.cfg().node_metrics_interval;
        let metrics = &self.shared.metrics;
        match result {
            Ok(gate) => {
                let (evidence, outcome) = match gate {
                    Some(g) => (Evidence::Metrics(g), "success"),
                    None => (Evidence::Version, "no-gate-line"),
                };
                metrics.count_read(outcome);
                let (evidence, turns) = self.book().read_answered(&read, evidence, now + interval);
                self.tell(name, "", turns);
                evidence
            }
            // Two different nodes refused since the last answer: the permission is gone.
            // One node refused (so far): this node's problem, not the permission's. It
            // keeps an earlier reading for its version (else its version decides) and is
            // read again after the interval.
            Err(ClusterError::Forbidden(message)) => {
                metrics.count_read("forbidden");
                let (evidence, turns) =
                    self.book()
                        .read_refused(&read, &message, now, now + interval);
                self.tell(name, &message, turns);
                evidence
            }
            Err(e) => {
                metrics.count_read("failure");
                let error = e.to_string();
                let due = now + self.cfg().retry_after();
                let (evidence, turns) = self.book().read_failed(&read, &error, now, due);
                self.tell(name, &error, turns);
                evidence
            }
        }
    }

    /// Logs the turns a read of node `name` took (`error`: why it failed), and looks at
    /// every node again when the permission was judged gone.
    fn tell(&self, name: &str, error: &str, turns: Turns) {
        if turns.permission_gone {
            tracing::warn!(
                error = %error,
                "cannot read kubelet metrics through the node proxy: labelling from kubelet versions (source: version); grant get on nodes/proxy to read each node's SidecarContainers gate"
            );
            // Nodes labelled from metrics are now labelled from their versions.
            if self.leading() {
                self.enqueue_all();
            }
        }
        if turns.permission_back {
            tracing::info!(
                "kubelet metrics readable again through the node proxy: labelling from each node's gate"
            );
        }
        if turns.first_failure {
            tracing::warn!(
                node = name,
                error = %error,
                "cannot read a kubelet's metrics: its gate comes from an earlier reading or its version until a read succeeds (further failures are counted in /readyz and /metrics, not logged)"
            );
        }
        if turns.all_readable {
            tracing::info!("kubelet metrics readable again on every node");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(v: &str, gate: &str, source: &str) -> String {
        format!(r#"{{"kubeletVersion":"{v}","gate":"{gate}","source":"{source}"}}"#)
    }

    #[test]
    fn only_1_28_and_newer_need_the_gate() {
        assert!(!gate_matters("v1.27.9"));
        assert!(gate_matters("v1.28.0"));
        assert!(gate_matters("v1.33.1-eks-1"));
        assert!(!gate_matters("nonsense"));
    }

    #[test]
    fn an_annotation_stands_for_a_reading_of_the_same_version_only() {
        let r = reason("v1.28.5", "enabled", "metrics");
        assert_eq!(gate_from_reason(&r, "v1.28.5"), Some(GateState::Enabled));
        assert_eq!(gate_from_reason(&r, "v1.28.6"), None);
        let r = reason("v1.28.5", "unknown", "version");
        assert_eq!(gate_from_reason(&r, "v1.28.5"), None);
        assert_eq!(gate_from_reason("not json", "v1.28.5"), None);
    }

    #[test]
    fn spread_is_a_fraction() {
        for n in ["a", "node-1", "node-4999", ""] {
            let f = spread(n);
            assert!((0.0..1.0).contains(&f), "{n}: {f}");
        }
        assert_ne!(spread("node-1"), spread("node-2"));
    }
}
