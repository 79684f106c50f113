//! `container.*`: regular (app) containers.

use crate::lint::view::{TemplateView, name};
use crate::report::{Finding, Severity};

/// `container.restart-policy`: regular containers take no restartPolicy (short of an
/// alpha gate).
pub(super) fn restart_policy(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in &t.regular {
        let name = name(c);
        if let Some(rp) = c.get("restartPolicy") {
            out.push(t.finding("container.restart-policy", Severity::Error, format!("regular container {name:?} has restartPolicy {rp}: rejected unless the ContainerRestartRules gate (alpha, 1.34+) is on"), "remove it; for a sidecar, move the container to initContainers with restartPolicy: Always"));
        }
    }
    out
}
