//! Live cluster facts for `auto` mode: watches of nodes and namespaces kept to what decisions
//! need, the node index rebuilt when they change, the API server's version and gate, and the
//! freshness of the labeler's Lease. While a watch has not synced or the API cannot be
//! reached, `availability()` says so and `auto` uses each profile's fallback (affinity and universal
//! only while the labeler's Lease is fresh).

use crate::apiserver::{self, GateSource};
use crate::watched::{Labels, WatchedNode};
use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use sidecar_kit_core::facts::{
    Availability, CandidateSummary, Facts, FactsSource, Label, NodeFacts, Scheduling, Taint,
};
use sidecar_kit_core::labeling::NodeReason;
use sidecar_kit_core::nodeindex::NodeIndex;
use sidecar_kit_core::status::NODE_REASON_ANNOTATION;
use sidecar_kit_core::version::{GateState, KubeVersion};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the labeler's Lease is, and how often things are looked at again.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Namespace and name of the `label-nodes` Lease.
    pub labeler_lease: Option<(String, String)>,
    /// How often the labeler's Lease is read again (its freshness is judged on this period).
    pub refresh: Duration,
    /// How often the API server's version and gate are read again: `/metrics` of a large
    /// API server runs to megabytes, and the gate changes only with a restart.
    pub api_refresh: Duration,
    /// The least time between two rebuilds of the node index.
    pub rebuild_every: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            labeler_lease: None,
            refresh: Duration::from_secs(10),
            api_refresh: Duration::from_secs(300),
            rebuild_every: Duration::from_millis(200),
        }
    }
}

/// One immutable view of the cluster: what a decision reads, all of it from one moment.
/// The watchers never change a published snapshot; they publish a new one (sharing the
/// unchanged parts), so taking one is a reference count, not a copy.
#[derive(Clone, Default)]
pub struct LiveSnapshot {
    api_version: Option<KubeVersion>,
    api_gate: GateState,
    api_note: String,
    /// The nodes the index was built from.
    nodes: Arc<HashMap<String, NodeFacts>>,
    index: Option<Arc<NodeIndex>>,
    nodes_synced: bool,
    nodes_problem: Option<String>,
    namespaces: Arc<HashMap<String, Arc<BTreeMap<String, String>>>>,
    namespaces_synced: bool,
    namespaces_problem: Option<String>,
    lease_fresh: Option<bool>,
    generation: u64,
}

/// Facts from the live cluster. Cheap to clone; the watches run in background tasks.
/// [`LiveFacts::snapshot`] gives one immutable view for a decision; the `Facts` methods of
/// `LiveFacts` itself each read the newest view (for readiness details and tests).
#[derive(Clone, Default)]
pub struct LiveFacts {
    current: Arc<ArcSwap<LiveSnapshot>>,
    /// Serialises the watchers' updates (each publishes a changed copy of the newest view).
    writer: Arc<Mutex<()>>,
}

/// The labeler's reading of a node's `SidecarContainers` gate, from its reason annotation;
/// it stands only for the kubelet it was made of.
pub(crate) fn labeler_gate(reason: Option<&str>, kubelet_version: &str) -> GateState {
    reason
        .and_then(|r| NodeReason::parse(r)?.metrics_gate_for(kubelet_version))
        .unwrap_or_default()
}

