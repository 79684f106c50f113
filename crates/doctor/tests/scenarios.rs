//! The doctor against the project's fake API server: a healthy cluster, the gate off on
//! the API server, mixed node versions, a webhook that strips restartPolicy, metrics
//! forbidden, 5,000 nodes with slow and silent kubelets, pods in trouble, stale
//! injections, and a cluster that cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{session, strip_restart_policy, webhook_config};
use serde_json::{Value, json};
use sidecar_kit_core::profile::{Profile, ProfileSet};
use sidecar_kit_core::version::{GateState, NodeClass};
use sidecar_kit_doctor::cluster::{self, ClusterOptions};
use sidecar_kit_doctor::conn::{self, DoctorError, Target};
use sidecar_kit_doctor::injections::{self, InjectionsOptions};
use sidecar_kit_doctor::pods::{self, PodsOptions};
use sidecar_kit_doctor::webhooks::{self, WebhooksOptions};
use sidecar_kit_doctor::{Report, Severity};
use sidecar_kit_fakeapi::{ApiMetrics, Deny, FakeApi, FakeConfig, NodeProxy, NodeSeed};
use sidecar_kit_testkit::TempDir;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn checks(r: &Report) -> Vec<(String, Severity)> {
    r.findings
        .iter()
        .map(|f| (f.check.clone(), f.severity))
        .collect()
}

fn has(r: &Report, check: &str, sev: Severity) -> bool {
    r.findings
        .iter()
        .any(|f| f.check == check && f.severity == sev)
}

fn finding<'a>(r: &'a Report, check: &str) -> &'a sidecar_kit_doctor::Finding {
    r.findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} in {:#?}", r.findings))
}

fn quiet() -> ClusterOptions {
    ClusterOptions {
        progress: false,
        ..ClusterOptions::default()
    }
}

