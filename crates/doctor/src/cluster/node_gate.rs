//! Each node's SidecarContainers gate and where it comes from: the kubelet's metrics, the
//! labeler's annotation (when the metrics could not be read), or the kubelet's version;
//! and the kubelets whose metrics could not be read.

use super::kubelet_metrics::NodeGate;
use crate::report::{BlindSpot, Finding, Severity};
use sidecar_kit_core::facts::NodeFacts;
use sidecar_kit_core::labeling::gate_from_metrics;
use sidecar_kit_core::version::{GateState, KubeVersion};
use std::time::Duration;

/// Kubelets whose metrics were not read, by why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unread {
    pub forbidden: usize,
    pub timed_out: usize,
    pub failed: usize,
}

/// Sets `facts.sidecar_containers` from what the kubelet's metrics said (`gate`); where
/// they could not be read it stays as the labeler's annotation left it. `version` is the
/// kubelet's, parsed. Returns the gate's source (`metrics`, `labeler` or `version`) and the
/// note for the node's row, and counts the kubelet in `unread` when its metrics were not
/// read.
pub fn resolve(
    facts: &mut NodeFacts,
    version: Option<&KubeVersion>,
    gate: &NodeGate,
    timeout: Duration,
    unread: &mut Unread,
) -> (&'static str, Option<String>) {
    let note = match gate {
        NodeGate::Metrics(g) => {
            facts.sidecar_containers = *g;
            return ("metrics", None);
        }
        NodeGate::NoLine => {
            facts.sidecar_containers = gate_from_metrics(&facts.kubelet_version, None);
            // Past GA the line is gone and the gate locked on; before 1.28 the gate
            // did not exist: nothing to say of either.
            let gate_existed = version.is_none_or(|v| v.at_least(1, 28));
            let note = (gate_existed && facts.sidecar_containers == GateState::Unknown)
                .then(|| "no gate line in the kubelet's metrics".to_string());
            return ("version", note);
        }
        NodeGate::Forbidden => {
            unread.forbidden += 1;
            "metrics: forbidden".to_string()
        }
        NodeGate::TimedOut => {
            unread.timed_out += 1;
            format!("metrics: no answer within {}s", timeout.as_secs_f64())
        }
        NodeGate::Failed(m) => {
            unread.failed += 1;
            format!("metrics: {m}")
        }
    };
    // The labeler's annotation (read from the kubelet's metrics by the label-nodes
    // controller) is the next best source.
    let source = if facts.sidecar_containers == GateState::Unknown {
        "version"
    } else {
        "labeler"
    };
    (source, Some(note))
}

impl Unread {
    /// The kubelets whose gate was judged from their versions for want of `nodes/proxy`.
    pub fn blind_spot(&self) -> Option<BlindSpot> {
        let forbidden = self.forbidden;
        (forbidden > 0).then(|| BlindSpot {
            what: format!(
                "the SidecarContainers gate of {forbidden} kubelet(s) (judged from their versions instead)"
            ),
            permission: "get on nodes/proxy".into(),
        })
    }

    /// `cluster.node-metrics-unreadable`: kubelets that did not answer in time or answered
    /// with an error.
    pub fn finding(&self, timeout: Duration) -> Option<Finding> {
        let Unread {
            timed_out, failed, ..
        } = *self;
        (timed_out + failed > 0).then(|| Finding::new(
            "cluster.node-metrics-unreadable",
            Severity::Info,
            Some(format!("{} node(s)", timed_out + failed)),
            format!(
                "{timed_out} kubelet(s) did not answer within {}s and {failed} answered with an error: their gate is judged from the version (or the labeler's annotation)",
                timeout.as_secs_f64()
            ),
            Some("raise --node-timeout, or check the nodes' kubelets".into()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(version: &str, annotated: GateState) -> NodeFacts {
        NodeFacts {
            name: "n1".into(),
            kubelet_version: version.into(),
            sidecar_containers: annotated,
            ..NodeFacts::default()
        }
    }

    /// The note of a kubelet whose metrics have no gate line although it had one.
    const NO_LINE: Option<&str> = Some("no gate line in the kubelet's metrics");
    const FORBIDDEN: Option<&str> = Some("metrics: forbidden");

    #[test]
    fn gate_and_source() {
        use GateState::{Disabled, Enabled, Unknown};
        use NodeGate::{Forbidden, Metrics, NoLine, TimedOut};
        let refused = NodeGate::Failed("connection refused".into());
        #[rustfmt::skip]
        let cases = [
            // (kubelet, annotation, metrics said, (gate, source, note))
            ("v1.29.1", Unknown, Metrics(Disabled), (Disabled, "metrics", None)),
            ("v1.29.1", Enabled, Metrics(Disabled), (Disabled, "metrics", None)),
            // No line: judged from the version; past GA nothing to say.
            ("v1.33.0", Unknown, NoLine, (Enabled, "version", None)),
            // Between 1.28 and GA a missing line is worth a note.
            ("v1.29.1", Unknown, NoLine, (Unknown, "version", NO_LINE)),
            // Before 1.28 the gate did not exist: nothing to say either.
            ("v1.27.3", Unknown, NoLine, (Unknown, "version", None)),
            ("weird", Unknown, NoLine, (Unknown, "version", NO_LINE)),
            // Unread: the labeler's annotation where there is one, else the version.
            ("v1.29.1", Enabled, Forbidden, (Enabled, "labeler", FORBIDDEN)),
            ("v1.29.1", Unknown, Forbidden, (Unknown, "version", FORBIDDEN)),
            ("v1.29.1", Disabled, TimedOut, (Disabled, "labeler", Some("metrics: no answer within 1.5s"))),
            ("v1.29.1", Unknown, refused, (Unknown, "version", Some("metrics: connection refused"))),
        ];
        let mut unread = Unread::default();
        for (version, annotated, gate, want) in cases {
            let mut f = node(version, annotated);
            let parsed = KubeVersion::parse(version);
            let timeout = Duration::from_millis(1500);
            let (source, note) = resolve(&mut f, parsed.as_ref(), &gate, timeout, &mut unread);
            assert_eq!(
                (f.sidecar_containers, source, note.as_deref()),
                want,
                "{version} {annotated:?} {gate:?}"
            );
        }
        let tally = Unread {
            forbidden: 2,
            timed_out: 1,
            failed: 1,
        };
        assert_eq!(unread, tally);
    }

    #[test]
    fn unread_kubelets() {
        let unread = Unread {
            forbidden: 2,
            timed_out: 1,
            failed: 1,
        };
        let spot = unread.blind_spot().unwrap();
        assert!(spot.what.contains("of 2 kubelet(s)"), "{}", spot.what);
        let f = unread.finding(Duration::from_secs(2)).unwrap();
        assert_eq!(f.object.as_deref(), Some("2 node(s)"));
        assert!(
            f.message
                .starts_with("1 kubelet(s) did not answer within 2s and 1 answered"),
            "{}",
            f.message
        );
        let none = Unread::default();
        assert!(none.finding(Duration::from_secs(2)).is_none() && none.blind_spot().is_none());
    }
}
