//! What each injection mode does on this cluster, from the node classes, whether the API
//! server keeps `restartPolicy`, and whether the labeler's Lease is fresh.

use super::nodes::Counts;
use sidecar_kit_core::status::NODE_LABEL;
use sidecar_kit_core::version::FieldKept;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
