//! `injections.legacy-on-capable-node`: pods with legacy sidecars on nodes that run native
//! ones.

use super::WorkloadView;
use crate::report::{Finding, Severity};

pub(super) fn check(v: &WorkloadView<'_>) -> Option<Finding> {
    let c = v.counts;
    if c.legacy_on_capable == 0 {
        return None;
    }
    Some(v.restart_finding(
        "injections.legacy-on-capable-node",
        Severity::Info,
        format!(
            "{} of {} pod(s) run legacy sidecars on nodes that run native ones: re-created, auto may choose native",
            c.legacy_on_capable, c.pods
        ),
    ))
}
