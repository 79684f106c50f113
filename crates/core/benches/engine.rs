//! Engine cost, from request bytes in to patch bytes out (plan + patch + serialisation).
//!
//!     cargo bench -p sidecar-kit-core --bench engine
//!
//! - `typical`: the pod of the bundled example Deployment (examples/manifests/web.yaml),
//!   with the bundled log-shipper profile, in native and universal mode.
//! - `huge`: 50 containers, 1,500 env vars, ~300 KB of managedFields.
//! - `scale/N`: the same pod shape at 1×, 10× and 100× size, to show the cost is linear.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The allocator of the shipped binary (crates/cli/src/main.rs), so that the figures are
// those of the webhook and the CLI.
#[global_allocator]
static GLOBAL: sidecar_kit_alloc::Allocator = sidecar_kit_alloc::Allocator;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use sidecar_kit_core::engine::{self, Options};
use sidecar_kit_core::facts::StaticFacts;
use sidecar_kit_core::patch;
use sidecar_kit_core::profile::{Mode, Profile, ProfileSet};
use std::hint::black_box;

fn profiles() -> ProfileSet {
    // The bundled example profile, as JSON (the core reads no files).
    let p = json!({
        "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
        "metadata": {"name": "log-shipper"},
        "spec": {
            "selector": {"matchLabels": {"logging": "shipped"}},
            "mode": "auto", "fallback": "universal", "priority": 100,
            "containers": [{
                "name": "log-shipper", "image": "registry.example.com/log-shipper:2.3.1",
                "command": ["/usr/bin/log-shipper", "--config", "/etc/log-shipper/config.yaml"],
                "args": ["--source", "/var/log/app"],
                "ports": [{"name": "metrics", "containerPort": 9100}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "metrics"}, "periodSeconds": 5},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                "volumeMounts": [{"name": "app-logs", "mountPath": "/var/log/app", "readOnly": true},
                                 {"name": "log-shipper-config", "mountPath": "/etc/log-shipper"}]
            }],
            "volumes": [{"name": "app-logs", "emptyDir": {}}, {"name": "log-shipper-config", "configMap": {"name": "log-shipper"}}],
            "appContainers": {"volumeMounts": [{"name": "app-logs", "mountPath": "/var/log/app"}],
                              "env": [{"name": "LOG_DIR", "value": "/var/log/app"}]}
        }
    });
    ProfileSet::new(
        vec![Profile::from_value(&p, "bench").expect("valid profile")],
        None,
    )
    .expect("valid set")
}

/// The pod the example Deployment creates, as the API server sends it to a webhook.
fn typical_pod() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9c6b5f4-", "namespace": "shop",
                     "labels": {"app": "web", "logging": "shipped", "pod-template-hash": "7d9c6b5f4"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c6b5f4",
                                          "uid": "6f1c1f0e-3c4b-4d0a-9a55-2b8f4c1d7e21", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "containers": [{"name": "web", "image": "registry.example.com/web:1.8.0", "command": ["/app/web"],
                            "args": ["--listen", ":8080"], "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                            "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
                "defaultMode": 420}}]
        }
    }))
    .expect("serialisable")
}

/// A pod of `containers` app containers with `env_per` env vars each and `managed` kB of managedFields.
fn sized_pod(containers: usize, env_per: usize, managed_kb: usize) -> Vec<u8> {
    let cs: Vec<Value> = (0..containers)
        .map(|i| {
            let env: Vec<Value> = (0..env_per).map(|j| json!({"name": format!("VAR_{i}_{j}"), "value": format!("value-{j}-0123456789abcdef")})).collect();
            json!({"name": format!("app-{i}"), "image": format!("registry.example.com/app-{i}:1.0"), "command": ["/app"],
                   "env": env, "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                   "volumeMounts": [{"name": "data", "mountPath": format!("/data/{i}")}]})
        })
        .collect();
    // managedFields entries shaped like the API server's (fieldsV1 trees).
    let entry = json!({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-11-25T10:00:00Z",
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {"k:{\"name\":\"VAR\"}": {".": {}, "f:name": {}, "f:value": {}}}, "f:image": {}, "f:name": {}}}}}});
    let entry_len = entry.to_string().len();
    let managed: Vec<Value> = (0..(managed_kb * 1024 / entry_len).max(1))
        .map(|_| entry.clone())
        .collect();
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "big", "namespace": "shop", "labels": {"logging": "shipped"}, "managedFields": managed},
        "spec": {"containers": cs, "volumes": [{"name": "data", "emptyDir": {}}]}
    }))
    .expect("serialisable")
}

fn run(body: &[u8], set: &ProfileSet, opts: &Options) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("utf-8");
    let out = engine::inject(text, set, &StaticFacts::none(), opts).expect("valid pod");
    patch::to_json(&out.patch)
}

fn bench(c: &mut Criterion) {
    let set = profiles();
    let native = Options {
        mode_override: Some(Mode::Native),
        ..Options::default()
    };
    let universal = Options {
        mode_override: Some(Mode::Universal),
        ..Options::default()
    };

    let typical = typical_pod();
    assert!(
        run(&typical, &set, &native).len() > 100,
        "the typical pod is injected"
    );
    let mut g = c.benchmark_group("typical");
    g.throughput(Throughput::Bytes(typical.len() as u64));
    g.bench_function("native", |b| {
        b.iter(|| run(black_box(&typical), &set, &native))
    });
    g.bench_function("universal", |b| {
        b.iter(|| run(black_box(&typical), &set, &universal))
    });
    g.finish();

    let huge = sized_pod(50, 30, 300);
    let mut g = c.benchmark_group("huge");
    g.throughput(Throughput::Bytes(huge.len() as u64));
    g.bench_function("native", |b| {
        b.iter(|| run(black_box(&huge), &set, &native))
    });
    g.finish();

    let mut g = c.benchmark_group("scale");
    for n in [1usize, 10, 100] {
        let pod = sized_pod(n, 15, 3 * n);
        g.throughput(Throughput::Bytes(pod.len() as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}x-{}KB", pod.len() / 1024)),
            &pod,
            |b, p| b.iter(|| run(black_box(p), &set, &native)),
        );
    }
    g.finish();
}

