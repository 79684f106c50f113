//! Properties of the engine over generated pods, in every mode:
//! - fields this code does not know survive, at every level;
//! - every injected container appears once;
//! - inject twice = inject once (the second plan is empty);
//! - uninject after inject = the input, exactly;
//! - re-injecting with a changed profile = injecting the new profile into the original;
//! - the result obeys the pod validation rules of `docs/native-sidecars.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sidecar_kit_core::engine::{self, Options, TemplateResult};
use sidecar_kit_core::facts::StaticFacts;
use sidecar_kit_core::profile::{Mode, Profile, ProfileSet};
use std::collections::{BTreeMap, BTreeSet};

fn profile_set(agent_image: &str) -> ProfileSet {
    let p = json!({
        "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "containers": [{
                "name": "agent", "image": agent_image, "command": ["/agent", "run"],
                "readinessProbe": {"tcpSocket": {"port": 9000}},
                "ports": [{"containerPort": 9000, "hostPort": 9000}],
                "volumeMounts": [{"name": "agent-data", "mountPath": "/data"}],
                "x-future-field": {"kept": true}
            }],
            "initContainers": [{"name": "agent-setup", "image": agent_image, "x-future": 1}],
            "volumes": [{"name": "agent-data", "emptyDir": {}, "x-future": "v"}],
            "appContainers": {
                "volumeMounts": [{"name": "agent-data", "mountPath": "/agent-data"}],
                "env": [{"name": "AGENT_ADDR", "value": "127.0.0.1:9000"}]
            }
        }
    });
    ProfileSet::new(
        vec![Profile::from_value(&p, "test").unwrap()],
        Some("shim:test"),
    )
    .unwrap()
}

fn unknown_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,8}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!({"nested": {"deep": [1, "two", null]}})),
        Just(json!([])),
    ]
}

/// Adds 0..2 unknown fields `x-u<n>` to an object.
fn with_unknown(obj: Value, extra: Vec<Value>) -> Value {
    let mut m = match obj {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (i, v) in extra.into_iter().enumerate() {
        m.insert(format!("x-u{i}"), v);
    }
    Value::Object(m)
}

fn extras() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(unknown_value(), 0..3)
}

/// How a list or map field of the input is written: absent, present but empty, or with an
/// item (an explicit empty one must come back as it was, and so must an absent one).
#[derive(Debug, Clone, Copy)]
enum Shape {
    Absent,
    Empty,
    Items,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop::sample::select(vec![Shape::Absent, Shape::Empty, Shape::Items])
}

fn container(
    name: String,
    with_command: bool,
    mounts: Vec<String>,
    env: Shape,
    extra: Vec<Value>,
) -> Value {
    let mut c = json!({"name": name, "image": "app:1"});
    if with_command {
        c["command"] = json!(["/app", "serve"]);
    }
    match (mounts.is_empty(), env) {
        (false, _) => {
            c["volumeMounts"] = Value::Array(
                mounts
                    .iter()
                    .map(|v| json!({"name": v, "mountPath": format!("/mnt/{v}")}))
                    .collect(),
            )
        }
        (true, Shape::Empty) => c["volumeMounts"] = json!([]),
        _ => {}
    }
    match env {
        Shape::Absent => {}
        Shape::Empty => c["env"] = json!([]),
        Shape::Items => c["env"] = json!([{"name": "PLAIN", "value": "1"}]),
    }
    with_unknown(c, extra)
}

prop_compose! {
    fn pod()(
        n_apps in 1usize..4,
        commands in prop::collection::vec(any::<bool>(), 3),
        envs in prop::collection::vec(shape(), 3),
        n_init in 0usize..3,
        n_vols in 0usize..3,
        restart in prop::sample::select(vec![None, Some("Always"), Some("Never"), Some("OnFailure")]),
        affinity in 0u8..4,
        annotations in shape(),
        empty_lists in any::<bool>(),
        x in prop::collection::vec(extras(), 12),
    ) -> Value {
        let vols: Vec<String> = (0..n_vols).map(|i| format!("vol{i}")).collect();
        let apps: Vec<Value> = (0..n_apps).map(|i| container(format!("app{i}"), commands[i], vols.iter().take(i % (n_vols + 1)).cloned().collect(), envs[i], x[i].clone())).collect();
        let mut spec = json!({"containers": apps});
        if n_init > 0 || empty_lists {
            spec["initContainers"] = Value::Array((0..n_init).map(|i| with_unknown(json!({"name": format!("init{i}"), "image": "init:1"}), x[3].clone())).collect());
        }
        if n_vols > 0 || empty_lists {
            spec["volumes"] = Value::Array(vols.iter().map(|v| with_unknown(json!({"name": v, "emptyDir": {}}), x[4].clone())).collect());
        }
        if let Some(r) = restart {
            spec["restartPolicy"] = json!(r);
        }
        let term = |k: &str| with_unknown(json!({"matchExpressions": [{"key": k, "operator": "In", "values": ["a"]}]}), x[5].clone());
        match affinity {
            1 => spec["affinity"] = with_unknown(json!({"nodeAffinity": with_unknown(json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term("zone"), term("rack")]}}), x[6].clone())}), x[7].clone()),
            2 => spec["affinity"] = with_unknown(json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}), x[7].clone()),
            3 => spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}),
            _ => {}
        }
        let spec = with_unknown(spec, x[8].clone());
        let mut meta = json!({"name": "p", "labels": {"app": "web"}});
        match annotations {
            Shape::Absent => {}
            Shape::Empty => meta["annotations"] = json!({}),
            Shape::Items => meta["annotations"] = json!({"team": "blue"}),
        }
        let meta = with_unknown(meta, x[9].clone());
        with_unknown(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Pending"}}), x[10].clone())
    }
}

