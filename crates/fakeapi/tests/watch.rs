//! Watch streams: order, bookmarks, 410 on a stale resourceVersion, streaming lists, and
//! the faults tests inject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, End};
use serde_json::json;
use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeSeed};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

fn lease(name: &str) -> serde_json::Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
           "spec": {"holderIdentity": "a"}})
}

fn rv(v: &serde_json::Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn fake_with(f: impl FnOnce(&mut FakeConfig)) -> FakeApi {
    let mut config = FakeConfig::default();
    f(&mut config);
    FakeApi::start(config).await.unwrap()
}

#[tokio::test]
async fn events_in_order_from_a_list() {
    let fake = fake_with(|_| {}).await;
    let c = Client::new(&fake);
    c.post(LEASES, &lease("before")).await;
    let (_, list) = c.get_json(LEASES).await;
    let list_rv = rv(&list);
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={list_rv}"))
        .await;
    let (_, created) = c.post(LEASES, &lease("l")).await;
    let mut changed = created.clone();
    changed["spec"]["holderIdentity"] = "b".into();
    c.put(&format!("{LEASES}/l"), &changed).await;
    c.delete(&format!("{LEASES}/l")).await;
    let mut last = list_rv;
    for want in ["ADDED", "MODIFIED", "DELETED"] {
        let ev = w.next_change().await;
        assert_eq!(ev["type"], want);
        assert_eq!(ev["object"]["kind"], "Lease");
        assert_eq!(ev["object"]["metadata"]["name"], "l");
        assert!(rv(&ev["object"]) > last);
        last = rv(&ev["object"]);
    }
    // A watch without a resourceVersion starts with the current state.
    let mut w = c.watch(&format!("{LEASES}?watch=1")).await;
    let ev = w.next().await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("before"))
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn bookmarks_carry_the_resource_version() {
    let fake = fake_with(|c| c.bookmark_interval = Duration::from_millis(50)).await;
    let c = Client::new(&fake);
    let rv0 = fake.state().resource_version();
    let mut w = c
        .watch(&format!(
            "/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion={rv0}"
        ))
        .await;
    let b = w.next().await;
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(b["object"]["kind"], "Node");
    assert_eq!(rv(&b["object"]), rv0);
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    let added = w.next_change().await;
    assert_eq!(added["type"], "ADDED");
    loop {
        let b = w.next().await;
        if b["type"] == "BOOKMARK" {
            assert_eq!(rv(&b["object"]), rv(&added["object"]));
            break;
        }
    }
    // Without allowWatchBookmarks there are none.
    let mut w = c
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={}",
            fake.state().resource_version()
        ))
        .await;
    assert_eq!(
        w.next_within(Duration::from_millis(200)).await,
        Err(End::Timeout)
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn stale_resource_version_gets_410() {
    let fake = fake_with(|c| c.watch_history = 3).await;
    let c = Client::new(&fake);
    let old = fake.state().resource_version();
    for i in 0..5 {
        c.post(LEASES, &lease(&format!("l{i}"))).await;
    }
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={old}"))
        .await;
    let ev = w.next().await;
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert_eq!(ev["object"]["kind"], "Status");
    assert!(
        ev["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {old} ("))
    );
    assert_eq!(
        w.next_within(Duration::from_secs(2)).await,
        Err(End::Closed)
    );
    // A recent one still works; after a compaction it does not.
    let recent = fake.state().resource_version() - 1;
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={recent}"))
        .await;
    assert_eq!(w.next().await["object"]["metadata"]["name"], "l4");
    fake.state().compact();
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={recent}"))
        .await;
    assert_eq!(w.next().await["object"]["code"], 410);
    // A future one is "too large".
    let future = fake.state().resource_version() + 100;
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={future}"))
        .await;
    let ev = w.next().await;
    assert_eq!(
        (ev["type"].as_str(), ev["object"]["code"].as_i64()),
        (Some("ERROR"), Some(504))
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn drop_watches_on_demand_and_after_n_events() {
    let fake = fake_with(|_| {}).await;
    let c = Client::new(&fake);
    let now = fake.state().resource_version();
    let mut a = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={now}"))
        .await;
    let mut b = c
        .watch(&format!("/api/v1/nodes?watch=true&resourceVersion={now}"))
        .await;
    c.post(LEASES, &lease("x")).await;
    assert_eq!(a.next().await["type"], "ADDED");
    fake.drop_watches();
    assert_eq!(
        a.next_within(Duration::from_secs(2)).await,
        Err(End::Broken)
    );
    assert_eq!(
        b.next_within(Duration::from_secs(2)).await,
        Err(End::Broken)
    );
    // New watches work; with a budget they break after it.
    fake.drop_watches_after(Some(2));
    let now = fake.state().resource_version();
    let mut w = c
        .watch(&format!("{LEASES}?watch=true&resourceVersion={now}"))
        .await;
    for i in 0..3 {
        c.post(LEASES, &lease(&format!("y{i}"))).await;
    }
    assert_eq!(w.next().await["object"]["metadata"]["name"], "y0");
    assert_eq!(w.next().await["object"]["metadata"]["name"], "y1");
    assert_eq!(
        w.next_within(Duration::from_secs(2)).await,
        Err(End::Broken)
    );
    fake.drop_watches_after(None);
    fake.shutdown().await;
}

#[tokio::test]
async fn selectors_turn_changes_into_added_and_deleted() {
    let fake = fake_with(|_| {}).await;
    let c = Client::new(&fake);
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    let now = fake.state().resource_version();
    let mut w = c
        .watch(&format!("/api/v1/nodes?watch=true&resourceVersion={now}&labelSelector=sidecar-kit.io%2Fnative-sidecars%3Dtrue"))
        .await;
    let label = |v: serde_json::Value| json!({"metadata": {"labels": {"sidecar-kit.io/native-sidecars": v}}});
    c.patch(
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        &label(json!("true")),
    )
    .await;
    c.patch(
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        &json!({"metadata": {"annotations": {"a": "b"}}}),
    )
    .await;
    c.patch(
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        &label(json!("rejected")),
    )
    .await;
    assert_eq!(w.next().await["type"], "ADDED");
    assert_eq!(w.next().await["type"], "MODIFIED");
    assert_eq!(w.next().await["type"], "DELETED");
    fake.shutdown().await;
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch() {
    let fake = fake_with(|_| {}).await;
    let c = Client::new(&fake);
    let t = Instant::now();
    let mut w = c
        .watch("/api/v1/nodes?watch=true&timeoutSeconds=1&resourceVersion=1")
        .await;
    assert_eq!(
        w.next_within(Duration::from_secs(5)).await,
        Err(End::Closed)
    );
    assert!(t.elapsed() >= Duration::from_millis(900));
    fake.shutdown().await;
}

#[tokio::test]
async fn streaming_lists_with_send_initial_events() {
    let fake = fake_with(|_| {}).await;
    let c = Client::new(&fake);
    for n in ["a", "b"] {
        fake.state().seed_node(NodeSeed::new(n, "v1.31.2")).unwrap();
    }
    let now = fake.state().resource_version();
    let mut w = c
        .watch("/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        .await;
    assert_eq!(w.next().await["object"]["metadata"]["name"], "a");
    assert_eq!(w.next().await["object"]["metadata"]["name"], "b");
    let end = w.next().await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(rv(&end["object"]), now);
    fake.state()
        .seed_node(NodeSeed::new("c", "v1.31.2"))
        .unwrap();
    assert_eq!(w.next_change().await["object"]["metadata"]["name"], "c");
    // Metadata-only watches (kube-rs watch_metadata).
    let mut w = c
        .watch_with(
            &format!("/api/v1/nodes?watch=true&resourceVersion={now}"),
            &[(
                "accept",
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            )],
        )
        .await;
    let ev = w.next().await;
    assert_eq!(ev["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(ev["object"]["metadata"]["name"], "c");
    assert!(ev["object"].get("status").is_none());
    fake.shutdown().await;

    let fake = fake_with(|c| c.watch_list = false).await;
    let c = Client::new(&fake);
    let (code, st) = c
        .get_json("/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
    );
    fake.shutdown().await;
}
