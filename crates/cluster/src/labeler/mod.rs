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

use crate::ClusterError;
use crate::apiserver;
use crate::lease::{Elector, FIELD_MANAGER, LeaseConfig, LeaseStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use sidecar_kit_core::labeling::{LEASE_NAME, NodeReason, ReasonSource, gate_by_version};
use sidecar_kit_core::status::{NODE_LABEL, NODE_REASON_ANNOTATION};
use sidecar_kit_core::version::{GateState, KubeVersion, NodeClass, classify_node};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

// === desired state (pure) ===

/// What decided a node's gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The kubelet's metrics showed the `SidecarContainers` gate line.
    Metrics(GateState),
    /// The kubelet version alone (metrics off, forbidden, failing, without the gate line,
    /// or not needed for this version).
    Version,
}

/// The label and annotation a node should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub class: NodeClass,
    /// Value of `sidecar-kit.io/native-sidecars`; `None`: no label.
    pub label: Option<&'static str>,
    /// Value of `sidecar-kit.io/native-sidecars-reason`; `None` with the label.
    pub reason: Option<String>,
}

/// The contract's label and reason for a kubelet version and what is known of its gate.
pub fn desired(kubelet_version: &str, evidence: Evidence) -> Desired {
    let (gate, source) = match evidence {
        Evidence::Metrics(g) => (g, ReasonSource::Metrics),
        Evidence::Version => (gate_by_version(kubelet_version), ReasonSource::Version),
    };
    let (class, _) = classify_node(kubelet_version, gate);
    let label = class.label_value();
    let reason = label.map(|_| {
        NodeReason {
            kubelet_version: kubelet_version.to_string(),
            gate,
            source,
        }
        .encode()
    });
    Desired {
        class,
        label,
        reason,
    }
}

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

// === configuration ===

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
    fn retry_after(&self) -> Duration {
        self.node_metrics_interval.min(Duration::from_secs(60))
    }

    /// How often due re-reads and retries are looked for.
    fn sweep_every(&self) -> Duration {
        (self.node_metrics_interval / 20).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}

// === metrics ===

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

struct Metrics {
    registry: Registry,
    nodes: Family<ClassLabel, Gauge>,
    writes: Family<ResultLabel, Counter>,
    leader: Gauge,
    reads: Family<ResultLabel, Counter>,
    duration: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
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
}

// === the work queue ===

/// Node names to reconcile: each queued once however often it is added, and never worked
/// on by two workers at once (added again while in work, it is queued when that ends).
#[derive(Default)]
struct WorkQueue {
    inner: Mutex<QueueInner>,
    notify: Notify,
}

#[derive(Default)]
struct QueueInner {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
}

impl WorkQueue {
    fn lock(&self) -> MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, name: &str) {
        let mut q = self.lock();
        if !q.dirty.insert(name.to_string()) {
            return;
        }
        if !q.processing.contains(name) {
            q.queue.push_back(name.to_string());
            drop(q);
            self.notify.notify_one();
        }
    }

    async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = self.lock();
                if let Some(name) = q.queue.pop_front() {
                    q.dirty.remove(&name);
                    q.processing.insert(name.clone());
                    if !q.queue.is_empty() {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return name;
                }
            }
            notified.await;
        }
    }

    fn done(&self, name: &str) {
        let mut q = self.lock();
        q.processing.remove(name);
        if q.dirty.contains(name) {
            q.queue.push_back(name.to_string());
            drop(q);
            self.notify.notify_one();
        }
    }

    /// Nodes waiting or in work.
    fn pending(&self) -> usize {
        let q = self.lock();
        q.dirty.len() + q.processing.len()
    }
}

// === state ===

/// What the controller keeps of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeEntry {
    version: String,
    label: Option<String>,
    reason: Option<String>,
    resource_version: Option<String>,
}

impl NodeEntry {
    fn of(node: &Node) -> (String, NodeEntry) {
        let meta = &node.metadata;
        let entry = NodeEntry {
            version: node
                .status
                .as_ref()
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            label: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(NODE_LABEL))
                .cloned(),
            reason: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(NODE_REASON_ANNOTATION))
                .cloned(),
            resource_version: meta.resource_version.clone(),
        };
        (meta.name.clone().unwrap_or_default(), entry)
    }

    /// Same in what the controller looks at (not the resourceVersion).
    fn same(&self, other: &NodeEntry) -> bool {
        self.version == other.version && self.label == other.label && self.reason == other.reason
    }
}