/// What sidecar-kit keeps of a Node: nothing decisions do not need. (The node watch reads
/// the same from the API's JSON without decoding the rest: [`crate::watched`].)
pub fn node_facts(node: &Node) -> NodeFacts {
    let meta = &node.metadata;
    let kubelet_version = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.kubelet_version.clone())
        .unwrap_or_default();
    let gate = labeler_gate(
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(NODE_REASON_ANNOTATION))
            .map(String::as_str),
        &kubelet_version,
    );
    NodeFacts {
        name: meta.name.clone().unwrap_or_default(),
        kubelet_version,
        sidecar_containers: gate,
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        labels: meta
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (Label::from(k.as_str()), Label::from(v.as_str())))
            .collect(),
        taints: node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .map(|ts| {
                ts.iter()
                    .map(|t| Taint {
                        key: t.key.clone(),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl LiveFacts {
    /// Starts the watches and refreshers on the current runtime.
    pub fn start(client: kube::Client, opts: LiveOptions) -> LiveFacts {
        let facts = LiveFacts::default();
        tokio::spawn(
            facts
                .clone()
                .watch_nodes(client.clone(), opts.rebuild_every),
        );
        tokio::spawn(facts.clone().watch_namespaces(client.clone()));
        tokio::spawn(facts.clone().refresh(client, opts));
        facts
    }

    /// The cluster as it stands now, for one decision: later updates do not change it.
    pub fn snapshot(&self) -> Arc<LiveSnapshot> {
        self.current.load_full()
    }

    /// Publishes a changed copy of the newest view.
    fn update(&self, change: impl FnOnce(&mut LiveSnapshot)) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = LiveSnapshot::clone(&self.current.load());
        change(&mut next);
        self.current.store(Arc::new(next));
    }

    /// Publishes the nodes and their index together.
    fn publish_nodes(&self, nodes: &Arc<HashMap<String, NodeFacts>>, synced: bool) {
        // Built before publishing: a synced cache always has its index.
        let index = Arc::new(index_of(nodes));
        self.update(|s| {
            s.nodes = nodes.clone();
            s.index = Some(index);
            if synced {
                s.nodes_synced = true;
                s.nodes_problem = None;
            }
            s.generation += 1;
        });
    }

    async fn watch_nodes(self, client: kube::Client, rebuild_every: Duration) {
        let api: Api<WatchedNode> = Api::all(client);
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut staging: Option<HashMap<String, NodeFacts>> = None;
        let mut labels = Labels::default();
        // The watcher's own copy of the nodes; shared with the published view until the next
        // change copies it.
        let mut nodes: Arc<HashMap<String, NodeFacts>> = Arc::default();
        let mut dirty = false;
        let mut last_rebuild = Instant::now() - rebuild_every;
        let mut tick = tokio::time::interval(rebuild_every);
        loop {
            tokio::select! {
                ev = stream.next() => {
                    let Some(ev) = ev else { break };
                    match ev {
                        Ok(Event::Init) => staging = Some(HashMap::new()),
                        Ok(Event::InitApply(n)) => {
                            let f = labels.share(n.facts);
                            if let Some(st) = staging.as_mut() {
                                st.insert(f.name.clone(), f);
                            }
                        }
                        Ok(Event::InitDone) => {
                            nodes = Arc::new(staging.take().unwrap_or_default());
                            self.publish_nodes(&nodes, true);
                            labels.forget_unused();
                            last_rebuild = Instant::now();
                            dirty = false;
                            tracing::info!(nodes = nodes.len(), "node cache synced");
                        }
                        Ok(Event::Apply(n)) => {
                            let f = labels.share(n.facts);
                            if self.snapshot().nodes_problem.is_some() {
                                self.update(|s| s.nodes_problem = None);
                            }
                            if nodes.get(&f.name) != Some(&f) {
                                Arc::make_mut(&mut nodes).insert(f.name.clone(), f);
                                dirty = true;
                            }
                        }
                        Ok(Event::Delete(n)) => {
                            if nodes.contains_key(n.name()) {
                                Arc::make_mut(&mut nodes).remove(n.name());
                                dirty = true;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "node watch failed; retrying with back-off");
                            self.update(|s| s.nodes_problem = Some(format!("node watch: {e}")));
                        }
                    }
                }
                _ = tick.tick() => {}
            }
            if dirty && last_rebuild.elapsed() >= rebuild_every {
                self.publish_nodes(&nodes, false);
                labels.forget_unused();
                last_rebuild = Instant::now();
                dirty = false;
            }
        }
    }

    async fn watch_namespaces(self, client: kube::Client) {
        let api: Api<Namespace> = Api::all(client);
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut staging: Option<HashMap<String, Arc<BTreeMap<String, String>>>> = None;
        while let Some(ev) = stream.next().await {
            let entry = |n: &Namespace| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    Arc::new(n.metadata.labels.clone().unwrap_or_default()),
                )
            };
            match ev {
                Ok(Event::Init) => staging = Some(HashMap::new()),
                Ok(Event::InitApply(n)) => {
                    if let Some(st) = staging.as_mut() {
                        let (k, v) = entry(&n);
                        st.insert(k, v);
                    }
                }
                Ok(Event::InitDone) => {
                    let namespaces = Arc::new(staging.take().unwrap_or_default());
                    self.update(|s| {
                        s.namespaces = namespaces;
                        s.namespaces_synced = true;
                        s.namespaces_problem = None;
                        s.generation += 1;
                    });
                }
                Ok(Event::Apply(n)) => {
                    let (k, v) = entry(&n);
                    self.update(|s| {
                        s.namespaces_problem = None;
                        if s.namespaces.get(&k) != Some(&v) {
                            Arc::make_mut(&mut s.namespaces).insert(k, v);
                            s.generation += 1;
                        }
                    });
                }
                Ok(Event::Delete(n)) => {
                    self.update(|s| {
                        Arc::make_mut(&mut s.namespaces)
                            .remove(n.metadata.name.as_deref().unwrap_or(""));
                        s.generation += 1;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "namespace watch failed; retrying with back-off");
                    self.update(|s| s.namespaces_problem = Some(format!("namespace watch: {e}")));
                }
            }
        }
    }

    async fn refresh(self, client: kube::Client, opts: LiveOptions) {
        let mut tick = tokio::time::interval(opts.refresh);
        let mut last_api: Option<Instant> = None;
        loop {
            tick.tick().await;
            // The first read, then every api_refresh; again soon while it fails.
            let due = last_api.is_none_or(|t| t.elapsed() >= opts.api_refresh);
            let result = if due {
                Some(apiserver::api_server(&client, Duration::from_secs(10)).await)
            } else {
                None
            };
            if let Some(Ok(_)) = &result {
                last_api = Some(Instant::now());
            }
            match result {
                None => {}
                Some(Ok(r)) => {
                    let note = match &r.source {
                        GateSource::Metrics => format!(
                            "API server {}: SidecarContainers {} (from /metrics)",
                            r.version, r.gate
                        ),
                        GateSource::NoLine => format!(
                            "API server {}: no SidecarContainers line in /metrics (inferred from the version)",
                            r.version
                        ),
                        GateSource::Unreadable(why) => format!(
                            "API server {}: gate inferred from the version ({why})",
                            r.version
                        ),
                    };
                    let (v, g) = (KubeVersion::parse(&r.version), r.gate);
                    self.update(|s| {
                        if s.api_version != v || s.api_gate != g {
                            s.generation += 1;
                        }
                        s.api_version = v;
                        s.api_gate = g;
                        s.api_note = note;
                    });
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the API server's version");
                    self.update(|s| s.api_note = format!("API server: {e}"));
                }
            }
            if let Some((ns, name)) = &opts.labeler_lease {
                let api: Api<Lease> = Api::namespaced(client.clone(), ns);
                let fresh = match api.get_opt(name).await {
                    Ok(Some(l)) => Some(lease_fresh(&l, k8s_openapi::jiff::Timestamp::now())),
                    Ok(None) => Some(false),
                    Err(e) => {
                        tracing::warn!(error = %e, lease = %name, "cannot read the labeler's Lease");
                        None
                    }
                };
                if self.snapshot().lease_fresh != fresh {
                    self.update(|s| {
                        s.lease_fresh = fresh;
                        s.generation += 1;
                    });
                }
            }
        }
    }

    /// Number of nodes in the cache (for tests and metrics).
    pub fn node_count(&self) -> usize {
        self.snapshot().nodes.len()
    }

    /// An estimate of the heap the node cache holds: the kept fields of every node (names,
    /// versions, labels, taints, with map and string overheads) and the index's bitsets.
    pub fn approx_node_bytes(&self) -> usize {
        let s = self.snapshot();
        let string = |x: &String| x.capacity() + std::mem::size_of::<String>();
        // A label is shared among the nodes that carry it: its text counts once, here.
        let mut texts = std::collections::HashSet::new();
        let per_node: usize = s
            .nodes
            .iter()
            .map(|(k, n)| {
                string(k)
                    + std::mem::size_of::<NodeFacts>()
                    + n.name.capacity()
                    + n.kubelet_version.capacity()
                    + n.labels
                        .iter()
                        .map(|(a, b)| {
                            let mut text = |l: &Label| {
                                if texts.insert(Arc::as_ptr(l)) {
                                    l.len() + 16
                                } else {
                                    0
                                }
                            };
                            2 * std::mem::size_of::<Label>() + text(a) + text(b)
                        })
                        .sum::<usize>()
                    + n.taints
                        .iter()
                        .map(|t| {
                            std::mem::size_of::<Taint>()
                                + t.key.capacity()
                                + t.effect.capacity()
                                + t.value.as_ref().map_or(0, String::capacity)
                        })
                        .sum::<usize>()
            })
            .sum();
        let distinct_values: usize = {
            let mut v = std::collections::HashSet::new();
            for n in s.nodes.values() {
                for kv in &n.labels {
                    v.insert(kv);
                }
            }
            v.len()
        };
        // One bitset of n bits per label value and key, per class and taint group (a few).
        let bitsets = (distinct_values + 16) * s.nodes.len().div_ceil(64) * 8;
        per_node + bitsets
    }
}

/// The index of a node map, in name order.
fn index_of(nodes: &HashMap<String, NodeFacts>) -> NodeIndex {
    let mut v: Vec<&NodeFacts> = nodes.values().collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    NodeIndex::of_refs(&v)
}

/// A Lease is fresh while its last renewal plus its duration is not past.
pub fn lease_fresh(l: &Lease, now: k8s_openapi::jiff::Timestamp) -> bool {
    let Some(spec) = &l.spec else { return false };
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return false;
    }
    let (Some(renew), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    renew.0.as_second() + i64::from(secs) >= now.as_second()
}

impl LiveSnapshot {
    /// One line for `/readyz` and logs: what auto mode decides from.
    fn summary(&self) -> String {
        let s = self;
        let nodes = match (&s.nodes_problem, s.nodes_synced) {
            (Some(p), _) => format!("nodes: {p}"),
            (None, true) => format!("nodes: {} in cache", s.nodes.len()),
            (None, false) => "nodes: not synced yet".to_string(),
        };
        let ns = match (&s.namespaces_problem, s.namespaces_synced) {
            (Some(p), _) => format!("namespaces: {p}"),
            (None, true) => format!("namespaces: {}", s.namespaces.len()),
            (None, false) => "namespaces: not synced yet".to_string(),
        };
        let lease = match s.lease_fresh {
            Some(true) => "labeler lease fresh",
            Some(false) => "labeler lease not fresh",
            None => "labeler lease unknown",
        };
        format!(
            "{nodes}; {ns}; {}; {lease}",
            if s.api_note.is_empty() {
                "API server: not read yet"
            } else {
                &s.api_note
            }
        )
    }
}

impl Facts for LiveSnapshot {
    fn availability(&self) -> Availability {
        if let Some(p) = self
            .nodes_problem
            .as_ref()
            .or(self.namespaces_problem.as_ref())
        {
            return Availability::Unsynced(format!("{p}; the API may be unreachable"));
        }
        if !self.nodes_synced || !self.namespaces_synced {
            return Availability::Unsynced("node and namespace caches not synced yet".into());
        }
        Availability::Known
    }
    fn api_server(&self) -> (Option<KubeVersion>, GateState) {
        (self.api_version.clone(), self.api_gate)
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        self.lease_fresh
    }
    fn namespace_labels(&self, namespace: &str) -> Option<Arc<BTreeMap<String, String>>> {
        self.namespaces.get(namespace).cloned()
    }
    fn candidates(&self, scheduling: &Scheduling) -> CandidateSummary {
        self.index
            .as_ref()
            .map(|i| i.candidates(scheduling))
            .unwrap_or_default()
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn describe(&self) -> String {
        self.summary()
    }
}

/// Each method reads the newest view; a decision takes one [`LiveFacts::snapshot`] instead.
impl Facts for LiveFacts {
    fn availability(&self) -> Availability {
        self.snapshot().availability()
    }
    fn api_server(&self) -> (Option<KubeVersion>, GateState) {
        self.snapshot().api_server()
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        self.snapshot().labeler_lease_fresh()
    }
    fn namespace_labels(&self, namespace: &str) -> Option<Arc<BTreeMap<String, String>>> {
        self.snapshot().namespace_labels(namespace)
    }
    fn candidates(&self, scheduling: &Scheduling) -> CandidateSummary {
        self.snapshot().candidates(scheduling)
    }
    fn generation(&self) -> u64 {
        self.snapshot().generation()
    }
    fn describe(&self) -> String {
        self.snapshot().describe()
    }
}

impl FactsSource for LiveFacts {
    fn snapshot(&self) -> Arc<dyn Facts + Send + Sync> {
        LiveFacts::snapshot(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn node(name: &str, version: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            kubelet_version: version.into(),
            ..NodeFacts::default()
        }
    }

    fn nodes(list: &[NodeFacts]) -> Arc<HashMap<String, NodeFacts>> {
        Arc::new(list.iter().map(|n| (n.name.clone(), n.clone())).collect())
    }

    fn labels(team: &str) -> Arc<BTreeMap<String, String>> {
        Arc::new([("team".to_string(), team.to_string())].into())
    }

    #[test]
    fn a_snapshot_answers_from_the_state_it_was_taken_in() {
        let live = LiveFacts::default();
        live.publish_nodes(&nodes(&[node("n1", "v1.31.2")]), true);
        live.update(|s| {
            s.namespaces = Arc::new([("shop".to_string(), labels("payments"))].into());
            s.namespaces_synced = true;
            s.api_version = KubeVersion::parse("v1.31.4");
            s.api_gate = GateState::Enabled;
            s.lease_fresh = Some(true);
            s.generation += 1;
        });
        let before = live.snapshot();

        // Every fact changes after the snapshot was taken.
        live.publish_nodes(
            &nodes(&[node("n1", "v1.27.9"), node("n2", "v1.27.9")]),
            false,
        );
        live.update(|s| {
            Arc::make_mut(&mut s.namespaces).insert("shop".into(), labels("search"));
            s.api_version = KubeVersion::parse("v1.32.0");
            s.api_gate = GateState::Disabled;
            s.lease_fresh = Some(false);
            s.nodes_problem = Some("node watch: connection reset".into());
            s.generation += 1;
        });

        let all = Scheduling::default();
        let (old, new) = (before.candidates(&all), live.candidates(&all));
        assert_eq!((old.capable, old.unaware), (1, 0), "the snapshot's nodes");
        assert_eq!((new.capable, new.unaware), (0, 2), "the live view's nodes");
        assert_eq!(before.availability(), Availability::Known);
        assert!(matches!(live.availability(), Availability::Unsynced(_)));
        assert_eq!(
            before.api_server(),
            (KubeVersion::parse("v1.31.4"), GateState::Enabled)
        );
        assert_eq!(
            live.api_server(),
            (KubeVersion::parse("v1.32.0"), GateState::Disabled)
        );
        assert_eq!(before.labeler_lease_fresh(), Some(true));
        assert_eq!(live.labeler_lease_fresh(), Some(false));
        assert_eq!(before.namespace_labels("shop"), Some(labels("payments")));
        assert_eq!(live.namespace_labels("shop"), Some(labels("search")));
        assert!(before.generation() < live.generation());
        assert!(
            before.describe().contains("nodes: 1 in cache"),
            "{}",
            before.describe()
        );
        assert!(
            live.describe().contains("connection reset"),
            "{}",
            live.describe()
        );
        // What the webhook takes per review is that same kind of frozen view.
        let taken = FactsSource::snapshot(&live);
        live.update(|s| s.lease_fresh = None);
        assert_eq!(taken.labeler_lease_fresh(), Some(false));
        assert_eq!(live.labeler_lease_fresh(), None);
    }

    #[test]
    fn taking_a_snapshot_shares_the_node_index() {
        let live = LiveFacts::default();
        live.publish_nodes(&nodes(&[node("n1", "v1.31.2")]), true);
        let (a, b) = (live.snapshot(), live.snapshot());
        assert!(
            Arc::ptr_eq(&a, &b),
            "a snapshot is a reference count, not a copy"
        );
        live.update(|s| s.lease_fresh = Some(true));
        let c = live.snapshot();
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(
            Arc::ptr_eq(a.index.as_ref().unwrap(), c.index.as_ref().unwrap()),
            "an update of another fact keeps the node index"
        );
    }

    #[test]
    fn a_node_keeps_the_labelers_gate_reading_of_its_own_kubelet_only() {
        let node = |kubelet: &str, reason: &str| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n1", "annotations": {NODE_REASON_ANNOTATION: reason}},
                "status": {"nodeInfo": {"kubeletVersion": kubelet}}
            }))
            .unwrap()
        };
        let read = r#"{"kubeletVersion":"v1.30.2","gate":"disabled","source":"metrics"}"#;
        assert_eq!(
            node_facts(&node("v1.30.2", read)).sidecar_containers,
            GateState::Disabled
        );
        // Upgraded since the reading: the old kubelet's gate says nothing of the new one.
        assert_eq!(
            node_facts(&node("v1.31.0", read)).sidecar_containers,
            GateState::Unknown
        );
        let by_version = r#"{"kubeletVersion":"v1.30.2","gate":"unknown","source":"version"}"#;
        assert_eq!(
            node_facts(&node("v1.30.2", by_version)).sidecar_containers,
            GateState::Unknown
        );
    }
}
