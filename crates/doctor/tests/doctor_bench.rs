//! Benchmark of `doctor cluster` over 5,000 nodes on the fake API server: kubelet metrics
//! of realistic size (100 KB each, the SidecarContainers line in the middle), 1% of the
//! kubelets never answering (2 s timeout), 32 requests in flight. Goal: under 10 s wall.
//!
//!     cargo test --release -p sidecar-kit-doctor --test doctor_bench -- --ignored doctor_bench --nocapture

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use sidecar_kit_doctor::cluster::{self, ClusterOptions};
use sidecar_kit_doctor::conn::list_all;
use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeProxy, NodeSeed};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
async fn doctor_bench() {
    let fake = FakeApi::start(FakeConfig {
        kubelet_metrics_bytes: 100_000,
        record_requests: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state()
        .seed_nodes((0..5000).map(|i| NodeSeed::new(format!("node-{i:04}"), "v1.31.2")))
        .unwrap();
    for i in (0..5000).step_by(100) {
        fake.set_node_proxy(&format!("node-{i:04}"), NodeProxy::Hang);
    }
    let body = fake.kubelet_metrics_for("v1.31.2", None);
    let gate_at = body
        .windows(b"name=\"SidecarContainers\"".len())
        .position(|w| w == b"name=\"SidecarContainers\"")
        .unwrap();
    let s = common::session(&fake).await;

    // The node list alone, for scale.
    let t = Instant::now();
    let nodes = list_all(&Api::<Node>::all(s.client.clone()), &ListParams::default())
        .await
        .unwrap();
    let list_time = t.elapsed();
    assert_eq!(nodes.len(), 5000);
    drop(nodes);

    let opts = ClusterOptions {
        concurrency: 32,
        node_timeout: Duration::from_secs(2),
        progress: false,
        ..ClusterOptions::default()
    };
    let t = Instant::now();
    let r = cluster::run(&s, &opts).await.unwrap();
    let total = t.elapsed();
    assert_eq!(r.facts.nodes.len(), 5000);
    let silent = r
        .report
        .table
        .iter()
        .filter(|row| row[5].contains("no answer within 2s"))
        .count();
    assert_eq!(silent, 50);
    println!(
        "doctor cluster: 5,000 nodes, {} KB kubelet metrics each (gate line at byte {gate_at}), 50 silent (2 s timeout), concurrency 32: {:.2} s wall (listing the nodes alone: {:.2} s)",
        body.len() / 1000,
        total.as_secs_f64(),
        list_time.as_secs_f64()
    );
    assert!(
        total < Duration::from_secs(10),
        "goal: under 10 s, took {total:?}"
    );

    // For scale: the same with every kubelet answering.
    for i in (0..5000).step_by(100) {
        fake.clear_node_proxy(&format!("node-{i:04}"));
    }
    let t = Instant::now();
    let r = cluster::run(&s, &opts).await.unwrap();
    let answering = t.elapsed();
    assert!(r.report.findings.is_empty(), "{:?}", r.report.findings);
    println!(
        "doctor cluster: the same 5,000 nodes, every kubelet answering: {:.2} s wall",
        answering.as_secs_f64()
    );
    fake.shutdown().await;
}
