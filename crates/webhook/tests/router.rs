//! Router tests without sockets: AdmissionReviews shaped like the API server's go through
//! the real router (`tower::ServiceExt::oneshot`), for every mode, skip, dry run and bad body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use sidecar_kit_core::engine::{self, Options};
use sidecar_kit_core::facts::{Facts, StaticFacts};
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_testkit::workspace_root as root;
use sidecar_kit_webhook::review::FailureMode;
use sidecar_kit_webhook::{AppState, Config, webhook_router};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

fn profiles() -> ProfileSet {
    let mut ps = sidecar_kit_manifests::load_profiles(&[root()
        .join("examples/profiles")
        .display()
        .to_string()])
    .unwrap();
    let mesh = sidecar_kit_manifests::load_profiles(&[root()
        .join("crates/cli/tests/golden/profiles")
        .display()
        .to_string()])
    .unwrap();
    ps.extend(mesh);
    ProfileSet::new(ps, Some("registry.example.com/sidecar-kit:test")).unwrap()
}

fn excluded(own: &str) -> Vec<String> {
    Config {
        profiles: Vec::new(),
        tls_cert: PathBuf::new(),
        tls_key: PathBuf::new(),
        client_ca: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        probe_listen: "127.0.0.1:0".parse().unwrap(),
        failure: FailureMode::Allow,
        own_namespace: Some(own.into()),
        allow_namespaces: vec![],
        shim_image: None,
        reload_interval: std::time::Duration::from_secs(1),
        shutdown_timeout: std::time::Duration::from_secs(1),
        shutdown_delay: std::time::Duration::ZERO,
        request_timeout: std::time::Duration::from_secs(1),
        bare_allow: false,
        review_cache_bytes: 1 << 20,
    }
    .excluded_namespaces()
}

/// A cluster in the middle of an upgrade with a fresh labeler Lease: `auto` takes the
/// profile's fallback (universal) for a pod that can land on any node.
fn mixed() -> StaticFacts {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/facts/mixed.yaml");
    sidecar_kit_webhook::load_facts(Some(&path)).unwrap()
}

fn state(failure: FailureMode) -> Arc<AppState> {
    let options = Options {
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    Arc::new(AppState::new(
        profiles(),
        Box::new(Arc::new(mixed())),
        options,
        failure,
    ))
}

fn fixture() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pod-create.json"),
        )
        .unwrap(),
    )
    .unwrap()
}

