//! The structured outputs of `explain` and `lint` on the bundled examples: documents with
//! stable field names and types, the same data in JSON and YAML, every field documented in
//! docs/output-schema.md; input without pod templates; and lint on the bundled profile and on
//! what `inject` makes of the bundled manifests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sidecar_kit_testkit::workspace_root as root;
use std::collections::BTreeSet;
use std::io::Write;

use std::process::{Command, Output, Stdio};

/// Runs the CLI from the workspace root, with `stdin` as standard input.
fn run_with(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
        .args(args)
        .current_dir(root())
        .env_remove("SIDECAR_KIT_SHIM_IMAGE")
        .env_remove("SIDECAR_KIT_PROFILES")
        .env_remove("SIDECAR_KIT_FACTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with(args, b"")
}

/// The JSON document a command writes, after checking its exit code.
fn json_of(args: &[&str], code: i32) -> Value {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const MIXED: [&str; 8] = [
    "explain",
    "-f",
    "examples/manifests",
    "-p",
    "examples/profiles",
    "--facts",
    "examples/facts/mixed.yaml",
    "-o",
];

fn explain_mixed(format: &str) -> Output {
    let mut args = MIXED.to_vec();
    args.push(format);
    run(&args)
}

fn str_of<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is a string in {v:#}"))
}

fn int_of(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is an integer in {v:#}"))
}

#[test]
fn explain_json_is_data() {
    let out = explain_mixed("json");
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["apiVersion"], "sidecar-kit.io/v1alpha1");
    assert_eq!(doc["kind"], "Explanation");
    assert_eq!(doc["request"]["factsFile"], "examples/facts/mixed.yaml");
    assert_eq!(doc["request"]["modeOverride"], Value::Null);
    assert_eq!(doc["request"]["profiles"][0]["name"], "log-shipper");
    assert_eq!(doc["request"]["profiles"][0]["fallback"], "universal");
    assert_eq!(
        doc["counts"],
        serde_json::json!({"documents": 2, "templates": 2, "injected": 2, "unchanged": 0, "removed": 0, "skipped": 0})
    );
    let templates = doc["templates"].as_array().unwrap();
    let kinds: Vec<&str> = templates.iter().map(|t| str_of(t, "/kind")).collect();
    assert_eq!(kinds, ["Job", "Deployment"]);
    for t in templates {
        assert_eq!(t["result"], "injected");
        assert_eq!(t["skip"], Value::Null);
        assert_eq!(str_of(t, "/specPointer"), "/spec/template/spec");
        assert_eq!(int_of(t, "/document"), 1);
        // Facts as data: the API server, the nodes by class, the Lease.
        assert_eq!(str_of(t, "/facts/apiServer/version"), "v1.30.4");
        assert_eq!(str_of(t, "/facts/apiServer/sidecarContainers"), "enabled");
        assert_eq!(str_of(t, "/facts/apiServer/restartPolicy"), "kept");
        assert_eq!(str_of(t, "/facts/clusterFacts/state"), "known");
        let nodes = &t["facts"]["candidateNodes"];
        let by_class: Vec<u64> = ["capable", "unaware", "rejecting", "unknown", "total"]
            .iter()
            .map(|k| int_of(nodes, &format!("/{k}")))
            .collect();
        assert_eq!(by_class, [2, 1, 1, 0, 4]);
        let samples: BTreeSet<(&str, &str)> = nodes["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (str_of(s, "/name"), str_of(s, "/class")))
            .collect();
        assert!(
            samples.contains(&("old-1", "unaware")) && samples.contains(&("edge-1", "rejecting"))
        );
        assert_eq!(str_of(t, "/facts/labelerLease"), "fresh");
        // The decision: auto asked by the profile, the fallback taken on mixed nodes.
        let d = &t["decisions"][0];
        assert_eq!(str_of(d, "/requestedMode"), "auto");
        assert_eq!(str_of(d, "/requestedBy"), "profile");
        assert_eq!(str_of(d, "/mode"), "universal");
        assert_eq!(str_of(d, "/reason/code"), "AutoFallback");
        assert!(str_of(d, "/reason/message").contains("candidate nodes are mixed"));
        assert_eq!(d["startupProbe"], true);
        assert_eq!(d["adjustments"], serde_json::json!([]));
        let i = &t["injections"][0];
        assert_eq!(str_of(i, "/mode"), "universal");
        assert_eq!(str_of(i, "/reason/code"), "AutoFallback");
        assert_eq!(i["added"]["nodeAffinity"]["operator"], "NotIn");
        assert_eq!(i["added"]["appEnv"][0]["name"], "LOG_DIR");
        assert_eq!(
            t["annotations"],
            serde_json::json!([
                "sidecar-kit.io/status",
                "kubectl.kubernetes.io/default-container"
            ])
        );
        assert!(
            int_of(t, "/resources/after/cpuMillicores")
                > int_of(t, "/resources/before/cpuMillicores")
        );
        assert_eq!(t["resources"]["countsBothCopies"], true);
    }
    // The profile mounts volume app-logs at /var/log/app into every app container; Job-safe
    // wiring mounts the shim's volume sidecar-kit at /sidecar-kit into the Job's app.
    let mounts = |i: usize| {
        triples(
            &templates[i]["injections"][0]["added"]["appMounts"],
            ["/container", "/name", "/mountPath"],
        )
    };
    let owned = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        mounts(0),
        [
            owned("report", "app-logs", "/var/log/app"),
            owned("report", "sidecar-kit", "/sidecar-kit")
        ]
    );
    assert_eq!(mounts(1), [owned("web", "app-logs", "/var/log/app")]);
}

#[test]
fn explain_skips_and_requests_are_data() {
    // An opted-out pod: skipped with a code, no facts (nothing was decided), counts say so.
    let doc = json_of(
        &[
            "explain",
            "-f",
            "crates/cli/tests/golden/inputs/workloads.yaml",
            "-p",
            "examples/profiles",
            "--mode",
            "native",
            "-n",
            "shop",
            "-o",
            "json",
        ],
        0,
    );
    assert_eq!(doc["request"]["modeOverride"], "native");
    assert_eq!(doc["request"]["namespace"], "shop");
    assert_eq!(doc["counts"]["skipped"], 1);
    assert_eq!(doc["counts"]["injected"], 9);
    let skipped: Vec<&Value> = doc["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["result"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(str_of(skipped[0], "/skip/code"), "OptedOut");
    assert_eq!(skipped[0]["facts"], Value::Null);
    assert_eq!(skipped[0]["resources"], Value::Null);
    let injected = &doc["templates"][0];
    assert_eq!(str_of(injected, "/decisions/0/requestedBy"), "flag");
    assert_eq!(str_of(injected, "/decisions/0/reason/code"), "Requested");
    assert_eq!(str_of(injected, "/facts/clusterFacts/state"), "absent");
    assert_eq!(injected["facts"]["candidateNodes"], Value::Null);
    assert_eq!(
        injected["injections"][0]["added"]["nodeAffinity"],
        Value::Null
    );
    assert_eq!(
        str_of(injected, "/profiles/0/reason/code"),
        "SelectorMatches"
    );
}

/// YAML parsed into JSON values, for comparing with the JSON output.
fn yaml_value(bytes: &[u8]) -> Value {
    serde_saphyr::from_str(std::str::from_utf8(bytes).unwrap()).unwrap()
}

#[test]
fn yaml_and_json_carry_the_same_data() {
    let (json, yaml) = (explain_mixed("json"), explain_mixed("yaml"));
    let j: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(yaml_value(&yaml.stdout), j, "explain");
    let lint = |format: &str| {
        let out = run(&[
            "lint",
            "-f",
            "crates/cli/tests/golden/lint/bad.yaml",
            "-o",
            format,
        ]);
        assert_eq!(out.status.code(), Some(12));
        out.stdout
    };
    let j: Value = serde_json::from_slice(&lint("json")).unwrap();
    assert_eq!(j["kind"], "LintReport");
    assert_eq!(yaml_value(&lint("yaml")), j, "lint");
}

#[test]
fn lint_json_is_data() {
    let doc = json_of(
        &[
            "lint",
            "-f",
            "crates/cli/tests/golden/lint/bad.yaml",
            "-o",
            "json",
        ],
        12,
    );
    assert_eq!(doc["apiVersion"], "sidecar-kit.io/v1alpha1");
    assert_eq!(doc["kind"], "LintReport");
    let findings = doc["findings"].as_array().unwrap();
    let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count() as u64;
    assert_eq!(int_of(&doc, "/counts/findings"), findings.len() as u64);
    for s in ["error", "warning", "info"] {
        assert_eq!(int_of(&doc, &format!("/counts/{s}")), count(s), "{s}");
    }
    assert_eq!(count("error"), 7);
    let templates = doc["templates"].as_array().unwrap();
    assert_eq!(int_of(&doc, "/counts/templates"), 3);
    assert_eq!(templates.len(), 3);
    let pod = &templates[0];
    assert_eq!(str_of(pod, "/kind"), "Pod");
    assert_eq!(str_of(pod, "/name"), "broken");
    assert_eq!(
        [
            int_of(pod, "/initContainers"),
            int_of(pod, "/sidecars"),
            int_of(pod, "/containers"),
            int_of(pod, "/findings")
        ],
        [2, 1, 2, 7]
    );
    // Each template's count is the number of findings naming it.
    for t in templates {
        let object = str_of(t, "/object");
        let n = findings.iter().filter(|f| f["object"] == object).count() as u64;
        assert_eq!(int_of(t, "/findings"), n, "{object}");
    }
}

/// Every key path of a JSON value: `a.b`, `a[].c` for objects in arrays.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The part of docs/output-schema.md about one kind: from its heading to the next `## `.
fn schema_section(kind: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/output-schema.md")).unwrap();
    let start = doc
        .find(&format!("\n## {kind}\n"))
        .unwrap_or_else(|| panic!("docs/output-schema.md has a section ## {kind}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    // The fields every document carries are documented once, before the sections.
    format!("{}{}", &doc[..doc.find("\n## ").unwrap()], &rest[..end])
}

fn undocumented(kind: &str, docs: &[Value]) -> Vec<String> {
    let section = schema_section(kind);
    let mut all = BTreeSet::new();
    for d in docs {
        assert_eq!(d["kind"], kind);
        paths(d, "", &mut all);
    }
    assert!(all.len() > 20, "{all:?}");
    all.into_iter()
        .filter(|p| !section.contains(&format!("| `{p}` |")))
        .collect()
}

#[test]
fn the_schema_documents_every_field() {
    let explain: Vec<Value> = [
        MIXED.iter().copied().chain(["json"]).collect::<Vec<_>>(),
        vec![
            "explain",
            "-f",
            "crates/cli/tests/golden/inputs/workloads.yaml",
            "-p",
            "examples/profiles",
            "-p",
            "crates/cli/tests/golden/profiles",
            "--facts",
            "crates/cli/tests/golden/inputs/gate-off.yaml",
            "-o",
            "json",
        ],
    ]
    .iter()
    .map(|args| json_of(args, 0))
    .collect();
    assert_eq!(undocumented("Explanation", &explain), Vec::<String>::new());
    let lint: Vec<Value> = [
        (
            vec![
                "lint",
                "-f",
                "crates/cli/tests/golden/lint/bad.yaml",
                "-o",
                "json",
            ],
            12,
        ),
        (vec!["lint", "-f", "examples/profiles", "-o", "json"], 0),
    ]
    .iter()
    .map(|(args, code)| json_of(args, *code))
    .collect();
    assert_eq!(undocumented("LintReport", &lint), Vec::<String>::new());
    // And every check id lint reports is listed.
    let section = schema_section("LintReport");
    for f in lint[0]["findings"].as_array().unwrap() {
        let check = str_of(f, "/check");
        assert!(
            section.contains(&format!("`{check}`")),
            "{check} documented"
        );
    }
}

#[test]
fn input_without_pod_templates_is_no_error_for_inject_lint_and_explain() {
    let cm = "crates/cli/tests/golden/inputs/configmap.yaml";
    let inject = run(&["inject", "-f", cm, "-p", "examples/profiles"]);
    assert_eq!(inject.status.code(), Some(0));
    assert_eq!(
        yaml_value(&inject.stdout),
        yaml_value(&std::fs::read(root().join(cm)).unwrap()),
        "passed through"
    );
    let lint = json_of(&["lint", "-f", cm, "-o", "json"], 0);
    assert_eq!(lint["counts"]["templates"], 0);
    assert_eq!(lint["templates"], serde_json::json!([]));
    assert_eq!(lint["findings"], serde_json::json!([]));
    let explain = json_of(
        &["explain", "-f", cm, "-p", "examples/profiles", "-o", "json"],
        0,
    );
    assert_eq!(
        explain["counts"],
        serde_json::json!({"documents": 1, "templates": 0, "injected": 0, "unchanged": 0, "removed": 0, "skipped": 0})
    );
    assert_eq!(explain["templates"], serde_json::json!([]));
    let text = run(&["explain", "-f", cm, "-p", "examples/profiles"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        String::from_utf8(text.stdout)
            .unwrap()
            .starts_with("nothing to explain: no pod templates in"),
        "text says there is nothing to explain"
    );
}

/// (check, severity, object) of each finding of a LintReport.
fn finding_list(doc: &Value) -> Vec<(String, String, String)> {
    triples(&doc["findings"], ["/check", "/severity", "/object"])
}

/// Three string fields of every item of the array `items`.
fn triples(items: &Value, [a, b, c]: [&str; 3]) -> Vec<(String, String, String)> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                str_of(v, a).into(),
                str_of(v, b).into(),
                str_of(v, c).into(),
            )
        })
        .collect()
}

#[test]
fn the_bundled_profiles_pass_lint() {
    for dir in ["examples/profiles", "deploy/base/profiles"] {
        let doc = json_of(&["lint", "-f", dir, "-o", "json", "--fail-on", "info"], 0);
        assert_eq!(finding_list(&doc), [], "{dir}");
        assert_eq!(doc["counts"]["profiles"], 1, "{dir}: the profile is linted");
        assert_eq!(
            doc["templates"][0]["sidecars"], 1,
            "{dir}: its sidecar is native in auto mode"
        );
    }
    // The kustomize base ships the example profile: the same profile, comments aside.
    let read = |p: &str| yaml_value(&std::fs::read(root().join(p)).unwrap());
    assert_eq!(
        read("deploy/base/profiles/log-shipper.yaml"),
        read("examples/profiles/log-shipper.yaml")
    );
}

#[test]
fn lint_of_injected_examples_does_not_send_back_to_auto() {
    for (facts, mode) in [("capable", "native"), ("mixed", "universal")] {
        let facts = format!("examples/facts/{facts}.yaml");
        let inject = run(&[
            "inject",
            "-f",
            "examples/manifests",
            "-p",
            "examples/profiles",
            "--facts",
            &facts,
        ]);
        assert_eq!(
            inject.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&inject.stderr)
        );
        let out = run_with(&["lint", "-f", "-", "-o", "json"], &inject.stdout);
        assert_eq!(out.status.code(), Some(0));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = [
            "-, document 1 (Job nightly-report) at /spec/template/spec",
            "-, document 2 (Deployment web) at /spec/template/spec",
        ]
        .map(|o| {
            (
                "sidecar.needs-1.29".to_string(),
                "info".to_string(),
                o.to_string(),
            )
        });
        assert_eq!(finding_list(&doc), want, "{facts}");
        for f in doc["findings"].as_array().unwrap() {
            let fix = str_of(f, "/fix");
            assert!(!fix.contains("auto mode"), "{facts}: {fix}");
            assert!(
                fix.contains(&format!(
                    "sidecar-kit chose {mode} mode for profile log-shipper (auto: "
                )),
                "{facts}: the fix says what sidecar-kit chose and why: {fix}"
            );
        }
    }
}
