//! The `label-nodes` controller: keeps `sidecar-kit.io/native-sidecars` and its reason
//! annotation on every node, as the contract says, so that `affinity` and `universal`
//! injections can steer pods by node label.
//!
//! - **What it writes**: `true` (capable), `false` (unaware: kubelet older than 1.28) or
//!   `rejected` (knows the field with the gate off), and
//!   `sidecar-kit.io/native-sidecars-reason` =
//!   `{"kubeletVersion":"...","gate":"enabled|disabled|unknown","source":"metrics|version"}`.
//!   A node whose class is unknown (unparseable version) carries neither: ours are removed.
//!   Only these two keys are touched, with a JSON merge patch (field manager
//!   `sidecar-kit-label-nodes`), and only when they differ from what the node has: a
//!   steady state writes nothing.
//! - **Where the gate comes from**: a node's kubelet metrics through the API server's node
//!   proxy (`/api/v1/nodes/NAME/proxy/metrics`, read with a time limit and bounded
//!   concurrency, again every `node_metrics_interval` and whenever the kubelet version
//!   changes), only for kubelets whose class depends on it (1.28 and newer). Where that
//!   is forbidden (`get` on `nodes/proxy`) or fails, the version decides
//!   (`source: version`), and the logs (once) and `/readyz` say so. Refusals of one node
//!   are that node's (its kubelet's authorization): only that node falls back; refusals of
//!   two different nodes with no successful read between mean the permission is gone. A
//!   node's own annotation, written by an earlier leader for the same kubelet version,
//!   stands for a reading until its re-read is due, so a new leader does not re-read every
//!   node at once.
//! - **When**: Node watch events that change the version or our keys, a periodic resync,
//!   re-reads that fall due, and taking over the leadership.
//! - **Who**: only the holder of the Lease writes ([`crate::lease`]); standbys keep their
//!   node cache warm and take over when the leader releases the Lease or lets it expire.
//!
//! Its parts: `watch` (the node cache and the Node watch), `queue` (nodes to reconcile),
//! `gate_book` (gate readings and the node-proxy permission, behind one lock), `gate_read`
//! (where a node's gate comes from), `reconcile` (the desired label and reason, the patch),
//! `schedule` (resync, due re-reads and retries), `metrics`, `status` (`/readyz`),
//! `config` and `preflight`.

mod config;
mod gate_book;
mod gate_read;
mod metrics;
mod preflight;
mod queue;
mod reconcile;
mod schedule;
mod status;
mod watch;

pub use config::LabelerConfig;
pub use gate_read::gate_matters;
pub use preflight::preflight;
pub use reconcile::{Desired, Evidence, desired};
pub use status::{LabelerStatus, NodeMetricsStatus};

use crate::ClusterError;
use crate::lease::{Elector, LeaseStatus};
use gate_book::GateBook;
use metrics::Metrics;
use queue::WorkQueue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use watch::NodeCache;

/// What the controller's tasks share. Where both locks are held, `nodes` is locked before
/// `book`; no other lock is taken while one is held.
struct Shared {
    client: kube::Client,
    cfg: LabelerConfig,
    nodes: Mutex<NodeCache>,
    /// The node list has been read once.
    synced: AtomicBool,
    /// What is known of each node's gate and of the permission to read it.
    book: Mutex<GateBook>,
    queue: WorkQueue,
    lease: Mutex<LeaseStatus>,
    /// Why the probe listener stopped serving, when it did so unasked.
    probe_failure: Mutex<Option<String>>,
    stopping: AtomicBool,
    /// Node-proxy reads in flight.
    reads: Semaphore,
    metrics: Metrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The label-nodes controller. Cheap to clone; [`Labeler::run`] drives it.
#[derive(Clone)]
pub struct Labeler {
    shared: Arc<Shared>,
}

impl Labeler {
    pub fn new(client: kube::Client, cfg: LabelerConfig) -> Labeler {
        let book = GateBook::new(cfg.node_metrics);
        let reads = Semaphore::new(cfg.node_metrics_concurrency.max(1));
        Labeler {
            shared: Arc::new(Shared {
                client,
                cfg,
                nodes: Mutex::default(),
                synced: AtomicBool::new(false),
                book: Mutex::new(book),
                queue: WorkQueue::default(),
                lease: Mutex::default(),
                probe_failure: Mutex::default(),
                stopping: AtomicBool::new(false),
                reads,
                metrics: Metrics::new(),
            }),
        }
    }

    fn cfg(&self) -> &LabelerConfig {
        &self.shared.cfg
    }

    fn nodes(&self) -> MutexGuard<'_, NodeCache> {
        lock(&self.shared.nodes)
    }

    fn book(&self) -> MutexGuard<'_, GateBook> {
        lock(&self.shared.book)
    }

    /// Leading, and not shutting down: the only state in which nodes are written.
    fn leading(&self) -> bool {
        !self.shared.stopping.load(Ordering::SeqCst) && lock(&self.shared.lease).leader
    }

    /// Runs the controller until `shutdown` completes; then stops writing, releases the
    /// Lease if held, and returns. An error: a part of it stopped unexpectedly.
    pub async fn run(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ClusterError> {
        let (elector, mut lease_rx) =
            Elector::new(self.shared.client.clone(), self.cfg().lease.clone());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut elector_task = tokio::spawn(elector.run(stop_rx));
        // Every other part: aborted together when run ends or is dropped.
        let mut tasks = JoinSet::new();
        tasks.spawn(self.clone().watch_nodes());
        tasks.spawn(self.clone().schedule());
        for _ in 0..self.cfg().workers.max(1) {
            tasks.spawn(self.clone().work());
        }
        let follow = {
            let me = self.clone();
            async move {
                loop {
                    let status = lease_rx.borrow_and_update().clone();
                    me.lease_changed(status);
                    if lease_rx.changed().await.is_err() {
                        break;
                    }
                }
            }
        };
        tasks.spawn(follow);
        // The elector ends only when told to; if dropped with run, it is aborted too.
        let _abort_elector = AbortOnDrop(elector_task.abort_handle());

        tokio::pin!(shutdown);
        let result = tokio::select! {
            _ = &mut shutdown => Ok(()),
            ended = tasks.join_next() => Err(ClusterError::Api(match ended {
                Some(Err(e)) if e.is_panic() => format!("the label-nodes controller failed: {e}"),
                _ => "the label-nodes controller stopped unexpectedly".to_string(),
            })),
            ended = &mut elector_task => Err(ClusterError::Api(format!("the Lease loop stopped unexpectedly: {ended:?}"))),
        };
        // No write after this point; then hand the Lease over.
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.metrics.leader.set(0);
        tasks.shutdown().await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(self.cfg().lease.duration, &mut elector_task).await;
        result
    }

    fn lease_changed(&self, status: LeaseStatus) {
        let became = {
            let mut l = lock(&self.shared.lease);
            let became = status.leader && !l.leader;
            *l = status;
            became
        };
        self.shared.metrics.leader.set(i64::from(self.leading()));
        if became {
            // Everything is looked at once by the new leader.
            self.enqueue_all();
        }
    }

    fn enqueue_all(&self) {
        let names: Vec<String> = self.nodes().nodes.keys().cloned().collect();
        for n in &names {
            self.shared.queue.add(n);
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
