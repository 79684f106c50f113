//! Kubelet and API server patch releases with known native-sidecar bugs, and the findings
//! that name them.

use super::grouped::Grouped;
use super::nodes::NodeView;
use crate::report::{Finding, Severity};
use serde::Serialize;
use sidecar_kit_core::version::KubeVersion;

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

/// `cluster.known-sidecar-bug` for the API server at version `v` (shown as `raw`).
pub fn api_server_findings(raw: &str, v: &KubeVersion) -> impl Iterator<Item = Finding> {
    known_bugs(Component::ApiServer, v)
        .into_iter()
        .map(move |b| {
            Finding::new(
                "cluster.known-sidecar-bug",
                Severity::Warning,
                Some("API server".into()),
                format!("API server {raw} {} (source: {})", b.what, b.source),
                Some(upgrade(b)),
            )
        })
}

/// `cluster.known-sidecar-bug` for a capable node's kubelet at version `v`; returns the
/// notes for the node's row.
pub fn kubelet_check(node: &NodeView, v: &KubeVersion, grouped: &mut Grouped) -> Vec<String> {
    known_bugs(Component::Kubelet, v)
        .into_iter()
        .map(|b| {
            grouped.add(
                "cluster.known-sidecar-bug",
                Severity::Warning,
                node.name(),
                format!(
                    "kubelet {} {} (source: {})",
                    node.kubelet_version(),
                    b.what,
                    b.source
                ),
                Some(upgrade(b)),
            );
            format!("known bug, fixed in 1.{}.{}", b.minor, b.fixed_in)
        })
        .collect()
}

fn upgrade(b: &KnownBug) -> String {
    format!("upgrade to 1.{}.{} or later", b.minor, b.fixed_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        KubeVersion::parse(s).unwrap()
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
}