fn node_class(facts: &sidecar_kit_core::facts::ClusterFacts, name: &str) -> NodeClass {
    facts.nodes.iter().find(|n| n.name == name).unwrap().class()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.state()
        .seed_nodes((1..=3).map(|i| NodeSeed::new(format!("node-{i}"), "v1.32.3")))
        .unwrap();
    let s = session(&fake).await;
    let r = cluster::run(&s, &quiet()).await.unwrap();
    assert!(r.report.findings.is_empty(), "{:#?}", r.report.findings);
    assert!(r.report.blind_spots.is_empty());
    assert_eq!(r.facts.api_server.sidecar_containers, GateState::Enabled);
    assert_eq!(r.facts.nodes.len(), 3);
    assert!(
        r.facts
            .nodes
            .iter()
            .all(|n| n.sidecar_containers == GateState::Enabled)
    );
    assert!(
        r.report
            .summary
            .iter()
            .any(|l| l == "mode auto: native (every node is capable)")
    );
    // The kubelets were asked through the node proxy.
    let proxied = fake
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/proxy/metrics"))
        .count();
    assert_eq!(proxied, 3);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_off_on_the_api_server() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.30.4".into(),
        sidecar_containers: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.30.4"))
        .unwrap();
    let s = session(&fake).await;
    let r = cluster::run(&s, &quiet()).await.unwrap();
    assert!(has(
        &r.report,
        "cluster.apiserver-drops-restart-policy",
        Severity::Error
    ));
    assert_eq!(r.facts.api_server.sidecar_containers, GateState::Disabled);
    assert!(r.report.summary.iter().any(|l| l == "mode auto: legacy"));
    // The probe loses the field, and the API server, not a webhook, is named.
    let w = webhooks::run(&s, &WebhooksOptions::default())
        .await
        .unwrap();
    assert!(has(
        &w,
        "webhooks.apiserver-drops-restart-policy",
        Severity::Error
    ));
    assert!(!w.findings.iter().any(|f| f.check == "webhooks.suspect"));
    assert!(
        w.summary.iter().any(|l| l.contains("LOST")),
        "{:?}",
        w.summary
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_node_versions() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        kubelet_metrics_bytes: 20_000,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let st = fake.state();
    for (n, v) in [
        ("a-new", "v1.31.4"),
        ("b-1-28-default", "v1.28.9"),
        ("c-1-28-on", "v1.28.9"),
        ("d-old", "v1.27.9"),
        ("e-ancient", "v1.26.5"),
        ("f-buggy", "v1.29.3-eks-1a2b3c"),
        ("g-weird", "unknown-build"),
    ] {
        st.seed_node(NodeSeed::new(n, v)).unwrap();
    }
    fake.set_node_proxy(
        "c-1-28-on",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.28.9", Some(true))),
    );
    // The labeler once marked it capable; its metrics now say the gate is off.
    st.seed_node(
        NodeSeed::new("h-gate-off", "v1.30.2").label("sidecar-kit.io/native-sidecars", "true"),
    )
    .unwrap();
    fake.set_node_proxy(
        "h-gate-off",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.30.2", Some(false))),
    );
    let s = session(&fake).await;
    let r = cluster::run(&s, &quiet()).await.unwrap();
    let f = &r.facts;
    assert_eq!(node_class(f, "a-new"), NodeClass::Capable);
    assert_eq!(node_class(f, "b-1-28-default"), NodeClass::Rejecting);
    assert_eq!(node_class(f, "c-1-28-on"), NodeClass::Capable);
    assert_eq!(node_class(f, "d-old"), NodeClass::Unaware);
    assert_eq!(node_class(f, "f-buggy"), NodeClass::Capable);
    assert_eq!(node_class(f, "g-weird"), NodeClass::Unknown);
    assert_eq!(node_class(f, "h-gate-off"), NodeClass::Rejecting);
    let rej = finding(&r.report, "cluster.node-rejects-native-sidecars");
    assert_eq!(rej.severity, Severity::Error);
    assert!(has(
        &r.report,
        "cluster.node-unaware-of-native-sidecars",
        Severity::Warning
    ));
    assert!(has(
        &r.report,
        "cluster.node-1-28-termination-order",
        Severity::Warning
    ));
    assert!(has(
        &r.report,
        "cluster.node-class-unknown",
        Severity::Warning
    ));
    // API server 1.31: 1.27 is four minors behind, 1.26 five; 1.28 is within the skew.
    let skew: Vec<(&str, Severity)> = r
        .report
        .findings
        .iter()
        .filter(|f| f.check == "cluster.version-skew")
        .map(|f| (f.object.as_deref().unwrap_or(""), f.severity))
        .collect();
    assert_eq!(
        skew,
        [
            ("Node d-old", Severity::Error),
            ("Node e-ancient", Severity::Error)
        ]
    );
    let bug = finding(&r.report, "cluster.known-sidecar-bug");
    assert!(bug.object.as_deref() == Some("Node f-buggy") && bug.message.contains("#127214"));
    assert!(
        r.report
            .summary
            .iter()
            .any(|l| l.starts_with("8 node(s): 3 capable, 2 unaware")),
        "{:?}",
        r.report.summary
    );
    let stale = finding(&r.report, "cluster.node-label-stale");
    assert_eq!(stale.object.as_deref(), Some("Node h-gate-off"));
    assert!(
        stale.message.starts_with(
            "sidecar-kit.io/native-sidecars=true but the node is rejecting (from metrics)"
        ),
        "{}",
        stale.message
    );
    // Errors first.
    assert_eq!(r.report.findings[0].severity, Severity::Error);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_forbidden_is_a_blind_spot_and_the_version_decides() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.29.6".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.29.6"))
        .unwrap();
    fake.state()
        .seed_node(NodeSeed::new("n2", "v1.28.2"))
        .unwrap();
    fake.set_metrics(ApiMetrics::Forbidden);
    fake.deny(Deny::resource("get", "nodes/proxy"));
    let s = session(&fake).await;
    let r = cluster::run(&s, &quiet()).await.unwrap();
    let perms: Vec<&str> = r
        .report
        .blind_spots
        .iter()
        .map(|b| b.permission.as_str())
        .collect();
    assert!(
        perms.contains(&"get on the non-resource URL /metrics"),
        "{perms:?}"
    );
    assert!(perms.contains(&"get on nodes/proxy"), "{perms:?}");
    let inferred = finding(&r.report, "cluster.apiserver-gate-inferred");
    assert!(
        inferred.message.contains("/metrics is forbidden"),
        "{}",
        inferred.message
    );
    assert!(
        inferred.message.contains("inferred from the version"),
        "{}",
        inferred.message
    );
    assert_eq!(r.facts.api_server.sidecar_containers, GateState::Unknown);
    assert_eq!(node_class(&r.facts, "n1"), NodeClass::Capable);
    assert_eq!(node_class(&r.facts, "n2"), NodeClass::Rejecting);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_nodes_with_slow_and_silent_kubelets() {
    let fake = FakeApi::start(FakeConfig {
        kubelet_metrics_bytes: 20_000,
        record_requests: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state()
        .seed_nodes((0..5000).map(|i| NodeSeed::new(format!("node-{i:04}"), "v1.31.2")))
        .unwrap();
    let body = fake.kubelet_metrics_for("v1.31.2", None);
    for i in (0..5000).step_by(100) {
        fake.set_node_proxy(&format!("node-{i:04}"), NodeProxy::Hang);
        fake.set_node_proxy(
            &format!("node-{:04}", i + 1),
            NodeProxy::Delayed(Duration::from_millis(100), body.clone()),
        );
        fake.set_node_proxy(&format!("node-{:04}", i + 2), NodeProxy::Unavailable);
        fake.set_node_proxy(&format!("node-{:04}", i + 3), NodeProxy::Unreachable);
    }
    let s = session(&fake).await;
    let opts = ClusterOptions {
        node_timeout: Duration::from_millis(400),
        concurrency: 32,
        ..quiet()
    };
    let started = Instant::now();
    let r = cluster::run(&s, &opts).await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.facts.nodes.len(), 5000);
    // 50 silent nodes, each holding one of 32 slots for one timeout: far less than
    // 50 x 400 ms one after the other (what an ordered buffer stalling behind each silent
    // kubelet took); a retried 503 would take minutes.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let hung = r
        .report
        .table
        .iter()
        .find(|row| row[0] == "node-0000")
        .unwrap();
    assert!(hung[5].contains("no answer within 0.4s"), "{hung:?}");
    let unavailable = r
        .report
        .table
        .iter()
        .find(|row| row[0] == "node-0002")
        .unwrap();
    assert!(unavailable[5].contains("metrics:"), "{unavailable:?}");
    let slow = r
        .report
        .table
        .iter()
        .find(|row| row[0] == "node-0001")
        .unwrap();
    assert_eq!(slow[3], "metrics", "{slow:?}");
    let unreadable = finding(&r.report, "cluster.node-metrics-unreadable");
    assert!(
        unreadable
            .message
            .starts_with("50 kubelet(s) did not answer within 0.4s and 100 answered with an error"),
        "{}",
        unreadable.message
    );
    // Every node stays capable: the version decides where the metrics are missing.
    assert!(
        r.report
            .summary
            .iter()
            .any(|l| l.starts_with("5000 node(s): 5000 capable"))
    );
    eprintln!("5,000 nodes (50 silent, 100 failing, 50 slow) in {took:?}");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_strips_the_field_is_named() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let st = fake.state();
    st.seed_namespace("shop", &[("team", "payments")]).unwrap();
    st.seed_namespace("other", &[("team", "search")]).unwrap();
    // The culprit: sees namespaces of team payments.
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "zz-old-injector",
            "inject.old.example.com",
            json!({"namespaceSelector": {"matchLabels": {"team": "payments"}}}),
        ),
    )
    .unwrap();
    // Does not see the probe: its objectSelector wants app=db.
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "aa-db-only",
            "db.example.com",
            json!({"objectSelector": {"matchLabels": {"app": "db"}}}),
        ),
    )
    .unwrap();
    // Does not see it either: its matchCondition is false for the probe.
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "mm-cel",
            "cel.example.com",
            json!({"matchConditions": [{"name": "only-annotated", "expression": "has(object.metadata.annotations) && 'example.com/inject' in object.metadata.annotations"}]}),
        ),
    )
    .unwrap();
    // Cannot be judged: a function.
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "nn-fn",
            "fn.example.com",
            json!({"namespaceSelector": {"matchLabels": {"team": "search"}}, "matchConditions": [{"name": "fn", "expression": "object.metadata.name.startsWith('x')"}]}),
        ),
    )
    .unwrap();
    // Only pod UPDATE: not listed.
    st.insert(
        "mutatingwebhookconfigurations",
        webhook_config(
            "bb-update",
            "update.example.com",
            json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}),
        ),
    )
    .unwrap();
    // The fake's stand-in for the culprit: strips the field in namespace shop only.
    fake.set_pod_mutation(|pod| {
        if pod["metadata"]["namespace"] == "shop" {
            strip_restart_policy(pod);
        }
    });
    let s = session(&fake).await;
    let r = webhooks::run(
        &s,
        &WebhooksOptions {
            namespaces: vec!["shop".into(), "other".into()],
            profiles: None,
        },
    )
    .await
    .unwrap();
    // Call order: by configuration name; the UPDATE-only one is left out.
    let order: Vec<&str> = r.table.iter().skip(1).map(|row| row[1].as_str()).collect();
    assert_eq!(order, ["aa-db-only", "mm-cel", "nn-fn", "zz-old-injector"]);
    let stripped = finding(&r, "webhooks.restart-policy-stripped");
    assert_eq!(stripped.object.as_deref(), Some("Namespace shop"));
    assert!(
        stripped
            .message
            .contains("the only webhook that sees it is zz-old-injector/inject.old.example.com"),
        "{}",
        stripped.message
    );
    assert!(
        stripped
            .message
            .contains("patch.webhook.admission.k8s.io/round_N_index_M")
    );
    let suspects: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.check == "webhooks.suspect")
        .filter_map(|f| f.object.as_deref())
        .collect();
    assert_eq!(
        suspects,
        ["MutatingWebhookConfiguration zz-old-injector, webhook inject.old.example.com"]
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.check == "webhooks.restart-policy-stripped")
            .count(),
        1,
        "namespace other keeps the field"
    );
    assert!(
        r.summary
            .iter()
            .any(|l| l == "probe in other: restartPolicy: Always survived the admission chain")
    );
    // Nothing was stored: the probes were dry runs.
    assert!(st.list("pods", None).unwrap().is_empty());
    let dry: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/pods"))
        .collect();
    assert_eq!(dry.len(), 2);
    assert!(
        dry.iter()
            .all(|q| q.param("dryRun").as_deref() == Some("All"))
    );

    // With profiles, the labels of the workloads they select are probed too.
    st.insert(
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}),
    )
    .unwrap();
    let r = webhooks::run(
        &s,
        &WebhooksOptions {
            namespaces: vec!["shop".into()],
            profiles: Some(profiles()),
        },
    )
    .await
    .unwrap();
    assert!(
        r.summary
            .iter()
            .any(|l| l.starts_with("probe in shop with Deployment web (app=web)")),
        "{:?}",
        r.summary
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_forbidden_are_blind_spots() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.deny(Deny::resource("list", "mutatingwebhookconfigurations"));
    fake.deny(Deny::resource("create", "pods"));
    let s = session(&fake).await;
    let r = webhooks::run(&s, &WebhooksOptions::default())
        .await
        .unwrap();
    let perms: Vec<&str> = r
        .blind_spots
        .iter()
        .map(|b| b.permission.as_str())
        .collect();
    assert_eq!(
        perms,
        [
            "list on mutatingwebhookconfigurations.admissionregistration.k8s.io",
            "create on pods in namespace default (a dry run: nothing is stored)"
        ]
    );
    assert!(r.findings.is_empty());
    fake.shutdown().await;
}

