//! `injections.stale`: pods injected from an older version of a profile.

use super::WorkloadView;
use crate::report::{Finding, Severity};

pub(super) fn check(v: &WorkloadView<'_>) -> Option<Finding> {
    let c = v.counts;
    if c.stale == 0 {
        return None;
    }
    let hashes: Vec<String> = c
        .stale_hashes
        .iter()
        .map(|(p, old, new)| format!("{p} {old} (now {new})"))
        .collect();
    Some(v.restart_finding(
        "injections.stale",
        Severity::Warning,
        format!(
            "{} of {} pod(s) carry an older injection: {}",
            c.stale,
            c.pods,
            hashes.join(", ")
        ),
    ))
}
