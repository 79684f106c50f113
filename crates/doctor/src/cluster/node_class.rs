//! What each node's kubelet does with a native sidecar, where that is trouble:
//! `cluster.node-rejects-native-sidecars`, `cluster.node-unaware-of-native-sidecars`,
//! `cluster.node-class-unknown`, and `cluster.node-1-28-termination-order`.

use super::grouped::Grouped;
use super::nodes::NodeView;
use crate::report::Severity;
use sidecar_kit_core::version::{GateState, NodeClass};

/// Adds the node's class findings.
pub fn check(node: &NodeView, grouped: &mut Grouped) {
    let version = node.kubelet_version();
    match node.class {
        NodeClass::Rejecting => grouped.add(
            "cluster.node-rejects-native-sidecars",
            Severity::Error,
            node.name(),
            format!(
                "kubelet {version} knows restartPolicy with the SidecarContainers gate {} (from {}): it refuses pods with native sidecars (phase Failed, InitContainerRestartPolicyForbidden)",
                if node.facts.sidecar_containers == GateState::Disabled { "off" } else { "off by default" },
                node.gate_source
            ),
            Some("turn the gate on for these kubelets (--feature-gates=SidecarContainers=true) or upgrade them; meanwhile inject in legacy, universal or affinity mode".into()),
        ),
        NodeClass::Unaware => grouped.add(
            "cluster.node-unaware-of-native-sidecars",
            Severity::Warning,
            node.name(),
            format!(
                "kubelet {version} is older than 1.28: it ignores restartPolicy and runs a native sidecar as a plain init container, so the pod hangs in Init"
            ),
            Some("upgrade these kubelets to 1.29 or later; meanwhile inject in legacy, universal or affinity mode".into()),
        ),
        NodeClass::Unknown => grouped.add(
            "cluster.node-class-unknown",
            Severity::Warning,
            node.name(),
            format!(
                "kubelet version {version:?} cannot be parsed: what the node does with a native sidecar is unknown"
            ),
            None,
        ),
        NodeClass::Capable => {}
    }
    if let Some(w) = node.warn_1_28 {
        grouped.add(
            "cluster.node-1-28-termination-order",
            Severity::Warning,
            node.name(),
            format!("kubelet {version}: {w}"),
            Some("upgrade to 1.29 or later before relying on sidecar termination order".into()),
        );
    }
}
