//! Golden tests of `sidecar-kit doctor` against the project's fake API server: every
//! command in every output format, on one cluster in the middle of trouble (mixed
//! kubelets, a webhook that strips restartPolicy, pods in trouble, stale injections), plus
//! the facts round trip into `explain` and `inject`, and exit code 3 for an unreachable
//! cluster. Expected stdout and stderr live in `doctor_golden/`; refresh them with
//!
//!     SIDECAR_KIT_BLESS=1 cargo test -p sidecar-kit --test doctor_golden
//!
//! and review the diff. The fake's address is replaced by `http://127.0.0.1:PORT`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeProxy, NodeSeed};
use sidecar_kit_testkit::workspace_root as root;
use sidecar_kit_testkit::{TempDir, golden};
use std::path::Path;
use std::process::{Command, Output};

fn at(s: u32) -> String {
    format!("2026-01-01T10:00:{s:02}Z")
}

fn webhook_config(name: &str, webhook: &str, extra: Value) -> Value {
    let mut w = json!({
        "name": webhook,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": name, "namespace": "infra", "path": "/mutate"}},
        "sideEffects": "None",
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
    });
    if let (Some(m), Some(e)) = (w.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": name}, "webhooks": [w]})
}

fn pod(name: &str, meta: Value, spec: Value, status: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop"}, "spec": spec, "status": status});
    if let (Some(m), Some(e)) = (p["metadata"].as_object_mut(), meta.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    p
}

/// The cluster every golden case looks at.
fn seed(fake: &FakeApi) {
    let st = fake.state();
    for (n, v) in [
        ("node-a", "v1.31.4"),
        ("node-b", "v1.28.9"),
        ("node-c", "v1.27.9"),
        ("node-d", "v1.29.3"),
        ("node-e", "v1.31.4"),
    ] {
        st.seed_node(NodeSeed::new(n, v)).unwrap();
    }
    fake.set_node_proxy("node-e", NodeProxy::Forbidden);
    st.seed_namespace(
        "shop",
        &[("team", "payments"), ("sidecar-kit.io/inject", "enabled")],
    )
    .unwrap();
    st.seed_namespace("other", &[("team", "search")]).unwrap();
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "zz-old-injector",
            "inject.old.example.com",
            json!({"namespaceSelector": {"matchLabels": {"team": "payments"}}, "failurePolicy": "Ignore"}),
        ),
    )
    .unwrap();
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "sidecar-kit",
            "inject.sidecar-kit.io",
            json!({"namespaceSelector": {"matchLabels": {"sidecar-kit.io/inject": "enabled"}},
                   "objectSelector": {"matchExpressions": [{"key": "sidecar-kit.io/inject", "operator": "NotIn", "values": ["disabled"]}]},
                   "matchConditions": [{"name": "not-opted-out-by-annotation", "expression": "!has(object.metadata.annotations) || !('sidecar-kit.io/inject' in object.metadata.annotations) || object.metadata.annotations['sidecar-kit.io/inject'] != 'disabled'"}],
                   "failurePolicy": "Ignore", "reinvocationPolicy": "Never"}),
        ),
    )
    .unwrap();
    fake.set_pod_mutation(|pod| {
        if pod["metadata"]["namespace"] == "shop"
            && let Some(cs) = pod["spec"]
                .get_mut("initContainers")
                .and_then(Value::as_array_mut)
        {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("restartPolicy");
                }
            }
        }
    });
    st.insert(
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web", "logging": "shipped"}},
               "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}),
    )
    .unwrap();
    let sidecar = json!([{"name": "proxy", "image": "envoy:1.30", "restartPolicy": "Always"}]);
    let app = json!([{"name": "app", "image": "app:1"}]);
    st.insert("pods", pod("rejected", json!({}), json!({"nodeName": "node-b", "initContainers": sidecar, "containers": app}),
        json!({"phase": "Failed", "reason": "InitContainerRestartPolicyForbidden", "message": "Init container \"proxy\" may not have a non-default restartPolicy", "startTime": at(0)}))).unwrap();
    st.insert("pods", pod("stuck", json!({}), json!({"nodeName": "node-c", "initContainers": sidecar, "containers": app}),
        json!({"phase": "Pending", "startTime": at(0),
               "initContainerStatuses": [{"name": "proxy", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}],
               "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}))).unwrap();
    st.insert("replicasets", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "api-5f6d", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "u1", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
                 "spec": {"initContainers": sidecar, "containers": app}}}})).unwrap();
    st.insert("pods", pod("api-5f6d-x1", json!({"labels": {"app": "api", "pod-template-hash": "5f6d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-5f6d", "uid": "u2", "controller": true}]}),
        json!({"nodeName": "node-a", "initContainers": [{"name": "proxy", "image": "envoy:1.30"}], "containers": app}),
        json!({"phase": "Pending", "startTime": at(0),
               "initContainerStatuses": [{"name": "proxy", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": at(2)}}}],
               "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}))).unwrap();
    // Injected by sidecar-kit: one universal pod on a capable node, one legacy Job pod.
    let stale = r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:0000000000000000","mode":"universal","reason":"mixed nodes","added":{"initContainers":["sidecar-kit-install","log-shipper"],"containers":["log-shipper-legacy"],"volumes":["sidecar-kit"]}}]}"#;
    st.insert("pods", pod("web-7d9c-a1", json!({"labels": {"app": "web", "logging": "shipped", "pod-template-hash": "7d9c"},
            "annotations": {"sidecar-kit.io/status": stale},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": "u3", "controller": true}]}),
        json!({"nodeName": "node-a",
               "initContainers": [{"name": "sidecar-kit-install", "image": "sk", "command": ["sidecar-shim", "install", "/sidecar-kit/bin"]},
                                  {"name": "log-shipper", "image": "ls", "restartPolicy": "Always", "command": ["/sidecar-kit/bin/sidecar-shim", "native", "--state", "/sidecar-kit/state/log-shipper", "--", "/usr/bin/log-shipper"]}],
               "containers": [{"name": "app", "image": "web:1"},
                              {"name": "log-shipper-legacy", "image": "ls", "command": ["/sidecar-kit/bin/sidecar-shim", "legacy", "--state", "/sidecar-kit/state/log-shipper", "--pod-restart-policy", "Always", "--", "/usr/bin/log-shipper"]}]}),
        json!({"phase": "Running", "startTime": at(0),
               "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": at(3)}, {"type": "Ready", "status": "True", "lastTransitionTime": at(4)}],
               "initContainerStatuses": [
                   {"name": "sidecar-kit-install", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(0), "finishedAt": at(1)}}},
                   {"name": "log-shipper", "ready": true, "started": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(1), "finishedAt": at(1)}},
                    "state": {"running": {"startedAt": at(2)}}}],
               "containerStatuses": [
                   {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(3)}}},
                   {"name": "log-shipper-legacy", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(3)}}}]}))).unwrap();
    st.insert("pods", pod("web-7d9c-b2", json!({"labels": {"app": "web", "logging": "shipped", "pod-template-hash": "7d9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": "u3", "controller": true}]}),
        json!({"nodeName": "node-a", "containers": [{"name": "app", "image": "web:1"}]}),
        json!({"phase": "Running", "startTime": at(0)}))).unwrap();
    let job_status = r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:0000000000000000","mode":"legacy","reason":"no facts","added":{"containers":["log-shipper"]}}]}"#;
    st.insert("pods", pod("report-28500-q", json!({"labels": {"logging": "shipped"}, "annotations": {"sidecar-kit.io/status": job_status}}),
        json!({"nodeName": "node-c", "restartPolicy": "Never", "containers": [{"name": "report", "image": "r:1"}, {"name": "log-shipper", "image": "ls"}]}),
        json!({"phase": "Running", "startTime": at(0),
               "containerStatuses": [
                   {"name": "report", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(1), "finishedAt": at(9)}}},
                   {"name": "log-shipper", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}]}))).unwrap();
}

