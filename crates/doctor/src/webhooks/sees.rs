//! What a webhook sees: whether its selectors and `matchConditions` let a pod through to
//! it, and which webhooks of the chain see a probe pod.

use super::OWN_CONFIGURATION;
use crate::cel::{self, CelError};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use serde_json::{Value, json};
use sidecar_kit_core::selector::LabelSelector;
use std::collections::BTreeMap;

fn to_core(sel: &K8sSelector) -> Option<LabelSelector> {
    serde_json::to_value(sel)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// `a=b,c in (d,e),!f` as kubectl writes selectors; `<all>` for an empty one.
pub fn selector_text(sel: Option<&K8sSelector>) -> String {
    let Some(sel) = sel else {
        return "<all>".into();
    };
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {op} ({vals})", e.key),
        });
    }
    if parts.is_empty() {
        "<all>".into()
    } else {
        parts.join(",")
    }
}

/// Whether a webhook would see a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Yes,
    No(String),
    /// Cannot tell: why.
    Unknown(String),
}

/// Judges a webhook (already known to intercept pod CREATE) against a pod in a namespace.
pub fn sees(
    w: &MutatingWebhook,
    namespace: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    pod: &Value,
) -> Seen {
    let mut unknown = Vec::new();
    if let Some(sel) = &w.namespace_selector {
        match (to_core(sel), ns_labels) {
            (None, _) => unknown.push("its namespaceSelector cannot be read".to_string()),
            (Some(s), _) if s == LabelSelector::default() => {}
            (Some(_), None) => unknown.push(format!(
                "the labels of namespace {namespace} are not readable for its namespaceSelector"
            )),
            (Some(s), Some(l)) if !s.matches(l) => {
                return Seen::No(format!(
                    "its namespaceSelector {} does not match namespace {namespace}",
                    selector_text(Some(sel))
                ));
            }
            _ => {}
        }
    }
    if let Some(sel) = &w.object_selector {
        let labels: BTreeMap<String, String> = pod["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        match to_core(sel) {
            None => unknown.push("its objectSelector cannot be read".into()),
            Some(s) if !s.matches(&labels) => {
                return Seen::No(format!(
                    "its objectSelector {} does not match the pod's labels",
                    selector_text(Some(sel))
                ));
            }
            _ => {}
        }
    }
    let request = json!({"namespace": namespace, "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}});
    let env = cel::Env {
        object: pod,
        request: &request,
    };
    for c in w.match_conditions.iter().flatten() {
        match cel::evaluate(&c.expression, &env) {
            Ok(true) => {}
            Ok(false) => return Seen::No(format!("its matchCondition {:?} is false", c.name)),
            Err(e @ CelError::Runtime(_)) => unknown.push(format!(
                "matchCondition {:?}: {e} (the API server then applies failurePolicy {})",
                c.name,
                w.failure_policy.as_deref().unwrap_or("Fail")
            )),
            Err(e) => unknown.push(format!("matchCondition {:?}: {e}", c.name)),
        }
    }
    if unknown.is_empty() {
        Seen::Yes
    } else {
        Seen::Unknown(unknown.join("; "))
    }
}

/// Which webhooks of the chain see a probe pod, for the probes that lost the field.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Sightings {
    /// One note per webhook (its order, name and whether it sees the pod), for the data.
    pub notes: Vec<Value>,
    /// Webhooks that see it (sidecar-kit's own left out).
    pub matched: Vec<String>,
    /// Webhooks that may see it, with why it cannot be told.
    pub unclear: Vec<String>,
    /// Positions in the chain of the matched and unclear ones.
    pub suspects: Vec<usize>,
}

/// Judges every webhook of the chain against the probe pod `pod` in `namespace`.
pub(super) fn sightings(
    chain: &[(String, MutatingWebhook)],
    namespace: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    pod: &Value,
) -> Sightings {
    let mut out = Sightings::default();
    for (i, (cname, w)) in chain.iter().enumerate() {
        let seen = sees(w, namespace, ns_labels, pod);
        let name = format!("{cname}/{}", w.name);
        out.notes.push(json!({"order": i + 1, "webhook": name, "sees": match &seen {
            Seen::Yes if cname == OWN_CONFIGURATION => "yes (sidecar-kit's own webhook: JSON Patch, keeps the field)".to_string(),
            Seen::Yes => "yes".to_string(),
            Seen::No(why) => format!("no: {why}"),
            Seen::Unknown(why) => format!("cannot tell: {why}"),
        }}));
        // Our own webhook patches with RFC 6902 operations and puts the field back on
        // re-invocation: never a suspect.
        if cname == OWN_CONFIGURATION {
            continue;
        }
        match seen {
            Seen::Yes => {
                out.matched.push(name);
                out.suspects.push(i);
            }
            Seen::Unknown(why) => {
                out.unclear.push(format!("{name} ({why})"));
                out.suspects.push(i);
            }
            Seen::No(_) => {}
        }
    }
    out
}
