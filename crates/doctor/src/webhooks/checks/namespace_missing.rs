//! `webhooks.namespace-missing`: a namespace asked for does not exist.

use crate::report::{Finding, Severity};
use crate::webhooks::gather::ProbedNamespace;

pub(in crate::webhooks) fn check(ns: &ProbedNamespace) -> Option<Finding> {
    (!ns.exists).then(|| {
        Finding::new(
            "webhooks.namespace-missing",
            Severity::Warning,
            Some(format!("Namespace {}", ns.name)),
            "does not exist: not probed",
            None,
        )
    })
}
