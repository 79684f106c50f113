//! Kubernetes version strings and the rules that turn versions and gate states into
//! node classes (`../docs` of the contract: "Node classes and the capability label").

use serde::{Deserialize, Serialize};
use std::fmt;

/// `major.minor.patch` parsed from strings such as `v1.30.2+k3s1` or `v1.29.1-gke.1589018`;
/// the rest is kept for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub raw: String,
}

impl KubeVersion {
    pub fn parse(s: &str) -> Option<KubeVersion> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let end = t.find(['-', '+']).unwrap_or(t.len());
        let mut parts = t[..end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.trim_end_matches('+').parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(KubeVersion {
            major,
            minor,
            patch,
            raw: s.trim().to_string(),
        })
    }

    /// Compares major.minor with a (major, minor) pair.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    pub fn minor_is(&self, major: u32, minor: u32) -> bool {
        self.major == major && self.minor == minor
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// State of the `SidecarContainers` feature gate as known from metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateState {
    Enabled,
    Disabled,
    #[default]
    Unknown,
}

impl fmt::Display for GateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateState::Enabled => "enabled",
            GateState::Disabled => "disabled",
            GateState::Unknown => "unknown",
        })
    }
}

/// What a node does with a native sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeClass {
    /// Runs native sidecars.
    Capable,
    /// Kubelet older than 1.28: ignores `restartPolicy`, runs the sidecar as a plain init container.
    Unaware,
    /// Knows the field with the gate off: refuses the pod (`InitContainerRestartPolicyForbidden`).
    Rejecting,
    /// Version unparseable, or no data.
    Unknown,
}

impl NodeClass {
    /// Value of the `sidecar-kit.io/native-sidecars` label; `None` means no label.
    pub fn label_value(self) -> Option<&'static str> {
        match self {
            NodeClass::Capable => Some("true"),
            NodeClass::Unaware => Some("false"),
            NodeClass::Rejecting => Some("rejected"),
            NodeClass::Unknown => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeClass::Capable => "capable",
            NodeClass::Unaware => "unaware",
            NodeClass::Rejecting => "rejecting",
            NodeClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for NodeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of a node from its kubelet version and the gate state its metrics show.
/// Returns the class and, for 1.28 nodes made capable by the gate, a warning.
pub fn classify_node(kubelet_version: &str, gate: GateState) -> (NodeClass, Option<&'static str>) {
    let Some(v) = KubeVersion::parse(kubelet_version) else {
        return (NodeClass::Unknown, None);
    };
    if v.at_least(1, 29) {
        if gate == GateState::Disabled {
            (NodeClass::Rejecting, None)
        } else {
            (NodeClass::Capable, None)
        }
    } else if v.minor_is(1, 28) {
        if gate == GateState::Enabled {
            (
                NodeClass::Capable,
                Some(
                    "1.28 kubelet with the gate on: start order is native, termination order is not",
                ),
            )
        } else {
            (NodeClass::Rejecting, None)
        }
    } else if v.major == 1 {
        (NodeClass::Unaware, None)
    } else {
        (NodeClass::Unknown, None)
    }
}

/// Whether the API server keeps `restartPolicy` on init containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKept {
    Yes(String),
    No(String),
    Unknown(String),
}

impl FieldKept {
    pub fn reason(&self) -> &str {
        match self {
            FieldKept::Yes(r) | FieldKept::No(r) | FieldKept::Unknown(r) => r,
        }
    }
    pub fn is_no(&self) -> bool {
        matches!(self, FieldKept::No(_))
    }
}

/// Decides from the API server's version and gate whether it keeps `restartPolicy`.
pub fn api_server_keeps_field(version: Option<&KubeVersion>, gate: GateState) -> FieldKept {
    match (gate, version) {
        (GateState::Enabled, _) => {
            FieldKept::Yes("the API server's SidecarContainers gate is enabled".into())
        }
        (GateState::Disabled, _) => FieldKept::No(
            "the API server's SidecarContainers gate is disabled: it drops restartPolicy".into(),
        ),
        (GateState::Unknown, Some(v)) if v.at_least(1, 33) => {
            FieldKept::Yes(format!("API server {v}: the gate is GA and locked on"))
        }
        (GateState::Unknown, Some(v)) if v.at_least(1, 29) => FieldKept::Yes(format!(
            "API server {v}: gate state unknown, beta and on by default (inferred from the version)"
        )),
        (GateState::Unknown, Some(v)) if v.minor_is(1, 28) => FieldKept::No(format!(
            "API server {v}: gate state unknown, alpha and off by default (inferred from the version)"
        )),
        (GateState::Unknown, Some(v)) => FieldKept::No(format!(
            "API server {v} predates native sidecars and drops restartPolicy"
        )),
        (GateState::Unknown, None) => FieldKept::Unknown("API server version unknown".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vendor_versions() {
        for (s, m, n, p) in [
            ("v1.29.3", 1, 29, 3),
            ("v1.30.2+k3s1", 1, 30, 2),
            ("v1.29.1-gke.1589018", 1, 29, 1),
            ("v1.28.5-eks-5e0fdde", 1, 28, 5),
            ("1.27", 1, 27, 0),
        ] {
            let v = KubeVersion::parse(s).unwrap();
            assert_eq!((v.major, v.minor, v.patch), (m, n, p), "{s}");
            assert_eq!(v.raw, s);
        }
        for s in ["", "v", "vx.y", "1", "v1.2.3.4", "latest"] {
            assert!(KubeVersion::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn node_classes_follow_the_contract() {
        use GateState::{Disabled, Enabled};
        use NodeClass::{Capable, Rejecting, Unaware};
        let unknown = GateState::Unknown;
        assert_eq!(classify_node("v1.29.0", unknown).0, Capable);
        assert_eq!(classify_node("v1.31.2", Disabled).0, Rejecting);
        assert_eq!(classify_node("v1.28.4", unknown).0, Rejecting);
        assert_eq!(classify_node("v1.28.4", Disabled).0, Rejecting);
        let (c, w) = classify_node("v1.28.4", Enabled);
        assert_eq!(c, Capable);
        assert!(w.is_some());
        assert_eq!(classify_node("v1.27.9", Enabled).0, Unaware);
        assert_eq!(classify_node("v1.26.0", unknown).0, Unaware);
        assert_eq!(classify_node("garbage", Enabled).0, NodeClass::Unknown);
        assert_eq!(Capable.label_value(), Some("true"));
        assert_eq!(Unaware.label_value(), Some("false"));
        assert_eq!(Rejecting.label_value(), Some("rejected"));
        assert_eq!(NodeClass::Unknown.label_value(), None);
    }

    #[test]
    fn api_server_field_rule() {
        let v = |s| KubeVersion::parse(s);
        assert!(api_server_keeps_field(v("v1.27.1").as_ref(), GateState::Unknown).is_no());
        assert!(api_server_keeps_field(v("v1.28.1").as_ref(), GateState::Unknown).is_no());
        assert!(matches!(
            api_server_keeps_field(v("v1.28.1").as_ref(), GateState::Enabled),
            FieldKept::Yes(_)
        ));
        assert!(matches!(
            api_server_keeps_field(v("v1.30.1").as_ref(), GateState::Unknown),
            FieldKept::Yes(_)
        ));
        assert!(api_server_keeps_field(v("v1.32.1").as_ref(), GateState::Disabled).is_no());
        assert!(matches!(
            api_server_keeps_field(None, GateState::Unknown),
            FieldKept::Unknown(_)
        ));
    }
}