fn normalise(s: &str, url: &str) -> String {
    s.replace(url, "http://127.0.0.1:PORT")
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
        .args(args)
        .current_dir(root())
        .env_remove("KUBECONFIG")
        .env_remove("SIDECAR_KIT_PROFILES")
        .env_remove("SIDECAR_KIT_SHIM_IMAGE")
        .env_remove("SIDECAR_KIT_FACTS")
        .env_remove("SIDECAR_KIT_REPORT_TIME")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_golden() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        kubelet_metrics_bytes: 5_000,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    seed(&fake);
    let dir = TempDir::new("doctor-golden");
    let kc = fake.write_kubeconfig(dir.path()).unwrap();
    let url = fake.url();
    let kc = kc.display().to_string();
    let bless = golden::bless();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doctor_golden");
    std::fs::create_dir_all(&golden).unwrap();

    let mut cases: Vec<(String, Vec<String>, i32)> = Vec::new();
    let with = |cmd: &str, extra: &[&str], fmt: &str| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "doctor".into(),
            cmd.into(),
            "--kubeconfig".into(),
            kc.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["-o".to_string(), fmt.to_string()]);
        v
    };
    for fmt in ["table", "json", "yaml", "junit", "markdown", "facts"] {
        cases.push((format!("cluster-{fmt}"), with("cluster", &[], fmt), 12));
    }
    for fmt in ["table", "json", "yaml", "junit", "markdown"] {
        cases.push((
            format!("webhooks-{fmt}"),
            with(
                "webhooks",
                &[
                    "-n",
                    "shop",
                    "-n",
                    "other",
                    "--profiles",
                    "examples/profiles",
                ],
                fmt,
            ),
            12,
        ));
        cases.push((
            format!("injections-{fmt}"),
            with(
                "injections",
                &["-n", "shop", "-p", "examples/profiles"],
                fmt,
            ),
            0,
        ));
    }
    // The pods' report is taken 50 s after they started (its timelines end there), the
    // same time on every run.
    let report_time = ["--report-time", "2026-01-01T10:00:50Z"];
    for fmt in ["table", "json", "yaml", "junit", "markdown", "html"] {
        cases.push((
            format!("pods-{fmt}"),
            with("pods", &[&["-n", "shop"][..], &report_time].concat(), fmt),
            12,
        ));
    }
    cases.push((
        "pods-one".into(),
        with(
            "pods",
            &[&["-n", "shop", "web-7d9c-a1"][..], &report_time].concat(),
            "table",
        ),
        0,
    ));
    cases.push((
        "injections-fail-on-warning".into(),
        {
            let mut v = with(
                "injections",
                &["-n", "shop", "-p", "examples/profiles"],
                "table",
            );
            v.extend(["--fail-on".into(), "warning".into()]);
            v
        },
        11,
    ));
    cases.push((
        "webhooks-other-only".into(),
        with("webhooks", &["-n", "other", "--fail-on", "info"], "table"),
        11,
    ));

    let mut failures = Vec::new();
    let facts_file = dir.path().join("facts.yaml");
    for (name, args, exit) in cases {
        let out = tokio::task::spawn_blocking(move || run(&args))
            .await
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = normalise(&String::from_utf8(out.stdout).unwrap(), &url);
        let stderr = normalise(&String::from_utf8(out.stderr).unwrap(), &url);
        if code != exit {
            failures.push(format!(
                "{name}: exit {code}, expected {exit}\nstderr: {stderr}"
            ));
        }
        if name == "cluster-facts" {
            std::fs::write(&facts_file, &stdout).unwrap();
        }
        golden::check(
            &golden.join(format!("{name}.stdout")),
            &stdout,
            bless,
            &mut failures,
        );
        golden::check(
            &golden.join(format!("{name}.stderr")),
            &stderr,
            bless,
            &mut failures,
        );
    }

    // The facts round trip: what doctor wrote, explain and inject read.
    let facts = facts_file.display().to_string();
    let explain = run(&[
        "explain".into(),
        "-f".into(),
        "examples/manifests".into(),
        "-p".into(),
        "examples/profiles".into(),
        "--facts".into(),
        facts.clone(),
        "-o".into(),
        "json".into(),
    ]);
    assert_eq!(
        explain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&explain.stderr)
    );
    let reports: Value = serde_json::from_slice(&explain.stdout).unwrap();
    let text = reports.to_string();
    assert!(
        text.contains(
            "3 capable (node-a, node-d, node-e), 1 unaware (node-c), 1 rejecting (node-b)"
        ) && text.contains("whose Lease is not fresh: legacy"),
        "the facts' nodes, gates and Lease reach the decision: {text}"
    );
    let inject = run(&[
        "inject".into(),
        "-f".into(),
        "examples/manifests".into(),
        "-p".into(),
        "examples/profiles".into(),
        "--facts".into(),
        facts,
    ]);
    assert_eq!(
        inject.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&inject.stderr)
    );

    // Unreachable: exit 3 with a message, nothing on stdout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = dir.path().join("closed-kubeconfig");
    std::fs::write(
        &closed,
        fake.kubeconfig()
            .replace(&url, &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let out = run(&[
        "doctor".into(),
        "cluster".into(),
        "--kubeconfig".into(),
        closed.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "error: cannot reach the API server at http://127.0.0.1:{port}/"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line, no stack trace: {err}");

    fake.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es); if intended, refresh with SIDECAR_KIT_BLESS=1 and review the diff:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
