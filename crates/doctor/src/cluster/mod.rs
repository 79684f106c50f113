//! `doctor cluster`: what the API server and every kubelet do with a native sidecar.
//!
//! The API server's version and `SidecarContainers` gate (from `/metrics`; inferred from the
//! version where that is forbidden or the line is gone, and said so), every node's kubelet
//! version and, where `nodes/proxy` is permitted, its gate from the kubelet's metrics
//! (bounded concurrency, a timeout per node, streamed and dropped at the gate line), the
//! version skew, kubelet patch releases with known native-sidecar bugs, the node classes,
//! and what they mean for each injection mode. The same data is the `ClusterFacts` file
//! that `inject` and `explain` read with `--facts`.

use crate::conn::{ApiProblem, DoctorError, REQUEST_TIMEOUT, Session, bounded, list_all};
use crate::progress::Progress;
use crate::report::{BlindSpot, Finding, Report, Severity};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams};
use serde::Serialize;
use sidecar_kit_cluster::ClusterError;
use sidecar_kit_cluster::apiserver::metrics_gate;
use sidecar_kit_cluster::live::{lease_fresh, node_facts};
use sidecar_kit_core::facts::{
    ApiServerFacts, ClusterFacts, FACTS_API_VERSION, FACTS_KIND, LabelerFacts, NamespaceFacts,
    NodeFacts,
};
use sidecar_kit_core::labeling::{LEASE_NAME, LEASE_NAMESPACE, gate_from_metrics};
use sidecar_kit_core::status::NODE_LABEL;
use sidecar_kit_core::version::{
    FieldKept, GateState, KubeVersion, NodeClass, api_server_keeps_field, classify_node,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Flags of `doctor cluster`.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Node-proxy requests in flight at once.
    pub concurrency: usize,
    /// Time allowed for one kubelet's metrics, headers to gate line.
    pub node_timeout: Duration,
    /// Namespace and name of the labeler's Lease.
    pub labeler_lease: Option<(String, String)>,
    /// Draw a progress bar (only ever on a terminal).
    pub progress: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            concurrency: 32,
            node_timeout: Duration::from_secs(2),
            labeler_lease: Some((LEASE_NAMESPACE.into(), LEASE_NAME.into())),
            progress: true,
        }
    }
}

/// The report and the facts file of one run.
pub struct ClusterResult {
    pub report: Report,
    pub facts: ClusterFacts,
}

// === known bugs ===

/// Which component a known bug lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Kubelet,
    ApiServer,
}

/// A patch-release range of a component with a known native-sidecar bug: every
/// `1.MINOR.x` with `x < fixed_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownBug {
    pub component: Component,
    pub minor: u32,
    pub fixed_in: u32,
    pub what: &'static str,
    /// Where it is recorded upstream.
    pub source: &'static str,
}

