//! `webhooks.probe-refused`: the dry run was refused for another reason than the field, so
//! whether it survives is unknown.

use crate::report::{Finding, Severity};
use crate::webhooks::gather::{Probed, ProbedNamespace};
use crate::webhooks::probe::ProbeResult;

pub(in crate::webhooks) fn check(ns: &ProbedNamespace, p: &Probed) -> Option<Finding> {
    let ProbeResult::Refused { message } = &p.result else {
        return None;
    };
    Some(Finding::new(
        "webhooks.probe-refused",
        Severity::Warning,
        Some(format!("Namespace {}", ns.name)),
        format!(
            "the dry-run probe pod ({}) was refused, so whether restartPolicy survives is unknown: {message}",
            p.origin
        ),
        Some("a webhook or policy rejected a minimal restricted pod: check the message".into()),
    ))
}