fn profiles() -> ProfileSet {
    let p: Value = json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
        "metadata": {"name": "log-shipper"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "mode": "auto",
                 "containers": [{"name": "log", "image": "log:1"}]}});
    ProfileSet::new(vec![Profile::from_value(&p, "test").unwrap()], None).unwrap()
}

fn at(s: u32) -> String {
    format!("2026-01-01T10:00:{s:02}Z")
}

/// A fake API server with namespace `shop` and three nodes: `new` (1.32, capable), `old`
/// (1.27, unaware) and `edge` (1.28, rejecting).
async fn shop_on_mixed_nodes() -> FakeApi {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let st = fake.state();
    st.seed_namespace("shop", &[]).unwrap();
    st.seed_node(NodeSeed::new("new", "v1.32.3")).unwrap();
    st.seed_node(NodeSeed::new("old", "v1.27.9")).unwrap();
    st.seed_node(NodeSeed::new("edge", "v1.28.9")).unwrap();
    fake
}

fn pod(name: &str, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop"}, "spec": spec, "status": status})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_in_trouble() {
    let fake = shop_on_mixed_nodes().await;
    let st = fake.state();
    let sidecar = json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
    st.insert("pods", pod("rejected", json!({"nodeName": "edge", "initContainers": sidecar, "containers": [{"name": "app", "image": "a"}]}),
        json!({"phase": "Failed", "reason": "InitContainerRestartPolicyForbidden", "message": "Init container \"proxy\" may not have a non-default restartPolicy", "startTime": at(0)}))).unwrap();
    st.insert("pods", pod("stuck", json!({"nodeName": "old", "initContainers": sidecar, "containers": [{"name": "app", "image": "a"}]}),
        json!({"phase": "Pending", "startTime": at(0),
               "initContainerStatuses": [{"name": "proxy", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}],
               "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}))).unwrap();
    // A Deployment's pod whose template has the sidecar, and the pod lost the field.
    st.insert("replicasets", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9c", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"initContainers": sidecar, "containers": [{"name": "app", "image": "a"}]}}}})).unwrap();
    let mut stripped = pod(
        "web-7d9c-abcde",
        json!({"nodeName": "new", "initContainers": [{"name": "proxy", "image": "envoy"}], "containers": [{"name": "app", "image": "a"}]}),
        json!({"phase": "Pending", "startTime": at(0)}),
    );
    stripped["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": "u2", "controller": true}]);
    st.insert("pods", stripped).unwrap();
    // A healthy pod with a native sidecar: shown, no finding, with a timeline.
    st.insert("pods", pod("fine", json!({"nodeName": "new", "initContainers": sidecar, "containers": [{"name": "app", "image": "a"}]}),
        json!({"phase": "Running", "startTime": at(0),
               "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": at(3)}],
               "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}],
               "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(2)}}}]}))).unwrap();
    // A pod without sidecars: counted, not shown.
    st.insert(
        "pods",
        pod(
            "plain",
            json!({"containers": [{"name": "app", "image": "a"}]}),
            json!({"phase": "Running"}),
        ),
    )
    .unwrap();
    let s = session(&fake).await;
    let r = pods::run(
        &s,
        &PodsOptions {
            namespaces: vec!["shop".into()],
            ..PodsOptions::default()
        },
    )
    .await
    .unwrap();
    let got = checks(&r.report);
    assert!(
        got.contains(&("pods.rejected-by-node".into(), Severity::Error)),
        "{got:?}"
    );
    assert!(
        got.contains(&("pods.stuck-in-init".into(), Severity::Error)),
        "{got:?}"
    );
    let s_f = finding(&r.report, "pods.restart-policy-stripped");
    assert!(
        s_f.message.starts_with(
            "Deployment web (ReplicaSet web-7d9c) declares restartPolicy: Always on proxy"
        ),
        "{}",
        s_f.message
    );
    assert_eq!(
        r.report.table.len(),
        5,
        "header and four pods: {:?}",
        r.report.table
    );
    assert!(
        r.report.summary[0]
            .starts_with("5 pod(s) in namespace(s) shop; 4 with sidecars or findings")
    );
    let fine = r.timelines.iter().find(|t| t.pod == "shop/fine").unwrap();
    let events: Vec<(&str, f64)> = fine
        .events
        .iter()
        .map(|e| (e.label.as_str(), e.at))
        .collect();
    assert_eq!(events, vec![("pod Ready", 3.0)]);
    // One pod by name.
    let one = pods::run(
        &s,
        &PodsOptions {
            namespaces: vec!["shop".into()],
            name: Some("plain".into()),
            ..PodsOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(one.report.table.len(), 2);
    // A namespace whose pods are forbidden is a blind spot while others can be read.
    st.seed_namespace("secret", &[]).unwrap();
    fake.deny(Deny::resource("list", "pods").in_namespace("secret"));
    let r = pods::run(
        &s,
        &PodsOptions {
            namespaces: vec!["shop".into(), "secret".into()],
            ..PodsOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        r.report.blind_spots[0].permission,
        "list on pods in namespace secret"
    );
    assert_eq!(r.report.table.len(), 5);
    fake.clear_denials();
    // Templates behind a refusal are a blind spot, not an error.
    fake.deny(Deny::resource("get", "replicasets"));
    let r = pods::run(
        &s,
        &PodsOptions {
            namespaces: vec!["shop".into()],
            ..PodsOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        r.report.blind_spots[0].permission,
        "get on replicasets.apps in namespace shop"
    );
    fake.shutdown().await;
}

/// The attributes of every `<name ...>` element in a piece of SVG.
fn elements(svg: &str, name: &str) -> Vec<HashMap<String, String>> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find(&open) {
        let tag = &rest[i + open.len()..];
        let end = tag.find('>').unwrap();
        let mut attrs = HashMap::new();
        let mut a = &tag[..end];
        while let Some(eq) = a.find("=\"") {
            let key = a[..eq].trim().to_string();
            let v = &a[eq + 2..];
            let close = v.find('"').unwrap();
            attrs.insert(key, v[..close].to_string());
            a = &v[close + 1..];
        }
        out.push(attrs);
        rest = &tag[end..];
    }
    out
}

fn f(attrs: &HashMap<String, String>, key: &str) -> f64 {
    attrs
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {attrs:?}"))
        .parse()
        .unwrap()
}

/// The section of the HTML report that draws one pod.
fn section<'a>(html: &'a str, pod: &str) -> &'a str {
    let id = format!("id=\"timeline-{}\"", pod.replace('/', "-"));
    let start = html
        .find(&id)
        .unwrap_or_else(|| panic!("no timeline of {pod}"));
    let len = html[start..].find("</section>").unwrap();
    &html[start..start + len]
}

/// One pod's chart, read back: its axis maps seconds onto x.
struct Chart {
    x0: f64,
    x_end: f64,
    end: f64,
    runs: Vec<HashMap<String, String>>,
    events: Vec<HashMap<String, String>>,
}

impl Chart {
    fn of(section: &str) -> Chart {
        let axis = elements(section, "line")
            .into_iter()
            .find(|l| l.get("class").map(String::as_str) == Some("axis"))
            .expect("an axis");
        let report = elements(section, "line")
            .into_iter()
            .find(|l| l.get("class").map(String::as_str) == Some("report-time"))
            .expect("the report time");
        assert_eq!(
            (f(&report, "x1"), f(&report, "data-at")),
            (f(&axis, "x2"), f(&axis, "data-end")),
            "the axis ends at the report time"
        );
        assert!(
            elements(section, "g")
                .iter()
                .all(|g| g.get("class").map(String::as_str) != Some("axis-break")),
            "a 50 s chart is drawn to one scale"
        );
        Chart {
            x0: f(&axis, "x1"),
            x_end: f(&axis, "x2"),
            end: f(&axis, "data-end"),
            runs: elements(section, "rect")
                .into_iter()
                .filter(|r| r.get("class").map(String::as_str) == Some("run"))
                .collect(),
            events: elements(section, "g")
                .into_iter()
                .filter(|g| g.get("class").map(String::as_str) == Some("event"))
                .collect(),
        }
    }

    /// Where `t` seconds after the pod's start fall, by the axis's own ends.
    fn x(&self, t: f64) -> f64 {
        self.x0 + t / self.end * (self.x_end - self.x0)
    }

    fn run(&self, container: &str, running: bool) -> (f64, f64) {
        let r = self
            .runs
            .iter()
            .find(|r| r["data-container"] == container && r["data-running"] == running.to_string())
            .unwrap_or_else(|| {
                panic!(
                    "no run of {container} (running: {running}) in {:?}",
                    self.runs
                )
            });
        (f(r, "x"), f(r, "x") + f(r, "width"))
    }

    fn event(&self, kind: &str) -> &HashMap<String, String> {
        self.events
            .iter()
            .find(|e| e["data-kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event in {:?}", self.events))
    }

    /// The x of an event's marker line.
    fn event_x(&self, section: &str, kind: &str) -> f64 {
        let at = section.find(&format!("data-kind=\"{kind}\"")).unwrap();
        f(&elements(&section[at..], "line")[0], "x1")
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

/// The HTML report of the doctor's scenarios, read back from its SVG: a pod stuck in Init
/// for 50 s, a pod its node refused, a Job kept alive by its legacy sidecar, and a universal
/// pod with its detection restart, the report taken 50 s after they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_draws_a_stall_as_a_stall() {
    let fake = shop_on_mixed_nodes().await;
    let st = fake.state();
    let sidecar = json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
    let app = json!([{"name": "app", "image": "a"}]);
    st.insert("pods", pod("stuck", json!({"nodeName": "old", "initContainers": sidecar, "containers": app}),
        json!({"phase": "Pending", "startTime": at(0),
               "initContainerStatuses": [{"name": "proxy", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}],
               "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}))).unwrap();
    st.insert("pods", pod("rejected", json!({"nodeName": "edge", "initContainers": sidecar, "containers": app}),
        json!({"phase": "Failed", "reason": "InitContainerRestartPolicyForbidden", "message": "Init container \"proxy\" may not have a non-default restartPolicy", "startTime": at(0)}))).unwrap();
    let legacy = r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:1","mode":"legacy","reason":"r","added":{"containers":["log-shipper"]}}]}"#;
    let mut job = pod(
        "report-1",
        json!({"nodeName": "old", "restartPolicy": "Never", "containers": [{"name": "report", "image": "r"}, {"name": "log-shipper", "image": "ls"}]}),
        json!({"phase": "Running", "startTime": at(0), "containerStatuses": [
            {"name": "report", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(1), "finishedAt": at(9)}}},
            {"name": "log-shipper", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(1)}}}]}),
    );
    job["metadata"]["annotations"] = json!({"sidecar-kit.io/status": legacy});
    st.insert("pods", job).unwrap();
    let universal = r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:1","mode":"universal","reason":"r","added":{"initContainers":["sidecar-kit-install","log-shipper"],"containers":["log-shipper-legacy"],"volumes":["sidecar-kit"]}}]}"#;
    let mut web = pod(
        "web-1",
        json!({"nodeName": "new",
            "initContainers": [{"name": "sidecar-kit-install", "image": "sk", "command": ["sidecar-shim", "install", "/sidecar-kit/bin"]},
                               {"name": "log-shipper", "image": "ls", "restartPolicy": "Always", "command": ["/sidecar-kit/bin/sidecar-shim", "native", "--", "ship"]}],
            "containers": [{"name": "app", "image": "web"},
                           {"name": "log-shipper-legacy", "image": "ls", "command": ["/sidecar-kit/bin/sidecar-shim", "legacy", "--", "ship"]}]}),
        json!({"phase": "Running", "startTime": at(0),
            "conditions": [{"type": "Initialized", "status": "True", "lastTransitionTime": at(3)}, {"type": "Ready", "status": "True", "lastTransitionTime": at(4)}],
            "initContainerStatuses": [
                {"name": "sidecar-kit-install", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(0), "finishedAt": at(1)}}},
                {"name": "log-shipper", "ready": true, "started": true, "restartCount": 1,
                 "lastState": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at(1), "finishedAt": at(1)}},
                 "state": {"running": {"startedAt": at(2)}}}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(3)}}},
                {"name": "log-shipper-legacy", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": at(3)}}}]}),
    );
    web["metadata"]["annotations"] = json!({"sidecar-kit.io/status": universal});
    st.insert("pods", web).unwrap();
    let s = session(&fake).await;
    let r = pods::run(
        &s,
        &PodsOptions {
            namespaces: vec!["shop".into()],
            report_time: Some(at(50).parse().unwrap()),
            ..PodsOptions::default()
        },
    )
    .await
    .unwrap();
    fake.shutdown().await;
    let html = pods::html(&r);

    // The findings come first, then the pods with findings, then the others.
    let findings = html.find("<h2>Findings</h2>").unwrap();
    let pos = |pod: &str| html.find(&format!("id=\"timeline-{}\"", pod.replace('/', "-")));
    let flagged: Vec<usize> = ["shop/report-1", "shop/rejected", "shop/stuck"]
        .iter()
        .map(|p| pos(p).unwrap_or_else(|| panic!("no timeline of {p}")))
        .collect();
    let other = pos("shop/web-1").unwrap();
    let details = html.find("<details").unwrap();
    assert!(
        flagged.iter().all(|p| findings < *p && *p < details) && details < other,
        "findings, then the pods with findings, then the others: {html}"
    );
    assert_eq!(r.with_findings, 3);

    // Stuck in Init: the axis ends at the report time, 50 s in, with round ticks, and the
    // sidecar that never lets the pod go runs all the way to it.
    let stuck = section(&html, "shop/stuck");
    let c = Chart::of(stuck);
    assert_eq!(c.end, 50.0);
    let ticks: Vec<(f64, f64)> = elements(stuck, "text")
        .iter()
        .filter(|t| t.get("class").map(String::as_str) == Some("tick"))
        .map(|t| (f(t, "data-at"), f(t, "x")))
        .collect();
    assert_eq!(
        ticks.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    );
    assert!(ticks.iter().all(|(at, x)| close(*x, c.x(*at))), "{ticks:?}");
    let (from, to) = c.run("proxy", true);
    assert!(close(from, c.x(1.0)) && close(to, c.x_end), "{from}..{to}");
    assert!(
        to - from > 0.9 * (c.x_end - c.x0),
        "a 49 s stall covers most of the chart"
    );
    assert!(stuck.contains("2026-01-01T10:00:50Z") && stuck.contains("whole seconds"));

    // Refused by the node: nothing ran, the rejection is marked at the pod's start.
    let rejected = section(&html, "shop/rejected");
    let c = Chart::of(rejected);
    assert!(c.runs.is_empty(), "{:?}", c.runs);
    assert_eq!(f(c.event("rejected"), "data-at"), 0.0);
    assert!(close(c.event_x(rejected, "rejected"), c.x0));

    // The Job kept alive: the app stops at its finish, marked; the legacy sidecar runs on
    // to the report time.
    let job = section(&html, "shop/report-1");
    let c = Chart::of(job);
    let (from, to) = c.run("report", false);
    assert!(close(from, c.x(1.0)) && close(to, c.x(9.0)), "{from}..{to}");
    let (_, to) = c.run("log-shipper", true);
    assert!(close(to, c.x_end), "{to}");
    assert_eq!(f(c.event("app-finished"), "data-at"), 9.0);
    assert!(close(c.event_x(job, "app-finished"), c.x(9.0)));

    // Universal: the native copy's detection restart, with its exit code, at 1 s; then it
    // runs to the report time.
    let web = section(&html, "shop/web-1");
    let c = Chart::of(web);
    let restart = c.event("restart");
    assert_eq!(
        (
            restart["data-container"].as_str(),
            restart["data-exit-code"].as_str(),
            f(restart, "data-at")
        ),
        ("log-shipper", "0", 1.0)
    );
    assert!(close(c.event_x(web, "restart"), c.x(1.0)));
    let (from, to) = c.run("log-shipper", true);
    assert!(close(from, c.x(2.0)) && close(to, c.x_end));
    let (from, _) = c.run("sidecar-kit-install", false);
    assert!(close(from, c.x0));

    // The text chart ends at the same time, with the same round ticks.
    let text = pods::text(&r);
    let stuck_text = &text[text.find("Timeline of pod shop/stuck").unwrap()..];
    let proxy = stuck_text.lines().find(|l| l.contains("  proxy ")).unwrap();
    assert!(proxy.contains("=>| started 1s, running"), "{stuck_text}");
    let labels = stuck_text
        .lines()
        .find(|l| l.trim_start().starts_with("0s "))
        .unwrap();
    assert_eq!(
        labels.split_whitespace().collect::<Vec<_>>(),
        vec!["0s", "10s", "20s", "30s", "40s", "50s"],
        "{stuck_text}"
    );
    assert_eq!(
        finding(&r.report, "pods.job-kept-alive").message,
        "app container report has finished, but log-shipper is still running as a legacy sidecar (restartPolicy Never): the pod never completes, so its Job never finishes or retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injections_per_workload() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let st = fake.state();
    st.seed_namespace("shop", &[("sidecar-kit.io/inject", "enabled")])
        .unwrap();
    st.seed_node(NodeSeed::new("new", "v1.32.3")).unwrap();
    let set = profiles();
    let current = set.get("log-shipper").unwrap().hash.clone();
    let status = |hash: &str, mode: &str| {
        format!(
            r#"{{"v":1,"injections":[{{"profile":"log-shipper","hash":"{hash}","mode":"{mode}","reason":"r","added":{{"containers":["log"]}}}}]}}"#
        )
    };
    let web_pod = |name: &str, ann: Option<String>| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9c"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "new", "containers": [{"name": "app", "image": "a"}]}, "status": {"phase": "Running"}});
        if let Some(a) = ann {
            p["metadata"]["annotations"] = json!({"sidecar-kit.io/status": a});
        }
        p
    };
    st.insert(
        "pods",
        web_pod(
            "web-7d9c-a",
            Some(status("sha256:0000000000000000", "native")),
        ),
    )
    .unwrap();
    st.insert(
        "pods",
        web_pod("web-7d9c-b", Some(status(&current, "native"))),
    )
    .unwrap();
    st.insert(
        "pods",
        web_pod("web-7d9c-c", Some(status(&current, "legacy"))),
    )
    .unwrap();
    st.insert("pods", web_pod("web-7d9c-d", None)).unwrap();
    let s = session(&fake).await;
    let r = injections::run(
        &s,
        &InjectionsOptions {
            namespaces: vec!["shop".into()],
            all_namespaces: false,
            profiles: set,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        r.table[1],
        ["shop", "Deployment/web", "4", "1", "1", "0", "1", "1"]
    );
    let stale = finding(&r, "injections.stale");
    assert_eq!(stale.object.as_deref(), Some("Deployment shop/web"));
    assert_eq!(
        stale.fix.as_deref(),
        Some("kubectl rollout restart deployment/web -n shop")
    );
    assert!(has(&r, "injections.not-injected", Severity::Warning));
    assert!(has(&r, "injections.legacy-on-capable-node", Severity::Info));
    assert!(
        r.summary
            .iter()
            .any(|l| l == "  kubectl rollout restart deployment/web -n shop")
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_forbidden_at_start_is_exit_3() {
    // A port nobody listens on: bind one, then drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("doctor-closed");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
    )
    .unwrap();
    let err = conn::connect(&Target {
        kubeconfig: Some(kc),
        context: None,
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, DoctorError::Cluster(_)), "{err:?}");
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .starts_with("cannot reach the API server at http://127.0.0.1:"),
        "{err}"
    );

    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    // Credentials the API server does not accept: exit 3 too.
    let bad_dir = TempDir::new("doctor-badtoken");
    let bad = bad_dir.path().join("kubeconfig");
    std::fs::write(&bad, fake.kubeconfig_with_token("wrong")).unwrap();
    let err = conn::connect(&Target {
        kubeconfig: Some(bad),
        context: None,
    })
    .await
    .err()
    .unwrap();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("does not accept these credentials"),
        "{err}"
    );
    fake.deny(Deny::resource("list", "nodes"));
    let s = session(&fake).await;
    let err = cluster::run(&s, &quiet()).await.err().unwrap();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("grant list on nodes"), "{err}");
    let err = pods::run(&s, &PodsOptions::default()).await.err();
    assert!(err.is_none(), "pods are readable");
    fake.deny(Deny::resource("list", "pods"));
    let err = pods::run(&s, &PodsOptions::default()).await.err().unwrap();
    assert_eq!(err.exit_code(), 3);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_probe_is_a_warning_not_a_verdict() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    // A mutation that breaks the pod: the API server answers 422.
    fake.set_pod_mutation(|pod| {
        pod["spec"]["containers"][0]["image"] = json!("");
    });
    let s = session(&fake).await;
    let r = webhooks::run(&s, &WebhooksOptions::default())
        .await
        .unwrap();
    assert_eq!(
        checks(&r),
        [("webhooks.probe-refused".to_string(), Severity::Warning)]
    );
    assert!(
        r.findings[0].message.contains("spec.containers[0].image"),
        "{}",
        r.findings[0].message
    );
    assert!(
        r.summary
            .iter()
            .any(|l| l == "probe in default: the dry run was refused")
    );
    fake.shutdown().await;
}
