//! `injections.profile-gone`: pods injected from a profile that no longer exists.

use super::WorkloadView;
use crate::report::{Finding, Severity};

pub(super) fn check(v: &WorkloadView<'_>) -> Option<Finding> {
    let c = v.counts;
    if c.profile_gone == 0 {
        return None;
    }
    Some(v.restart_finding(
        "injections.profile-gone",
        Severity::Warning,
        format!(
            "{} of {} pod(s) carry an injection of profile(s) that no longer exist: {}",
            c.profile_gone,
            c.pods,
            c.gone.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    ))
}
