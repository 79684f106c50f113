//! Auto-mode decision tables: for a cluster and a pod, the mode chosen and why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sidecar_kit_core::engine::{self, Options, TemplateResult};
use sidecar_kit_core::facts::{
    Availability, CandidateSummary, ClusterFacts, Facts, Scheduling, StaticFacts,
};
use sidecar_kit_core::profile::{Mode, Profile, ProfileSet};
use sidecar_kit_core::version::{GateState, KubeVersion};
use std::collections::BTreeMap;
use std::sync::Arc;

fn profiles(fallback: &str) -> ProfileSet {
    let p = json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile", "metadata": {"name": "agent"},
        "spec": {"mode": "auto", "fallback": fallback, "containers": [{"name": "agent", "image": "agent:1", "command": ["/agent"]}]}});
    ProfileSet::new(vec![Profile::from_value(&p, "t").unwrap()], Some("shim:1")).unwrap()
}

/// A cluster: pool "new" (1.31, capable), "old" (1.27, unaware), "edge" (1.28, gate off:
/// rejecting), "gpu" (1.31, tainted), one cordoned 1.31 node.
fn cluster(api_gate: &str, lease: bool) -> ClusterFacts {
    serde_json::from_value(json!({
        "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "ClusterFacts",
        "apiServer": {"version": "v1.31.2", "sidecarContainers": api_gate},
        "labeler": {"leaseFresh": lease},
        "nodes": [
            {"name": "new-1", "kubeletVersion": "v1.31.2", "labels": {"pool": "new", "zone": "a"}},
            {"name": "new-2", "kubeletVersion": "v1.31.2", "labels": {"pool": "new", "zone": "b"}},
            {"name": "old-1", "kubeletVersion": "v1.27.16", "labels": {"pool": "old", "zone": "a"}},
            {"name": "edge-1", "kubeletVersion": "v1.28.9", "labels": {"pool": "edge", "zone": "b"}},
            {"name": "gpu-1", "kubeletVersion": "v1.31.2", "labels": {"pool": "gpu"}, "taints": [{"key": "gpu", "effect": "NoSchedule"}]},
            {"name": "cordoned", "kubeletVersion": "v1.27.1", "unschedulable": true, "labels": {"pool": "new"}}
        ]
    }))
    .unwrap()
}

fn pod(spec_extra: Value) -> String {
    let mut spec = json!({"containers": [{"name": "app", "image": "app:1", "command": ["/app"]}]});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}, "spec": spec}).to_string()
}

fn decide(facts: &dyn Facts, fallback: &str, spec_extra: Value) -> (Mode, String) {
    let out = engine::inject(
        &pod(spec_extra),
        &profiles(fallback),
        facts,
        &Options::default(),
    )
    .unwrap();
    match &out.templates[0].result {
        TemplateResult::Injected { status, .. } => (
            status.injections[0].mode,
            status.injections[0].reason.clone(),
        ),
        other => panic!("not injected: {other:?}"),
    }
}

