//! `pods.restart-policy-stripped`: `restartPolicy: Always` lost on the way to the pod, so
//! that the sidecar became a blocking init container: against the owner's template, or
//! against what sidecar-kit injected.

use crate::pods::context::{Context, Owner};
use crate::pods::view::PodView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::profile::INSTALL_CONTAINER;
use sidecar_kit_core::status::Injection;

const CHECK: &str = "pods.restart-policy-stripped";

pub fn check(pod: &PodView, ctx: &Context, out: &mut Vec<Finding>) {
    if let Some(owner) = &ctx.owner {
        against_template(pod, owner, out);
    }
    for i in pod.status.iter().flat_map(|s| &s.injections) {
        against_injection(pod, i, out);
    }
}

/// The owner's template's sidecars that are init containers without `restartPolicy:
/// Always` in the pod.
pub fn lost<'o>(pod: &PodView, owner: &'o Owner) -> Vec<&'o str> {
    owner
        .template_sidecars
        .iter()
        .filter(|n| {
            pod.init_containers
                .iter()
                .any(|c| c.name == n.as_str() && !c.always)
        })
        .map(String::as_str)
        .collect()
}

fn against_template(pod: &PodView, owner: &Owner, out: &mut Vec<Finding>) {
    let lost = lost(pod, owner);
    if lost.is_empty() {
        return;
    }
    out.push(Finding::new(
        CHECK,
        Severity::Error,
        pod.object(),
        format!(
            "{} declares restartPolicy: Always on {}, the pod does not: a mutating webhook (or an API server with the gate off) removed it, so the sidecar became a blocking init container",
            owner.display,
            lost.join(", ")
        ),
        Some("run doctor webhooks -n NAMESPACE to find the webhook; it needs patch-based mutation or a build with a 1.28+ client".into()),
    ));
}

fn against_injection(pod: &PodView, i: &Injection, out: &mut Vec<Finding>) {
    let mode = i.mode.as_str();
    if mode != "native" && mode != "affinity" {
        return;
    }
    let mut ours = pod
        .init_containers
        .iter()
        .filter(|c| {
            i.added.init_containers.iter().any(|x| x == c.name) && c.name != INSTALL_CONTAINER
        })
        .peekable();
    let any = ours.peek().is_some();
    if any && ours.all(|c| !c.always) {
        out.push(Finding::new(
            CHECK,
            Severity::Error,
            pod.object(),
            format!(
                "sidecar-kit injected profile {} in {mode} mode, but none of its init containers carries restartPolicy: Always any more: a later mutating webhook removed it",
                i.profile
            ),
            Some("run doctor webhooks -n NAMESPACE to find the webhook; sidecar-kit's webhook puts the field back when it is re-invoked (reinvocationPolicy: IfNeeded)".into()),
        ));
    }
}
