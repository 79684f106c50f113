//! Opt-outs and exclusions: a pod or namespace that says `sidecar-kit.io/inject=disabled`,
//! and namespaces the caller excludes.

use super::outcome::{Skip, SkipCode};
use crate::pod::Template;
use crate::status::INJECT_KEY;
use std::collections::BTreeMap;

/// The pod's namespace is excluded, or the pod opted out by label or annotation.
pub(super) fn pod(t: &Template<'_>, ns: Option<&str>, excluded: &[String]) -> Result<(), Skip> {
    if let Some(n) = ns.filter(|n| excluded.iter().any(|x| x == n)) {
        return Err(Skip::new(
            SkipCode::ExcludedNamespace,
            format!("namespace {n} is excluded from injection"),
        ));
    }
    for (what, v) in [
        ("label", t.meta.label(INJECT_KEY)),
        ("annotation", t.meta.annotation(INJECT_KEY)),
    ] {
        if v == Some("disabled") {
            return Err(Skip::new(
                SkipCode::OptedOut,
                format!("pod {what} {INJECT_KEY}=disabled"),
            ));
        }
    }
    Ok(())
}

/// The pod's namespace opted out by label (when its labels are known).
pub(super) fn namespace(
    ns: Option<&str>,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<(), Skip> {
    if let Some(l) = labels
        && l.get(INJECT_KEY).map(String::as_str) == Some("disabled")
    {
        return Err(Skip::new(
            SkipCode::NamespaceOptedOut,
            format!(
                "namespace {} is labelled {INJECT_KEY}=disabled",
                ns.unwrap_or("")
            ),
        ));
    }
    Ok(())
}
