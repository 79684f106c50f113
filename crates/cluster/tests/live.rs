//! Live facts against the project's fake API server: the caches sync, decisions follow the
//! nodes, changes arrive through the watch (also after the server drops it), the gate comes
//! from `/metrics` (or is inferred where that is forbidden), and the labeler's Lease counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
mod common;

use common::{client, eventually};
use sidecar_kit_cluster::live::{LiveFacts, LiveOptions};
use sidecar_kit_core::facts::{Availability, Facts, Scheduling};
use sidecar_kit_core::version::GateState;
use sidecar_kit_fakeapi::{ApiMetrics, FakeApi, FakeConfig, NodeSeed};
use std::time::{Duration, Instant};

fn fast() -> LiveOptions {
    LiveOptions {
        labeler_lease: Some(("sidecar-kit".into(), "sidecar-kit-label-nodes".into())),
        refresh: Duration::from_millis(100),
        api_refresh: Duration::from_millis(100),
        rebuild_every: Duration::from_millis(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_facts_follow_the_cluster() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let s = fake.state();
    s.seed_node(NodeSeed::new("new-1", "v1.31.4").label("pool", "new"))
        .unwrap();
    s.seed_node(NodeSeed::new("new-2", "v1.31.4").label("pool", "new"))
        .unwrap();
    s.seed_node(NodeSeed::new("old-1", "v1.27.9").label("pool", "old"))
        .unwrap();
    s.seed_namespace("shop", &[("team", "payments")]).unwrap();
    let (c, _dir) = client(&fake).await;
    let facts = LiveFacts::start(c, fast());

    eventually("the caches to sync", Duration::from_secs(20), || {
        facts.availability() == Availability::Known && facts.api_server().0.is_some()
    })
    .await;
    assert_eq!(
        facts.api_server().1,
        GateState::Enabled,
        "the gate line of /metrics"
    );
    assert_eq!(
        facts
            .namespace_labels("shop")
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("payments")
    );
    let all = facts.candidates(&Scheduling::default());
    assert_eq!((all.capable, all.unaware), (2, 1));
    let new_pool = Scheduling {
        node_selector: [("pool".to_string(), "new".to_string())].into(),
        ..Scheduling::default()
    };
    assert_eq!(facts.candidates(&new_pool).capable, 2);
    assert_eq!(facts.candidates(&new_pool).total(), 2);
    assert_eq!(
        facts.labeler_lease_fresh(),
        Some(false),
        "no Lease: not fresh"
    );

    // A node upgraded: the watch brings it, the index follows, the generation moves.
    let g = facts.generation();
    let mut old = s.get("nodes", None, "old-1").unwrap().unwrap();
    old["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.30.1");
    s.insert("nodes", old).unwrap();
    eventually("the upgrade to arrive", Duration::from_secs(20), || {
        facts.candidates(&Scheduling::default()).capable == 3
    })
    .await;
    assert!(facts.generation() > g);

    // The server drops every watch: the cache recovers and keeps following.
    fake.drop_watches();
    s.seed_node(NodeSeed::new("new-3", "v1.32.0").label("pool", "new"))
        .unwrap();
    eventually(
        "a node added after the watch was dropped",
        Duration::from_secs(20),
        || facts.candidates(&new_pool).capable == 3,
    )
    .await;

    // The labeler's Lease, renewed just now, is fresh.
    let now = k8s_openapi::jiff::Timestamp::now();
    s.insert("leases.coordination.k8s.io", json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "sidecar-kit-label-nodes", "namespace": "sidecar-kit"},
        "spec": {"holderIdentity": "labeler-0", "leaseDurationSeconds": 30, "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}})).unwrap();
    eventually(
        "the Lease to count as fresh",
        Duration::from_secs(20),
        || facts.labeler_lease_fresh() == Some(true),
    )
    .await;
    assert!(
        facts.describe().contains("labeler lease fresh"),
        "{}",
        facts.describe()
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_off_and_forbidden_metrics() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.32.3".into(),
        sidecar_containers: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let (c, _dir) = client(&fake).await;
    let report = sidecar_kit_cluster::apiserver::api_server(&c, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.version, "v1.32.3");
    assert_eq!(report.gate, GateState::Disabled);
    assert_eq!(
        report.source,
        sidecar_kit_cluster::apiserver::GateSource::Metrics
    );

    fake.set_metrics(ApiMetrics::Forbidden);
    let report = sidecar_kit_cluster::apiserver::api_server(&c, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.gate, GateState::Unknown);
    match report.source {
        sidecar_kit_cluster::apiserver::GateSource::Unreadable(why) => assert!(
            why.contains("/metrics") && why.contains("forbidden"),
            "{why}"
        ),
        other => panic!("expected unreadable, got {other:?}"),
    }
    fake.set_metrics(ApiMetrics::WithoutSidecarLine);
    let report = sidecar_kit_cluster::apiserver::api_server(&c, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        report.source,
        sidecar_kit_cluster::apiserver::GateSource::NoLine
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_is_not_known() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let (c, _dir) = client(&fake).await;
    fake.shutdown().await;
    let facts = LiveFacts::start(c, fast());
    eventually(
        "the failure to show in the description",
        Duration::from_secs(20),
        || facts.describe().contains("watch"),
    )
    .await;
    assert!(
        matches!(facts.availability(), Availability::Unsynced(ref why) if why.contains("unreachable")),
        "{:?}",
        facts.availability()
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Sync time and memory of the node cache for 5,000 nodes. Run with
/// `cargo test --release -p sidecar-kit-cluster --test live -- --ignored --nocapture node_cache_5000`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn node_cache_5000() {
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let s = fake.state();
    s.seed_nodes((0..5000).map(|i| {
        let pool = ["general", "general", "memory", "gpu", "legacy"][i % 5];
        NodeSeed::new(
            format!("node-{i:04}"),
            if pool == "legacy" {
                "v1.27.16"
            } else {
                "v1.31.4"
            },
        )
        .label("pool", pool)
        .label("topology.kubernetes.io/zone", format!("zone-{}", i % 3))
        .label("node.kubernetes.io/instance-type", "m6i.2xlarge")
    }))
    .unwrap();
    let (c, _dir) = client(&fake).await;
    let before = rss_kib();
    let t = Instant::now();
    let facts = LiveFacts::start(c, fast());
    let deadline = Instant::now() + Duration::from_secs(120);
    while facts.availability() != Availability::Known || facts.node_count() < 5000 {
        assert!(Instant::now() < deadline, "no sync in 2 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sync = t.elapsed();
    let summary = facts.candidates(&Scheduling::default());
    assert_eq!(summary.total(), 5000, "{}", summary.describe());
    println!(
        "node cache: 5000 nodes synced in {:.0} ms; cache ~{:.1} MiB (estimate of kept fields and index); process RSS grew {:.1} MiB (includes the client's list buffers)",
        sync.as_secs_f64() * 1000.0,
        facts.approx_node_bytes() as f64 / 1048576.0,
        (rss_kib().saturating_sub(before)) as f64 / 1024.0
    );
    fake.shutdown().await;
}