fn apply(doc: &Value, ops: &[sidecar_kit_core::patch::PatchOp]) -> Value {
    let mut d = doc.clone();
    let p: json_patch::Patch =
        serde_json::from_slice(&sidecar_kit_core::patch::to_json(ops)).unwrap();
    json_patch::patch(&mut d, &p).unwrap_or_else(|e| {
        panic!(
            "patch does not apply: {e}\n{}",
            serde_json::to_string_pretty(ops).unwrap()
        )
    });
    d
}

fn inject(doc: &Value, set: &ProfileSet, mode: Mode) -> (Value, engine::Outcome) {
    let opts = Options {
        mode_override: Some(mode),
        ..Options::default()
    };
    let out = engine::inject(&doc.to_string(), set, &StaticFacts::none(), &opts).unwrap();
    (apply(doc, &out.patch), out)
}

/// Every unknown field (`x-u*`), keyed by a path where list items are named by `name`.
fn unknowns(v: &Value, path: String, out: &mut BTreeSet<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.starts_with("x-") {
                    out.insert((format!("{path}/{k}"), x.to_string()));
                }
                unknowns(x, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let id = x
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or(i.to_string(), str::to_string);
                unknowns(x, format!("{path}[{id}]"), out);
            }
        }
        _ => {}
    }
}

fn check_valid(pod: &Value) {
    let spec = &pod["spec"];
    let mut names = BTreeSet::new();
    let volumes: BTreeSet<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for (list, init) in [("initContainers", true), ("containers", false)] {
        for c in spec[list].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap();
            assert!(
                names.insert(name.to_string()),
                "container {name} appears twice"
            );
            let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            if init && !sidecar {
                for k in [
                    "lifecycle",
                    "livenessProbe",
                    "readinessProbe",
                    "startupProbe",
                ] {
                    assert!(c.get(k).is_none(), "regular init container {name} has {k}");
                }
            }
            if !init {
                assert!(
                    c.get("restartPolicy").is_none(),
                    "regular container {name} has restartPolicy"
                );
            }
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let v = m["name"].as_str().unwrap();
                assert!(
                    volumes.contains(v),
                    "{name} mounts {v}, which the pod does not define"
                );
            }
        }
    }
    let vols: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        vols.len(),
        volumes.len(),
        "duplicate volume names: {vols:?}"
    );
}

