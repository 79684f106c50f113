//! Node affinity: the expressions affinity and universal modes require of nodes (by the
//! label label-nodes sets), added to every required term and taken out again; and the
//! pod's own scheduling constraints, without them.

use super::json::push_to;
use crate::facts::Scheduling;
use crate::pod::Template;
use crate::profile::Mode;
use crate::status::{Added, Injection, NODE_LABEL};
use serde_json::{Value, json};
use std::borrow::Cow;

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";

/// The expression a mode requires of nodes, if any.
pub(super) fn expr(mode: Mode) -> Option<Value> {
    match mode {
        Mode::Affinity => Some(json!({"key": NODE_LABEL, "operator": "In", "values": ["true"]})),
        Mode::Universal => {
            Some(json!({"key": NODE_LABEL, "operator": "NotIn", "values": ["rejected"]}))
        }
        _ => None,
    }
}

/// The required node selector terms of an affinity.
pub(super) fn required_terms(affinity: Option<&Value>) -> Option<&Vec<Value>> {
    affinity?
        .pointer(&format!("/nodeAffinity/{REQUIRED}/nodeSelectorTerms"))?
        .as_array()
}

/// The scheduling constraints without sidecar-kit's own node-affinity expressions.
pub(super) fn own_scheduling<'s>(s: &'s Scheduling, prev: &Added) -> Cow<'s, Scheduling> {
    if !prev.affinity {
        return Cow::Borrowed(s);
    }
    let mut own = s.clone();
    for term in &mut own.required_terms {
        term.match_expressions.retain(|r| r.key != NODE_LABEL);
    }
    // A term with nothing left was sidecar-kit's alone (Kubernetes rejects empty terms).
    own.required_terms
        .retain(|t| !t.match_expressions.is_empty() || !t.match_fields.is_empty());
    Cow::Owned(own)
}

/// The pod's affinity as the plan leaves it: without what the earlier injection added,
/// with what this plan adds. The record of the first profile that adds expressions notes
/// what was created whole.
pub(super) fn target(
    t: &Template<'_>,
    prev: &Added,
    exprs: &[Value],
    records: &mut [Injection],
) -> Option<Value> {
    let base = without_ours(t.spec.affinity.as_ref(), prev);
    if exprs.is_empty() {
        return base;
    }
    let (a, created) = with(base, exprs);
    if let Some(c) = created
        && let Some(r) = records.iter_mut().find(|r| r.added.affinity)
    {
        r.added.affinity_created = Some(c);
    }
    Some(a)
}

/// Whether a value is only empty objects and arrays.
fn hollow(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().all(hollow),
        Value::Array(a) => a.iter().all(hollow),
        _ => false,
    }
}

/// The affinity with sidecar-kit's expressions removed.
fn without_ours(cur: Option<&Value>, prev: &Added) -> Option<Value> {
    let mut a = cur?.clone();
    if !prev.affinity {
        return Some(a);
    }
    if let Some(Value::Array(terms)) =
        a.pointer_mut(&format!("/nodeAffinity/{REQUIRED}/nodeSelectorTerms"))
    {
        for term in terms.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Array(exprs)) = term.get_mut("matchExpressions") {
                exprs.retain(|e| {
                    ![Mode::Affinity, Mode::Universal]
                        .iter()
                        .any(|m| expr(*m).as_ref() == Some(e))
                });
                if exprs.is_empty() {
                    term.remove("matchExpressions");
                }
            }
        }
    }
    if let Some(created) = prev.affinity_created.as_deref() {
        let rel = created.strip_prefix("/affinity").unwrap_or(created);
        if rel.is_empty() {
            if hollow(&a) {
                return None;
            }
        } else if a.pointer(rel).is_some_and(hollow)
            && let Some((parent, key)) = rel.rsplit_once('/')
            && let Some(Value::Object(m)) = if parent.is_empty() {
                Some(&mut a)
            } else {
                a.pointer_mut(parent)
            }
        {
            m.remove(key);
        }
    }
    Some(a)
}

/// Adds expressions to every required term, creating the structure where missing.
/// Returns the new affinity and the pointer of what was created whole.
fn with(base: Option<Value>, exprs: &[Value]) -> (Value, Option<String>) {
    let term = || json!({"matchExpressions": exprs});
    let required = || json!({"nodeSelectorTerms": [term()]});
    let Some(mut a) = base else {
        return (
            json!({"nodeAffinity": {REQUIRED: required()}}),
            Some("/affinity".into()),
        );
    };
    let Some(obj) = a.as_object_mut() else {
        return (
            json!({"nodeAffinity": {REQUIRED: required()}}),
            Some("/affinity".into()),
        );
    };
    let na = obj.entry("nodeAffinity").or_insert(Value::Null);
    if !na.is_object() {
        *na = json!({REQUIRED: required()});
        return (a, Some("/affinity/nodeAffinity".into()));
    }
    let Some(na_obj) = na.as_object_mut() else {
        return (a, None);
    };
    let req = na_obj.entry(REQUIRED).or_insert(Value::Null);
    if !req.is_object() {
        *req = required();
        return (a, Some(format!("/affinity/nodeAffinity/{REQUIRED}")));
    }
    let Some(req_obj) = req.as_object_mut() else {
        return (a, None);
    };
    match req_obj.get_mut("nodeSelectorTerms") {
        Some(Value::Array(terms)) if !terms.is_empty() => {
            for t in terms.iter_mut().filter_map(Value::as_object_mut) {
                for e in exprs {
                    push_to(t, "matchExpressions", e.clone());
                }
            }
        }
        _ => {
            req_obj.insert("nodeSelectorTerms".into(), json!([term()]));
        }
    }
    (a, None)
}
