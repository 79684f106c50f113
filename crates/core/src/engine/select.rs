//! Profile selection: the profiles the pod names in `sidecar-kit.io/profiles`, else those
//! whose selectors match its labels and namespace. For `explain`, why each was (not) taken.

use super::notes::Notes;
use super::outcome::{Considered, SelectReason, Skip, SkipCode};
use super::plan::Context;
use crate::profile::{Profile, ProfileSet};
use crate::selector::{Labels, NoLabels};
use crate::status::PROFILES_ANNOTATION;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The profiles that apply to the pod, highest priority first.
pub(super) fn profiles(
    cx: &mut Context<'_, '_, '_>,
    set: &ProfileSet,
    ns_labels: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Arc<Profile>>, Skip> {
    let explain = cx.opts.explain;
    match cx.t.meta.annotation(PROFILES_ANNOTATION) {
        Some(list) => named(list, set, explain, &mut cx.notes),
        None => Ok(by_selectors(cx, set, ns_labels)),
    }
}

/// The profiles named by the annotation, each once, ordered by priority then name.
fn named(
    list: &str,
    set: &ProfileSet,
    explain: bool,
    notes: &mut Notes,
) -> Result<Vec<Arc<Profile>>, Skip> {
    let mut chosen: Vec<Arc<Profile>> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(p) = set.get(name) else {
            return Err(Skip::new(
                SkipCode::UnknownProfile,
                format!(
                    "annotation {PROFILES_ANNOTATION} names profile {name:?}, which is not loaded"
                ),
            ));
        };
        if !chosen.iter().any(|c| c.name == p.name) {
            chosen.push(p.clone());
        }
    }
    chosen.sort_by(|a, b| {
        b.spec
            .priority
            .cmp(&a.spec.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    if explain {
        notes.considered.extend(chosen.iter().map(|p| Considered {
            profile: p.name.clone(),
            matched: true,
            code: SelectReason::NamedByAnnotation,
            why: format!("named by annotation {PROFILES_ANNOTATION}"),
        }));
    }
    Ok(chosen)
}

/// The profiles whose selector matches the pod's labels and whose namespaceSelector does
/// not refuse its namespace (unknown namespace labels are a warning, not a refusal).
fn by_selectors(
    cx: &mut Context<'_, '_, '_>,
    set: &ProfileSet,
    ns_labels: Option<&BTreeMap<String, String>>,
) -> Vec<Arc<Profile>> {
    let (ns, explain, notes) = (cx.ns.as_deref(), cx.opts.explain, &mut cx.notes);
    let labels: &dyn Labels = match &cx.t.meta.labels {
        Some(l) => l,
        None => &NoLabels,
    };
    let mut chosen = Vec::new();
    for p in set.iter() {
        let sel_ok = p.spec.selector.matches(labels);
        let ns_ok = match (&p.spec.namespace_selector, ns_labels) {
            (None, _) => Some(true),
            (Some(s), Some(l)) => Some(s.matches(l)),
            (Some(_), None) => None,
        };
        let matched = sel_ok && ns_ok != Some(false);
        if matched {
            chosen.push(p.clone());
            if ns_ok.is_none() {
                notes.warn(format!("profile {}: namespaceSelector not evaluated: labels of namespace {} unknown (give them in the facts file)", p.name, ns.unwrap_or("(none)")));
            }
        }
        if explain {
            let (code, why) = why(sel_ok, ns_ok, ns);
            notes.considered.push(Considered {
                profile: p.name.clone(),
                matched,
                code,
                why,
            });
        }
    }
    chosen
}

/// Why a profile's selectors took the pod or not, for `explain`.
fn why(sel_ok: bool, ns_ok: Option<bool>, ns: Option<&str>) -> (SelectReason, String) {
    match (sel_ok, ns_ok) {
        (true, Some(true)) => (
            SelectReason::SelectorMatches,
            "selector matches".to_string(),
        ),
        (true, None) => (
            SelectReason::NamespaceSelectorNotEvaluated,
            "selector matches; namespaceSelector not evaluated".to_string(),
        ),
        (true, Some(false)) => (
            SelectReason::NamespaceSelectorMismatch,
            format!(
                "namespaceSelector does not match namespace {}",
                ns.unwrap_or("")
            ),
        ),
        (false, _) => (
            SelectReason::SelectorMismatch,
            "selector does not match the pod's labels".to_string(),
        ),
    }
}
