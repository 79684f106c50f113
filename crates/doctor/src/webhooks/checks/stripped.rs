//! `webhooks.restart-policy-stripped`: a probe lost `restartPolicy: Always` in the
//! admission chain; the finding names the webhooks that see the probe.

use crate::report::{Finding, Severity};
use crate::webhooks::AUDIT_NOTE;
use crate::webhooks::probe::labels_text;
use crate::webhooks::sees::Sightings;
use std::collections::BTreeMap;

/// A probe that lost the field, and which webhooks see it.
pub(in crate::webhooks) struct LostProbe<'a> {
    pub namespace: &'a str,
    /// Where the probe's labels came from.
    pub origin: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// How the field was lost.
    pub detail: &'a str,
    pub sightings: &'a Sightings,
    /// Whether the webhooks could be listed.
    pub chain_listed: bool,
}

pub(in crate::webhooks) fn check(p: &LostProbe<'_>) -> Finding {
    let who = who(p.sightings, p.chain_listed);
    let with = if p.labels.is_empty() {
        String::new()
    } else {
        format!(
            " with the labels of {} ({})",
            p.origin,
            labels_text(p.labels)
        )
    };
    let detail = p.detail;
    Finding::new(
        "webhooks.restart-policy-stripped",
        Severity::Error,
        Some(format!("Namespace {}", p.namespace)),
        format!(
            "a dry-run pod{with} lost restartPolicy: Always on its native sidecar in the admission chain ({detail}); {who}. Pods with native sidecars here are rejected or hang in Init. Note: {AUDIT_NOTE}"
        ),
        Some("have the webhook mutate with a JSON Patch of only the fields it changes (patch-based mutation) instead of re-serialising the pod, or upgrade it to a build with a Kubernetes 1.28+ client; until then exclude this namespace from it (namespaceSelector), or use legacy or universal mode here".into()),
    )
}

/// Who may have removed the field, in words.
fn who(s: &Sightings, chain_listed: bool) -> String {
    match (s.matched.len(), s.unclear.is_empty()) {
        (0, true) if !chain_listed => "the webhooks could not be listed".to_string(),
        (0, true) => "no listed webhook intercepts it: look at mutating admission policies or admission plugins".to_string(),
        (1, true) => format!("the only webhook that sees it is {}", s.matched[0]),
        _ => {
            let mut parts = Vec::new();
            if !s.matched.is_empty() {
                parts.push(format!("webhooks that see it: {}", s.matched.join(", ")));
            }
            if !s.unclear.is_empty() {
                parts.push(format!("may see it: {}", s.unclear.join(", ")));
            }
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_have_removed_the_field() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (matched, unclear, webhooks listed, the words)
        let cases = [
            (vec![], vec![], false, "the webhooks could not be listed"),
            (
                vec![],
                vec![],
                true,
                "no listed webhook intercepts it: look at mutating admission policies or admission plugins",
            ),
            (
                vec!["a/x"],
                vec![],
                true,
                "the only webhook that sees it is a/x",
            ),
            (
                vec!["a/x", "b/y"],
                vec![],
                true,
                "webhooks that see it: a/x, b/y",
            ),
            (vec![], vec!["c/z (why)"], true, "may see it: c/z (why)"),
            (
                vec!["a/x"],
                vec!["c/z (why)"],
                false,
                "webhooks that see it: a/x; may see it: c/z (why)",
            ),
        ];
        for (matched, unclear, listed, want) in cases {
            let s = Sightings {
                matched: names(&matched),
                unclear: names(&unclear),
                ..Sightings::default()
            };
            assert_eq!(who(&s, listed), want);
        }
    }
}
