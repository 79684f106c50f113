//! `init.*`: init containers, where `restartPolicy: Always` makes a native sidecar and
//! anything else is rejected.

use crate::lint::view::{TemplateView, name, restart_policy};
use crate::report::{Finding, Severity};

/// What an init container may carry only as a native sidecar.
const PROBES: [&str; 4] = [
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
];

/// `init.invalid-restart-policy`: Always is the only restartPolicy an init container takes.
pub(super) fn invalid_restart_policy(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in &t.init {
        let name = name(c);
        if let Some(other) = restart_policy(c).filter(|p| *p != "Always") {
            out.push(t.finding("init.invalid-restart-policy", Severity::Error, format!("init container {name:?} has restartPolicy {other:?}: only Always is allowed (it makes a native sidecar)"), "set restartPolicy: Always, or remove it"));
        }
    }
    out
}

/// `init.probe-without-restart-policy`: probes and lifecycle hooks only on native
/// sidecars.
pub(super) fn probe_without_restart_policy(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in t.init.iter().filter(|c| restart_policy(c).is_none()) {
        let name = name(c);
        for k in PROBES {
            if c.get(k).is_some() {
                out.push(t.finding("init.probe-without-restart-policy", Severity::Error, format!("init container {name:?} has {k} but no restartPolicy: Always; the API server rejects the pod (\"may not be set for init containers without restartPolicy=Always\")"), "make it a native sidecar (restartPolicy: Always), or remove the probe"));
            }
        }
    }
    out
}
