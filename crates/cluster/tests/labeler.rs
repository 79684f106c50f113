//! The label-nodes controller against the project's fake API server: it converges mixed
//! nodes to the contract's labels and reasons, then writes nothing; follows upgrades and
//! watch drops; falls back to versions where the node proxy is forbidden; and hands over
//! between replicas through the Lease (released on shutdown, or expired after a crash).
//! Waits on conditions, never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
mod common;

use common::{client, eventually};
use sidecar_kit_cluster::labeler::{Labeler, LabelerConfig};
use sidecar_kit_fakeapi::{Deny, FakeApi, FakeConfig, NodeProxy, NodeSeed};
use sidecar_kit_testkit::http_get;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const NS: &str = "sidecar-kit";
const LABEL: &str = "sidecar-kit.io/native-sidecars";
const REASON: &str = "sidecar-kit.io/native-sidecars-reason";
const LEASE: &str = "sidecar-kit-label-nodes";

async fn fake() -> FakeApi {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.state().seed_namespace(NS, &[]).unwrap();
    fake
}

/// Fast timings for tests: a 3 s Lease renewed every 200 ms.
fn config(identity: &str) -> LabelerConfig {
    let mut c = LabelerConfig::new(NS, identity);
    c.lease.duration = Duration::from_secs(3);
    c.lease.renew_every = Duration::from_millis(200);
    c.lease.retry_every = Duration::from_millis(100);
    c.node_metrics_timeout = Duration::from_secs(2);
    c
}

