//! Every pod judged against the profiles (with what the engine would inject into it now)
//! and counted under its workload.

use super::gather::Gathered;
use super::state::{Counts, judge};
use super::workload::{Workload, workload_of};
use sidecar_kit_core::engine::{self, Options, SYSTEM_NAMESPACES, TemplateResult};
use sidecar_kit_core::facts::{
    ClusterFacts, FACTS_API_VERSION, FACTS_KIND, NamespaceFacts, StaticFacts,
};
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_core::status::STATUS_ANNOTATION;
use std::collections::BTreeMap;

/// The counts of every workload that owns a pod.
pub(super) fn tally(g: &Gathered, profiles: &ProfileSet) -> BTreeMap<Workload, Counts> {
    let facts = StaticFacts::new(ClusterFacts {
        api_version: FACTS_API_VERSION.into(),
        kind: FACTS_KIND.into(),
        namespaces: g
            .ns_labels
            .iter()
            .map(|(n, l)| NamespaceFacts {
                name: n.clone(),
                labels: l.clone(),
            })
            .collect(),
        ..ClusterFacts::default()
    });
    let opts = Options {
        excluded_namespaces: SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let mut by_workload: BTreeMap<Workload, Counts> = BTreeMap::new();
    for p in &g.pods {
        let w = workload_of(p, &g.jobs);
        let raw = serde_json::to_value(p).unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let class = g.classes.as_ref().and_then(|c| c.get(&node).copied());
        let would = if raw["metadata"]["annotations"][STATUS_ANNOTATION].is_null() {
            would_inject(&raw, &w, profiles, &facts, &opts)
        } else {
            Vec::new()
        };
        let state = judge(&raw, profiles, &would, class);
        by_workload.entry(w).or_default().count(state);
    }
    by_workload
}

/// The profiles the engine would inject into a pod (raw JSON) of `w` now.
fn would_inject(
    raw: &serde_json::Value,
    w: &Workload,
    profiles: &ProfileSet,
    facts: &StaticFacts,
    opts: &Options,
) -> Vec<String> {
    let mut would = Vec::new();
    let text = raw.to_string();
    let opts = Options {
        namespace: Some(w.namespace.clone()),
        ..opts.clone()
    };
    if let Ok(out) = engine::inject(&text, profiles, facts, &opts) {
        for t in out.templates {
            if let TemplateResult::Injected {
                status,
                changed: true,
            } = t.result
            {
                would.extend(status.injections.into_iter().map(|i| i.profile));
            }
        }
    }
    would
}
