//! The nodes: read (the Node objects, then every kubelet's gate), then judged one by one
//! into a [`NodeView`] that the per-node checks read, the table's rows, the counts by
//! class and the nodes of the facts file.

use super::grouped::Grouped;
use super::kubelet_metrics::{NodeGate, read_gates};
use super::node_gate::{self, Unread};
use super::{ClusterOptions, known_bugs, node_class, node_label, skew};
use crate::conn::{DoctorError, Session, list_all};
use crate::report::Finding;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::Serialize;
use sidecar_kit_cluster::live::node_facts;
use sidecar_kit_core::facts::NodeFacts;
use sidecar_kit_core::status::NODE_LABEL;
use sidecar_kit_core::version::{GateState, KubeVersion, NodeClass, classify_node};
use std::time::Duration;

/// What was read of one node.
#[derive(Debug, Clone)]
pub struct NodeRead {
    /// From the Node object (the gate from the labeler's annotation, if any).
    pub facts: NodeFacts,
    /// Its `sidecar-kit` node label.
    pub label: Option<String>,
    /// What its kubelet's metrics said.
    pub gate: NodeGate,
}

/// Lists the nodes (sorted by name) and reads every kubelet's gate.
pub async fn read(s: &Session, o: &ClusterOptions) -> Result<Vec<NodeRead>, DoctorError> {
    let nodes_api: Api<Node> = Api::all(s.client.clone());
    let mut nodes = list_all(&nodes_api, &ListParams::default())
        .await
        .map_err(|p| match p {
            p if p.is_forbidden() => DoctorError::Cluster(format!(
                "cannot list nodes: {} (grant list on nodes)",
                p.message()
            )),
            p => DoctorError::Cluster(format!("cannot list nodes: {}", p.message())),
        })?;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let facts: Vec<NodeFacts> = nodes.iter().map(node_facts).collect();
    let labels: Vec<Option<String>> = nodes
        .iter()
        .map(|n| {
            n.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NODE_LABEL).cloned())
        })
        .collect();
    drop(nodes);
    let names: Vec<&str> = facts.iter().map(|n| n.name.as_str()).collect();
    let gates = read_gates(
        &s.proxy_client,
        &names,
        o.concurrency,
        o.node_timeout,
        o.progress,
    )
    .await;
    Ok(facts
        .into_iter()
        .zip(labels)
        .zip(gates)
        .map(|((facts, label), gate)| NodeRead { facts, label, gate })
        .collect())
}

/// One node as the checks read it.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    /// Its facts, the gate as judged.
    pub facts: &'a NodeFacts,
    /// The kubelet's version parsed; None when it cannot be.
    pub version: Option<KubeVersion>,
    /// `metrics`, `labeler` (the labeler's annotation) or `version`.
    pub gate_source: &'static str,
    pub class: NodeClass,
    /// What a 1.28 kubelet gets wrong, for one.
    pub warn_1_28: Option<&'static str>,
    pub label: Option<&'a str>,
}

impl NodeView<'_> {
    pub fn name(&self) -> &str {
        &self.facts.name
    }

    pub fn kubelet_version(&self) -> &str {
        &self.facts.kubelet_version
    }
}

/// One node as the report shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub name: String,
    pub kubelet_version: String,
    pub gate: GateState,
    /// `metrics`, `labeler` (the labeler's annotation) or `version`.
    pub gate_source: &'static str,
    pub class: NodeClass,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Counts of nodes by class.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub capable: usize,
    pub unaware: usize,
    pub rejecting: usize,
    pub unknown: usize,
}

impl Counts {
    fn add(&mut self, c: NodeClass) {
        match c {
            NodeClass::Capable => self.capable += 1,
            NodeClass::Unaware => self.unaware += 1,
            NodeClass::Rejecting => self.rejecting += 1,
            NodeClass::Unknown => self.unknown += 1,
        }
    }
    pub fn total(&self) -> usize {
        self.capable + self.unaware + self.rejecting + self.unknown
    }
}

/// The nodes judged.
#[derive(Debug, Default)]
pub struct Nodes {
    pub rows: Vec<NodeRow>,
    pub counts: Counts,
    /// As the facts file carries them.
    pub facts: Vec<NodeFacts>,
    /// The per-node findings, grouped by check and message.
    pub findings: Vec<Finding>,
    /// Kubelets whose metrics were not read, and why.
    pub unread: Unread,
}

/// Judges every node against the API server's version (`api`; None when unknown):
/// the gate and its source, the class, and the per-node checks.
pub fn judge(api: Option<&KubeVersion>, reads: Vec<NodeRead>, node_timeout: Duration) -> Nodes {
    let mut out = Nodes {
        facts: Vec::with_capacity(reads.len()),
        ..Nodes::default()
    };
    let mut grouped = Grouped::default();
    for NodeRead {
        mut facts,
        label,
        gate,
    } in reads
    {
        let version = KubeVersion::parse(&facts.kubelet_version);
        let mut note = Vec::new();
        let (gate_source, gate_note) = node_gate::resolve(
            &mut facts,
            version.as_ref(),
            &gate,
            node_timeout,
            &mut out.unread,
        );
        note.extend(gate_note);
        let (class, warn_1_28) = classify_node(&facts.kubelet_version, facts.sidecar_containers);
        out.counts.add(class);
        let node = NodeView {
            facts: &facts,
            version,
            gate_source,
            class,
            warn_1_28,
            label: label.as_deref(),
        };
        note.extend(checks(&node, api, &mut grouped));
        out.rows.push(NodeRow {
            name: facts.name.clone(),
            kubelet_version: facts.kubelet_version.clone(),
            gate: facts.sidecar_containers,
            gate_source,
            class,
            note: note.join("; "),
        });
        out.facts.push(facts);
    }
    out.findings = grouped.into_findings();
    out
}

/// The per-node checks; returns the notes for the node's row.
fn checks(node: &NodeView, api: Option<&KubeVersion>, grouped: &mut Grouped) -> Vec<String> {
    let mut note = Vec::new();
    node_class::check(node, grouped);
    if let (Some(api), Some(k)) = (api, &node.version) {
        note.extend(skew::check(node, api, k, grouped));
        if node.class == NodeClass::Capable {
            note.extend(known_bugs::kubelet_check(node, k, grouped));
        }
    }
    node_label::check(node, grouped);
    note
}