/// A running replica: stop it (releasing the Lease) or kill it (without).
struct Replica {
    labeler: Labeler,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn start(client: kube::Client, cfg: LabelerConfig) -> Replica {
        let labeler = Labeler::new(client, cfg);
        let (tx, rx) = oneshot::channel::<()>();
        let l = labeler.clone();
        let task = tokio::spawn(async move {
            l.run(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Replica {
            labeler,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run returns after shutdown")
            .unwrap();
    }

    /// Dies without releasing anything: every task of it is aborted.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    fn role(&self) -> &'static str {
        self.labeler.status().role
    }
}

fn node(fake: &FakeApi, name: &str) -> Value {
    fake.state().get("nodes", None, name).unwrap().unwrap()
}

/// The node's label and reason annotation (parsed).
fn ours(fake: &FakeApi, name: &str) -> (Option<String>, Option<Value>) {
    let n = node(fake, name);
    let label = n["metadata"]["labels"][LABEL].as_str().map(String::from);
    let reason = n["metadata"]["annotations"][REASON]
        .as_str()
        .map(|r| serde_json::from_str(r).unwrap());
    (label, reason)
}

fn reason(version: &str, gate: &str, source: &str) -> Option<Value> {
    Some(json!({"kubeletVersion": version, "gate": gate, "source": source}))
}

fn lease_holder(fake: &FakeApi) -> Option<String> {
    fake.state()
        .get("leases.coordination.k8s.io", Some(NS), LEASE)
        .unwrap()
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
}

fn patches(fake: &FakeApi) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/nodes") && r.method != "GET")
        .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
        .collect()
}

/// A counter or gauge sample of the exposition (first line that starts with `name`).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The nodes of the contract's cases. `odd` carries a stale label of ours.
fn seed_mixed(fake: &FakeApi) {
    let s = fake.state();
    s.seed_node(NodeSeed::new("old", "v1.27.9").label("pool", "a"))
        .unwrap();
    s.seed_node(NodeSeed::new("mid", "v1.28.5")).unwrap();
    s.seed_node(NodeSeed::new("mid-on", "v1.28.5")).unwrap();
    s.seed_node(NodeSeed::new("new", "v1.31.2")).unwrap();
    s.seed_node(NodeSeed::new("new-off", "v1.31.2")).unwrap();
    s.seed_node(NodeSeed::new("odd", "not-a-version").label(LABEL, "true"))
        .unwrap();
    fake.set_node_proxy(
        "mid-on",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.28.5", Some(true))),
    );
    fake.set_node_proxy(
        "new-off",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.31.2", Some(false))),
    );
}

fn expected_from_metrics() -> Vec<(&'static str, Option<&'static str>, Option<Value>)> {
    vec![
        (
            "old",
            Some("false"),
            reason("v1.27.9", "unknown", "version"),
        ),
        (
            "mid",
            Some("rejected"),
            reason("v1.28.5", "disabled", "metrics"),
        ),
        (
            "mid-on",
            Some("true"),
            reason("v1.28.5", "enabled", "metrics"),
        ),
        ("new", Some("true"), reason("v1.31.2", "enabled", "metrics")),
        (
            "new-off",
            Some("rejected"),
            reason("v1.31.2", "disabled", "metrics"),
        ),
        ("odd", None, None),
    ]
}

fn converged(fake: &FakeApi, want: &[(&str, Option<&str>, Option<Value>)]) -> bool {
    want.iter().all(|(name, label, reason)| {
        let (l, r) = ours(fake, name);
        l.as_deref() == *label && r == *reason
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_on_mixed_nodes_then_writes_nothing() {
    let fake = fake().await;
    seed_mixed(&fake);
    let before = node(&fake, "old");
    let (c, _dir) = client(&fake).await;
    let mut cfg = config("replica-1");
    cfg.resync_interval = Duration::from_millis(300);
    let r = Replica::start(c, cfg);
    let want = expected_from_metrics();
    eventually("the contract's labels", Duration::from_secs(20), || {
        converged(&fake, &want)
    })
    .await;
    assert_eq!(r.role(), "leader");
    assert_eq!(lease_holder(&fake).as_deref(), Some("replica-1"));

    // Only our keys changed, by merge patches with our field manager; never a full update.
    let after = node(&fake, "old");
    let mut other_labels = after["metadata"]["labels"].as_object().unwrap().clone();
    other_labels.remove(LABEL);
    assert_eq!(&Value::Object(other_labels), &before["metadata"]["labels"]);
    assert_eq!(after["spec"], before["spec"]);
    for p in patches(&fake) {
        assert!(p.starts_with("PATCH "), "only patches: {p}");
        assert!(p.contains("fieldManager=sidecar-kit-label-nodes"), "{p}");
    }
    assert_eq!(
        patches(&fake).len(),
        6,
        "one patch per node: {:#?}",
        patches(&fake)
    );
    // Metrics are read for 1.28+ nodes only, once each.
    let reads: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/proxy/metrics"))
        .map(|r| r.path)
        .collect();
    assert_eq!(reads.len(), 4, "{reads:#?}");
    assert!(
        !reads
            .iter()
            .any(|p| p.contains("/old/") || p.contains("/odd/"))
    );

    // Steady state: two more resyncs of every node write nothing.
    fake.clear_requests();
    let count = |l: &Labeler| {
        sample(
            &l.encode_metrics(),
            "sidecar_kit_label_nodes_reconcile_duration_seconds_count",
        )
    };
    let start = count(&r.labeler);
    eventually("two resyncs", Duration::from_secs(10), || {
        count(&r.labeler) >= start + 12.0
    })
    .await;
    assert_eq!(
        patches(&fake),
        Vec::<String>::new(),
        "a steady state writes nothing"
    );
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/proxy/metrics")),
        "no re-read before the interval"
    );

    // Status and metrics say what happened.
    let st = r.labeler.status();
    assert!(st.ready);
    assert_eq!(st.nodes_seen, 6);
    assert_eq!(st.labelled["true"], 2);
    assert_eq!(st.labelled["false"], 1);
    assert_eq!(st.labelled["rejected"], 2);
    assert_eq!(st.labelled["none"], 1);
    assert_eq!(st.node_metrics.permission, "permitted");
    let m = r.labeler.encode_metrics();
    assert_eq!(sample(&m, "sidecar_kit_label_nodes_leader"), 1.0);
    assert_eq!(
        sample(&m, "sidecar_kit_label_nodes_nodes{class=\"capable\"}"),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "sidecar_kit_label_nodes_label_writes_total{result=\"success\"}"
        ),
        6.0
    );
    assert_eq!(
        sample(
            &m,
            "sidecar_kit_label_nodes_node_metrics_reads_total{result=\"success\"}"
        ),
        4.0
    );
    r.stop().await;
    assert_eq!(lease_holder(&fake), None, "released on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_relabels_and_the_watch_survives_drops() {
    let fake = fake().await;
    let s = fake.state();
    s.seed_node(NodeSeed::new("n1", "v1.27.9")).unwrap();
    s.seed_node(NodeSeed::new("n2", "v1.31.2")).unwrap();
    let (c, _dir) = client(&fake).await;
    let r = Replica::start(c, config("replica-1"));
    eventually("first labels", Duration::from_secs(20), || {
        ours(&fake, "n1").0.as_deref() == Some("false")
            && ours(&fake, "n2").0.as_deref() == Some("true")
    })
    .await;

    // n1 upgraded to 1.28 with the gate on: read again for the new version, relabelled.
    fake.set_node_proxy(
        "n1",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.28.7", Some(true))),
    );
    let mut n1 = node(&fake, "n1");
    n1["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.28.7");
    s.insert("nodes", n1).unwrap();
    eventually("the upgrade relabelled", Duration::from_secs(20), || {
        ours(&fake, "n1") == (Some("true".into()), reason("v1.28.7", "enabled", "metrics"))
    })
    .await;

    // The server cuts every watch: changes after that still arrive.
    fake.drop_watches();
    s.seed_node(NodeSeed::new("n3", "v1.26.3")).unwrap();
    let mut n2 = node(&fake, "n2");
    n2["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.33.0");
    s.insert("nodes", n2).unwrap();
    eventually("changes after the drop", Duration::from_secs(20), || {
        ours(&fake, "n3").0.as_deref() == Some("false")
            && ours(&fake, "n2").1 == reason("v1.33.0", "enabled", "metrics")
    })
    .await;
    // Someone removes our label by hand: it comes back.
    fake.drop_watches();
    let mut n3 = node(&fake, "n3");
    n3["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(LABEL);
    s.insert("nodes", n3).unwrap();
    eventually("the label restored", Duration::from_secs(20), || {
        ours(&fake, "n3").0.as_deref() == Some("false")
    })
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_node_proxy_falls_back_to_versions() {
    let fake = fake().await;
    seed_mixed(&fake);
    fake.deny(Deny::resource("get", "nodes/proxy"));
    let (c, _dir) = client(&fake).await;
    let r = Replica::start(c, config("replica-1"));
    let want = vec![
        (
            "old",
            Some("false"),
            reason("v1.27.9", "unknown", "version"),
        ),
        (
            "mid",
            Some("rejected"),
            reason("v1.28.5", "unknown", "version"),
        ),
        (
            "mid-on",
            Some("rejected"),
            reason("v1.28.5", "unknown", "version"),
        ),
        ("new", Some("true"), reason("v1.31.2", "unknown", "version")),
        (
            "new-off",
            Some("true"),
            reason("v1.31.2", "unknown", "version"),
        ),
        ("odd", None, None),
    ];
    eventually("labels from versions", Duration::from_secs(20), || {
        converged(&fake, &want)
    })
    .await;

    // /readyz says so, naming the permission; /metrics counts the refusals.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = sidecar_kit_probes::Server::start(listener, Arc::new(r.labeler.clone())).unwrap();
    // The labeler counts a label once the API server has answered its patch: the fake
    // holds the label a moment before that.
    sidecar_kit_testkit::eventually_async(
        "both rejected nodes counted",
        Duration::from_secs(10),
        || async {
            let (_, body) = http_get(addr, "/readyz").await;
            serde_json::from_str::<Value>(&body).is_ok_and(|v| v["labelled"]["rejected"] == 2)
        },
    )
    .await;
    let (code, body) = http_get(addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["role"], "leader");
    assert_eq!(v["nodeMetrics"]["permission"], "forbidden", "{v}");
    let detail = v["nodeMetrics"]["detail"].as_str().unwrap();
    assert!(detail.contains("nodes/proxy"), "{detail}");
    assert_eq!(v["labelled"]["rejected"], 2, "{v}");
    let (code, _) = http_get(addr, "/healthz").await;
    assert_eq!(code, 200);
    let (code, m) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        sample(
            &m,
            "sidecar_kit_label_nodes_node_metrics_reads_total{result=\"forbidden\"}"
        ) >= 1.0,
        "{m}"
    );
    server.stop().await;

    // The permission granted later: after an interval the gate is read again.
    r.stop().await;
    fake.clear_denials();
    let (c, _dir2) = client(&fake).await;
    let r = Replica::start(c, config("replica-2"));
    eventually("labels from metrics", Duration::from_secs(20), || {
        converged(&fake, &expected_from_metrics())
    })
    .await;
    r.stop().await;
}

/// One kubelet refusing the read (its own authorization) while the others answer costs only
/// that node its gate reading; two refusals in a row are the permission's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nodes_refusal_is_that_nodes_alone() {
    let fake = fake().await;
    seed_mixed(&fake);
    let s = fake.state();
    let (c, _dir) = client(&fake).await;
    let r = Replica::start(c, config("replica-1"));
    let mut want = expected_from_metrics();
    eventually("labels from metrics", Duration::from_secs(20), || {
        converged(&fake, &want)
    })
    .await;

    // new-off's kubelet is upgraded and now refuses the API server: new-off falls back to
    // its version; every other node keeps the gate read from its kubelet.
    fake.set_node_proxy("new-off", NodeProxy::Forbidden);
    let mut n = node(&fake, "new-off");
    n["status"]["nodeInfo"]["kubeletVersion"] = json!("v1.31.3");
    s.insert("nodes", n).unwrap();
    let i = want.iter().position(|w| w.0 == "new-off").unwrap();
    want[i] = (
        "new-off",
        Some("true"),
        reason("v1.31.3", "unknown", "version"),
    );
    eventually(
        "new-off from its version, the rest from metrics",
        Duration::from_secs(20),
        || converged(&fake, &want),
    )
    .await;
    let st = r.labeler.status();
    assert_eq!(st.node_metrics.permission, "permitted");
    assert_eq!(
        st.node_metrics.failing, 1,
        "the refusing node is listed as failing"
    );
    assert_eq!(
        sample(
            &r.labeler.encode_metrics(),
            "sidecar_kit_label_nodes_node_metrics_reads_total{result=\"forbidden\"}"
        ),
        1.0
    );

    // The permission is withdrawn: the next two reads are refused, and then every node is
    // labelled from its version.
    fake.deny(Deny::resource("get", "nodes/proxy"));
    for (name, version) in [("mid-on", "v1.28.6"), ("new", "v1.31.3")] {
        let mut n = node(&fake, name);
        n["status"]["nodeInfo"]["kubeletVersion"] = json!(version);
        s.insert("nodes", n).unwrap();
    }
    eventually(
        "the permission judged gone",
        Duration::from_secs(20),
        || r.labeler.status().node_metrics.permission == "forbidden",
    )
    .await;
    eventually(
        "every node from its version",
        Duration::from_secs(20),
        || {
            ours(&fake, "mid").1 == reason("v1.28.5", "unknown", "version")
                && ours(&fake, "mid-on")
                    == (
                        Some("rejected".into()),
                        reason("v1.28.6", "unknown", "version"),
                    )
                && ours(&fake, "new")
                    == (Some("true".into()), reason("v1.31.3", "unknown", "version"))
        },
    )
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_at_once_when_the_leader_releases() {
    let fake = fake().await;
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    let (c, _dir) = client(&fake).await;
    let mut cfg = config("a");
    // Long enough that waiting for expiry would fail the timing below.
    cfg.lease.duration = Duration::from_secs(15);
    let a = Replica::start(c.clone(), cfg.clone());
    eventually("a leads", Duration::from_secs(10), || a.role() == "leader").await;
    cfg.lease.identity = "b".into();
    let b = Replica::start(c, cfg);
    eventually("b has seen the nodes", Duration::from_secs(10), || {
        b.labeler.status().ready && b.labeler.status().holder.as_deref() == Some("a")
    })
    .await;
    assert_eq!(b.role(), "standby");

    a.stop().await;
    let released = Instant::now();
    eventually("b leads", Duration::from_secs(5), || b.role() == "leader").await;
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "took over long before the 15 s Lease could expire"
    );
    assert_eq!(lease_holder(&fake).as_deref(), Some("b"));
    let lease = fake
        .state()
        .get("leases.coordination.k8s.io", Some(NS), LEASE)
        .unwrap()
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    // b writes now.
    fake.state()
        .seed_node(NodeSeed::new("n2", "v1.27.1"))
        .unwrap();
    eventually("b labels", Duration::from_secs(10), || {
        ours(&fake, "n2").0.as_deref() == Some("false")
    })
    .await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_after_a_dead_leaders_lease_expires() {
    let fake = fake().await;
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    let (c, _dir) = client(&fake).await;
    let cfg = config("a"); // 3 s Lease
    let a = Replica::start(c.clone(), cfg.clone());
    eventually("a leads", Duration::from_secs(10), || a.role() == "leader").await;
    let mut cfg_b = cfg;
    cfg_b.lease.identity = "b".into();
    let b = Replica::start(c, cfg_b);
    eventually("b stands by", Duration::from_secs(10), || {
        b.labeler.status().holder.as_deref() == Some("a")
    })
    .await;

    a.kill().await;
    let died = Instant::now();
    assert_eq!(lease_holder(&fake).as_deref(), Some("a"), "not released");
    eventually("b leads", Duration::from_secs(15), || b.role() == "leader").await;
    let took = died.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "b waited for the Lease to expire, took {took:?}"
    );
    assert_eq!(lease_holder(&fake).as_deref(), Some("b"));
    fake.state()
        .seed_node(NodeSeed::new("n2", "v1.27.1"))
        .unwrap();
    eventually("b labels", Duration::from_secs(10), || {
        ours(&fake, "n2").0.as_deref() == Some("false")
    })
    .await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_writes_nothing() {
    let fake = fake().await;
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    // Someone else holds the Lease and keeps it fresh for the whole test.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    fake.state()
        .insert(
            "leases.coordination.k8s.io",
            json!({"metadata": {"name": LEASE, "namespace": NS},
                   "spec": {"holderIdentity": "elsewhere", "leaseDurationSeconds": 3600,
                            "renewTime": now, "acquireTime": now}}),
        )
        .unwrap();
    let (c, _dir) = client(&fake).await;
    let r = Replica::start(c, config("replica-1"));
    eventually("the node list", Duration::from_secs(10), || {
        r.labeler.status().ready
    })
    .await;
    // Several looks at the Lease later, still no write anywhere.
    let looks = || {
        fake.requests()
            .iter()
            .filter(|q| q.path.ends_with(&format!("/leases/{LEASE}")))
            .count()
    };
    eventually("five looks at the Lease", Duration::from_secs(10), || {
        looks() >= 5
    })
    .await;
    assert_eq!(r.role(), "standby");
    assert_eq!(patches(&fake), Vec::<String>::new());
    assert_eq!(ours(&fake, "n1").0, None);
    assert_eq!(lease_holder(&fake).as_deref(), Some("elsewhere"));
    r.stop().await;
    assert_eq!(
        lease_holder(&fake).as_deref(),
        Some("elsewhere"),
        "a standby releases nothing"
    );
}

/// Time to converge 5,000 nodes (70% 1.31, 20% 1.28, 10% 1.27) from nothing, node metrics
/// on (100 KB kubelet expositions). Run:
/// `cargo test --release -p sidecar-kit-cluster --test labeler -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn benchmark_converge_5000_nodes() {
    for node_metrics in [true, false] {
        let fake = fake().await;
        fake.state()
            .seed_nodes((0..5000).map(|i| {
                let v = match i % 10 {
                    0 => "v1.27.9",
                    1 | 2 => "v1.28.5",
                    _ => "v1.31.2",
                };
                NodeSeed::new(format!("node-{i}"), v)
            }))
            .unwrap();
        let (c, _dir) = client(&fake).await;
        let mut cfg = config("bench");
        cfg.node_metrics = node_metrics;
        let started = Instant::now();
        let r = Replica::start(c, cfg);
        eventually("5,000 nodes labelled", Duration::from_secs(600), || {
            let st = r.labeler.status();
            st.labelled["true"] + st.labelled["false"] + st.labelled["rejected"] == 5000
                && st.pending == 0
        })
        .await;
        let took = started.elapsed();
        let writes = patches(&fake).len();
        let reads = fake
            .requests()
            .iter()
            .filter(|q| q.path.ends_with("/proxy/metrics"))
            .count();
        println!(
            "label-nodes: 5,000 nodes converged in {:.2} s (node metrics {}; {writes} patches, {reads} kubelet metrics reads)",
            took.as_secs_f64(),
            if node_metrics { "on" } else { "off" },
        );
        assert_eq!(writes, 5000);
        r.stop().await;
        fake.shutdown().await;
    }
}
