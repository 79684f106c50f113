//! What the `label-nodes` controller writes and its readers (the webhook's auto mode, the
//! doctor) read back: the reason annotation on each labelled node, the Lease that says the
//! controller is alive, and what a kubelet's version alone says of its `SidecarContainers`
//! gate when its metrics do not.

use crate::version::{GateState, KubeVersion};
use serde::{Deserialize, Serialize};

/// Name of the Lease the controller's leader holds (and auto mode's freshness check reads).
pub const LEASE_NAME: &str = "sidecar-kit-label-nodes";
/// Namespace of that Lease in the shipped manifests.
pub const LEASE_NAMESPACE: &str = "sidecar-kit";

/// Where a node's gate reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonSource {
    /// The kubelet's `/metrics` showed the gate line.
    Metrics,
    /// The kubelet's version alone (metrics not read, or silent).
    Version,
}

/// The value of `sidecar-kit.io/native-sidecars-reason`:
/// `{"kubeletVersion": "...", "gate": "enabled|disabled|unknown", "source": "metrics|version"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReason {
    pub kubelet_version: String,
    pub gate: GateState,
    pub source: ReasonSource,
}

impl NodeReason {
    /// The annotation's text (keys in the contract's order).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an annotation; `None` when it is not the contract's JSON.
    pub fn parse(text: &str) -> Option<NodeReason> {
        serde_json::from_str(text).ok()
    }

    /// The gate this annotation read from the metrics of a kubelet of `kubelet_version`.
    /// `None` when it was judged from the version, or written for another version (the
    /// kubelet has changed since: the reading no longer stands), or says nothing.
    pub fn metrics_gate_for(&self, kubelet_version: &str) -> Option<GateState> {
        (self.source == ReasonSource::Metrics
            && self.kubelet_version == kubelet_version
            && self.gate != GateState::Unknown)
            .then_some(self.gate)
    }
}

/// The release in which `SidecarContainers` went GA and was locked on.
const GATE_LOCKED_ON: (u32, u32) = (1, 33);

/// What a component's version alone says of its gate: locked on from GA (1.33), where later
/// releases drop the gate and its metric line; unknown before.
pub fn gate_by_version(version: &str) -> GateState {
    match KubeVersion::parse(version) {
        Some(v) if v.at_least(GATE_LOCKED_ON.0, GATE_LOCKED_ON.1) => GateState::Enabled,
        _ => GateState::Unknown,
    }
}

/// The gate of a component whose `/metrics` were read: the gate line's value, or, with no
/// such line, what its version says.
pub fn gate_from_metrics(version: &str, line: Option<GateState>) -> GateState {
    line.unwrap_or_else(|| gate_by_version(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_round_trips_in_the_contracts_shape() {
        let r = NodeReason {
            kubelet_version: "v1.30.2".into(),
            gate: GateState::Enabled,
            source: ReasonSource::Metrics,
        };
        assert_eq!(
            r.encode(),
            r#"{"kubeletVersion":"v1.30.2","gate":"enabled","source":"metrics"}"#
        );
        assert_eq!(NodeReason::parse(&r.encode()), Some(r));
        assert_eq!(NodeReason::parse("not json"), None);
        assert_eq!(NodeReason::parse(r#"{"gate":"enabled"}"#), None);
    }

    #[test]
    fn a_reading_stands_for_metrics_of_the_same_version_only() {
        let cases = [
            // (written for, gate, source, read for, stands)
            (
                "v1.30.2",
                GateState::Disabled,
                ReasonSource::Metrics,
                "v1.30.2",
                Some(GateState::Disabled),
            ),
            (
                "v1.28.3",
                GateState::Enabled,
                ReasonSource::Metrics,
                "v1.28.3",
                Some(GateState::Enabled),
            ),
            (
                "v1.30.2",
                GateState::Disabled,
                ReasonSource::Metrics,
                "v1.31.0",
                None,
            ),
            (
                "v1.30.2",
                GateState::Disabled,
                ReasonSource::Version,
                "v1.30.2",
                None,
            ),
            (
                "v1.30.2",
                GateState::Unknown,
                ReasonSource::Metrics,
                "v1.30.2",
                None,
            ),
        ];
        for (written, gate, source, read, want) in cases {
            let r = NodeReason {
                kubelet_version: written.into(),
                gate,
                source,
            };
            assert_eq!(r.metrics_gate_for(read), want, "{r:?} read for {read}");
        }
    }

    #[test]
    fn silent_metrics_mean_on_from_ga_only() {
        let cases = [
            ("v1.33.0", None, GateState::Enabled),
            ("v1.35.1", None, GateState::Enabled),
            ("v1.32.9", None, GateState::Unknown),
            ("v1.28.0", None, GateState::Unknown),
            ("garbage", None, GateState::Unknown),
            ("v1.32.9", Some(GateState::Disabled), GateState::Disabled),
            ("v1.33.0", Some(GateState::Enabled), GateState::Enabled),
        ];
        for (version, line, want) in cases {
            assert_eq!(gate_from_metrics(version, line), want, "{version} {line:?}");
        }
    }
}