fn mode_strategy() -> impl Strategy<Value = Mode> {
    prop::sample::select(vec![
        Mode::Native,
        Mode::Legacy,
        Mode::Affinity,
        Mode::Universal,
        Mode::Auto,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_properties(pod in pod(), mode in mode_strategy()) {
        let set = profile_set("agent:1");
        let (once, out) = inject(&pod, &set, mode);
        prop_assert!(matches!(out.templates[0].result, TemplateResult::Injected { changed: true, .. }), "{:?}", out.templates[0].result);

        // Unknown fields survive at every level.
        let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
        unknowns(&pod, String::new(), &mut before);
        unknowns(&once, String::new(), &mut after);
        let lost: Vec<_> = before.difference(&after).collect();
        prop_assert!(lost.is_empty(), "lost unknown fields: {lost:?}");
        // ...including those of the profile's own objects.
        prop_assert!(once.to_string().contains("x-future-field"));

        check_valid(&once);

        // Idempotent: injecting again plans nothing.
        let (twice, out2) = inject(&once, &set, mode);
        prop_assert!(out2.patch.is_empty(), "second injection patched: {}", serde_json::to_string(&out2.patch).unwrap());
        prop_assert_eq!(&twice, &once);

        // Uninject restores the input exactly: absent fields absent, empty ones empty.
        let un = engine::uninject(&once.to_string(), &set).unwrap();
        let restored = apply(&once, &un.patch);
        prop_assert_eq!(&restored, &pod);

        // A changed profile replaces the old injection cleanly.
        let changed = profile_set("agent:2");
        let (reinjected, _) = inject(&once, &changed, mode);
        let (fresh, _) = inject(&pod, &changed, mode);
        prop_assert_eq!(reinjected, fresh);
    }
}

#[test]
fn every_mode_adds_what_it_should() {
    let set = profile_set("agent:1");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "a", "command": ["/a"]}]}});
    let names = |v: &Value, list: &str| -> Vec<String> {
        v["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (native, _) = inject(&pod, &set, Mode::Native);
    assert_eq!(names(&native, "initContainers"), ["agent-setup", "agent"]);
    assert_eq!(
        native["spec"]["initContainers"][1]["restartPolicy"],
        "Always"
    );
    let (legacy, _) = inject(&pod, &set, Mode::Legacy);
    assert_eq!(names(&legacy, "containers"), ["app", "agent"]);
    assert_eq!(
        names(&legacy, "initContainers"),
        ["sidecar-kit-install", "agent-setup"],
        "Job-safe wiring installs the shim"
    );
    assert_eq!(legacy["spec"]["containers"][0]["command"][1], "app");
    let (aff, _) = inject(&pod, &set, Mode::Affinity);
    assert_eq!(
        aff["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["values"][0],
        "true"
    );
    let (uni, _) = inject(&pod, &set, Mode::Universal);
    assert_eq!(
        names(&uni, "initContainers"),
        ["agent-setup", "sidecar-kit-install", "agent"]
    );
    assert_eq!(names(&uni, "containers"), ["app", "agent-legacy"]);
    let legacy_copy = &uni["spec"]["containers"][1];
    assert!(
        legacy_copy["ports"][0].get("hostPort").is_none(),
        "the legacy copy drops hostPort"
    );
    assert_eq!(legacy_copy["readinessProbe"]["exec"]["command"][1], "ready");
    assert_eq!(
        uni["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["operator"],
        "NotIn"
    );
    let _ = BTreeMap::<String, String>::new();
}

/// The shim-wrapped copies run the profile's own image: they carry the profile container's
/// `securityContext` exactly (none where it has none: most sidecar images run as root, and
/// an added `runAsNonRoot` makes the kubelet refuse them). Only the install container, ours,
/// is `restricted`, with an explicit user so that it runs whatever user the shim image has.
#[test]
fn shim_wrapped_copies_keep_the_profile_security_context() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "a", "command": ["/a"]}]}});
    let own = json!({"runAsUser": 0, "readOnlyRootFilesystem": true, "x-future": 1});
    for security in [None, Some(own)] {
        let mut p = json!({
            "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "containers": [{"name": "agent", "image": "agent:1", "command": ["/agent"]}]}
        });
        if let Some(s) = &security {
            p["spec"]["containers"][0]["securityContext"] = s.clone();
        }
        let set = ProfileSet::new(
            vec![Profile::from_value(&p, "test").unwrap()],
            Some("shim:test"),
        )
        .unwrap();
        let find = |pod: &Value, name: &str| -> Value {
            ["initContainers", "containers"]
                .iter()
                .flat_map(|l| pod["spec"][l].as_array().cloned().unwrap_or_default())
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("{name} is in the pod"))
        };
        for mode in [Mode::Universal, Mode::Legacy] {
            let (out, _) = inject(&pod, &set, mode);
            let copies: &[&str] = if mode == Mode::Universal {
                &["agent", "agent-legacy"]
            } else {
                &["agent"]
            };
            for name in copies {
                let c = find(&out, name);
                assert_eq!(
                    c["command"][0], "/sidecar-kit/bin/sidecar-shim",
                    "{mode:?} {name} is shim-wrapped"
                );
                assert_eq!(
                    c.get("securityContext"),
                    security.as_ref(),
                    "{mode:?} {name} keeps the profile's own securityContext"
                );
            }
            let install = find(&out, "sidecar-kit-install");
            let sc = &install["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true);
            assert_eq!(sc["runAsUser"], 65532);
            assert_eq!(sc["runAsGroup"], 65532);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        }
    }
}

