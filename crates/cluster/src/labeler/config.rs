//! How the controller runs: the Lease, node-metrics reads (on or off, interval, time limit,
//! concurrency), the resync interval and the number of workers, with their defaults.

use crate::lease::LeaseConfig;
use sidecar_kit_core::labeling::LEASE_NAME;
use std::time::Duration;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct LabelerConfig {
    pub lease: LeaseConfig,
    /// Read each node's gate from its kubelet metrics (needs `get` on `nodes/proxy`).
    pub node_metrics: bool,
    /// How often a node's gate is read again (also whenever its kubelet version changes).
    pub node_metrics_interval: Duration,
    /// Time limit of one node-proxy read (the client would retry a 503 for minutes).
    pub node_metrics_timeout: Duration,
    /// Node-proxy reads in flight at once.
    pub node_metrics_concurrency: usize,
    /// Every node is looked at again this often, whatever the watch said.
    pub resync_interval: Duration,
    /// Nodes reconciled at once.
    pub workers: usize,
}

impl LabelerConfig {
    /// The defaults of `sidecar-kit label-nodes` for a Lease in `namespace`, held as `identity`.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> LabelerConfig {
        LabelerConfig {
            lease: LeaseConfig {
                namespace: namespace.into(),
                name: LEASE_NAME.into(),
                identity: identity.into(),
                duration: Duration::from_secs(15),
                renew_every: Duration::from_secs(5),
                retry_every: Duration::from_secs(2),
            },
            node_metrics: true,
            node_metrics_interval: Duration::from_secs(600),
            node_metrics_timeout: Duration::from_secs(5),
            node_metrics_concurrency: 8,
            resync_interval: Duration::from_secs(300),
            workers: 8,
        }
    }

    /// Failed reads are retried sooner than the regular interval.
    pub(super) fn retry_after(&self) -> Duration {
        self.node_metrics_interval.min(Duration::from_secs(60))
    }

    /// How often due re-reads and retries are looked for.
    pub(super) fn sweep_every(&self) -> Duration {
        (self.node_metrics_interval / 20).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}
