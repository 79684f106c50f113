//! The version skew between each kubelet and the API server, against the Kubernetes
//! skew policy.

use super::grouped::Grouped;
use super::nodes::NodeView;
use crate::report::Severity;
use sidecar_kit_core::version::KubeVersion;

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

/// `cluster.version-skew` for one node's kubelet at version `kubelet`; returns the note for
/// the node's row.
pub fn check(
    node: &NodeView,
    api: &KubeVersion,
    kubelet: &KubeVersion,
    grouped: &mut Grouped,
) -> Option<String> {
    let (sev, msg) = skew(api, kubelet)?;
    grouped.add(
        "cluster.version-skew",
        sev,
        node.name(),
        msg,
        Some("upgrade these kubelets (or the API server) to within the supported skew".into()),
    );
    Some("outside the version skew".into())
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
}