/// Templates without metadata (or with `metadata: {}`) come back from uninject exactly as
/// they were: no `metadata: {annotations: {}}` left behind, and no `{}` taken away.
#[test]
fn uninject_restores_template_metadata_exactly() {
    let p = json!({
        "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
        "metadata": {"name": "everywhere"},
        "spec": {"selector": {}, "containers": [{"name": "agent", "image": "agent:1", "command": ["/agent"]}]}
    });
    let set = ProfileSet::new(
        vec![Profile::from_value(&p, "test").unwrap()],
        Some("shim:test"),
    )
    .unwrap();
    for meta in [
        None,
        Some(json!({})),
        Some(json!({"annotations": {}})),
        Some(json!({"labels": {"a": "b"}})),
    ] {
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "a", "command": ["/a"]}]}}}});
        if let Some(m) = &meta {
            job["spec"]["template"]["metadata"] = m.clone();
        }
        for mode in [Mode::Native, Mode::Legacy] {
            let (once, out) = inject(&job, &set, mode);
            assert!(
                matches!(
                    out.templates[0].result,
                    TemplateResult::Injected { changed: true, .. }
                ),
                "{meta:?}: {:?}",
                out.templates[0].result
            );
            let un = engine::uninject(&once.to_string(), &set).unwrap();
            assert_eq!(apply(&once, &un.patch), job, "metadata {meta:?}, {mode:?}");
        }
    }
}

/// The status annotation can be written by whoever writes the pod. A forged one, listing the
/// app's container, its variable or another webhook's container, or naming a profile that
/// is not loaded, removes nothing: the template is skipped with a reason and a warning, by
/// inject (re-invocation) and uninject alike. What sidecar-kit really added, unchanged, is
/// still removed.
#[test]
fn forged_status_annotations_remove_nothing() {
    let set = profile_set("agent:1");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "app", "image": "a", "command": ["/a"], "env": [{"name": "AGENT_ADDR", "value": "mine"}]},
            {"name": "istio-proxy", "image": "proxy:1"}]}});
    for mode in [Mode::Native, Mode::Legacy, Mode::Universal] {
        let (once, _) = inject(&pod, &set, mode);
        let status: Value = serde_json::from_str(
            once["metadata"]["annotations"]["sidecar-kit.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        // Untouched, the real injection verifies and uninject removes it.
        let un = engine::uninject(&once.to_string(), &set).unwrap();
        assert_eq!(
            apply(&once, &un.patch),
            pod,
            "{mode:?}: the real injection is removed"
        );

        let forge = |f: &dyn Fn(&mut Value)| -> Value {
            let mut st = status.clone();
            f(&mut st);
            let mut p = once.clone();
            p["metadata"]["annotations"]["sidecar-kit.io/status"] = json!(st.to_string());
            p
        };
        let forged = [
            (
                "the app container",
                forge(&|st| {
                    st["injections"][0]["added"]["containers"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!("app"))
                }),
            ),
            (
                "another webhook's container",
                forge(&|st| {
                    st["injections"][0]["added"]["containers"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!("istio-proxy"))
                }),
            ),
            (
                "the app's own variable",
                forge(&|st| {
                    st["injections"][0]["added"]["appEnv"] =
                        json!([{"container": "app", "name": "AGENT_ADDR"}])
                }),
            ),
            (
                "a profile that is not loaded",
                forge(&|st| st["injections"][0]["profile"] = json!("other")),
            ),
            ("a changed profile whose image is another", {
                let mut p =
                    forge(&|st| st["injections"][0]["hash"] = json!("sha256:0000000000000000"));
                for list in ["initContainers", "containers"] {
                    for c in p["spec"][list].as_array_mut().into_iter().flatten() {
                        if c["image"] == "agent:1" {
                            c["image"] = json!("someone-else/agent:1");
                        }
                    }
                }
                p
            }),
        ];
        for (what, doc) in forged {
            let un = engine::uninject(&doc.to_string(), &set).unwrap();
            let (re, out) = inject(&doc, &set, mode);
            for (verb, o, patch_empty) in [
                ("uninject", &un, un.patch.is_empty()),
                ("inject", &out, out.patch.is_empty()),
            ] {
                assert!(patch_empty, "{mode:?}, {what}: {verb} changed the pod");
                let t = &o.templates[0];
                assert!(
                    matches!(&t.result, TemplateResult::Skipped(s) if s.code == engine::SkipCode::UnverifiedStatus),
                    "{mode:?}, {what}: {verb}: {:?}",
                    t.result
                );
                assert!(
                    t.warnings
                        .iter()
                        .any(|w| w.contains("does not match what its profiles add")),
                    "{mode:?}, {what}: {verb} warns"
                );
            }
            assert_eq!(re, doc);
        }
    }
}