/// etcd revisions are integers: an event older than what the cache holds (our own patch's
/// answer got there first) must not roll the cache back.
fn older(event: Option<&str>, cached: Option<&str>) -> bool {
    match (
        event.and_then(|e| e.parse::<u64>().ok()),
        cached.and_then(|c| c.parse::<u64>().ok()),
    ) {
        (Some(e), Some(c)) => e < c,
        _ => false,
    }
}

/// A node's gate as last read.
#[derive(Debug, Clone)]
struct Reading {
    /// The kubelet version it was read for.
    version: String,
    evidence: Evidence,
    /// When to read again.
    due: Instant,
}

/// Whether the node proxy may be read.
#[derive(Debug, Clone)]
enum Permission {
    Disabled,
    Unknown,
    Permitted,
    Forbidden {
        since: Instant,
        message: String,
        probing: bool,
    },
}

struct Shared {
    client: kube::Client,
    cfg: LabelerConfig,
    nodes: Mutex<HashMap<String, NodeEntry>>,
    synced: AtomicBool,
    watch_problem: Mutex<Option<String>>,
    readings: Mutex<HashMap<String, Reading>>,
    failing: Mutex<BTreeMap<String, String>>,
    /// Nodes whose reads were refused (403) since the last successful read: one such node is
    /// that node's problem (its kubelet's authorization, a per-node rule); two different ones
    /// mean the permission is gone.
    refused: Mutex<HashSet<String>>,
    /// Bumped when the permission is judged gone, so that a failed read finishing after that
    /// does not put back a reading the judgement cleared.
    generation: AtomicUsize,
    retries: Mutex<HashMap<String, Instant>>,
    permission: Mutex<Permission>,
    queue: WorkQueue,
    lease: Mutex<LeaseStatus>,
    /// Why the probe listener stopped serving, when it did so unasked.
    probe_failure: Mutex<Option<String>>,
    stopping: AtomicBool,
    reads: Semaphore,
    metrics: Metrics,
}

