//! The webhook chain: the mutating webhooks that intercept pod CREATE, in the order the API
//! server calls them, and the table that shows them.

use super::sees::selector_text;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use serde::Serialize;
use serde_json::Value;

/// One mutating webhook that intercepts pod CREATE.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// 1-based position in the order the API server calls them.
    pub order: usize,
    pub configuration: String,
    pub webhook: String,
    pub failure_policy: String,
    pub reinvocation_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<Value>,
    pub match_conditions: Vec<(String, String)>,
}

/// Whether a webhook's rules cover pod CREATE (`v1` pods in the core group).
pub fn intercepts_pod_create(w: &MutatingWebhook) -> bool {
    let any = |list: &[String], want: &[&str]| list.iter().any(|x| want.contains(&x.as_str()));
    w.rules.as_deref().unwrap_or_default().iter().any(|r| {
        let ops = r.operations.as_deref().unwrap_or_default();
        let groups = r.api_groups.as_deref().unwrap_or_default();
        let versions = r.api_versions.as_deref().unwrap_or_default();
        let resources = r.resources.as_deref().unwrap_or_default();
        any(ops, &["CREATE", "*"])
            && any(groups, &["", "*"])
            && any(versions, &["v1", "*"])
            && any(resources, &["pods", "*", "*/*"])
            && r.scope
                .as_deref()
                .is_none_or(|s| s == "*" || s == "Namespaced")
    })
}

/// The webhooks of `configs` that intercept pod CREATE, with their configuration's name, in
/// call order (by configuration name, then position).
pub(super) fn in_call_order(
    mut configs: Vec<MutatingWebhookConfiguration>,
) -> Vec<(String, MutatingWebhook)> {
    configs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut webhooks = Vec::new();
    for c in &configs {
        let cname = c.metadata.name.clone().unwrap_or_default();
        for w in c.webhooks.iter().flatten() {
            if intercepts_pod_create(w) {
                webhooks.push((cname.clone(), w.clone()));
            }
        }
    }
    webhooks
}

impl Hook {
    /// The chain as the report's data lists it.
    pub(super) fn list(webhooks: &[(String, MutatingWebhook)]) -> Vec<Hook> {
        webhooks
            .iter()
            .enumerate()
            .map(|(i, (cname, w))| Hook {
                order: i + 1,
                configuration: cname.clone(),
                webhook: w.name.clone(),
                failure_policy: w.failure_policy.clone().unwrap_or_else(|| "Fail".into()),
                reinvocation_policy: w
                    .reinvocation_policy
                    .clone()
                    .unwrap_or_else(|| "Never".into()),
                namespace_selector: w
                    .namespace_selector
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok()),
                object_selector: w
                    .object_selector
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok()),
                match_conditions: w
                    .match_conditions
                    .iter()
                    .flatten()
                    .map(|c| (c.name.clone(), c.expression.clone()))
                    .collect(),
            })
            .collect()
    }
}

/// The report's table of the chain (header first); empty for an empty chain.
pub(super) fn table(hooks: &[Hook], webhooks: &[(String, MutatingWebhook)]) -> Vec<Vec<String>> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let mut table = vec![crate::report::header(&[
        "#",
        "CONFIGURATION",
        "WEBHOOK",
        "FAILURE",
        "REINVOKE",
        "NAMESPACES",
        "OBJECTS",
        "MATCH CONDITIONS",
    ])];
    for (h, (_, w)) in hooks.iter().zip(webhooks) {
        table.push(vec![
            h.order.to_string(),
            h.configuration.clone(),
            h.webhook.clone(),
            h.failure_policy.clone(),
            h.reinvocation_policy.clone(),
            selector_text(w.namespace_selector.as_ref()),
            selector_text(w.object_selector.as_ref()),
            if h.match_conditions.is_empty() {
                "-".into()
            } else {
                h.match_conditions
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ]);
    }
    table
}