async fn post(state: Arc<AppState>, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let req = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = webhook_router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

async fn review(state: Arc<AppState>, r: &Value) -> Value {
    let (status, body) = post(state, serde_json::to_vec(r).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(
        v["response"]["uid"], r["request"]["uid"],
        "the response carries the request's uid"
    );
    v["response"].clone()
}

/// Decodes the patch (a base64 string on the wire) and applies it to the review's object.
fn patched(r: &Value, resp: &Value) -> Value {
    let mut obj = r["request"]["object"].clone();
    if let Some(p) = resp.get("patch") {
        assert!(
            p.is_string(),
            "patch must be a base64 string, as the admission API documents: {p}"
        );
        assert_eq!(resp["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
    }
    obj
}

fn with_annotation(mut r: Value, k: &str, v: &str) -> Value {
    r["request"]["object"]["metadata"]["annotations"] = json!({k: v});
    r
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn injects_a_pod_create_and_agrees_with_the_engine() {
    let st = state(FailureMode::Allow);
    let r = fixture();
    let resp = review(st.clone(), &r).await;
    assert_eq!(resp["allowed"], true);
    let pod = patched(&r, &resp);
    // Mixed nodes, a fresh Lease: auto takes the profile's fallback (universal).
    assert_eq!(
        names(&pod, "initContainers"),
        ["sidecar-kit-install", "log-shipper"]
    );
    assert_eq!(names(&pod, "containers"), ["web", "log-shipper-legacy"]);
    assert_eq!(
        pod["spec"]["futurePodField"]["addedIn"], "1.40",
        "unknown fields survive"
    );
    assert_eq!(
        resp["auditAnnotations"]["injected"],
        "log-shipper=universal"
    );
    // The same object through the engine directly (what `sidecar-kit inject` runs).
    assert_eq!(wire_patch(&resp), engine_patch(&r));
}

/// The patch the engine plans for a review's object, as `sidecar-kit inject` runs it.
fn engine_patch(r: &Value) -> Value {
    let opts = Options {
        namespace: Some("shop".into()),
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    let out = engine::inject(
        &r["request"]["object"].to_string(),
        &profiles(),
        &mixed(),
        &opts,
    )
    .unwrap();
    serde_json::from_slice(&sidecar_kit_core::patch::to_json(&out.patch)).unwrap()
}

/// The patch of an answer, decoded.
fn wire_patch(resp: &Value) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(resp["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_mode_by_annotation() {
    let st = state(FailureMode::Allow);
    for (mode, init, containers) in [
        ("native", vec!["log-shipper"], vec!["web"]),
        ("legacy", vec![], vec!["web", "log-shipper"]),
        ("affinity", vec!["log-shipper"], vec!["web"]),
        (
            "universal",
            vec!["sidecar-kit-install", "log-shipper"],
            vec!["web", "log-shipper-legacy"],
        ),
        (
            "auto",
            vec!["sidecar-kit-install", "log-shipper"],
            vec!["web", "log-shipper-legacy"],
        ),
    ] {
        let r = with_annotation(fixture(), "sidecar-kit.io/mode", mode);
        let resp = review(st.clone(), &r).await;
        let pod = patched(&r, &resp);
        assert_eq!(names(&pod, "initContainers"), init, "{mode}");
        assert_eq!(names(&pod, "containers"), containers, "{mode}");
        let status: Value = serde_json::from_str(
            pod["metadata"]["annotations"]["sidecar-kit.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let expected_mode = if mode == "auto" { "universal" } else { mode };
        assert_eq!(status["injections"][0]["mode"], expected_mode);
        assert_eq!(
            pod["metadata"]["annotations"]["sidecar-kit.io/mode"], mode,
            "the pod's own annotations are kept"
        );
        if mode == "affinity" {
            assert!(
                pod["spec"]["affinity"].to_string().contains("\"In\""),
                "{mode}"
            );
        }
    }
}

#[tokio::test]
async fn reinvocation_changes_nothing() {
    let st = state(FailureMode::Allow);
    let r = fixture();
    let resp = review(st.clone(), &r).await;
    let mut again = r.clone();
    let mut pod = patched(&r, &resp);
    // The API server decodes the patched pod and applies its defaults before re-invoking.
    for list in ["initContainers", "containers"] {
        for c in pod["spec"][list].as_array_mut().unwrap() {
            c["terminationMessagePath"] = json!("/dev/termination-log");
            c["terminationMessagePolicy"] = json!("File");
            c["imagePullPolicy"] = json!("IfNotPresent");
            for probe in ["readinessProbe", "startupProbe"] {
                if let Some(p) = c.get_mut(probe) {
                    p["timeoutSeconds"] = json!(1);
                    p["successThreshold"] = json!(1);
                }
            }
        }
    }
    again["request"]["object"] = pod;
    let resp2 = review(st, &again).await;
    assert!(
        resp2.get("patch").is_none(),
        "a second invocation on the injected pod patches nothing: {resp2}"
    );
}

#[tokio::test]
async fn dry_run_gets_the_same_patch() {
    let st = state(FailureMode::Allow);
    let r = fixture();
    let mut dry = r.clone();
    dry["request"]["dryRun"] = json!(true);
    let a = review(st.clone(), &r).await;
    let b = review(st, &dry).await;
    assert_eq!(a["patch"], b["patch"]);
}

#[tokio::test]
async fn other_operations_and_objects_pass_unchanged() {
    let st = state(FailureMode::Allow);
    for op in ["UPDATE", "DELETE", "CONNECT"] {
        let mut r = fixture();
        r["request"]["operation"] = json!(op);
        if op == "DELETE" {
            r["request"]["oldObject"] = r["request"]["object"].take();
        }
        let resp = review(st.clone(), &r).await;
        assert_eq!(resp["allowed"], true);
        assert!(resp.get("patch").is_none(), "{op}");
    }
    let mut r = fixture();
    r["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    r["request"]["resource"] = json!({"group": "apps", "version": "v1", "resource": "deployments"});
    let resp = review(st.clone(), &r).await;
    assert!(resp.get("patch").is_none());
    let mut r = fixture();
    r["request"]["subResource"] = json!("ephemeralcontainers");
    let resp = review(st, &r).await;
    assert!(resp.get("patch").is_none());
}

#[tokio::test]
async fn system_and_own_namespaces_are_skipped() {
    let st = state(FailureMode::Allow);
    for ns in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "sidecar-kit",
    ] {
        let mut r = fixture();
        r["request"]["namespace"] = json!(ns);
        let resp = review(st.clone(), &r).await;
        assert!(resp.get("patch").is_none(), "{ns}");
        assert!(
            resp["auditAnnotations"]["skip-reason"]
                .as_str()
                .unwrap()
                .starts_with("ExcludedNamespace"),
            "{resp}"
        );
    }
    // Unless allowed.
    let mut config_excluded = excluded("sidecar-kit");
    config_excluded.retain(|n| n != "kube-system");
    let options = Options {
        excluded_namespaces: config_excluded,
        ..Options::default()
    };
    let st = Arc::new(AppState::new(
        profiles(),
        Box::new(Arc::new(StaticFacts::none())),
        options,
        FailureMode::Allow,
    ));
    let mut r = fixture();
    r["request"]["namespace"] = json!("kube-system");
    assert!(review(st, &r).await.get("patch").is_some());
}

#[tokio::test]
async fn opt_out_and_conflicts() {
    let st = state(FailureMode::Allow);
    let r = with_annotation(fixture(), "sidecar-kit.io/inject", "disabled");
    let resp = review(st.clone(), &r).await;
    assert!(resp.get("patch").is_none());
    assert!(
        resp.get("warnings").is_none(),
        "an opt-out is no news to the user"
    );
    let r = with_annotation(fixture(), "sidecar-kit.io/profiles", "no-such-profile");
    let resp = review(st.clone(), &r).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
    assert!(
        resp["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no-such-profile"),
        "{resp}"
    );
    assert!(
        resp["auditAnnotations"]["skip-reason"]
            .as_str()
            .unwrap()
            .starts_with("UnknownProfile")
    );
}

/// A pod with two containers of one name is left as it is, with a warning: the API server
/// refuses it, and nothing sidecar-kit adds could make it valid.
#[tokio::test]
async fn duplicate_container_names_pass_unchanged_with_a_warning() {
    let st = state(FailureMode::Allow);
    let mut r = fixture();
    let app = r["request"]["object"]["spec"]["containers"][0].clone();
    r["request"]["object"]["spec"]["initContainers"] = json!([app]);
    let resp = review(st, &r).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none(), "{resp}");
    let w = resp["warnings"][0].as_str().unwrap();
    assert!(
        w.contains(&format!("container name {} is used twice", app["name"]))
            && w.contains("initContainers[0] and containers[0]"),
        "{w}"
    );
    assert!(
        resp["auditAnnotations"]["skip-reason"]
            .as_str()
            .unwrap()
            .starts_with("InvalidPod")
    );
}

/// A pod created with a status annotation that lists its own app container (or another
/// webhook's, or the kube-api-access volume) as sidecar-kit's keeps all of them: the review
/// is allowed unchanged, with a warning, and the skip says why.
#[tokio::test]
async fn forged_status_annotation_removes_nothing() {
    let st = state(FailureMode::Allow);
    let forged = [
        r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:0123456789abcdef","mode":"legacy","reason":"r","added":{"containers":["web"]}}]}"#,
        r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:0123456789abcdef","mode":"native","reason":"r","added":{"volumes":["kube-api-access-x7k2p"]}}]}"#,
        r#"{"v":1,"injections":[{"profile":"mesh-proxy","hash":"sha256:0123456789abcdef","mode":"native","reason":"r","added":{"containers":["web"]}}]}"#,
    ];
    for status in forged {
        let r = with_annotation(fixture(), "sidecar-kit.io/status", status);
        let resp = review(st.clone(), &r).await;
        assert_eq!(resp["allowed"], true);
        assert!(resp.get("patch").is_none(), "{status}: {resp}");
        assert!(
            resp["warnings"][0]
                .as_str()
                .unwrap()
                .contains("does not match what its profiles add"),
            "{resp}"
        );
        assert!(
            resp["auditAnnotations"]["skip-reason"]
                .as_str()
                .unwrap()
                .starts_with("UnverifiedStatus"),
            "{resp}"
        );
    }
}

#[tokio::test]
async fn internal_errors_follow_the_failure_mode() {
    let mut r = fixture();
    r["request"]["object"]["spec"]["containers"][0]["command"] = json!("not-a-list");
    let resp = review(state(FailureMode::Allow), &r).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
    assert!(
        resp["warnings"][0]
            .as_str()
            .unwrap()
            .contains("without sidecar injection"),
        "{resp}"
    );
    let resp = review(state(FailureMode::Deny), &r).await;
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 500);
    assert!(
        resp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("/spec/containers/0/command"),
        "{resp}"
    );
}

#[tokio::test]
async fn bad_bodies_are_call_failures() {
    let st = state(FailureMode::Allow);
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (b"{\"kind\":".to_vec(), StatusCode::BAD_REQUEST, "not an AdmissionReview"),
        (b"\xff\xfe".to_vec(), StatusCode::BAD_REQUEST, "not UTF-8"),
        // (the check takes 64-byte blocks, and what is left over padded to one: a broken
        // sequence in the part left over, one that starts in a block's last byte and breaks
        // in the part left over, and one inside a whole second block)
        (
            [
                &br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a"#[..],
                b"\xe2\x82\"}}",
            ]
            .concat(),
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (
            [&br#"{"request":{"uid":""#[..], &[b'a'; 44], b"\xe2\x82\"}}"].concat(),
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (
            [
                &br#"{"request":{"uid":""#[..],
                &[b'a'; 80],
                b"\xe2\x82\",\"x\":\"",
                &[b'b'; 60],
                b"\"}}",
            ]
            .concat(),
            StatusCode::BAD_REQUEST,
            "not UTF-8",
        ),
        (serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}})).unwrap(), StatusCode::BAD_REQUEST, "admissionReviewVersions"),
        (serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})).unwrap(), StatusCode::BAD_REQUEST, "no request"),
        (serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "", "operation": "CREATE"}})).unwrap(), StatusCode::BAD_REQUEST, "no uid"),
        (vec![b' '; sidecar_kit_webhook::BODY_LIMIT + 1], StatusCode::PAYLOAD_TOO_LARGE, "limit"),
    ];
    for (body, code, msg) in cases {
        let (status, out) = post(st.clone(), body).await;
        assert_eq!(status, code);
        assert!(
            String::from_utf8_lossy(&out).contains(msg),
            "{code}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    let resp = webhook_router(st.clone())
        .oneshot(Request::get("/mutate").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = webhook_router(st.clone())
        .oneshot(Request::post("/validate").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let text = st.metrics.encode();
    assert!(
        text.contains(
            "sidecar_kit_admission_reviews_total{result=\"bad-request\",mode=\"none\"} 9"
        ),
        "{text}"
    );
}

#[test]
fn facts_trait_is_object_safe_for_the_state() {
    let f: Box<dyn Facts + Send + Sync> = Box::new(StaticFacts::none());
    assert!(matches!(
        f.availability(),
        sidecar_kit_core::facts::Availability::Absent
    ));
}

#[tokio::test]
async fn repeated_pods_are_answered_from_the_cache_until_profiles_change() {
    let st = state(FailureMode::Allow);
    let r = fixture();
    let first = review(st.clone(), &r).await;
    // Seen once: planned, remembered; seen twice: stored; from then on answered from it.
    let _ = review(st.clone(), &r).await;
    let mut second_req = r.clone();
    second_req["request"]["uid"] = json!("another-uid");
    second_req["request"]["object"]["metadata"]["managedFields"][0]["time"] =
        json!("2026-11-25T10:00:01Z");
    let second = review(st.clone(), &second_req).await;
    assert_eq!(
        second["uid"], "another-uid",
        "a cached answer carries the new request's uid"
    );
    assert_eq!(first["patch"], second["patch"]);
    assert_eq!(first["auditAnnotations"], second["auditAnnotations"]);
    assert!(
        st.metrics
            .encode()
            .contains("sidecar_kit_review_cache_lookups_total{result=\"hit\"} 1")
    );

    // A different pod misses.
    let other = with_annotation(fixture(), "sidecar-kit.io/mode", "native");
    let resp = review(st.clone(), &other).await;
    assert_ne!(resp["patch"], first["patch"]);

    // A profile reload misses: the new set decides.
    st.set_profiles(ProfileSet::default());
    let after = review(st.clone(), &r).await;
    assert!(
        after.get("patch").is_none(),
        "no profiles loaded now: nothing injected, not the cached patch"
    );
    assert!(
        st.metrics
            .encode()
            .contains("sidecar_kit_review_cache_lookups_total{result=\"miss\"} 4")
    );
}

/// In a storm of one pod the review reads only the cache key of a pod (the engine would
/// not need the pod read): a new pod in the storm is then read by the engine from its text,
/// with the answer the engine gives.
#[tokio::test]
async fn a_new_pod_in_a_storm_is_planned_as_the_engine_plans_it() {
    // The engine's plans, counted by how the pod came: read in the review's pass, or as text.
    static READ: AtomicUsize = AtomicUsize::new(0);
    static TEXT: AtomicUsize = AtomicUsize::new(0);
    let mut st = AppState::new(
        profiles(),
        Box::new(Arc::new(mixed())),
        Options {
            excluded_namespaces: excluded("sidecar-kit"),
            ..Options::default()
        },
        FailureMode::Allow,
    );
    st.plan = |object, pod, profiles, facts, opts| {
        let seen = if pod.is_some() { &READ } else { &TEXT };
        seen.fetch_add(1, Ordering::SeqCst);
        engine::inject_read(object, pod, profiles, facts, opts)
    };
    let st = Arc::new(st);
    let r = fixture();
    assert!(!st.cache.likely_hit());
    let _ = review(st.clone(), &r).await;
    assert_eq!(
        (READ.load(Ordering::SeqCst), TEXT.load(Ordering::SeqCst)),
        (1, 0),
        "a first sighting is planned from the pod read in the review's pass"
    );
    for _ in 0..24 {
        let _ = review(st.clone(), &r).await;
    }
    assert!(
        st.cache.likely_hit(),
        "the storm is answered from the cache"
    );
    let other = with_annotation(fixture(), "sidecar-kit.io/mode", "native");
    let resp = review(st.clone(), &other).await;
    assert_eq!(
        (READ.load(Ordering::SeqCst), TEXT.load(Ordering::SeqCst)),
        (2, 1),
        "the pod's second sighting planned from the pass, the new pod in the storm from its text"
    );
    assert_eq!(wire_patch(&resp), engine_patch(&other));
    assert_eq!(resp["auditAnnotations"]["injected"], "log-shipper=native");
}

#[test]
fn event_counts_are_exposed_on_metrics() {
    struct Counting;
    impl sidecar_kit_webhook::events::EventSink for Counting {
        fn emit(&self, _: sidecar_kit_webhook::events::Note) {}
        fn counts(&self) -> sidecar_kit_webhook::events::SinkCounts {
            sidecar_kit_webhook::events::SinkCounts {
                posted: 5,
                dropped: 1,
                failed: 2,
            }
        }
    }
    let mut metrics = sidecar_kit_webhook::metrics::Metrics::new();
    metrics.watch_events(Arc::new(Counting));
    let text = metrics.encode();
    for line in [
        "# TYPE sidecar_kit_events counter",
        "sidecar_kit_events_total{result=\"posted\"} 5",
        "sidecar_kit_events_total{result=\"dropped\"} 1",
        "sidecar_kit_events_total{result=\"failed\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_panic_in_the_engine_is_logged_and_counted() {
    let logs = sidecar_kit_testkit::LogCapture::start();
    let options = Options {
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    let mut st = AppState::new(
        profiles(),
        Box::new(Arc::new(StaticFacts::none())),
        options,
        FailureMode::Allow,
    );
    st.plan = |_, _, _, _, _| panic!("no container at index 3");
    let st = Arc::new(st);
    let r = fixture();
    let resp = review(st.clone(), &r).await;
    assert_eq!(resp["allowed"], true, "{resp}");
    assert!(resp.get("patch").is_none());
    assert!(
        st.metrics
            .encode()
            .lines()
            .any(|l| l == "sidecar_kit_engine_panics_total 1"),
        "{}",
        st.metrics.encode()
    );
    let logged = logs.find("the injection engine panicked; the failure mode answered the review");
    assert_eq!(logged.len(), 1, "{:#?}", logs.records());
    let rec = &logged[0];
    assert_eq!(rec["level"], "ERROR");
    assert_eq!(rec["panic"], "no container at index 3");
    assert_eq!(rec["uid"], r["request"]["uid"]);
    assert_eq!(rec["namespace"], r["request"]["namespace"]);
    assert_eq!(rec["kind"], "Pod");
    assert_eq!(
        rec["name"],
        format!(
            "{}*",
            r["request"]["object"]["metadata"]["generateName"]
                .as_str()
                .unwrap()
        )
    );

    // A panic with a formatted message (a String payload) is kept as well.
    let mut st = AppState::new(
        profiles(),
        Box::new(Arc::new(StaticFacts::none())),
        Options::default(),
        FailureMode::Deny,
    );
    st.plan = |object, _, _, _, _| panic!("bad object of {} bytes", object.len());
    let resp = review(Arc::new(st), &r).await;
    assert_eq!(resp["allowed"], false);
    let logged = logs.find("the injection engine panicked; the failure mode answered the review");
    assert!(
        logged[1]["panic"]
            .as_str()
            .unwrap()
            .starts_with("bad object of "),
        "{}",
        logged[1]
    );
}

async fn probe(state: Arc<AppState>, path: &str) -> (StatusCode, String) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = sidecar_kit_probes::router(state)
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_probe_listener_that_stops_unasked_is_logged_and_fails_liveness() {
    let logs = sidecar_kit_testkit::LogCapture::start();
    let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();

    // Asked to stop: nothing to report.
    let st = state(FailureMode::Allow);
    let (_stop_tx, stopping) = tokio::sync::watch::channel(true);
    let task = tokio::spawn(async { Ok(()) });
    sidecar_kit_probes::supervise(task, st.as_ref(), addr, stopping).await;
    assert_eq!(probe(st.clone(), "/healthz").await.0, StatusCode::OK);

    // Ended by an error while serving.
    let (_stop_tx, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async { Err(std::io::Error::other("accept: too many open files")) });
    sidecar_kit_probes::supervise(task, st.as_ref(), addr, stopping).await;
    let (status, body) = probe(st.clone(), "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("accept: too many open files"), "{body}");
    assert!(body.contains("127.0.0.1:8080 (--probe-listen)"), "{body}");
    let (status, body) = probe(st.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["probeListener"]
            .as_str()
            .unwrap()
            .contains("too many open files")
    );
    assert!(
        st.metrics
            .encode()
            .lines()
            .any(|l| l == "sidecar_kit_probe_listener_up 0")
    );
    let logged = logs.find("probe listener stopped; liveness fails from now on");
    assert_eq!(logged.len(), 1, "{:#?}", logs.records());
    assert_eq!(logged[0]["level"], "ERROR");
    assert_eq!(logged[0]["error"], "accept: too many open files");
    assert_eq!(logged[0]["address"], "127.0.0.1:8080");
}

#[test]
fn the_profile_set_and_its_generation_are_swapped_as_one() {
    let st = state(FailureMode::Allow);
    let first = st.profiles();
    assert!(!first.set.is_empty());
    let g = st.set_profiles(ProfileSet::default());
    assert!(g > first.generation, "a swap moves the generation");
    let now = st.profiles();
    assert_eq!(
        (now.generation, now.set.len()),
        (g, 0),
        "one read gives the new set with its own generation"
    );
    assert_eq!(
        first.set.len(),
        profiles().len(),
        "a snapshot taken before the swap keeps the set it was read with"
    );
    let g2 = st.set_profiles(profiles());
    assert!(g2 > g);
    assert_eq!(st.profiles().generation, g2);
}

#[test]
fn a_reload_during_a_review_cannot_file_the_old_sets_answer_under_the_new_one() {
    use sidecar_kit_webhook::review::{ReviewContext, review as review_body};
    let st = state(FailureMode::Allow);
    let body = serde_json::to_vec(&fixture()).unwrap();
    let facts = StaticFacts::none();
    let options = Options {
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    let ctx = |profiles| ReviewContext {
        profiles,
        facts: &facts,
        options: &options,
        failure: FailureMode::Allow,
        cache: Some(&st.cache),
        plan: engine::inject_read,
    };
    // Reviews read the profiles, then a reload lands before they plan and store their answer
    // (twice: the cache stores an answer on its key's second sighting).
    let read_before = st.profiles();
    st.set_profiles(ProfileSet::default());
    for _ in 0..2 {
        let old = review_body(&body, &ctx(&read_before)).unwrap();
        assert_eq!(
            old.result,
            sidecar_kit_webhook::review::Result_::Injected,
            "planned from the set read before the reload"
        );
    }
    assert_eq!(st.cache.len(), 1, "the old set's answer was stored");
    // A review that starts after the reload plans from the new set: no profile, nothing to
    // inject, and the old answer is not served to it.
    let after = review_body(&body, &ctx(&st.profiles())).unwrap();
    assert!(
        !after.cached,
        "the old set's answer is not served after the reload"
    );
    assert_eq!(after.result, sidecar_kit_webhook::review::Result_::Skipped);
    assert!(after.injections.is_empty());
}

/// Facts that change while a decision is being made: every question the engine asks is
/// followed at once by an update of the cluster (a node upgraded back to 1.27), as a watch
/// event landing mid-decision would.
struct UpdatedMidDecision {
    current: std::sync::Mutex<Arc<StaticFacts>>,
    update: Arc<StaticFacts>,
}

struct Asked {
    facts: Arc<StaticFacts>,
    source: Arc<UpdatedMidDecision>,
}

impl Asked {
    fn then_update<T>(&self, answer: T) -> T {
        *self.source.current.lock().unwrap() = self.source.update.clone();
        answer
    }
}

impl Facts for Asked {
    fn availability(&self) -> sidecar_kit_core::facts::Availability {
        self.then_update(self.facts.availability())
    }
    fn api_server(
        &self,
    ) -> (
        Option<sidecar_kit_core::version::KubeVersion>,
        sidecar_kit_core::version::GateState,
    ) {
        self.then_update(self.facts.api_server())
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        self.then_update(self.facts.labeler_lease_fresh())
    }
    fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Option<Arc<std::collections::BTreeMap<String, String>>> {
        self.then_update(self.facts.namespace_labels(namespace))
    }
    fn candidates(
        &self,
        scheduling: &sidecar_kit_core::facts::Scheduling,
    ) -> sidecar_kit_core::facts::CandidateSummary {
        self.then_update(self.facts.candidates(scheduling))
    }
    fn generation(&self) -> u64 {
        self.then_update(self.facts.generation())
    }
}

struct Source(Arc<UpdatedMidDecision>);

impl sidecar_kit_core::facts::FactsSource for Source {
    fn snapshot(&self) -> Arc<dyn Facts + Send + Sync> {
        Arc::new(Asked {
            facts: self.0.current.lock().unwrap().clone(),
            source: self.0.clone(),
        })
    }
}

fn cluster(kubelet: &str) -> Arc<StaticFacts> {
    use sidecar_kit_core::facts::{ApiServerFacts, ClusterFacts, NodeFacts};
    Arc::new(StaticFacts::new(ClusterFacts {
        api_version: "sidecar-kit.io/v1alpha1".into(),
        kind: "ClusterFacts".into(),
        api_server: ApiServerFacts {
            version: Some("v1.31.4".into()),
            sidecar_containers: sidecar_kit_core::version::GateState::Enabled,
        },
        nodes: ["n1", "n2"]
            .map(|n| NodeFacts {
                name: n.into(),
                kubelet_version: kubelet.into(),
                ..NodeFacts::default()
            })
            .into(),
        ..ClusterFacts::default()
    }))
}

#[tokio::test]
async fn a_review_decides_from_one_view_of_the_cluster() {
    let (capable, unaware) = (cluster("v1.31.2"), cluster("v1.27.9"));
    let source = Arc::new(UpdatedMidDecision {
        current: std::sync::Mutex::new(capable),
        update: unaware,
    });
    let options = Options {
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    let st = Arc::new(AppState::new(
        profiles(),
        Box::new(Source(source)),
        options,
        FailureMode::Allow,
    ));
    // The update lands after the engine's first question: the decision still sees only the
    // cluster as it was when the review began (all nodes capable: native).
    let r = fixture();
    let first = review(st.clone(), &r).await;
    assert_eq!(
        first["auditAnnotations"]["injected"], "log-shipper=native",
        "{first}"
    );
    // The next review sees the updated cluster, all of it (no capable node: legacy).
    let mut r = r;
    r["request"]["uid"] = json!("second");
    let second = review(st, &r).await;
    assert_eq!(
        second["auditAnnotations"]["injected"], "log-shipper=legacy",
        "{second}"
    );
}

/// Facts whose first snapshot holds its decision in `availability` until the test releases
/// it: a review in the middle of planning, for as long as the test needs.
struct HeldFirst {
    taken: std::sync::atomic::AtomicBool,
    entered: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

struct Held {
    entered: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl sidecar_kit_core::facts::FactsSource for HeldFirst {
    fn snapshot(&self) -> Arc<dyn Facts + Send + Sync> {
        if self.taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Arc::new(StaticFacts::none());
        }
        Arc::new(Held {
            entered: std::sync::Mutex::new(self.entered.lock().unwrap().take()),
            release: self.release.clone(),
        })
    }
}

impl Facts for Held {
    fn availability(&self) -> sidecar_kit_core::facts::Availability {
        if let Some(tx) = self.entered.lock().unwrap().take() {
            let _ = tx.send(());
        }
        // Bounded, so that where planning blocks the only worker the test fails instead of
        // hanging.
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(std::time::Duration::from_secs(10));
        sidecar_kit_core::facts::Availability::Absent
    }
    fn api_server(
        &self,
    ) -> (
        Option<sidecar_kit_core::version::KubeVersion>,
        sidecar_kit_core::version::GateState,
    ) {
        StaticFacts::none().api_server()
    }
    fn labeler_lease_fresh(&self) -> Option<bool> {
        None
    }
    fn namespace_labels(&self, _: &str) -> Option<Arc<std::collections::BTreeMap<String, String>>> {
        None
    }
    fn candidates(
        &self,
        _: &sidecar_kit_core::facts::Scheduling,
    ) -> sidecar_kit_core::facts::CandidateSummary {
        sidecar_kit_core::facts::CandidateSummary::default()
    }
}

/// The fixture's pod grown with app containers past the size planned inline.
fn large_review() -> Value {
    let mut r = fixture();
    let app = r["request"]["object"]["spec"]["containers"][0].clone();
    let containers = r["request"]["object"]["spec"]["containers"]
        .as_array_mut()
        .unwrap();
    let mut i = 0;
    while serde_json::to_vec(containers).unwrap().len() <= sidecar_kit_webhook::INLINE_REVIEW_BYTES
    {
        let mut c = app.clone();
        c["name"] = json!(format!("worker-{i}"));
        c["env"] = json!([{"name": "WORKER", "value": i.to_string()}]);
        containers.push(c);
        i += 1;
    }
    r["request"]["uid"] = json!("large");
    r
}

// The default test runtime has a single thread: a review planned on it would stop every other.
#[tokio::test]
async fn a_large_review_being_planned_does_not_hold_up_a_small_one() {
    let (entered_tx, entered) = tokio::sync::oneshot::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let options = Options {
        excluded_namespaces: excluded("sidecar-kit"),
        ..Options::default()
    };
    let st = Arc::new(AppState::new(
        profiles(),
        Box::new(HeldFirst {
            taken: std::sync::atomic::AtomicBool::new(false),
            entered: std::sync::Mutex::new(Some(entered_tx)),
            release: Arc::new(std::sync::Mutex::new(release_rx)),
        }),
        options,
        FailureMode::Allow,
    ));
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let large = large_review();
    let large_task = tokio::spawn({
        let (st, finished, large) = (st.clone(), finished.clone(), large.clone());
        async move {
            let resp = review(st, &large).await;
            finished.lock().unwrap().push("large");
            resp
        }
    });
    // The large review is being planned (and stays so until released).
    entered.await.unwrap();
    let small = review(st.clone(), &fixture()).await;
    finished.lock().unwrap().push("small");
    release.send(()).unwrap();
    let large_resp = large_task.await.unwrap();
    assert_eq!(
        *finished.lock().unwrap(),
        ["small", "large"],
        "the small review was answered while the large one was being planned"
    );
    let injected = |resp: &Value| resp["auditAnnotations"]["injected"].clone();
    // No facts: the universal fallback is legacy (no node labels to trust).
    assert_eq!(injected(&small), "log-shipper=legacy", "{small}");
    assert_eq!(injected(&large_resp), "log-shipper=legacy");
    let pod = patched(&large, &large_resp);
    assert_eq!(
        names(&pod, "containers").len(),
        large["request"]["object"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len()
            + 1,
        "the large pod's answer is whole: every container kept, the legacy copy added"
    );
}
