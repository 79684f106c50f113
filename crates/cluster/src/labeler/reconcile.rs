//! Reconciling one node: the label and reason annotation the contract wants for its kubelet
//! version and gate evidence, and the merge patch of exactly those two keys when they
//! differ (retried when it fails); the workers that take nodes from the queue.

use super::Labeler;
use super::watch::NodeEntry;
use crate::lease::FIELD_MANAGER;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use sidecar_kit_core::labeling::{NodeReason, ReasonSource, gate_by_version};
use sidecar_kit_core::status::{NODE_LABEL, NODE_REASON_ANNOTATION};
use sidecar_kit_core::version::{GateState, NodeClass, classify_node};
use std::time::{Duration, Instant};

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

/// Time limit of one patch.
const PATCH_TIMEOUT: Duration = Duration::from_secs(30);

impl Labeler {
    /// A worker: reconciles the nodes the queue hands out, one at a time.
    pub(super) async fn work(self) {
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
        let Some(entry) = self.nodes().nodes.get(name).cloned() else {
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
        let call =
            tokio::time::timeout(PATCH_TIMEOUT, api.patch(name, &pp, &Patch::Merge(&patch))).await;
        match call {
            Ok(Ok(node)) => self.patched(name, &want, &node),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                // Deleted meanwhile: the watch removes it.
            }
            Ok(Err(e)) => self.patch_failed(name, &describe_patch_error(&e, name)),
            Err(_) => self.patch_failed(name, &format!("PATCH node {name}: no answer within 30s")),
        }
    }

    fn patched(&self, name: &str, want: &Desired, node: &Node) {
        self.shared.metrics.count_write("success");
        tracing::info!(
            node = name,
            class = %want.class,
            label = want.label.unwrap_or(""),
            reason = want.reason.as_deref().unwrap_or(""),
            "node labelled"
        );
        // The answer is the node as it now is: the cache need not wait for the watch.
        let (_, fresh) = NodeEntry::of(node);
        self.nodes().patched(name, fresh);
    }

    fn patch_failed(&self, name: &str, error: &str) {
        self.shared.metrics.count_write("failure");
        tracing::warn!(node = name, error = %error, "cannot label the node; retrying");
        let at = Instant::now() + Duration::from_secs(5).min(self.cfg().resync_interval);
        self.book().retry(name, at);
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
}
