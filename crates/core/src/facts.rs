//! Cluster facts: the `ClusterFacts` file format, the [`Facts`] trait the engine decides
//! from, and the scheduling rules that find the nodes a pod can land on.
//!
//! The engine never talks to a cluster. Offline, facts come from a file written by
//! `sidecar-kit doctor cluster -o facts`; in the webhook, from a watch cache. Both meet
//! the engine here.

use crate::selector::LabelSelector;
use crate::version::{GateState, KubeVersion, NodeClass, classify_node};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What `auto` does without cluster facts, as readiness, `explain` and logs say it.
pub const NO_FACTS: &str = "no cluster facts: auto uses each profile's fallback, but legacy for an affinity or universal fallback (no node labels to trust)";

pub const FACTS_API_VERSION: &str = "sidecar-kit.io/v1alpha1";
pub const FACTS_KIND: &str = "ClusterFacts";

/// The `ClusterFacts` file (contract: "Facts file").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterFacts {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub api_server: ApiServerFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<LabelerFacts>,
    #[serde(default)]
    pub nodes: Vec<NodeFacts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServerFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub sidecar_containers: GateState,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelerFacts {
    pub lease_fresh: bool,
}

/// A node's label key or value. Shared: a live cache of thousands of nodes holds each
/// distinct key and value once (most are the same on every node), not once per node.
pub type Label = Arc<str>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeFacts {
    pub name: String,
    #[serde(default)]
    pub kubelet_version: String,
    #[serde(default)]
    pub sidecar_containers: GateState,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<Label, Label>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

impl NodeFacts {
    pub fn class(&self) -> NodeClass {
        classify_node(&self.kubelet_version, self.sidecar_containers).0
    }
    pub fn is_windows(&self) -> bool {
        self.labels
            .get("kubernetes.io/os")
            .is_some_and(|v| &**v == "windows")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub effect: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFacts {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Where the facts stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Facts are known (a facts file, or a synced cache).
    Known,
    /// No facts at all (offline without `--facts`).
    Absent,
    /// A live cache that has not synced or lost the API; the text says which.
    Unsynced(String),
}

/// Nodes a pod could land on, counted by class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CandidateSummary {
    pub capable: usize,
    pub unaware: usize,
    pub rejecting: usize,
    pub unknown: usize,
    /// Capable 1.28 nodes (gate on): start order native, termination order not.
    pub capable_1_28: usize,
    /// Windows nodes among the candidates.
    pub windows: usize,
    /// A few candidate names per class, for reasons.
    pub samples: Vec<(String, NodeClass)>,
}

impl CandidateSummary {
    pub fn total(&self) -> usize {
        self.capable + self.unaware + self.rejecting + self.unknown
    }

    pub fn add(&mut self, name: &str, class: NodeClass, is_1_28: bool, windows: bool) {
        match class {
            NodeClass::Capable => self.capable += 1,
            NodeClass::Unaware => self.unaware += 1,
            NodeClass::Rejecting => self.rejecting += 1,
            NodeClass::Unknown => self.unknown += 1,
        }
        if class == NodeClass::Capable && is_1_28 {
            self.capable_1_28 += 1;
        }
        if windows {
            self.windows += 1;
        }
        if self.samples.iter().filter(|(_, c)| *c == class).count() < 3 {
            self.samples.push((name.to_string(), class));
        }
    }

    /// "3 capable, 1 rejecting (n4)" style text.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, class) in [
            (self.capable, NodeClass::Capable),
            (self.unaware, NodeClass::Unaware),
            (self.rejecting, NodeClass::Rejecting),
            (self.unknown, NodeClass::Unknown),
        ] {
            if n == 0 {
                continue;
            }
            let names: Vec<&str> = self
                .samples
                .iter()
                .filter(|(_, c)| *c == class)
                .map(|(s, _)| s.as_str())
                .collect();
            let more = if n > names.len() { ", ..." } else { "" };
            parts.push(format!("{n} {class} ({}{more})", names.join(", ")));
        }
        if parts.is_empty() {
            "no candidate nodes".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What the engine knows about the cluster. Implemented by [`StaticFacts`] (a facts file
/// or none) and by the live cache of the cluster adapter.
pub trait Facts {
    fn availability(&self) -> Availability;
    /// The API server's version (if known) and its `SidecarContainers` gate.
    fn api_server(&self) -> (Option<KubeVersion>, GateState);
    /// Whether the `label-nodes` controller's Lease is fresh; `None` when unknown.
    fn labeler_lease_fresh(&self) -> Option<bool>;
    /// Labels of a namespace, when known.
    fn namespace_labels(&self, namespace: &str) -> Option<Arc<BTreeMap<String, String>>>;
    /// The nodes the pod could land on, by class.
    fn candidates(&self, scheduling: &Scheduling) -> CandidateSummary;
    /// Changes whenever any fact that can change a decision changes, so that callers may
    /// cache decisions per generation. Constant facts keep the default.
    fn generation(&self) -> u64 {
        0
    }
    /// One line on where the facts stand, for readiness details and logs.
    fn describe(&self) -> String {
        match self.availability() {
            Availability::Known => "cluster facts known".into(),
            Availability::Absent => NO_FACTS.into(),
            Availability::Unsynced(why) => {
                format!(
                    "cluster facts unavailable ({why}): auto mode uses each profile's fallback (affinity and universal only while the labeler's Lease is fresh)"
                )
            }
        }
    }
}

/// Where a program that runs for long gets its facts from. Every decision takes one
/// [`snapshot`](Self::snapshot) and decides from it alone, so a change that lands while it
/// decides (a node update, the labeler's Lease) cannot give it answers from two states.
pub trait FactsSource: Send + Sync {
    /// The facts as they stand now, immutable. Cheap: a reference count, not a copy.
    fn snapshot(&self) -> Arc<dyn Facts + Send + Sync>;
}

/// Facts from a file never change: the snapshot is the facts themselves.
impl FactsSource for Arc<StaticFacts> {
    fn snapshot(&self) -> Arc<dyn Facts + Send + Sync> {
        self.clone()
    }
}

/// Facts from a file, or no facts at all.
#[derive(Debug, Clone, Default)]
pub struct StaticFacts {
    facts: Option<ClusterFacts>,
    index: Option<crate::nodeindex::NodeIndex>,
    api_version: Option<KubeVersion>,
    namespaces: BTreeMap<String, Arc<BTreeMap<String, String>>>,
}

impl StaticFacts {
    pub fn none() -> StaticFacts {
        StaticFacts::default()
    }

    pub fn new(facts: ClusterFacts) -> StaticFacts {
        let api_version = facts
            .api_server
            .version
            .as_deref()
            .and_then(KubeVersion::parse);
        let namespaces = facts
            .namespaces
            .iter()
            .map(|n| (n.name.clone(), Arc::new(n.labels.clone())))
            .collect();
        let index = Some(crate::nodeindex::NodeIndex::new(&facts.nodes));
        StaticFacts {
            facts: Some(facts),
            index,
            api_version,
            namespaces,
        }
    }

    pub fn facts(&self) -> Option<&ClusterFacts> {
        self.facts.as_ref()
    }
}

impl Facts for StaticFacts {
    fn availability(&self) -> Availability {
        if self.facts.is_some() {
            Availability::Known
        } else {
            Availability::Absent
        }
    }
    fn api_server(&self) -> (Option<KubeVersion>, GateState) {
        let gate = self
            .facts
            .as_ref()
            .map(|f| f.api_server.sidecar_containers)
            .unwrap_or_default();
        (self.api_version.clone(), gate)
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        self.facts.as_ref()?.labeler.as_ref().map(|l| l.lease_fresh)
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
}

// === Scheduling ===

/// The parts of a pod spec that decide where it can land.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scheduling {
    pub node_name: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity terms (ORed); empty means no required affinity.
    pub required_terms: Vec<NodeSelectorTerm>,
    pub tolerations: Vec<Toleration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorTerm {
    #[serde(default)]
    pub match_expressions: Vec<NodeSelectorRequirement>,
    #[serde(default)]
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toleration {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
}

impl NodeSelectorRequirement {
    fn matches(&self, value: Option<&str>) -> bool {
        let int = |s: &str| s.parse::<i64>().ok();
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            "Gt" | "Lt" => {
                let (Some(v), Some(bound)) = (
                    value.and_then(int),
                    self.values.first().and_then(|b| int(b)),
                ) else {
                    return false;
                };
                if self.operator == "Gt" {
                    v > bound
                } else {
                    v < bound
                }
            }
            _ => false,
        }
    }
}

impl NodeSelectorTerm {
    /// An empty term matches no node, as in Kubernetes.
    pub fn matches(&self, node: &NodeFacts) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        self.match_expressions
            .iter()
            .all(|r| r.matches(node.labels.get(r.key.as_str()).map(|v| &**v)))
            && self.match_fields.iter().all(|r| {
                // Only metadata.name is a supported field selector for nodes.
                r.key == "metadata.name" && r.matches(Some(&node.name))
            })
    }
}

impl Toleration {
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(effect) = self.effect.as_deref().filter(|e| !e.is_empty())
            && effect != taint.effect
        {
            return false;
        }
        let key = self.key.as_deref().unwrap_or("");
        match self.operator.as_deref().unwrap_or("Equal") {
            "Exists" => key.is_empty() || key == taint.key,
            _ => {
                key == taint.key
                    && self.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
            }
        }
    }
}

impl Scheduling {
    /// Whether the scheduler (or, with `nodeName`, the user) could place the pod on `node`.
    pub fn admits(&self, node: &NodeFacts) -> bool {
        if let Some(name) = &self.node_name {
            // A pod bound by name skips the scheduler: taints and selectors do not filter it.
            return *name == node.name;
        }
        if !self
            .node_selector
            .iter()
            .all(|(k, v)| node.labels.get(k.as_str()).is_some_and(|l| **l == *v))
        {
            return false;
        }
        if !self.required_terms.is_empty() && !self.required_terms.iter().any(|t| t.matches(node)) {
            return false;
        }
        let unschedulable = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: None,
            effect: "NoSchedule".into(),
        };
        let taints = node
            .taints
            .iter()
            .chain(node.unschedulable.then_some(&unschedulable));
        for taint in taints {
            if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                && !self.tolerations.iter().any(|t| t.tolerates(taint))
            {
                return false;
            }
        }
        true
    }

    /// Whether the pod asks for Windows nodes.
    pub fn wants_windows(&self) -> bool {
        self.node_selector
            .get("kubernetes.io/os")
            .is_some_and(|v| v == "windows")
    }
}

/// Whether a namespace selector matches, given the namespace's labels when known.
pub fn namespace_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<bool> {
    labels.map(|l| selector.matches(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, version: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            kubelet_version: version.into(),
            ..Default::default()
        }
    }

    fn term(json: &str) -> NodeSelectorTerm {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn node_name_binds_and_bypasses_taints() {
        let mut n = node("n1", "v1.30.0");
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: None,
            effect: "NoSchedule".into(),
        });
        let s = Scheduling {
            node_name: Some("n1".into()),
            ..Default::default()
        };
        assert!(s.admits(&n));
        assert!(!s.admits(&node("n2", "v1.30.0")));
        assert!(!Scheduling::default().admits(&n));
    }

    #[test]
    fn node_selector_and_affinity_operators() {
        let mut n = node("n1", "v1.30.0");
        n.labels.insert("pool".into(), "gpu".into());
        n.labels.insert("cores".into(), "16".into());
        let mut s = Scheduling::default();
        s.node_selector.insert("pool".into(), "gpu".into());
        assert!(s.admits(&n));
        s.required_terms = vec![term(
            r#"{"matchExpressions":[{"key":"cores","operator":"Gt","values":["8"]}]}"#,
        )];
        assert!(s.admits(&n));
        s.required_terms = vec![term(
            r#"{"matchExpressions":[{"key":"cores","operator":"Lt","values":["8"]}]}"#,
        )];
        assert!(!s.admits(&n));
        // Terms are ORed.
        s.required_terms.push(term(
            r#"{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}"#,
        ));
        assert!(s.admits(&n));
        // An empty term matches nothing.
        s.required_terms = vec![NodeSelectorTerm::default()];
        assert!(!s.admits(&n));
        s.required_terms = vec![term(
            r#"{"matchExpressions":[{"key":"zone","operator":"DoesNotExist"}]}"#,
        )];
        assert!(s.admits(&n));
    }

    #[test]
    fn taints_and_tolerations() {
        let mut n = node("n1", "v1.30.0");
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: Some("db".into()),
            effect: "NoSchedule".into(),
        });
        n.taints.push(Taint {
            key: "soft".into(),
            value: None,
            effect: "PreferNoSchedule".into(),
        });
        let mut s = Scheduling::default();
        assert!(!s.admits(&n));
        s.tolerations.push(Toleration {
            key: Some("dedicated".into()),
            value: Some("web".into()),
            ..Default::default()
        });
        assert!(!s.admits(&n));
        s.tolerations.push(Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        });
        assert!(s.admits(&n));
        let everything = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        let mut cordoned = node("n2", "v1.30.0");
        cordoned.unschedulable = true;
        assert!(!Scheduling::default().admits(&cordoned));
        assert!(
            Scheduling {
                tolerations: vec![everything],
                ..Default::default()
            }
            .admits(&cordoned)
        );
    }

    #[test]
    fn static_facts_count_candidates() {
        let mut facts = ClusterFacts {
            api_version: FACTS_API_VERSION.into(),
            kind: FACTS_KIND.into(),
            ..Default::default()
        };
        facts.nodes = vec![
            node("a", "v1.30.1"),
            node("b", "v1.28.3"),
            node("c", "v1.27.0"),
            node("d", "bogus"),
        ];
        let f = StaticFacts::new(facts);
        let c = f.candidates(&Scheduling::default());
        assert_eq!((c.capable, c.rejecting, c.unaware, c.unknown), (1, 1, 1, 1));
        assert_eq!(c.total(), 4);
        assert!(c.describe().contains("1 rejecting (b)"), "{}", c.describe());
        assert_eq!(StaticFacts::none().availability(), Availability::Absent);
    }
}
