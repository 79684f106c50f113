//! `injections.not-injected`: pods a profile selects that carry no injection, and whether
//! their namespace keeps the webhook away.

use super::WorkloadView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::status::INJECT_KEY;

pub(super) fn check(v: &WorkloadView<'_>) -> Option<Finding> {
    let (c, w) = (v.counts, v.workload);
    if c.not_injected == 0 {
        return None;
    }
    let note = match v.opted_in {
        Some(false) => format!(
            "; namespace {} lacks the label {INJECT_KEY}=enabled, so the webhook never sees its pods",
            w.namespace
        ),
        _ => String::new(),
    };
    Some(Finding::new(
        "injections.not-injected",
        Severity::Warning,
        v.object(),
        format!(
            "{} of {} pod(s) carry no injection although profile(s) {} select them (created before the profile, or the webhook was skipped){note}",
            c.not_injected,
            c.pods,
            c.would_inject
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        if v.opted_in == Some(false) {
            Some(format!(
                "kubectl label namespace {} {INJECT_KEY}=enabled, then {}",
                w.namespace,
                w.restart()
            ))
        } else {
            Some(w.restart())
        },
    ))
}