/// Upstream bugs of native sidecars fixed in patch releases, from the Kubernetes
/// changelogs (each row names the pull request and the release that carries the fix).
/// Vendor builds (`-eks-`, `-gke.`, `+k3s`) may carry a fix earlier: their notes decide.
pub const KNOWN_BUGS: &[KnownBug] = &[
    KnownBug {
        component: Component::Kubelet,
        minor: 28,
        fixed_in: 2,
        what: "restarts init containers in the wrong order relative to regular containers (a 1.28 regression)",
        source: "kubernetes/kubernetes#120440 (cherry-pick of #120281), CHANGELOG-1.28: v1.28.2",
    },
    KnownBug {
        component: Component::ApiServer,
        minor: 28,
        fixed_in: 8,
        what: "refuses a sidecar's status going from terminated back to running in pods with restartPolicy Never or OnFailure (Jobs): the status stays stuck at the first exit",
        source: "kubernetes/kubernetes#123710 (cherry-pick of #123323), CHANGELOG-1.28: v1.28.8",
    },
    KnownBug {
        component: Component::ApiServer,
        minor: 29,
        fixed_in: 3,
        what: "refuses a sidecar's status going from terminated back to running in pods with restartPolicy Never or OnFailure (Jobs): the status stays stuck at the first exit",
        source: "kubernetes/kubernetes#123709 (cherry-pick of #123323), CHANGELOG-1.29: v1.29.3",
    },
    KnownBug {
        component: Component::Kubelet,
        minor: 29,
        fixed_in: 8,
        what: "sidecars may not terminate gracefully when the pod is deleted before it has initialized",
        source: "kubernetes/kubernetes#126332, CHANGELOG-1.29: v1.29.8",
    },
    KnownBug {
        component: Component::Kubelet,
        minor: 30,
        fixed_in: 4,
        what: "sidecars may not terminate gracefully when the pod is deleted before it has initialized",
        source: "kubernetes/kubernetes#126331, CHANGELOG-1.30: v1.30.4",
    },
    KnownBug {
        component: Component::Kubelet,
        minor: 29,
        fixed_in: 9,
        what: "init containers may never start after a temporary container runtime failure (a regression of 1.29+ configurations with SidecarContainers on)",
        source: "kubernetes/kubernetes#127214 (cherry-pick of #126543), CHANGELOG-1.29: v1.29.9",
    },
    KnownBug {
        component: Component::Kubelet,
        minor: 30,
        fixed_in: 5,
        what: "init containers may never start after a temporary container runtime failure (a regression of 1.29+ configurations with SidecarContainers on)",
        source: "kubernetes/kubernetes#127213 (cherry-pick of #126543), CHANGELOG-1.30: v1.30.5",
    },
    KnownBug {
        component: Component::Kubelet,
        minor: 31,
        fixed_in: 1,
        what: "init containers may never start after a temporary container runtime failure (a regression of 1.29+ configurations with SidecarContainers on)",
        source: "kubernetes/kubernetes#127212 (cherry-pick of #126543), CHANGELOG-1.31: v1.31.1",
    },
];

/// The known bugs of one component at one version.
pub fn known_bugs(component: Component, v: &KubeVersion) -> Vec<&'static KnownBug> {
    KNOWN_BUGS
        .iter()
        .filter(|b| {
            b.component == component && v.major == 1 && v.minor == b.minor && v.patch < b.fixed_in
        })
        .collect()
}

// === version skew ===

/// The skew between a kubelet and the API server, if outside the policy: a kubelet may be
/// up to three minors older than the API server since 1.28 (two before), never newer.
pub fn skew(api: &KubeVersion, kubelet: &KubeVersion) -> Option<(Severity, String)> {
    if api.major != kubelet.major {
        return None;
    }
    let allowed = if api.minor >= 28 { 3 } else { 2 };
    if kubelet.minor > api.minor {
        return Some((
            Severity::Warning,
            format!(
                "kubelet 1.{} is newer than the API server 1.{}: kubelets must not be newer than the API server",
                kubelet.minor, api.minor
            ),
        ));
    }
    let behind = api.minor - kubelet.minor;
    (behind > allowed).then(|| {
        (
            Severity::Error,
            format!(
                "kubelet 1.{} is {behind} minor versions older than the API server 1.{}: outside the supported skew of {allowed}",
                kubelet.minor, api.minor
            ),
        )
    })
}

// === reading kubelets ===

/// What one kubelet's metrics said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeGate {
    Metrics(GateState),
    /// The exposition has no SidecarContainers line (GA and removed, or before 1.28).
    NoLine,
    Forbidden,
    TimedOut,
    Failed(String),
}

fn short_error(e: &ClusterError) -> String {
    let s = e.to_string();
    // `GET /api/...: ApiError: <message> (<debug>)`: keep the message.
    let msg = match s.split_once("ApiError: ") {
        Some((_, rest)) => rest.split(" (").next().unwrap_or(rest).to_string(),
        None => s.rsplit(": ").next().unwrap_or(&s).to_string(),
    };
    msg.trim().to_string()
}

