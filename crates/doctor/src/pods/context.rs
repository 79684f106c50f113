//! What is known around one pod besides the pod itself: its node's class and its owner's
//! template.

use super::view::PodView;
use sidecar_kit_core::version::NodeClass;

/// The owner's template, as far as it matters here.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    /// `Deployment web (ReplicaSet web-7d9c)`, `Job backup`.
    pub display: String,
    /// Init containers with `restartPolicy: Always` in the template.
    pub template_sidecars: Vec<String>,
}

/// What is known around one pod.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The class of its node, when the node is known and readable.
    pub node_class: Option<NodeClass>,
    pub owner: Option<Owner>,
}

impl Context {
    /// The pod's node as messages name it: `node n1 (capable)`, `node n1`, `no node yet`.
    pub fn node_text(&self, pod: &PodView) -> String {
        let node = pod.node;
        if node.is_empty() {
            "no node yet".to_string()
        } else {
            match self.node_class {
                Some(c) => format!("node {node} ({c})"),
                None => format!("node {node}"),
            }
        }
    }
}
