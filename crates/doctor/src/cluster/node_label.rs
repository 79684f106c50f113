//! `cluster.node-label-stale`: a node whose `sidecar-kit` label says another class than
//! the one its gate (read from metrics or the labeler's annotation) gives it.

use super::grouped::Grouped;
use super::nodes::NodeView;
use crate::report::Severity;
use sidecar_kit_core::status::NODE_LABEL;

/// Adds the finding when the node's label disagrees with its class; a class judged from
/// the version alone is no ground to call the label wrong.
pub fn check(node: &NodeView, grouped: &mut Grouped) {
    let Some(l) = node.label else {
        return;
    };
    let class = node.class;
    let source = node.gate_source;
    if class.label_value() != Some(l) && source != "version" {
        grouped.add(
            "cluster.node-label-stale",
            Severity::Warning,
            node.name(),
            format!(
                "{NODE_LABEL}={l} but the node is {class} (from {source}): affinity and universal pods are steered by a wrong label"
            ),
            Some("check that the label-nodes controller runs and can read kubelet metrics".into()),
        );
    }
}