/// Reads one kubelet's gate through the node proxy, within `timeout` from the request to
/// the gate line (the rest of the exposition is never read).
pub async fn node_gate(client: &kube::Client, node: &str, timeout: Duration) -> NodeGate {
    let path = format!("/api/v1/nodes/{node}/proxy/metrics");
    // The outer timeout is the one that counts; the inner one only backs it up.
    match tokio::time::timeout(timeout, metrics_gate(client, &path, timeout * 2)).await {
        Err(_) => NodeGate::TimedOut,
        Ok(Ok(Some(g))) => NodeGate::Metrics(g),
        Ok(Ok(None)) => NodeGate::NoLine,
        Ok(Err(ClusterError::Forbidden(_))) => NodeGate::Forbidden,
        Ok(Err(e)) => NodeGate::Failed(short_error(&e)),
    }
}

// === the report ===

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

/// What each injection mode does on this cluster, for a pod that may land on any node.
pub fn mode_meanings(
    c: &Counts,
    kept: &FieldKept,
    lease_fresh: Option<bool>,
) -> Vec<(String, String)> {
    let m = |a: &str, b: String| (a.to_string(), b);
    if kept.is_no() {
        return vec![
            m("native", "becomes legacy: the API server drops restartPolicy, so no pod can carry a native sidecar".into()),
            m("affinity", "becomes legacy, for the same reason".into()),
            m("universal", "works on every node, always through the legacy copy (injected without the startup probe)".into()),
            m("legacy", "works on every node; no start or stop order, and Job pods need Job-safe wiring to complete".into()),
            m("auto", "legacy".into()),
        ];
    }
    let total = c.total();
    let native = if total == 0 {
        "no nodes".to_string()
    } else if c.capable == total {
        "works on every node".to_string()
    } else {
        let mut parts = vec![format!("runs on the {} capable node(s)", c.capable)];
        if c.unaware > 0 {
            parts.push(format!(
                "hangs in Init on the {} unaware node(s) (the sidecar runs as a plain init container)",
                c.unaware
            ));
        }
        if c.rejecting > 0 {
            parts.push(format!(
                "fails on the {} rejecting node(s) (InitContainerRestartPolicyForbidden)",
                c.rejecting
            ));
        }
        if c.unknown > 0 {
            parts.push(format!(
                "is unpredictable on the {} unknown node(s)",
                c.unknown
            ));
        }
        parts.join("; ")
    };
    let labeler = match lease_fresh {
        Some(true) => "",
        Some(false) => " (the labeler's Lease is not fresh: node labels may be missing or stale)",
        None => " (the labeler's Lease was not read)",
    };
    let affinity = if c.capable == 0 {
        format!("pods stay Pending: no capable node carries {NODE_LABEL}=true")
    } else {
        format!(
            "native, steered onto the {} capable node(s) by the label {NODE_LABEL}=true{labeler}",
            c.capable
        )
    };
    let universal = if c.rejecting == 0 {
        "works on every node: native on capable nodes, the legacy copy elsewhere".to_string()
    } else {
        format!(
            "works on every node but the {} rejecting one(s), which node affinity keeps it off{labeler}",
            c.rejecting
        )
    };
    let auto = if total > 0 && c.capable == total {
        "native (every node is capable)".to_string()
    } else if c.capable == 0 {
        "legacy (no node is capable)".to_string()
    } else if lease_fresh == Some(true) {
        "the profile's fallback (affinity, universal or legacy; default legacy): the nodes are mixed".to_string()
    } else {
        "legacy: the nodes are mixed and the labeler's Lease is not fresh, so the affinity and universal fallbacks are not used".to_string()
    };
    vec![
        m("native", native),
        m("affinity", affinity),
        m("universal", universal),
        m("legacy", "works on every node; no start or stop order, and Job pods need Job-safe wiring to complete".into()),
        m("auto", auto),
    ]
}

/// Per-node issues, grouped into one finding per check and message.
/// (severity, fix, nodes) per (check, message).
type Group = (Severity, Option<String>, Vec<String>);

