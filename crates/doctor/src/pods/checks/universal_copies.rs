//! Which copy of a universal sidecar runs it, where that is wrong:
//! `pods.universal-both-copies` (both copies ran it: two sidecars in one pod) and
//! `pods.universal-legacy-on-capable-node` (the legacy copy runs on a node that runs
//! native sidecars).

use crate::pods::context::Context;
use crate::pods::universal::UniversalRun;
use crate::pods::view::PodView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::version::NodeClass;

pub fn check(pod: &PodView, ctx: &Context, out: &mut Vec<Finding>) {
    for u in &pod.universal {
        out.extend(both_copies(pod, u));
        out.extend(legacy_on_capable_node(pod, ctx, u));
    }
}

fn both_copies(pod: &PodView, u: &UniversalRun) -> Option<Finding> {
    let (n, legacy_name) = (u.sidecar, &u.legacy_name);
    (u.copy == "both").then(|| Finding::new(
        "pods.universal-both-copies",
        Severity::Error,
        pod.object(),
        format!("both copies of universal sidecar {n} ran it ({n} and {legacy_name}): two sidecars in one pod"),
        Some("the native copy needs its startup probe (sidecar-shim probe); re-inject with this sidecar-kit".into()),
    ))
}

/// Where the API server dropped restartPolicy at admission (its gate off), the native copy
/// is a plain init container and the legacy copy runs the sidecar by design: not said.
fn legacy_on_capable_node(pod: &PodView, ctx: &Context, u: &UniversalRun) -> Option<Finding> {
    let wrong =
        u.copy == "legacy" && ctx.node_class == Some(NodeClass::Capable) && u.native_field_kept;
    wrong.then(|| {
        Finding::new(
            "pods.universal-legacy-on-capable-node",
            Severity::Warning,
            pod.object(),
            format!(
                "the legacy copy {} runs sidecar {} although {} runs native sidecars",
                u.legacy_name,
                u.sidecar,
                ctx.node_text(pod)
            ),
            Some("the native copy's detection restart did not happen: check its logs".into()),
        )
    })
}
