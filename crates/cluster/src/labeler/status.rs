//! What the controller says of itself: the readiness document of `/readyz` (role, Lease,
//! node cache, labels, node-metrics permission), liveness for `/healthz`, and the
//! [`sidecar_kit_probes::Probed`] implementation serving them with the metrics.

use super::gate_book::{GateBook, Permission};
use super::{Labeler, lock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// What `/readyz` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelerStatus {
    /// The node list has been read once (standbys are ready too).
    pub ready: bool,
    /// `leader` or `standby`.
    pub role: &'static str,
    pub identity: String,
    /// `NAMESPACE/NAME` of the Lease.
    pub lease: String,
    pub holder: Option<String>,
    pub lease_problem: Option<String>,
    /// Nodes in the watch cache.
    pub nodes_seen: usize,
    pub nodes_synced: bool,
    pub watch_problem: Option<String>,
    /// Nodes by the label they carry now: `true`, `false`, `rejected`, and `none`.
    pub labelled: BTreeMap<String, usize>,
    /// Nodes queued or being reconciled.
    pub pending: usize,
    pub node_metrics: NodeMetricsStatus,
}

/// The node-proxy permission and how reads go.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetricsStatus {
    /// `disabled`, `unknown` (nothing read yet), `permitted` or `forbidden`.
    pub permission: &'static str,
    pub detail: String,
    /// Nodes whose last read failed (their gate comes from an earlier reading or the version).
    pub failing: usize,
    pub last_error: Option<String>,
}

impl NodeMetricsStatus {
    fn of(book: &GateBook) -> NodeMetricsStatus {
        let (permission, detail) = match book.permission() {
            Permission::Disabled => (
                "disabled",
                "--node-metrics=false: every node is labelled from its kubelet version".to_string(),
            ),
            Permission::Unknown => ("unknown", "no kubelet metrics read yet".to_string()),
            Permission::Permitted => (
                "permitted",
                "1.28+ nodes are labelled from their kubelet's SidecarContainers gate".to_string(),
            ),
            Permission::Forbidden { message, .. } => (
                "forbidden",
                format!(
                    "{message}; every node is labelled from its kubelet version (source: version) until get on nodes/proxy is granted"
                ),
            ),
        };
        let failing = book.failing();
        NodeMetricsStatus {
            permission,
            detail,
            failing: failing.len(),
            last_error: failing.values().next().cloned(),
        }
    }
}

impl Labeler {
    /// Nodes by their current label value (`none` for no label).
    pub(super) fn labelled(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = ["true", "false", "rejected", "none"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        for e in self.nodes().nodes.values() {
            let key = e
                .label
                .as_deref()
                .filter(|v| matches!(*v, "true" | "false" | "rejected"))
                .unwrap_or("none");
            *out.entry(key.to_string()).or_default() += 1;
        }
        out
    }

    /// What `/readyz` reports.
    pub fn status(&self) -> LabelerStatus {
        let lease = lock(&self.shared.lease).clone();
        let synced = self.shared.synced.load(Ordering::SeqCst);
        // Each lock is taken and dropped on its own (a guard living to the end of the
        // struct expression would deadlock the next `lock` of the same mutex).
        let node_metrics = NodeMetricsStatus::of(&self.book());
        let (nodes_seen, watch_problem) = {
            let cache = self.nodes();
            (cache.nodes.len(), cache.problem.clone())
        };
        let labelled = self.labelled();
        let role = if self.leading() { "leader" } else { "standby" };
        LabelerStatus {
            ready: synced,
            role,
            identity: self.cfg().lease.identity.clone(),
            lease: format!("{}/{}", self.cfg().lease.namespace, self.cfg().lease.name),
            holder: lease.holder,
            lease_problem: lease.problem,
            nodes_seen,
            nodes_synced: synced,
            watch_problem,
            labelled,
            pending: self.shared.queue.pending(),
            node_metrics,
        }
    }
}

/// `/healthz` (failing once the probe listener stopped unasked), `/readyz` (JSON detail;
/// 503 until the node list was read) and `/metrics`.
impl sidecar_kit_probes::Probed for Labeler {
    fn live(&self) -> Result<(), String> {
        lock(&self.shared.probe_failure)
            .as_ref()
            .map_or(Ok(()), |why| Err(why.clone()))
    }

    fn readiness(&self) -> (bool, String) {
        let status = self.status();
        let body =
            serde_json::to_string(&status).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        (status.ready, body)
    }

    fn metrics(&self) -> String {
        self.encode_metrics()
    }

    fn listener_stopped(&self, detail: String) {
        *lock(&self.shared.probe_failure) = Some(detail);
    }
}