#[derive(Default)]
struct Grouped {
    groups: BTreeMap<(String, String), Group>,
}

impl Grouped {
    fn add(
        &mut self,
        check: &str,
        sev: Severity,
        node: &str,
        message: String,
        fix: Option<String>,
    ) {
        let e = self
            .groups
            .entry((check.to_string(), message))
            .or_insert_with(|| (sev, fix, Vec::new()));
        e.2.push(node.to_string());
    }

    fn into_findings(self) -> Vec<Finding> {
        self.groups
            .into_iter()
            .map(|((check, message), (sev, fix, mut nodes))| {
                nodes.sort();
                let object = if nodes.len() == 1 {
                    format!("Node {}", nodes[0])
                } else {
                    let shown: Vec<&str> = nodes.iter().take(5).map(String::as_str).collect();
                    let more = if nodes.len() > 5 { ", ..." } else { "" };
                    format!("{} nodes: {}{more}", nodes.len(), shown.join(", "))
                };
                Finding::new(&check, sev, Some(object), message, fix)
            })
            .collect()
    }
}

/// Runs `doctor cluster`.
pub async fn run(s: &Session, o: &ClusterOptions) -> Result<ClusterResult, DoctorError> {
    let mut report = Report::new("doctor cluster");
    let api_raw = s.version.git_version.clone();
    let api_version = KubeVersion::parse(&api_raw);

    // --- the API server ---
    let (api_gate, api_source) = match metrics_gate(&s.client, "/metrics", REQUEST_TIMEOUT).await {
        Ok(Some(g)) => (g, "/metrics".to_string()),
        Ok(None) => (
            gate_from_metrics(&api_raw, None),
            "the version: /metrics has no SidecarContainers line".to_string(),
        ),
        Err(ClusterError::Forbidden(_)) => {
            report.blind_spots.push(BlindSpot {
                what: "the API server's SidecarContainers gate (/metrics)".into(),
                permission: "get on the non-resource URL /metrics".into(),
            });
            (
                GateState::Unknown,
                "the version: /metrics is forbidden".to_string(),
            )
        }
        Err(e) => (
            GateState::Unknown,
            format!("the version: /metrics is unreadable ({})", short_error(&e)),
        ),
    };
    let kept = api_server_keeps_field(api_version.as_ref(), api_gate);
    if api_source != "/metrics" {
        report.findings.push(Finding::new(
            "cluster.apiserver-gate-inferred",
            Severity::Info,
            Some("API server".into()),
            format!(
                "SidecarContainers gate not read from /metrics, judged from {api_source}; {}",
                kept.reason()
            ),
            None,
        ));
    }
    match &kept {
        FieldKept::No(reason) => report.findings.push(Finding::new(
            "cluster.apiserver-drops-restart-policy",
            Severity::Error,
            Some("API server".into()),
            format!(
                "{reason}: native sidecars are impossible on this cluster; native and affinity fall back to legacy, universal runs without its startup probe"
            ),
            Some(
                "turn the SidecarContainers feature gate on for the API server (--feature-gates=SidecarContainers=true), or upgrade it to 1.29 or later".into(),
            ),
        )),
        FieldKept::Unknown(reason) => report.findings.push(Finding::new(
            "cluster.apiserver-version-unknown",
            Severity::Warning,
            Some("API server".into()),
            format!("{reason} ({api_raw:?}): cannot tell whether it keeps restartPolicy"),
            None,
        )),
        FieldKept::Yes(_) => {}
    }
    if let Some(v) = &api_version {
        for b in known_bugs(Component::ApiServer, v) {
            report.findings.push(Finding::new(
                "cluster.known-sidecar-bug",
                Severity::Warning,
                Some("API server".into()),
                format!("API server {api_raw} {} (source: {})", b.what, b.source),
                Some(format!("upgrade to 1.{}.{} or later", b.minor, b.fixed_in)),
            ));
        }
    }

    // --- nodes ---
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
    let facts_nodes: Vec<NodeFacts> = nodes.iter().map(node_facts).collect();
    let node_labels: Vec<Option<String>> = nodes
        .iter()
        .map(|n| {
            n.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NODE_LABEL).cloned())
        })
        .collect();
    drop(nodes);

    let progress = Progress::new("kubelet metrics", facts_nodes.len(), o.progress);
    let concurrency = o.concurrency.max(1);
    // Unordered: a silent kubelet holds one slot for its timeout, never the queue (an
    // ordered buffer would stop starting requests behind it).
    let mut indexed: Vec<(usize, NodeGate)> =
        futures::stream::iter(facts_nodes.iter().enumerate().map(|(i, n)| {
            let client = s.proxy_client.clone();
            let name = n.name.clone();
            let progress = &progress;
            async move {
                let g = node_gate(&client, &name, o.node_timeout).await;
                progress.inc();
                (i, g)
            }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    let gates: Vec<NodeGate> = indexed.into_iter().map(|(_, g)| g).collect();
    progress.finish();

    let mut rows = Vec::new();
    let mut counts = Counts::default();
    let mut grouped = Grouped::default();
    let (mut forbidden, mut timed_out, mut failed) = (0usize, 0usize, 0usize);
    let mut out_nodes = Vec::with_capacity(facts_nodes.len());
    for ((mut nf, gate), label) in facts_nodes.into_iter().zip(gates).zip(node_labels) {
        let parsed = KubeVersion::parse(&nf.kubelet_version);
        let mut note = Vec::new();
        let source = match &gate {
            NodeGate::Metrics(g) => {
                nf.sidecar_containers = *g;
                "metrics"
            }
            NodeGate::NoLine => {
                nf.sidecar_containers = gate_from_metrics(&nf.kubelet_version, None);
                // Past GA the line is gone and the gate locked on; before 1.28 the gate
                // did not exist: nothing to say of either.
                let gate_existed = parsed.as_ref().is_none_or(|v| v.at_least(1, 28));
                if gate_existed && nf.sidecar_containers == GateState::Unknown {
                    note.push("no gate line in the kubelet's metrics".to_string());
                }
                "version"
            }
            other => {
                match other {
                    NodeGate::Forbidden => {
                        forbidden += 1;
                        note.push("metrics: forbidden".to_string());
                    }
                    NodeGate::TimedOut => {
                        timed_out += 1;
                        note.push(format!(
                            "metrics: no answer within {}s",
                            o.node_timeout.as_secs_f64()
                        ));
                    }
                    NodeGate::Failed(m) => {
                        failed += 1;
                        note.push(format!("metrics: {m}"));
                    }
                    _ => {}
                }
                // The labeler's annotation (read from the kubelet's metrics by the
                // label-nodes controller) is the next best source.
                if nf.sidecar_containers == GateState::Unknown {
                    "version"
                } else {
                    "labeler"
                }
            }
        };
        let (class, warn_1_28) = classify_node(&nf.kubelet_version, nf.sidecar_containers);
        counts.add(class);
        let name = nf.name.clone();
        match class {
            NodeClass::Rejecting => grouped.add(
                "cluster.node-rejects-native-sidecars",
                Severity::Error,
                &name,
                format!(
                    "kubelet {} knows restartPolicy with the SidecarContainers gate {} (from {source}): it refuses pods with native sidecars (phase Failed, InitContainerRestartPolicyForbidden)",
                    nf.kubelet_version,
                    if nf.sidecar_containers == GateState::Disabled { "off" } else { "off by default" }
                ),
                Some("turn the gate on for these kubelets (--feature-gates=SidecarContainers=true) or upgrade them; meanwhile inject in legacy, universal or affinity mode".into()),
            ),
            NodeClass::Unaware => grouped.add(
                "cluster.node-unaware-of-native-sidecars",
                Severity::Warning,
                &name,
                format!(
                    "kubelet {} is older than 1.28: it ignores restartPolicy and runs a native sidecar as a plain init container, so the pod hangs in Init",
                    nf.kubelet_version
                ),
                Some("upgrade these kubelets to 1.29 or later; meanwhile inject in legacy, universal or affinity mode".into()),
            ),
            NodeClass::Unknown => grouped.add(
                "cluster.node-class-unknown",
                Severity::Warning,
                &name,
                format!(
                    "kubelet version {:?} cannot be parsed: what the node does with a native sidecar is unknown",
                    nf.kubelet_version
                ),
                None,
            ),
            NodeClass::Capable => {}
        }
        if let Some(w) = warn_1_28 {
            grouped.add(
                "cluster.node-1-28-termination-order",
                Severity::Warning,
                &name,
                format!("kubelet {}: {w}", nf.kubelet_version),
                Some("upgrade to 1.29 or later before relying on sidecar termination order".into()),
            );
        }
        if let (Some(api), Some(k)) = (&api_version, &parsed) {
            if let Some((sev, msg)) = skew(api, k) {
                grouped.add(
                    "cluster.version-skew",
                    sev,
                    &name,
                    msg,
                    Some(
                        "upgrade these kubelets (or the API server) to within the supported skew"
                            .into(),
                    ),
                );
                note.push("outside the version skew".into());
            }
            if class == NodeClass::Capable {
                for b in known_bugs(Component::Kubelet, k) {
                    grouped.add(
                        "cluster.known-sidecar-bug",
                        Severity::Warning,
                        &name,
                        format!(
                            "kubelet {} {} (source: {})",
                            nf.kubelet_version, b.what, b.source
                        ),
                        Some(format!("upgrade to 1.{}.{} or later", b.minor, b.fixed_in)),
                    );
                    note.push(format!("known bug, fixed in 1.{}.{}", b.minor, b.fixed_in));
                }
            }
        }
        if let Some(l) = &label {
            let want = class.label_value();
            if want != Some(l.as_str()) && source != "version" {
                grouped.add(
                    "cluster.node-label-stale",
                    Severity::Warning,
                    &name,
                    format!(
                        "{NODE_LABEL}={l} but the node is {class} (from {source}): affinity and universal pods are steered by a wrong label"
                    ),
                    Some("check that the label-nodes controller runs and can read kubelet metrics".into()),
                );
            }
        }
        rows.push(NodeRow {
            name: name.clone(),
            kubelet_version: nf.kubelet_version.clone(),
            gate: nf.sidecar_containers,
            gate_source: source,
            class,
            note: note.join("; "),
        });
        out_nodes.push(nf);
    }
    report.findings.extend(grouped.into_findings());
    if forbidden > 0 {
        report.blind_spots.push(BlindSpot {
            what: format!(
                "the SidecarContainers gate of {forbidden} kubelet(s) (judged from their versions instead)"
            ),
            permission: "get on nodes/proxy".into(),
        });
    }
    if timed_out + failed > 0 {
        report.findings.push(Finding::new(
            "cluster.node-metrics-unreadable",
            Severity::Info,
            Some(format!("{} node(s)", timed_out + failed)),
            format!(
                "{timed_out} kubelet(s) did not answer within {}s and {failed} answered with an error: their gate is judged from the version (or the labeler's annotation)",
                o.node_timeout.as_secs_f64()
            ),
            Some("raise --node-timeout, or check the nodes' kubelets".into()),
        ));
    }

    // --- the labeler ---
    let mut lease_state = None;
    if let Some((ns, name)) = &o.labeler_lease {
        let api: Api<Lease> = Api::namespaced(s.client.clone(), ns);
        match bounded(api.get_opt(name)).await {
            Ok(Some(l)) => {
                lease_state = Some(lease_fresh(&l, k8s_openapi::jiff::Timestamp::now()));
            }
            Ok(None) => lease_state = Some(false),
            Err(p) if p.is_forbidden() => report.blind_spots.push(BlindSpot {
                what: format!(
                    "the labeler's Lease {ns}/{name} (whether auto may use affinity and universal)"
                ),
                permission: format!("get on leases.coordination.k8s.io in namespace {ns}"),
            }),
            Err(ApiProblem::NotFound(_)) => lease_state = Some(false),
            Err(p) => {
                return Err(DoctorError::Cluster(format!(
                    "cannot read the Lease {ns}/{name}: {}",
                    p.message()
                )));
            }
        }
        if lease_state == Some(false) && counts.capable > 0 && counts.capable < counts.total() {
            report.findings.push(Finding::new(
                "cluster.labeler-not-running",
                Severity::Info,
                Some(format!("Lease {ns}/{name}")),
                "the label-nodes Lease is absent or stale: on these mixed nodes, auto falls back to legacy instead of affinity or universal",
                Some("run sidecar-kit label-nodes (deployed with the webhook)".into()),
            ));
        }
    }

    // --- namespaces (for namespaceSelector in the facts file) ---
    let ns_api: Api<Namespace> = Api::all(s.client.clone());
    let namespaces = match list_all(&ns_api, &ListParams::default()).await {
        Ok(list) => {
            let mut v: Vec<NamespaceFacts> = list
                .into_iter()
                .map(|n| NamespaceFacts {
                    name: n.metadata.name.unwrap_or_default(),
                    labels: n.metadata.labels.unwrap_or_default(),
                })
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        }
        Err(p) if p.is_forbidden() => {
            report.blind_spots.push(BlindSpot {
                what: "namespace labels (left out of the facts file: namespaceSelectors cannot be judged offline)".into(),
                permission: "list on namespaces".into(),
            });
            Vec::new()
        }
        Err(p) => {
            return Err(DoctorError::Cluster(format!(
                "cannot list namespaces: {}",
                p.message()
            )));
        }
    };

    // --- summary ---
    let api_line = format!(
        "API server {api_raw}: SidecarContainers {} (from {api_source}), so it {}",
        api_gate,
        match &kept {
            FieldKept::Yes(_) => "keeps restartPolicy on init containers",
            FieldKept::No(_) => "DROPS restartPolicy on init containers",
            FieldKept::Unknown(_) => "may or may not keep restartPolicy on init containers",
        }
    );
    report.summary.push(api_line);
    report.summary.push(format!(
        "{} node(s): {} capable, {} unaware (older than 1.28), {} rejecting (field known, gate off), {} unknown",
        counts.total(),
        counts.capable,
        counts.unaware,
        counts.rejecting,
        counts.unknown
    ));
    let meanings = mode_meanings(&counts, &kept, lease_state);
    for (mode, what) in &meanings {
        report.summary.push(format!("mode {mode}: {what}"));
    }
    report.table.push(
        ["NODE", "KUBELET", "GATE", "FROM", "CLASS", "NOTE"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    for r in &rows {
        report.table.push(vec![
            r.name.clone(),
            r.kubelet_version.clone(),
            r.gate.to_string(),
            r.gate_source.to_string(),
            r.class.to_string(),
            r.note.clone(),
        ]);
    }
    report.data = serde_json::json!({
        "apiServer": {
            "version": api_raw,
            "sidecarContainers": api_gate,
            "from": api_source,
            "keepsRestartPolicy": match &kept { FieldKept::Yes(_) => "yes", FieldKept::No(_) => "no", FieldKept::Unknown(_) => "unknown" },
            "reason": kept.reason(),
        },
        "labeler": lease_state.map(|f| serde_json::json!({"leaseFresh": f})),
        "counts": counts,
        "modes": meanings.iter().map(|(m, w)| serde_json::json!({"mode": m, "effect": w})).collect::<Vec<_>>(),
        "nodes": rows,
        "knownBugs": KNOWN_BUGS,
    });
    report.sorted();

    let facts = ClusterFacts {
        api_version: FACTS_API_VERSION.into(),
        kind: FACTS_KIND.into(),
        api_server: ApiServerFacts {
            version: Some(api_raw),
            sidecar_containers: api_gate,
        },
        labeler: lease_state.map(|f| LabelerFacts { lease_fresh: f }),
        nodes: out_nodes,
        namespaces,
    };
    Ok(ClusterResult { report, facts })
}

/// The facts file as YAML, with a header that says where it came from.
pub fn facts_yaml(facts: &ClusterFacts) -> Result<String, DoctorError> {
    let body = serde_saphyr::to_string(facts)
        .map_err(|e| DoctorError::Runtime(format!("cannot write the facts: {e}")))?;
    Ok(format!(
        "# Written by `sidecar-kit doctor cluster -o facts`; read by `inject` and `explain --facts`.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        KubeVersion::parse(s).unwrap()
    }

    #[test]
    fn skew_follows_the_policy() {
        assert!(skew(&v("v1.31.0"), &v("v1.28.3")).is_none());
        let (sev, msg) = skew(&v("v1.31.0"), &v("v1.27.3")).unwrap();
        assert_eq!(sev, Severity::Error);
        assert!(msg.contains("4 minor versions older"), "{msg}");
        // Before 1.28 the policy allowed two minors.
        assert_eq!(
            skew(&v("v1.27.0"), &v("v1.24.1")).unwrap().0,
            Severity::Error
        );
        assert!(skew(&v("v1.27.0"), &v("v1.25.1")).is_none());
        assert_eq!(
            skew(&v("v1.29.0"), &v("v1.30.1")).unwrap().0,
            Severity::Warning
        );
    }

    #[test]
    fn known_bugs_cover_patch_ranges() {
        assert_eq!(known_bugs(Component::Kubelet, &v("v1.29.3")).len(), 2);
        assert_eq!(known_bugs(Component::Kubelet, &v("v1.29.9")).len(), 0);
        assert_eq!(known_bugs(Component::Kubelet, &v("v1.30.4-eks-1")).len(), 1);
        assert_eq!(known_bugs(Component::Kubelet, &v("v1.31.0")).len(), 1);
        assert_eq!(known_bugs(Component::Kubelet, &v("v1.32.0")).len(), 0);
        assert_eq!(known_bugs(Component::ApiServer, &v("v1.29.2")).len(), 1);
        for b in KNOWN_BUGS {
            assert!(b.source.contains("kubernetes/kubernetes#") && b.source.contains("CHANGELOG"));
        }
    }

    #[test]
    fn modes_follow_the_counts() {
        let kept = FieldKept::Yes("x".into());
        let all = Counts {
            capable: 3,
            ..Counts::default()
        };
        let m = mode_meanings(&all, &kept, Some(true));
        assert_eq!(m[0].1, "works on every node");
        assert!(m[4].1.starts_with("native"));
        let mixed = Counts {
            capable: 2,
            unaware: 1,
            rejecting: 1,
            unknown: 0,
        };
        let m = mode_meanings(&mixed, &kept, Some(false));
        assert!(
            m[0].1.contains("hangs in Init on the 1 unaware"),
            "{}",
            m[0].1
        );
        assert!(m[0].1.contains("fails on the 1 rejecting"), "{}", m[0].1);
        assert!(m[2].1.contains("but the 1 rejecting"), "{}", m[2].1);
        assert!(m[4].1.starts_with("legacy"), "{}", m[4].1);
        let dropped = mode_meanings(&all, &FieldKept::No("off".into()), Some(true));
        assert_eq!(dropped[4].1, "legacy");
    }

    #[test]
    fn errors_are_shortened() {
        let e = ClusterError::Api(
            "GET /api/v1/nodes/n/proxy/metrics: ApiError: dial tcp 10.0.0.1:10250: connect: connection refused (ErrorResponse { .. })".into(),
        );
        assert_eq!(
            short_error(&e),
            "dial tcp 10.0.0.1:10250: connect: connection refused"
        );
    }
}