#[test]
fn decision_table() {
    let on = StaticFacts::new(cluster("enabled", true));
    let stale = StaticFacts::new(cluster("enabled", false));
    let gate_off = StaticFacts::new(cluster("disabled", true));
    let none = StaticFacts::none();
    let new_pool = json!({"nodeSelector": {"pool": "new"}});
    let old_pool = json!({"nodeSelector": {"pool": "old"}});
    let affinity_new_or_gpu = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["new", "gpu"]}]}]}}}});
    let tolerates_gpu = json!({"nodeSelector": {"pool": "gpu"}, "tolerations": [{"key": "gpu", "operator": "Exists"}]});
    let gpu_untolerated = json!({"nodeSelector": {"pool": "gpu"}});
    let daemonset_on_edge = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge-1"]}]}]}}}});
    let bound_to_old = json!({"nodeName": "old-1"});
    let zone_a_not_old = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "pool", "operator": "NotIn", "values": ["old"]}]}]}}}});
    let windows = json!({"nodeSelector": {"kubernetes.io/os": "windows"}});

    // (facts, fallback, pod, expected mode, words the reason must carry)
    let table: Vec<(&dyn Facts, &str, Value, Mode, &str)> = vec![
        (&on, "legacy", json!({}), Mode::Legacy, "mixed"),
        (
            &on,
            "universal",
            json!({}),
            Mode::Universal,
            "fallback universal",
        ),
        (
            &on,
            "affinity",
            json!({}),
            Mode::Affinity,
            "fallback affinity",
        ),
        (
            &stale,
            "universal",
            json!({}),
            Mode::Legacy,
            "Lease is not fresh",
        ),
        (
            &stale,
            "affinity",
            json!({}),
            Mode::Legacy,
            "Lease is not fresh",
        ),
        (
            &on,
            "legacy",
            new_pool.clone(),
            Mode::Native,
            "all 2 candidate nodes are capable",
        ),
        (
            &on,
            "universal",
            old_pool,
            Mode::Legacy,
            "no candidate node is capable",
        ),
        (
            &on,
            "legacy",
            affinity_new_or_gpu,
            Mode::Native,
            "all 2 candidate nodes",
        ),
        (
            &on,
            "legacy",
            tolerates_gpu,
            Mode::Native,
            "all 1 candidate nodes",
        ),
        (
            &on,
            "legacy",
            gpu_untolerated,
            Mode::Legacy,
            "no known node matches",
        ),
        (
            &on,
            "universal",
            daemonset_on_edge,
            Mode::Legacy,
            "1 rejecting (edge-1)",
        ),
        (
            &on,
            "universal",
            bound_to_old,
            Mode::Legacy,
            "1 unaware (old-1)",
        ),
        (
            &on,
            "legacy",
            zone_a_not_old,
            Mode::Native,
            "all 1 candidate nodes",
        ),
        (
            &on,
            "universal",
            windows,
            Mode::Legacy,
            "no known node matches",
        ),
        (
            &gate_off,
            "universal",
            new_pool.clone(),
            Mode::Legacy,
            "drops restartPolicy",
        ),
        // Without facts the Lease is not known fresh: no fallback that steers by its labels.
        (
            &none,
            "universal",
            json!({}),
            Mode::Legacy,
            "no cluster facts (pass --facts FILE from `sidecar-kit doctor cluster -o facts`); fallback universal needs the node labels of label-nodes, whose Lease is unknown",
        ),
        (
            &none,
            "affinity",
            json!({}),
            Mode::Legacy,
            "fallback affinity needs the node labels of label-nodes",
        ),
        (&none, "legacy", new_pool, Mode::Legacy, "no cluster facts"),
    ];
    for (i, (facts, fallback, extra, mode, why)) in table.into_iter().enumerate() {
        let (got, reason) = decide(facts, fallback, extra.clone());
        assert_eq!(
            got, mode,
            "row {i}: {extra} with fallback {fallback}: {reason}"
        );
        assert!(
            reason.contains(why),
            "row {i}: reason {reason:?} should say {why:?}"
        );
    }
}

/// A live cache that has not synced (or lost the API): auto uses the fallback, and says why.
struct Unsynced;

impl Facts for Unsynced {
    fn availability(&self) -> Availability {
        Availability::Unsynced("node cache not synced yet".into())
    }
    fn api_server(&self) -> (Option<KubeVersion>, GateState) {
        (KubeVersion::parse("v1.31.0"), GateState::Enabled)
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        Some(true)
    }
    fn namespace_labels(&self, _: &str) -> Option<Arc<BTreeMap<String, String>>> {
        None
    }
    fn candidates(&self, _: &Scheduling) -> CandidateSummary {
        panic!("an unsynced cache is not asked for candidates")
    }
}

#[test]
fn unsynced_cache_uses_the_fallback() {
    let (mode, reason) = decide(&Unsynced, "universal", json!({}));
    assert_eq!(mode, Mode::Universal);
    assert!(
        reason.contains("not synced yet") && reason.contains("fallback universal"),
        "{reason}"
    );
    let (mode, _) = decide(&Unsynced, "legacy", json!({}));
    assert_eq!(mode, Mode::Legacy);
}

/// Regression (found by the e2e suite on a real API server): on re-invocation, `auto` judged
/// the candidate nodes with the node-affinity expression it had added itself, saw only
/// capable nodes, and turned an `affinity` decision into `native`, dropping the steering.
/// Decisions must be made on the pod's own scheduling constraints.
#[test]
fn reinjection_judges_nodes_without_its_own_affinity() {
    let mut c = cluster("enabled", true);
    // The labeler's labels, which the added affinity expressions select on.
    for n in &mut c.nodes {
        let class = n.class();
        if let Some(v) = class.label_value() {
            n.labels
                .insert("sidecar-kit.io/native-sidecars".into(), v.into());
        }
    }
    let facts = StaticFacts::new(c);
    for fallback in ["affinity", "universal"] {
        let set = profiles(fallback);
        let once_out = engine::inject(&pod(json!({})), &set, &facts, &Options::default()).unwrap();
        let mut once: Value = serde_json::from_str(&pod(json!({}))).unwrap();
        let p: json_patch::Patch =
            serde_json::from_slice(&sidecar_kit_core::patch::to_json(&once_out.patch)).unwrap();
        json_patch::patch(&mut once, &p).unwrap();
        let again = engine::inject(&once.to_string(), &set, &facts, &Options::default()).unwrap();
        assert!(
            again.patch.is_empty(),
            "fallback {fallback}: injecting again must change nothing, got {}",
            serde_json::to_string(&again.patch).unwrap()
        );
        let TemplateResult::Injected { status, changed } = &again.templates[0].result else {
            panic!()
        };
        assert!(!changed);
        assert_eq!(status.injections[0].mode.as_str(), fallback);
    }
}