/// Keeps `evidence` as the reading of node `name` at its current kubelet version, due again at
/// `due`.
fn remember(
    readings: &mut HashMap<String, Reading>,
    name: &str,
    entry: &NodeEntry,
    evidence: Evidence,
    due: Instant,
) {
    readings.insert(
        name.to_string(),
        Reading {
            version: entry.version.clone(),
            evidence,
            due,
        },
    );
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The label-nodes controller. Cheap to clone; [`Labeler::run`] drives it.
#[derive(Clone)]
pub struct Labeler {
    shared: Arc<Shared>,
}

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

impl Labeler {
    pub fn new(client: kube::Client, cfg: LabelerConfig) -> Labeler {
        let permission = if cfg.node_metrics {
            Permission::Unknown
        } else {
            Permission::Disabled
        };
        let reads = Semaphore::new(cfg.node_metrics_concurrency.max(1));
        Labeler {
            shared: Arc::new(Shared {
                client,
                cfg,
                nodes: Mutex::default(),
                synced: AtomicBool::new(false),
                watch_problem: Mutex::default(),
                readings: Mutex::default(),
                failing: Mutex::default(),
                refused: Mutex::default(),
                generation: AtomicUsize::new(0),
                retries: Mutex::default(),
                permission: Mutex::new(permission),
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
        let (stop_tx, stop_rx) = watch::channel(false);
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
        let names: Vec<String> = lock(&self.shared.nodes).keys().cloned().collect();
        for n in &names {
            self.shared.queue.add(n);
        }
    }

    // --- the node watch ---

    async fn watch_nodes(self) {
        let api: Api<Node> = Api::all(self.shared.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut staging: Option<HashMap<String, NodeEntry>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => staging = Some(HashMap::new()),
                Ok(Event::InitApply(n)) => {
                    let (name, entry) = NodeEntry::of(&n);
                    if let Some(s) = staging.as_mut() {
                        s.insert(name, entry);
                    }
                }
                Ok(Event::InitDone) => {
                    let fresh = staging.take().unwrap_or_default();
                    let count = fresh.len();
                    {
                        let mut nodes = lock(&self.shared.nodes);
                        *nodes = fresh;
                    }
                    {
                        // Lock order everywhere: nodes, then readings.
                        let nodes = lock(&self.shared.nodes);
                        lock(&self.shared.readings).retain(|n, _| nodes.contains_key(n));
                    }
                    *lock(&self.shared.watch_problem) = None;
                    if !self.shared.synced.swap(true, Ordering::SeqCst) {
                        tracing::info!(nodes = count, "node list read");
                    }
                    if self.leading() {
                        self.enqueue_all();
                    }
                }
                Ok(Event::Apply(n)) => {
                    let (name, entry) = NodeEntry::of(&n);
                    let changed = {
                        let mut nodes = lock(&self.shared.nodes);
                        match nodes.get(&name) {
                            Some(old)
                                if older(
                                    entry.resource_version.as_deref(),
                                    old.resource_version.as_deref(),
                                ) =>
                            {
                                false
                            }
                            Some(old) => {
                                let changed = !old.same(&entry);
                                nodes.insert(name.clone(), entry);
                                changed
                            }
                            None => {
                                nodes.insert(name.clone(), entry);
                                true
                            }
                        }
                    };
                    *lock(&self.shared.watch_problem) = None;
                    if changed && self.leading() {
                        self.shared.queue.add(&name);
                    }
                }
                Ok(Event::Delete(n)) => {
                    let name = n.metadata.name.unwrap_or_default();
                    lock(&self.shared.nodes).remove(&name);
                    lock(&self.shared.readings).remove(&name);
                    lock(&self.shared.failing).remove(&name);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node watch failed; retrying with back-off");
                    *lock(&self.shared.watch_problem) = Some(format!("node watch: {e}"));
                }
            }
        }
    }

    // --- timers: resync, due re-reads, retries ---

    async fn schedule(self) {
        let mut resync = tokio::time::interval(self.cfg().resync_interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        let mut sweep = tokio::time::interval(self.cfg().sweep_every());
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = resync.tick() => {
                    if self.leading() {
                        tracing::debug!("periodic resync");
                        self.enqueue_all();
                    }
                }
                _ = sweep.tick() => {
                    if self.leading() {
                        self.sweep();
                    }
                }
            }
        }
    }

    /// Queues nodes whose failed patch is due for a retry, and nodes whose gate is due
    /// for a (re-)read.
    fn sweep(&self) {
        let now = Instant::now();
        let mut due: Vec<String> = Vec::new();
        {
            let mut retries = lock(&self.shared.retries);
            retries.retain(|n, at| {
                if *at <= now {
                    due.push(n.clone());
                    false
                } else {
                    true
                }
            });
        }
        if self.may_read(now) {
            let nodes = lock(&self.shared.nodes);
            let readings = lock(&self.shared.readings);
            for (name, entry) in nodes.iter() {
                if !gate_matters(&entry.version) {
                    continue;
                }
                let fresh = readings
                    .get(name)
                    .is_some_and(|r| r.version == entry.version && r.due > now);
                if !fresh {
                    due.push(name.clone());
                }
            }
        }
        for n in &due {
            self.shared.queue.add(n);
        }
    }

    /// Whether node metrics may be read now (enabled, and not recently forbidden).
    fn may_read(&self, now: Instant) -> bool {
        match &*lock(&self.shared.permission) {
            Permission::Disabled => false,
            Permission::Forbidden { since, .. } => {
                now.duration_since(*since) >= self.cfg().node_metrics_interval
            }
            _ => true,
        }
    }

    // --- workers ---

    async fn work(self) {
        loop {
            let name = self.shared.queue.next().await;
            let started = Instant::now();
            self.reconcile(&name).await;
            self.shared
                .metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            self.shared.queue.done(&name);
        }
    }

    async fn reconcile(&self, name: &str) {
        if !self.leading() {
            return;
        }
        let Some(entry) = lock(&self.shared.nodes).get(name).cloned() else {
            return;
        };
        let evidence = self.evidence(name, &entry).await;
        let want = desired(&entry.version, evidence);
        if entry.label.as_deref() == want.label && entry.reason == want.reason {
            return;
        }
        if !self.leading() {
            return;
        }
        let patch = serde_json::json!({
            "metadata": {
                "labels": { NODE_LABEL: want.label },
                "annotations": { NODE_REASON_ANNOTATION: want.reason },
            }
        });
        let api: Api<Node> = Api::all(self.shared.client.clone());
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let call = tokio::time::timeout(
            Duration::from_secs(30),
            api.patch(name, &pp, &Patch::Merge(&patch)),
        )
        .await;
        match call {
            Ok(Ok(node)) => {
                Metrics::count(&self.shared.metrics.writes, "success");
                tracing::info!(
                    node = name,
                    class = %want.class,
                    label = want.label.unwrap_or(""),
                    reason = want.reason.as_deref().unwrap_or(""),
                    "node labelled"
                );
                // The answer is the node as it now is: the cache need not wait for the watch.
                let (_, fresh) = NodeEntry::of(&node);
                let mut nodes = lock(&self.shared.nodes);
                if let Some(old) = nodes.get(name)
                    && !older(
                        fresh.resource_version.as_deref(),
                        old.resource_version.as_deref(),
                    )
                {
                    nodes.insert(name.to_string(), fresh);
                }
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                // Deleted meanwhile: the watch removes it.
            }
            other => {
                Metrics::count(&self.shared.metrics.writes, "failure");
                let error = match other {
                    Ok(Err(e)) => describe_patch_error(&e, name),
                    _ => format!("PATCH node {name}: no answer within 30s"),
                };
                tracing::warn!(node = name, error = %error, "cannot label the node; retrying");
                lock(&self.shared.retries).insert(
                    name.to_string(),
                    Instant::now() + Duration::from_secs(5).min(self.cfg().resync_interval),
                );
            }
        }
    }

    /// The gate evidence for a node: a current reading, the annotation of an earlier
    /// leader, a fresh read, or the version.
    async fn evidence(&self, name: &str, entry: &NodeEntry) -> Evidence {
        if !gate_matters(&entry.version) {
            return Evidence::Version;
        }
        let now = Instant::now();
        let previous = {
            let readings = lock(&self.shared.readings);
            readings
                .get(name)
                .filter(|r| r.version == entry.version)
                .cloned()
        };
        if let Some(r) = &previous
            && r.due > now
        {
            return r.evidence;
        }
        // Forbidden or disabled: the version decides. After an interval one worker
        // probes the permission again, with a read of its own node.
        let probe = {
            let mut p = lock(&self.shared.permission);
            match &mut *p {
                Permission::Disabled => return Evidence::Version,
                Permission::Forbidden { since, probing, .. } => {
                    if *probing || now.duration_since(*since) < self.cfg().node_metrics_interval {
                        return Evidence::Version;
                    }
                    *probing = true;
                    true
                }
                Permission::Unknown | Permission::Permitted => false,
            }
        };
        if probe {
            return self.read_gate(name, entry, None).await;
        }
        if previous.is_none()
            && let Some(g) = entry
                .reason
                .as_deref()
                .and_then(|r| gate_from_reason(r, &entry.version))
        {
            let ev = Evidence::Metrics(g);
            let due = now + self.cfg().node_metrics_interval.mul_f64(spread(name));
            remember(&mut lock(&self.shared.readings), name, entry, ev, due);
            return ev;
        }
        self.read_gate(name, entry, previous).await
    }

    async fn read_gate(
        &self,
        name: &str,
        entry: &NodeEntry,
        previous: Option<Reading>,
    ) -> Evidence {
        let Ok(_permit) = self.shared.reads.acquire().await else {
            return Evidence::Version;
        };
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let path = format!("/api/v1/nodes/{name}/proxy/metrics");
        let result =
            apiserver::metrics_gate(&self.shared.client, &path, self.cfg().node_metrics_timeout)
                .await;
        let now = Instant::now();
        let (evidence, due, outcome) = match result {
            Ok(Some(g)) => (
                Evidence::Metrics(g),
                now + self.cfg().node_metrics_interval,
                "success",
            ),
            Ok(None) => (
                Evidence::Version,
                now + self.cfg().node_metrics_interval,
                "no-gate-line",
            ),
            Err(ClusterError::Forbidden(message)) => {
                Metrics::count(&self.shared.metrics.reads, "forbidden");
                let refused = {
                    let mut r = lock(&self.shared.refused);
                    r.insert(name.to_string());
                    r.len()
                };
                if refused >= 2 {
                    self.forbidden(message);
                    return Evidence::Version;
                }
                // One node refused (so far): this node's problem, not the permission's. It
                // keeps an earlier reading for its version (else its version decides) and is
                // read again after the interval.
                self.read_failed(name, message);
                return self.keep_earlier(
                    name,
                    entry,
                    previous,
                    generation,
                    now + self.cfg().node_metrics_interval,
                );
            }
            Err(e) => {
                Metrics::count(&self.shared.metrics.reads, "failure");
                self.read_failed(name, e.to_string());
                self.undecided();
                return self.keep_earlier(
                    name,
                    entry,
                    previous,
                    generation,
                    now + self.cfg().retry_after(),
                );
            }
        };
        Metrics::count(&self.shared.metrics.reads, outcome);
        lock(&self.shared.refused).clear();
        self.permitted();
        self.read_ok(name);
        remember(&mut lock(&self.shared.readings), name, entry, evidence, due);
        evidence
    }

    /// After a failed read: an earlier reading for this version is better than none (else
    /// the version decides); read again at `due`. Nothing is kept when the permission was
    /// judged gone since the read began (`generation`).
    fn keep_earlier(
        &self,
        name: &str,
        entry: &NodeEntry,
        previous: Option<Reading>,
        generation: usize,
        due: Instant,
    ) -> Evidence {
        let mut readings = lock(&self.shared.readings);
        if self.shared.generation.load(Ordering::SeqCst) != generation {
            return Evidence::Version;
        }
        let evidence = previous.map_or(Evidence::Version, |r| r.evidence);
        remember(&mut readings, name, entry, evidence, due);
        evidence
    }

    fn forbidden(&self, message: String) {
        let mut p = lock(&self.shared.permission);
        let was_forbidden = matches!(&*p, Permission::Forbidden { .. });
        *p = Permission::Forbidden {
            since: Instant::now(),
            message: message.clone(),
            probing: false,
        };
        drop(p);
        if was_forbidden {
            return;
        }
        tracing::warn!(
            error = %message,
            "cannot read kubelet metrics through the node proxy: labelling from kubelet versions (source: version); grant get on nodes/proxy to read each node's SidecarContainers gate"
        );
        // Nodes labelled from metrics are now labelled from their versions.
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.shared.readings).clear();
        if self.leading() {
            self.enqueue_all();
        }
    }

    fn permitted(&self) {
        let mut p = lock(&self.shared.permission);
        match &*p {
            Permission::Permitted | Permission::Disabled => {}
            Permission::Forbidden { .. } => {
                tracing::info!(
                    "kubelet metrics readable again through the node proxy: labelling from each node's gate"
                );
                *p = Permission::Permitted;
            }
            Permission::Unknown => *p = Permission::Permitted,
        }
    }

    /// A read failed for another reason than a 403: a permission probe ends undecided.
    fn undecided(&self) {
        if let Permission::Forbidden { since, probing, .. } = &mut *lock(&self.shared.permission) {
            *since = Instant::now();
            *probing = false;
        }
    }

    fn read_failed(&self, name: &str, error: String) {
        let mut f = lock(&self.shared.failing);
        if f.is_empty() {
            tracing::warn!(
                node = name,
                error = %error,
                "cannot read a kubelet's metrics: its gate comes from an earlier reading or its version until a read succeeds (further failures are counted in /readyz and /metrics, not logged)"
            );
        }
        f.insert(name.to_string(), error);
    }

    fn read_ok(&self, name: &str) {
        let mut f = lock(&self.shared.failing);
        if f.remove(name).is_some() && f.is_empty() {
            tracing::info!("kubelet metrics readable again on every node");
        }
    }

    // --- reporting ---

    /// Nodes by their current label value (`none` for no label).
    fn labelled(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = ["true", "false", "rejected", "none"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        for e in lock(&self.shared.nodes).values() {
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
        let (permission, detail) = match &*lock(&self.shared.permission) {
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
        // Each lock is taken and dropped on its own (a guard living to the end of the
        // struct expression would deadlock the next `lock` of the same mutex).
        let (failing, last_error) = {
            let f = lock(&self.shared.failing);
            (f.len(), f.values().next().cloned())
        };
        let nodes_seen = lock(&self.shared.nodes).len();
        let watch_problem = lock(&self.shared.watch_problem).clone();
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
            node_metrics: NodeMetricsStatus {
                permission,
                detail,
                failing,
                last_error,
            },
        }
    }

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

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn describe_patch_error(e: &kube::Error, name: &str) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "PATCH node {name}: forbidden ({}); grant patch on nodes",
            s.message
        ),
        _ => format!("PATCH node {name}: {e}"),
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

/// What the controller needs at start: the node list and the Lease. Unreachable or
/// forbidden is an error naming the permission; a missing Lease is fine.
pub async fn preflight(
    client: &kube::Client,
    lease: &LeaseConfig,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = tokio::time::timeout(
        timeout,
        nodes.list_metadata(&ListParams::default().limit(1)),
    )
    .await
    .map_err(|_| {
        ClusterError::Api(format!(
            "list nodes: no answer within {}s",
            timeout.as_secs_f64()
        ))
    })?;
    listed.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden(format!(
            "list nodes: forbidden ({}); grant get, list, watch and patch on nodes",
            s.message
        )),
        e => ClusterError::Api(format!("list nodes: {e}")),
    })?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &lease.namespace);
    let got = tokio::time::timeout(timeout, leases.get_opt(&lease.name))
        .await
        .map_err(|_| {
            ClusterError::Api(format!(
                "get Lease {}/{}: no answer within {}s",
                lease.namespace,
                lease.name,
                timeout.as_secs_f64()
            ))
        })?;
    got.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden(format!(
            "get Lease {}/{}: forbidden ({}); grant create, get and update on leases.coordination.k8s.io in namespace {}",
            lease.namespace, lease.name, s.message, lease.namespace
        )),
        e => ClusterError::Api(format!("get Lease {}/{}: {e}", lease.namespace, lease.name)),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(v: &str, gate: &str, source: &str) -> Option<String> {
        Some(format!(
            r#"{{"kubeletVersion":"{v}","gate":"{gate}","source":"{source}"}}"#
        ))
    }

    #[test]
    fn desired_follows_the_contract() {
        let d = desired("v1.27.9", Evidence::Version);
        assert_eq!(d.label, Some("false"));
        assert_eq!(d.reason, reason("v1.27.9", "unknown", "version"));

        let d = desired("v1.28.5", Evidence::Version);
        assert_eq!(d.label, Some("rejected"));
        let d = desired("v1.28.5", Evidence::Metrics(GateState::Disabled));
        assert_eq!(d.label, Some("rejected"));
        assert_eq!(d.reason, reason("v1.28.5", "disabled", "metrics"));
        let d = desired("v1.28.5", Evidence::Metrics(GateState::Enabled));
        assert_eq!(d.label, Some("true"));
        assert_eq!(d.reason, reason("v1.28.5", "enabled", "metrics"));

        let d = desired("v1.31.2+k3s1", Evidence::Version);
        assert_eq!(d.label, Some("true"));
        assert_eq!(d.reason, reason("v1.31.2+k3s1", "unknown", "version"));
        let d = desired("v1.31.2", Evidence::Metrics(GateState::Disabled));
        assert_eq!(d.label, Some("rejected"));
        // Past GA the version alone says the gate is locked on (metrics silent or unread).
        let d = desired("v1.33.1", Evidence::Version);
        assert_eq!(d.label, Some("true"));
        assert_eq!(d.reason, reason("v1.33.1", "enabled", "version"));

        let d = desired("garbage", Evidence::Version);
        assert_eq!(
            (d.class, d.label, d.reason),
            (NodeClass::Unknown, None, None)
        );
        let d = desired("", Evidence::Version);
        assert_eq!(d.label, None);
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
        let r = reason("v1.28.5", "enabled", "metrics").unwrap();
        assert_eq!(gate_from_reason(&r, "v1.28.5"), Some(GateState::Enabled));
        assert_eq!(gate_from_reason(&r, "v1.28.6"), None);
        let r = reason("v1.28.5", "unknown", "version").unwrap();
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

    #[test]
    fn older_compares_integer_resource_versions() {
        assert!(older(Some("9"), Some("10")));
        assert!(!older(Some("10"), Some("10")));
        assert!(!older(Some("x"), Some("10")));
        assert!(!older(None, Some("10")));
    }

    #[tokio::test]
    async fn the_queue_holds_a_name_once_and_requeues_after_work() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.pending(), 2);
        let a = q.next().await;
        assert_eq!(a, "a");
        q.add("a"); // dirty while in work: not handed out twice
        assert_eq!(q.next().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a");
        q.done("a");
        assert_eq!(q.pending(), 0);
    }
}
