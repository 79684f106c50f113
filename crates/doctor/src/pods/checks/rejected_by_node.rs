//! `pods.rejected-by-node`: the pod failed because its node's kubelet knows
//! `restartPolicy` on init containers but has the SidecarContainers gate off.

use crate::pods::context::Context;
use crate::pods::view::PodView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::version::NodeClass;

const REASON: &str = "InitContainerRestartPolicyForbidden";

pub fn check(pod: &PodView, ctx: &Context, out: &mut Vec<Finding>) {
    if pod.phase != "Failed" || pod.reason != Some(REASON) {
        return;
    }
    // Classed capable (from its version, or a label made without its gate) although its
    // kubelet refuses: the node label would steer affinity pods onto it all the same.
    let misclassed = ctx.node_class == Some(NodeClass::Capable);
    out.push(Finding::new(
        "pods.rejected-by-node",
        Severity::Error,
        pod.object(),
        format!(
            "{} refused the pod: {} (its kubelet knows restartPolicy but has the SidecarContainers gate off){}",
            ctx.node_text(pod),
            pod.message.unwrap_or(REASON),
            if misclassed {
                "; the node is classed capable all the same (its kubelet's gate was never read), so the node label steers affinity pods onto it too"
            } else {
                ""
            }
        ),
        Some(if misclassed {
            "turn the gate on for that kubelet; and let label-nodes read each kubelet's gate (get on nodes/proxy) so that the node is labelled rejected and affinity and universal pods keep off it".into()
        } else {
            "turn the gate on for that kubelet, or keep such pods off it: inject in affinity or universal mode (which steer by the node label), or legacy".into()
        }),
    ));
}