/// 5,000 nodes in pools, as a large cluster in the middle of an upgrade has them: per-node
/// hostname labels, zones, pools with taints, a few cordoned nodes, mixed kubelet versions.
fn big_cluster() -> sidecar_kit_core::facts::ClusterFacts {
    use sidecar_kit_core::facts::{
        ApiServerFacts, ClusterFacts, Label, LabelerFacts, NodeFacts, Taint,
    };
    use sidecar_kit_core::version::GateState;
    let nodes = (0..5000)
        .map(|i| {
            let pool = ["general", "general", "general", "memory", "gpu", "legacy"][i % 6];
            let version = match pool {
                "legacy" => "v1.27.16",
                "memory" if i % 12 == 3 => "v1.28.9",
                _ => "v1.31.4",
            };
            let mut labels = std::collections::BTreeMap::<Label, Label>::new();
            labels.insert("kubernetes.io/hostname".into(), format!("node-{i}").into());
            labels.insert(
                "topology.kubernetes.io/zone".into(),
                format!("zone-{}", i % 3).into(),
            );
            labels.insert("pool".into(), pool.into());
            labels.insert("kubernetes.io/os".into(), "linux".into());
            let taints = if pool == "gpu" {
                vec![Taint {
                    key: "nvidia.com/gpu".into(),
                    value: Some("present".into()),
                    effect: "NoSchedule".into(),
                }]
            } else {
                vec![]
            };
            NodeFacts {
                name: format!("node-{i}"),
                kubelet_version: version.into(),
                sidecar_containers: GateState::Unknown,
                unschedulable: i % 97 == 0,
                labels,
                taints,
            }
        })
        .collect();
    ClusterFacts {
        api_version: sidecar_kit_core::facts::FACTS_API_VERSION.into(),
        kind: sidecar_kit_core::facts::FACTS_KIND.into(),
        api_server: ApiServerFacts {
            version: Some("v1.32.3".into()),
            sidecar_containers: GateState::Enabled,
        },
        labeler: Some(LabelerFacts { lease_fresh: true }),
        nodes,
        namespaces: vec![],
    }
}

fn bench_facts(c: &mut Criterion) {
    use sidecar_kit_core::facts::{Facts, NodeSelectorTerm, Scheduling, StaticFacts, Toleration};
    use sidecar_kit_core::nodeindex::NodeIndex;
    let cluster = big_cluster();
    let mut g = c.benchmark_group("facts-5000-nodes");
    g.bench_function("index-build", |b| {
        b.iter(|| NodeIndex::new(black_box(&cluster.nodes)))
    });
    let facts = StaticFacts::new(cluster);
    let set = profiles();
    let auto = Options::default();
    let typical = typical_pod();
    assert!(!run_with(&typical, &set, &facts, &auto).is_empty());
    g.bench_function("auto-typical-pod", |b| {
        b.iter(|| run_with(black_box(&typical), &set, &facts, &auto))
    });
    // The worst case: a pod whose scheduling touches every part of the index.
    let worst: Scheduling = Scheduling {
        node_name: None,
        node_selector: [("kubernetes.io/os".to_string(), "linux".to_string())].into(),
        required_terms: (0..4)
            .map(|t| serde_json::from_value::<NodeSelectorTerm>(json!({"matchExpressions": [
                {"key": "pool", "operator": "NotIn", "values": ["legacy", format!("x{t}")]},
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-0", "zone-1"]},
                {"key": "kubernetes.io/hostname", "operator": "Exists"}],
                "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1", "node-2"]}]})).expect("term"))
            .collect(),
        tolerations: vec![Toleration { key: Some("nvidia.com/gpu".into()), operator: Some("Exists".into()), value: None, effect: None }; 8],
    };
    g.bench_function("candidates-worst-case", |b| {
        b.iter(|| facts.candidates(black_box(&worst)))
    });
    // What the engine asks for the typical pod: no selector, the API server's default
    // tolerations (not-ready, unreachable).
    let typical_scheduling = Scheduling {
        tolerations: [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ]
        .map(|k| Toleration {
            key: Some(k.into()),
            operator: Some("Exists".into()),
            value: None,
            effect: Some("NoExecute".into()),
        })
        .to_vec(),
        ..Scheduling::default()
    };
    g.bench_function("candidates-typical-pod", |b| {
        b.iter(|| facts.candidates(black_box(&typical_scheduling)))
    });
    // The whole decision for the typical pod on a cluster of 5,000 capable nodes.
    let mut capable = big_cluster();
    for n in &mut capable.nodes {
        n.kubelet_version = "v1.31.4".into();
    }
    let capable = StaticFacts::new(capable);
    g.bench_function("auto-native-typical-pod", |b| {
        b.iter(|| run_with(black_box(&typical), &set, &capable, &auto))
    });
    g.finish();
}

fn run_with(
    body: &[u8],
    set: &ProfileSet,
    facts: &dyn sidecar_kit_core::facts::Facts,
    opts: &Options,
) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("utf-8");
    let out = engine::inject(text, set, facts, opts).expect("valid pod");
    patch::to_json(&out.patch)
}

criterion_group!(benches, bench, bench_facts);
criterion_main!(benches);
