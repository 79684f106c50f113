//! `webhooks.suspect`: a webhook that sees (or may see) probes that lost the field.

use crate::report::{Finding, Severity};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use std::collections::{BTreeMap, BTreeSet};

/// `suspects`: positions in `chain` to the namespaces where the webhook saw a probe that
/// lost the field.
pub(in crate::webhooks) fn check(
    chain: &[(String, MutatingWebhook)],
    suspects: &BTreeMap<usize, BTreeSet<String>>,
) -> Vec<Finding> {
    suspects
        .iter()
        .map(|(i, namespaces)| {
            let (cname, w) = &chain[*i];
            Finding::new(
                "webhooks.suspect",
                Severity::Warning,
                Some(format!("MutatingWebhookConfiguration {cname}, webhook {}", w.name)),
                format!(
                    "sees (or may see) the probe pods that lost restartPolicy in {}: it is a suspect (webhooks built on a client older than Kubernetes 1.28, or that re-serialise the whole pod, drop the field)",
                    namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                Some("ask its maintainers for patch-based mutation or a build with a 1.28+ client; meanwhile exclude namespaces that use native sidecars with its namespaceSelector".into()),
            )
        })
        .collect()
}
