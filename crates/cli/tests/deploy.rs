//! The install manifests in `deploy/`: every overlay builds with `kubectl kustomize`, its
//! objects refer to each other consistently (Service ↔ Deployment ↔ webhook ↔ certificate),
//! the pod passes the `restricted` Pod Security profile, and `kubectl apply
//! --dry-run=client` accepts every object.
//!
//! Client-side dry run still asks the API server for discovery and for the current object,
//! so these tests answer kubectl from a small std-only HTTP server on loopback that knows
//! the resource types of the manifests and has no objects.
//!
//! kubectl is found on `PATH`, or at `$KUBECTL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sidecar_kit_testkit::TempDir;
use sidecar_kit_testkit::unbase64;
use sidecar_kit_testkit::workspace_root as root;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Every variable the Deployment may set: the twins of `sidecar-kit serve`'s flags, and
/// the downward-API namespace.
const ALLOWED_ENV: &[&str] = &[
    "SIDECAR_KIT_PROFILES",
    "SIDECAR_KIT_TLS_CERT",
    "SIDECAR_KIT_TLS_KEY",
    "SIDECAR_KIT_LISTEN",
    "SIDECAR_KIT_PROBE_LISTEN",
    "SIDECAR_KIT_FAILURE_MODE",
    "SIDECAR_KIT_SHIM_IMAGE",
    "SIDECAR_KIT_LOG_FORMAT",
    "SIDECAR_KIT_SHUTDOWN_DELAY",
    "POD_NAMESPACE",
    // The allocator's setting, not a flag twin.
    "MIMALLOC_PURGE_DELAY",
];

const STANDARD_LABELS: &[&str] = &[
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
];

const NS: &str = "sidecar-kit";
const TLS_SECRET: &str = "sidecar-kit-webhook-tls";

// === helpers: paths, kubectl, temp dirs ===

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn kubectl() -> Command {
    sidecar_kit_testkit::kubectl()
}

/// A throwaway copy of `deploy/` whose self-managed overlay has its certificates, made
/// as deploy/README.md says: `sidecar-kit certs --out-dir deploy/overlays/self-managed/tls`.
struct DeployCopy {
    dir: TempDir,
    /// What `sidecar-kit certs` printed: the base64 caBundle.
    bundle: String,
}

impl DeployCopy {
    fn new() -> DeployCopy {
        let dir = TempDir::new("deploy-tree");
        sidecar_kit_testkit::copy_deploy_tree(&deploy(), &dir.path().join("deploy"));
        let out = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
            .args(["certs", "--service", "sidecar-kit", "--namespace", NS])
            .arg("--out-dir")
            .arg(dir.path().join("deploy/overlays/self-managed/tls"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sidecar-kit certs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bundle = String::from_utf8(out.stdout).unwrap().trim().to_string();
        DeployCopy { dir, bundle }
    }

    fn tls_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.path("overlays/self-managed/tls").join(name)).unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("deploy").join(rel)
    }

    /// An overlay of the given overlay with `components/fail-closed`, as deploy/README.md
    /// tells users to write it.
    fn fail_closed(&self, overlay: &str) -> PathBuf {
        sidecar_kit_testkit::fail_closed_overlay(
            &self.path(""),
            &format!("test-fail-closed-{overlay}"),
            overlay,
        )
    }
}

/// `kubectl kustomize DIR`: the YAML text and its documents.
fn build(dir: &Path) -> (String, Objects) {
    let text = sidecar_kit_testkit::kustomize(dir);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    assert!(!docs.is_empty(), "{} builds to nothing", dir.display());
    (text, Objects(docs))
}

// === helpers: reading objects ===

struct Objects(Vec<Value>);

impl Objects {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .all(kind)
            .into_iter()
            .filter(|o| o["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "exactly one {kind} {name}");
        found[0]
    }
}

/// The string at a JSON pointer, or a failure naming it.
fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} is a string in {v}"))
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a Vec<Value> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{ptr} is a list in {v}"))
}

/// Whether a label selector (matchLabels only, as everywhere in deploy/) selects these labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "selectors in deploy/ use matchLabels only: {selector}"
    );
    let Some(wanted) = selector["matchLabels"].as_object() else {
        return false;
    };
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A map-like selector (Service `spec.selector`).
fn selects_map(selector: &Value, labels: &Value) -> bool {
    selects(&json!({ "matchLabels": selector }), labels)
}

fn container<'a>(deploy: &'a Value, name: &str) -> &'a Value {
    arr(deploy, "/spec/template/spec/containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name}"))
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"].as_array()?.iter().find(|e| e["name"] == name)
}

fn env_value<'a>(c: &'a Value, name: &str) -> &'a str {
    let e = env(c, name).unwrap_or_else(|| panic!("env {name}"));
    s(e, "/value")
}

fn container_port(c: &Value, name: &str) -> i64 {
    arr(c, "/ports")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("container port {name}"))["containerPort"]
        .as_i64()
        .unwrap()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The DER of the first PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    unbase64(&body).expect("base64")
}

fn without_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Hours of a cert-manager duration written in whole hours ("2160h").
fn hours(d: &str) -> u64 {
    d.strip_suffix('h')
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("duration {d} in whole hours"))
}

#[test]
fn base64_helpers_round_trip() {
    for text in [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "-----BEGIN CERTIFICATE-----\n",
    ] {
        assert_eq!(unbase64(&base64(text.as_bytes())).unwrap(), text.as_bytes());
    }
    assert_eq!(base64(b"sidecar-kit"), "c2lkZWNhci1raXQ=");
}

// === the checks ===

/// What every overlay must satisfy. `failure_policy` is the webhook's expected policy.
fn check_common(objs: &Objects, failure_policy: &str) {
    let ns = objs.get("Namespace", NS);
    let sa = objs.get("ServiceAccount", "sidecar-kit");
    let dep = objs.get("Deployment", "sidecar-kit");
    let svc = objs.get("Service", "sidecar-kit");
    let pdb = objs.get("PodDisruptionBudget", "sidecar-kit");
    let mwc = objs.get("MutatingWebhookConfiguration", "sidecar-kit");
    let profiles = objs.get("ConfigMap", "sidecar-kit-profiles");
    let pod = &dep["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    let c = container(dep, "sidecar-kit");

    // Labels, namespaces, version.
    let image = s(c, "/image");
    assert_eq!(image, "ghcr.io/sidecar-kit/sidecar-kit:v0.1.0");
    let version = image.rsplit_once(':').unwrap().1;
    for o in &objs.0 {
        let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
        let labels = &o["metadata"]["labels"];
        for key in STANDARD_LABELS {
            assert!(labels.get(*key).is_some(), "{what} has label {key}");
        }
        assert_eq!(labels["app.kubernetes.io/name"], "sidecar-kit", "{what}");
        assert_eq!(labels["app.kubernetes.io/part-of"], "sidecar-kit", "{what}");
        assert_eq!(labels["app.kubernetes.io/version"], version, "{what}");
        let cluster_scoped = [
            "Namespace",
            "MutatingWebhookConfiguration",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        ];
        if !cluster_scoped.iter().any(|k| o["kind"] == *k) {
            assert_eq!(o["metadata"]["namespace"], NS, "{what} is in {NS}");
        }
    }
    for key in STANDARD_LABELS {
        assert!(
            pod_labels.get(*key).is_some(),
            "pod template has label {key}"
        );
    }
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(
        ns["metadata"]["labels"]["sidecar-kit.io/inject"],
        "disabled"
    );

    // Identity: a token, and read-only access to exactly what auto mode decides from.
    assert_eq!(sa["automountServiceAccountToken"], true);
    let role = objs.get("ClusterRole", "sidecar-kit-webhook");
    for rule in role["rules"].as_array().unwrap() {
        let events = rule["apiGroups"] == serde_json::json!(["events.k8s.io"]);
        let status = rule["resources"] == serde_json::json!(["sidecarprofiles/status"]);
        for verb in rule["verbs"].as_array().unwrap() {
            let allowed: &[&str] = if events {
                &["create"]
            } else if status {
                &["patch"]
            } else {
                &["get", "list", "watch"]
            };
            assert!(
                allowed.contains(&verb.as_str().unwrap()),
                "the webhook reads, and only creates Events: {rule}"
            );
        }
    }
    let binding = objs.get("ClusterRoleBinding", "sidecar-kit-webhook");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let lease_role = objs.get("Role", "sidecar-kit-webhook");
    assert_eq!(
        lease_role["rules"][0]["resourceNames"][0], "sidecar-kit-label-nodes",
        "one named Lease, read only"
    );
    assert_eq!(
        pod["spec"]["serviceAccountName"], sa["metadata"]["name"],
        "the pods run as the ServiceAccount"
    );

    // Availability.
    assert_eq!(dep["spec"]["replicas"], 2);
    assert!(selects(&dep["spec"]["selector"], pod_labels));
    let anti = arr(
        pod,
        "/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
    );
    assert!(
        anti.iter().any(|t| {
            t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                && selects(&t["podAffinityTerm"]["labelSelector"], pod_labels)
        }),
        "preferred pod anti-affinity per node, selecting the webhook's own pods"
    );
    let spread = arr(pod, "/spec/topologySpreadConstraints");
    assert!(!spread.is_empty());
    for t in spread {
        assert!(selects(&t["labelSelector"], pod_labels), "{t}");
        assert_eq!(t["whenUnsatisfiable"], "ScheduleAnyway", "{t}");
    }
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(
        selects(&pdb["spec"]["selector"], pod_labels),
        "PDB selects the pods"
    );
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    assert!(pod["spec"].get("priorityClassName").is_none());

    // Configuration: only known variables, and all of them.
    let names: BTreeSet<&str> = arr(c, "/env").iter().map(|e| s(e, "/name")).collect();
    for n in &names {
        assert!(ALLOWED_ENV.contains(n), "unknown env var {n}");
    }
    for n in ALLOWED_ENV {
        assert!(names.contains(n), "env var {n} is set");
    }
    assert_eq!(
        env(c, "POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env_value(c, "SIDECAR_KIT_SHIM_IMAGE"),
        image,
        "shim from the same image"
    );
    assert_eq!(env_value(c, "SIDECAR_KIT_LOG_FORMAT"), "json");
    // Shutdown: the delay (serving while endpoints drop the pod) and the drain of in-flight
    // reviews (SIDECAR_KIT_SHUTDOWN_TIMEOUT, 20 s by default) fit in the grace period, so the
    // kubelet never kills a draining server.
    let seconds = |v: &str| sidecar_kit::flags::duration(v).unwrap().as_secs_f64();
    let delay = seconds(env_value(c, "SIDECAR_KIT_SHUTDOWN_DELAY"));
    assert!(delay > 0.0, "a shutdown delay is set");
    let drain = env(c, "SIDECAR_KIT_SHUTDOWN_TIMEOUT")
        .map_or(20.0, |e| seconds(e["value"].as_str().unwrap()));
    assert!(
        delay + drain
            < pod["spec"]["terminationGracePeriodSeconds"]
                .as_f64()
                .unwrap(),
        "shutdown delay {delay} s + {drain} s drain within terminationGracePeriodSeconds"
    );
    let expected_mode = if failure_policy == "Ignore" {
        "allow"
    } else {
        "deny"
    };
    assert_eq!(env_value(c, "SIDECAR_KIT_FAILURE_MODE"), expected_mode);
    assert_eq!(c["args"], json!(["serve"]));

    // Ports: the listeners are the named container ports.
    let listen_port = |var: &str| -> i64 {
        let v = env_value(c, var);
        v.rsplit_once(':').unwrap().1.parse().unwrap()
    };
    assert_eq!(container_port(c, "https-webhook"), 8443);
    assert_eq!(container_port(c, "http-metrics"), 8080);
    assert_eq!(listen_port("SIDECAR_KIT_LISTEN"), 8443);
    assert_eq!(listen_port("SIDECAR_KIT_PROBE_LISTEN"), 8080);

    // Probes: plain HTTP on the probe port.
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "http-metrics", "{probe} uses the probe port");
        assert!(get.get("scheme").is_none_or(|s| s == "HTTP"), "{probe}");
    }

    // Resources.
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "100m", "memory": "64Mi"})
    );
    assert_eq!(c["resources"]["limits"], json!({"memory": "128Mi"}));

    // Pod Security `restricted`, and the rest of the hardening asked for.
    let violations = restricted_violations(&pod["spec"]);
    assert!(
        violations.is_empty(),
        "restricted violations: {violations:#?}"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    for ctx in [&pod["spec"]["securityContext"], sc] {
        assert_eq!(ctx["runAsUser"], 65532);
        assert_eq!(ctx["runAsGroup"], 65532);
    }
    assert_eq!(
        pod_labels["sidecar-kit.io/inject"], "disabled",
        "never inject itself"
    );

    // Volumes: the TLS Secret and the profiles ConfigMap, where the variables point.
    let volume = |name: &str| -> &Value {
        arr(pod, "/spec/volumes")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    let mount = |name: &str| -> &Value {
        arr(c, "/volumeMounts")
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("mount {name}"))
    };
    let tls_volume = arr(pod, "/spec/volumes")
        .iter()
        .find(|v| v.get("secret").is_some())
        .unwrap();
    assert_eq!(tls_volume["secret"]["secretName"], TLS_SECRET);
    let tls_mount = mount(s(tls_volume, "/name"));
    let tls_dir = s(tls_mount, "/mountPath");
    assert_eq!(tls_dir, "/etc/sidecar-kit/tls");
    assert_eq!(
        env_value(c, "SIDECAR_KIT_TLS_CERT"),
        format!("{tls_dir}/tls.crt")
    );
    assert_eq!(
        env_value(c, "SIDECAR_KIT_TLS_KEY"),
        format!("{tls_dir}/tls.key")
    );
    let profiles_volume = volume("profiles");
    assert_eq!(
        profiles_volume["configMap"]["name"], profiles["metadata"]["name"],
        "the generated ConfigMap keeps its name (no hash suffix)"
    );
    let profiles_mount = mount("profiles");
    assert_eq!(
        env_value(c, "SIDECAR_KIT_PROFILES"),
        s(profiles_mount, "/mountPath")
    );
    for m in arr(c, "/volumeMounts") {
        assert_eq!(m["readOnly"], true, "{m}");
        // A subPath mount would never see the kubelet's updates: no reloads.
        assert!(m.get("subPath").is_none(), "{m}");
    }

    // The profiles ConfigMap holds exactly the files of deploy/base/profiles.
    let dir = deploy().join("base/profiles");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    let keys: Vec<String> = profiles["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys, files,
        "every file of deploy/base/profiles is listed in the configMapGenerator of \
         deploy/base/kustomization.yaml, and nothing else"
    );
    for f in &files {
        assert_eq!(
            profiles["data"][f],
            std::fs::read_to_string(dir.join(f)).unwrap(),
            "{f}"
        );
    }

    // Service → pods.
    assert!(
        selects_map(&svc["spec"]["selector"], pod_labels),
        "Service selects the pods"
    );
    for p in arr(svc, "/spec/ports") {
        let target = s(p, "/targetPort");
        container_port(c, target);
        assert_eq!(p["name"], target, "Service port named like its target");
    }
    let svc_port = |port: i64| -> &Value {
        arr(svc, "/spec/ports")
            .iter()
            .find(|p| p["port"] == port)
            .unwrap_or_else(|| panic!("Service port {port}"))
    };
    assert_eq!(svc_port(443)["targetPort"], "https-webhook");
    assert_eq!(svc_port(8080)["targetPort"], "http-metrics");
    assert_eq!(svc_port(8080)["name"], "http-metrics");

    // Webhook → Service.
    let hooks = arr(mwc, "/webhooks");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["name"], "inject.sidecar-kit.io");
    let target = &hook["clientConfig"]["service"];
    assert!(hook["clientConfig"].get("url").is_none());
    assert_eq!(target["name"], svc["metadata"]["name"]);
    assert_eq!(target["namespace"], svc["metadata"]["namespace"]);
    assert_eq!(target["path"], "/mutate");
    assert_eq!(
        svc_port(target["port"].as_i64().unwrap())["targetPort"],
        "https-webhook"
    );
    assert_eq!(
        hook["rules"],
        json!([{
            "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods"], "scope": "Namespaced"
        }])
    );
    assert_eq!(
        hook["namespaceSelector"]["matchLabels"],
        json!({"sidecar-kit.io/inject": "enabled"})
    );
    let excluded = arr(hook, "/namespaceSelector/matchExpressions")
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name")
        .unwrap();
    assert_eq!(excluded["operator"], "NotIn");
    for n in ["kube-system", "kube-public", "kube-node-lease", NS] {
        assert!(
            arr(excluded, "/values").iter().any(|v| v == n),
            "{n} excluded"
        );
    }
    assert_eq!(
        hook["objectSelector"],
        json!({"matchExpressions": [
            {"key": "sidecar-kit.io/inject", "operator": "NotIn", "values": ["disabled"]}
        ]})
    );
    let conditions = arr(hook, "/matchConditions");
    assert!(conditions.iter().any(|m| {
        let e = s(m, "/expression");
        e.contains("object.metadata.annotations")
            && e.contains("'sidecar-kit.io/inject'")
            && e.contains("'disabled'")
    }));
    assert_eq!(hook["failurePolicy"], failure_policy);
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
    assert_eq!(hook["sideEffects"], "NoneOnDryRun");
    assert_eq!(hook["timeoutSeconds"], 5);
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
}

/// The checks of the Pod Security Standards' `restricted` profile (which include
/// `baseline`) that a pod spec can fail; empty when the pod passes.
fn restricted_violations(spec: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let pod_sc = &spec["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[host] == true {
            v.push(host.to_string());
        }
    }
    let allowed_volumes = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for vol in spec["volumes"].as_array().into_iter().flatten() {
        for key in vol.as_object().unwrap().keys().filter(|k| *k != "name") {
            if !allowed_volumes.contains(&key.as_str()) {
                v.push(format!("volume {} of type {key}", vol["name"]));
            }
        }
    }
    if pod_sc["seccompProfile"]["type"] == "Unconfined" {
        v.push("pod seccompProfile Unconfined".into());
    }
    if pod_sc["runAsUser"] == 0 {
        v.push("pod runAsUser 0".into());
    }
    for s in pod_sc["sysctls"].as_array().into_iter().flatten() {
        v.push(format!("sysctl {}", s["name"]));
    }
    let all = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten());
    for c in all {
        let name = &c["name"];
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            v.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            v.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        let drop = sc["capabilities"]["drop"].as_array();
        if !drop.is_some_and(|d| d.iter().any(|x| x == "ALL")) {
            v.push(format!("{name}: capabilities must drop ALL"));
        }
        for add in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            if add != "NET_BIND_SERVICE" {
                v.push(format!("{name}: adds capability {add}"));
            }
        }
        let non_root = sc
            .get("runAsNonRoot")
            .or_else(|| pod_sc.get("runAsNonRoot"));
        if non_root != Some(&Value::Bool(true)) {
            v.push(format!("{name}: runAsNonRoot must be true"));
        }
        if sc["runAsUser"] == 0 {
            v.push(format!("{name}: runAsUser 0"));
        }
        let seccomp = sc
            .pointer("/seccompProfile/type")
            .or_else(|| pod_sc.pointer("/seccompProfile/type"));
        if !matches!(
            seccomp.and_then(Value::as_str),
            Some("RuntimeDefault" | "Localhost")
        ) {
            v.push(format!(
                "{name}: seccompProfile must be RuntimeDefault or Localhost"
            ));
        }
        if sc.get("procMount").is_some_and(|p| p != "Default") {
            v.push(format!("{name}: procMount"));
        }
        if sc["appArmorProfile"]["type"] == "Unconfined" {
            v.push(format!("{name}: appArmorProfile Unconfined"));
        }
        if sc.pointer("/seLinuxOptions/user").is_some()
            || sc.pointer("/seLinuxOptions/role").is_some()
        {
            v.push(format!("{name}: seLinuxOptions user/role"));
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p.get("hostPort").is_some_and(|h| h != 0) {
                v.push(format!("{name}: hostPort"));
            }
        }
    }
    v
}

// === tests: each overlay ===

#[test]
fn base_builds_without_tls_material() {
    let (_, objs) = build(&deploy().join("base"));
    check_common(&objs, "Ignore");
    assert!(
        objs.all("Secret").is_empty(),
        "the base leaves TLS to the overlays"
    );
    let mwc = objs.get("MutatingWebhookConfiguration", "sidecar-kit");
    assert!(mwc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
}

#[test]
fn cert_manager_overlay_is_consistent() {
    let (_, objs) = build(&deploy().join("overlays/cert-manager"));
    check_common(&objs, "Ignore");
    check_cert_manager(&objs);
}

fn check_cert_manager(objs: &Objects) {
    let dep = objs.get("Deployment", "sidecar-kit");
    let svc = objs.get("Service", "sidecar-kit");
    let mwc = objs.get("MutatingWebhookConfiguration", "sidecar-kit");

    // The serving certificate writes the Secret the pods mount.
    let mounted = arr(dep, "/spec/template/spec/volumes")
        .iter()
        .find_map(|v| v["secret"]["secretName"].as_str())
        .unwrap();
    let serving = objs
        .all("Certificate")
        .into_iter()
        .find(|c| c["spec"]["secretName"] == mounted)
        .expect("a Certificate writes the mounted Secret");
    assert_eq!(serving["metadata"]["name"], "sidecar-kit-webhook");
    assert!(
        objs.all("Secret").is_empty(),
        "cert-manager owns the Secret"
    );

    // It names every DNS name the API server may use for the Service.
    let (name, ns) = (s(svc, "/metadata/name"), s(svc, "/metadata/namespace"));
    let dns: Vec<&str> = arr(serving, "/spec/dnsNames")
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for want in [
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
    ] {
        assert!(dns.contains(&want.as_str()), "dnsNames has {want}");
    }
    assert_ne!(serving["spec"]["isCA"], true);
    let usages = arr(serving, "/spec/usages");
    assert!(usages.iter().any(|u| u == "server auth"));

    // Rotation: renewed well before it expires, with a new key.
    for cert in objs.all("Certificate") {
        let d = hours(s(cert, "/spec/duration"));
        let r = hours(s(cert, "/spec/renewBefore"));
        assert!(
            r < d && r >= 24,
            "{}: renewBefore {r}h < duration {d}h",
            cert["metadata"]["name"]
        );
    }
    assert_eq!(serving["spec"]["privateKey"]["rotationPolicy"], "Always");

    // Chain: serving ← CA Issuer ← CA Certificate ← self-signed Issuer.
    let issuer = |cert: &Value| -> &Value {
        let r = &cert["spec"]["issuerRef"];
        assert_eq!(r["kind"], "Issuer");
        assert_eq!(r["group"], "cert-manager.io");
        objs.get("Issuer", s(r, "/name"))
    };
    let ca_issuer = issuer(serving);
    let ca_secret = s(ca_issuer, "/spec/ca/secretName");
    let ca_cert = objs
        .all("Certificate")
        .into_iter()
        .find(|c| c["spec"]["secretName"] == ca_secret)
        .expect("a CA Certificate writes the CA Issuer's Secret");
    assert_eq!(ca_cert["spec"]["isCA"], true);
    assert!(issuer(ca_cert)["spec"].get("selfSigned").is_some());
    for o in objs
        .all("Issuer")
        .into_iter()
        .chain(objs.all("Certificate"))
    {
        assert_eq!(o["metadata"]["namespace"], NS);
    }

    // The CA injector reads the serving Certificate.
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{}/{}",
            s(serving, "/metadata/namespace"),
            s(serving, "/metadata/name")
        )
    );
    assert!(mwc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
}

#[test]
fn self_managed_overlay_is_consistent() {
    let copy = DeployCopy::new();
    let (_, objs) = build(&copy.path("overlays/self-managed"));
    check_common(&objs, "Ignore");
    check_self_managed(&objs, &copy);
}

fn check_self_managed(objs: &Objects, copy: &DeployCopy) {
    let dep = objs.get("Deployment", "sidecar-kit");
    let mwc = objs.get("MutatingWebhookConfiguration", "sidecar-kit");
    let secret = objs.get("Secret", TLS_SECRET);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert!(
        arr(dep, "/spec/template/spec/volumes")
            .iter()
            .any(|v| v["secret"]["secretName"] == secret["metadata"]["name"]),
        "the Deployment mounts the generated Secret"
    );
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        assert_eq!(
            without_whitespace(s(&secret["data"], &format!("/{key}"))),
            base64(copy.tls_file(key).as_bytes()),
            "{key} comes from tls/{key}"
        );
    }
    let bundle = without_whitespace(s(mwc, "/webhooks/0/clientConfig/caBundle"));
    assert_eq!(
        bundle,
        base64(copy.tls_file("ca.crt").as_bytes()),
        "caBundle is tls/ca.crt"
    );
    assert_eq!(
        bundle, copy.bundle,
        "caBundle is what `sidecar-kit certs` printed"
    );

    // The serving certificate names the Service: a dNSName in the subjectAltName is the
    // name's ASCII bytes in the DER.
    let svc = objs.get("Service", "sidecar-kit");
    let der = pem_der(&copy.tls_file("tls.crt"));
    let (name, ns) = (s(svc, "/metadata/name"), s(svc, "/metadata/namespace"));
    for dns in [
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
    ] {
        assert!(
            der.windows(dns.len()).any(|w| w == dns.as_bytes()),
            "the certificate of `sidecar-kit certs` names {dns}"
        );
    }
    assert!(
        mwc["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("cert-manager.io/inject-ca-from").is_none())
    );
    assert!(objs.all("Certificate").is_empty());
}

#[test]
fn self_managed_overlay_keeps_keys_out_of_git() {
    let ignore =
        std::fs::read_to_string(deploy().join("overlays/self-managed/.gitignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "/tls/"),
        "deploy/overlays/self-managed/.gitignore ignores tls/"
    );
}

#[test]
fn fail_closed_component_flips_both_policies() {
    let copy = DeployCopy::new();
    let (_, objs) = build(&copy.fail_closed("cert-manager"));
    check_common(&objs, "Fail");
    check_cert_manager(&objs);
    let (_, objs) = build(&copy.fail_closed("self-managed"));
    check_common(&objs, "Fail");
    check_self_managed(&objs, &copy);
}

#[test]
fn bundled_profiles_are_valid() {
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
        .args(["profiles", "validate"])
        .arg(deploy().join("base/profiles"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sidecar-kit profiles validate deploy/base/profiles:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image the Deployment runs is the one the Dockerfile builds: same user, the three
/// binaries, the server as entrypoint.
#[test]
fn dockerfile_matches_the_deployment() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let (_, objs) = build(&deploy().join("base"));
    let dep = objs.get("Deployment", "sidecar-kit");
    let uid = dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        .as_i64()
        .unwrap();
    assert!(text.contains(&format!("USER {uid}:{uid}")));
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/sidecar-kit"]"#));
    for bin in ["sidecar-kit", "kubectl-sidecar", "sidecar-shim"] {
        assert!(
            text.contains(&format!("/usr/local/bin/{bin}")),
            "the image has /usr/local/bin/{bin}"
        );
    }
    // /usr/local/bin on PATH, where universal wiring's install container finds
    // `sidecar-shim` by name. (crates/xtask checks the rest of the layout against the image
    // `cargo xtask image` builds.)
    assert!(text.contains("ENV PATH=/usr/local/bin"));
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for entry in ["target", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim().trim_matches('/') == entry),
            ".dockerignore leaves out {entry}"
        );
    }
}

// === tests: kubectl apply --dry-run=client against a fake API server ===

/// The resource types of deploy/, as discovery reports them: (group, version, plural,
/// singular, kind, namespaced).
const RESOURCES: &[(&str, &str, &str, &str, &str, bool)] = &[
    ("", "v1", "namespaces", "namespace", "Namespace", false),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
    ),
    (
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
    ),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true),
    ("", "v1", "secrets", "secret", "Secret", true),
    ("", "v1", "services", "service", "Service", true),
    (
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
    ),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
    ),
    ("cert-manager.io", "v1", "issuers", "issuer", "Issuer", true),
    (
        "cert-manager.io",
        "v1",
        "certificates",
        "certificate",
        "Certificate",
        true,
    ),
];

/// A std-only HTTP/1.1 server on 127.0.0.1:0 that answers kubectl's discovery requests like
/// an API server with the types above and no objects. Every request is recorded.
struct FakeApiServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, requests) = (stop.clone(), requests.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    std::thread::spawn(move || serve_connection(stream, &requests));
                }
            })
        };
        FakeApiServer {
            addr,
            stop,
            requests,
            accept: Some(accept),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Answers requests on one connection until the client closes it (kubectl keeps
/// connections alive).
fn serve_connection(stream: TcpStream, requests: &Mutex<Vec<String>>) {
    // A client that stops talking must not hold a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = target.split('?').next().unwrap_or("").to_string();
        requests.lock().unwrap().push(format!("{method} {path}"));
        let (status, reply) = answer(&method, &path);
        let reply = reply.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// The reply to one request, shaped after a real API server's.
fn answer(method: &str, path: &str) -> (&'static str, Value) {
    let group_versions: BTreeSet<(&str, &str)> = RESOURCES.iter().map(|r| (r.0, r.1)).collect();
    let resource_list = |group: &str, version: &str| -> Value {
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let resources: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.0 == group && r.1 == version)
            .map(|r| {
                json!({
                    "name": r.2, "singularName": r.3, "namespaced": r.5, "kind": r.4,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
                })
            })
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
               "resources": resources})
    };
    if method != "GET" {
        return not_found(path);
    }
    match path {
        "/version" => (
            "200 OK",
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                   "platform": "linux/amd64"}),
        ),
        "/api" => (
            "200 OK",
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [
                       {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
        ),
        "/apis" => {
            let groups: Vec<Value> = group_versions
                .iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            (
                "200 OK",
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        "/api/v1" => ("200 OK", resource_list("", "v1")),
        _ => {
            let found = path.strip_prefix("/apis/").and_then(|rest| {
                let (g, v) = rest.split_once('/')?;
                group_versions
                    .contains(&(g, v))
                    .then(|| resource_list(g, v))
            });
            match found {
                Some(list) => ("200 OK", list),
                // Objects (none exist), OpenAPI documents, anything else.
                None => not_found(path),
            }
        }
    }
}

fn not_found(path: &str) -> (&'static str, Value) {
    (
        "404 Not Found",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
    )
}

/// `kubectl apply --dry-run=client` of a built overlay against the fake server: every object
/// is accepted and nothing is written.
fn dry_run(yaml: &str, objs: &Objects) {
    let server = FakeApiServer::start();
    let home = TempDir::new("deploy-kubeconfig");
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n",
            server.addr
        ),
    )
    .unwrap();
    let mut child = kubectl()
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", home.path())
        .arg("--cache-dir")
        .arg(home.path().join("cache"))
        .args([
            "--request-timeout=10s",
            "apply",
            "--dry-run=client",
            "--validate=false",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs (install it, or set KUBECTL to its path)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let requests = server.requests();
    drop(server);
    assert!(
        out.status.success(),
        "kubectl apply --dry-run=client failed:\n{}\n{stdout}\nrequests:\n{}",
        String::from_utf8_lossy(&out.stderr),
        requests.join("\n")
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), objs.0.len(), "one line per object:\n{stdout}");
    for l in &lines {
        assert!(l.ends_with("(dry run)"), "{l}");
    }
    // kubectl looked every object up where the API server keeps it: the kinds map to the
    // resources and scopes we expect.
    for o in &objs.0 {
        let kind = s(o, "/kind");
        let r = RESOURCES
            .iter()
            .find(|r| r.4 == kind)
            .unwrap_or_else(|| panic!("the fake API server knows {kind}"));
        let prefix = if r.0.is_empty() {
            format!("/api/{}", r.1)
        } else {
            format!("/apis/{}/{}", r.0, r.1)
        };
        let scope = if r.5 {
            format!("/namespaces/{}", s(o, "/metadata/namespace"))
        } else {
            String::new()
        };
        let get = format!("GET {prefix}{scope}/{}/{}", r.2, s(o, "/metadata/name"));
        assert!(
            requests.contains(&get),
            "kubectl asked for {get}: {requests:#?}"
        );
    }
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET ")).collect();
    assert!(
        writes.is_empty(),
        "a client dry run writes nothing: {writes:?}"
    );
}

#[test]
fn overlays_pass_kubectl_apply_dry_run() {
    let copy = DeployCopy::new();
    for dir in [
        deploy().join("overlays/cert-manager"),
        copy.path("overlays/self-managed"),
        copy.fail_closed("cert-manager"),
    ] {
        let (yaml, objs) = build(&dir);
        dry_run(&yaml, &objs);
    }
}

/// The CRD shipped in deploy/base is exactly what `sidecar-kit crd` prints.
#[test]
fn shipped_crd_matches_the_generated_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/crd.yaml"),
    )
    .unwrap();
    let body: String = shipped
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        body,
        String::from_utf8(out.stdout).unwrap(),
        "deploy/base/crd.yaml is stale: regenerate it with `sidecar-kit crd`"
    );
}

// === the node labeller (deploy/label-nodes, included by both overlays) ===

const LABELER: &str = "sidecar-kit-label-nodes";

/// One RBAC rule, comparable: (apiGroups, resources, resourceNames, verbs), each sorted.
type Rule = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// The rules of a Role or ClusterRole.
fn rules(role: &Value) -> BTreeSet<Rule> {
    let list = |v: &Value| -> Vec<String> {
        let mut l: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        l.sort();
        l
    };
    arr(role, "/rules")
        .iter()
        .map(|r| {
            (
                list(&r["apiGroups"]),
                list(&r["resources"]),
                list(&r["resourceNames"]),
                list(&r["verbs"]),
            )
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The labeller's objects: its own pods, probes, security, identity and least privilege.
fn check_label_nodes(objs: &Objects) {
    let dep = objs.get("Deployment", LABELER);
    let sa = objs.get("ServiceAccount", LABELER);
    let pod = &dep["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    let c = container(dep, "label-nodes");

    // Labels: the standard ones, with component label-nodes on every object of its own.
    for o in objs.0.iter().filter(|o| o["metadata"]["name"] == LABELER) {
        let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
        let labels = &o["metadata"]["labels"];
        for key in STANDARD_LABELS {
            assert!(labels.get(*key).is_some(), "{what} has label {key}");
        }
        assert_eq!(
            labels["app.kubernetes.io/component"], "label-nodes",
            "{what}"
        );
        assert_eq!(labels["app.kubernetes.io/name"], "sidecar-kit", "{what}");
        if !["ClusterRole", "ClusterRoleBinding"]
            .iter()
            .any(|k| o["kind"] == *k)
        {
            assert_eq!(o["metadata"]["namespace"], NS, "{what} is in {NS}");
        }
    }
    for key in STANDARD_LABELS {
        assert!(pod_labels.get(*key).is_some(), "pod template has {key}");
    }
    assert_eq!(pod_labels["app.kubernetes.io/component"], "label-nodes");
    assert_eq!(pod_labels["sidecar-kit.io/inject"], "disabled");

    // Pods: two replicas its selector selects; the webhook's selectors never pick them.
    assert_eq!(dep["spec"]["replicas"], 2);
    assert!(selects(&dep["spec"]["selector"], pod_labels));
    for o in objs.0.iter().filter(|o| o["metadata"]["name"] != LABELER) {
        if let Some(sel) = o.pointer("/spec/selector") {
            let picks = if o["kind"] == "Service" {
                selects_map(sel, pod_labels)
            } else {
                selects(sel, pod_labels)
            };
            assert!(
                !picks,
                "{} {} selects the labeller's pods",
                o["kind"], o["metadata"]["name"]
            );
        }
    }
    if let Some(webhook) = objs
        .all("Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "sidecar-kit")
    {
        assert!(
            !selects(
                &dep["spec"]["selector"],
                &webhook["spec"]["template"]["metadata"]["labels"]
            ),
            "the labeller's selector picks the webhook's pods"
        );
    }

    // The command, its configuration (real flags' twins only) and the downward API.
    assert_eq!(c["args"], json!(["label-nodes"]));
    assert_eq!(s(c, "/image"), "ghcr.io/sidecar-kit/sidecar-kit:v0.1.0");
    let help = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"))
        .args(["label-nodes", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let names: BTreeSet<&str> = arr(c, "/env").iter().map(|e| s(e, "/name")).collect();
    for n in &names {
        if n.starts_with("SIDECAR_KIT_") {
            assert!(
                help.contains(&format!("[env: {n}=")),
                "{n} is the twin of a label-nodes flag"
            );
        } else {
            assert!(
                ["POD_NAME", "POD_NAMESPACE"].contains(n),
                "unknown env var {n}"
            );
        }
    }
    for (var, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert_eq!(
            env(c, var).unwrap_or_else(|| panic!("env {var}"))["valueFrom"]["fieldRef"]["fieldPath"],
            field
        );
    }
    assert_eq!(env_value(c, "SIDECAR_KIT_LOG_FORMAT"), "json");

    // Probes on its own probe port, plain HTTP.
    let port = env_value(c, "SIDECAR_KIT_PROBE_LISTEN")
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<i64>()
        .unwrap();
    assert_eq!(container_port(c, "http-metrics"), port);
    assert_eq!(port, 8081, "the default of --probe-listen");
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "http-metrics", "{probe} uses the probe port");
        assert!(get.get("scheme").is_none_or(|s| s == "HTTP"), "{probe}");
    }
    for key in [
        "/resources/requests/cpu",
        "/resources/requests/memory",
        "/resources/limits/memory",
    ] {
        assert!(c.pointer(key).is_some(), "{key}");
    }

    // Pod Security `restricted`, read-only root, the image's user.
    let violations = restricted_violations(&pod["spec"]);
    assert!(
        violations.is_empty(),
        "restricted violations: {violations:#?}"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    for ctx in [&pod["spec"]["securityContext"], &c["securityContext"]] {
        assert_eq!(ctx["runAsUser"], 65532);
    }

    // Identity and least privilege: exactly these rules, nothing more.
    assert_eq!(pod["spec"]["serviceAccountName"], sa["metadata"]["name"]);
    assert_eq!(sa["automountServiceAccountToken"], true);
    let cluster_role = objs.get("ClusterRole", LABELER);
    assert_eq!(
        rules(cluster_role),
        BTreeSet::from([
            (
                strings(&[""]),
                strings(&["nodes"]),
                vec![],
                strings(&["get", "list", "patch", "watch"])
            ),
            (
                strings(&[""]),
                strings(&["nodes/proxy"]),
                vec![],
                strings(&["get"])
            ),
        ]),
        "nodes: read and patch; nodes/proxy: get (kubelet metrics)"
    );
    let role = objs.get("Role", LABELER);
    assert_eq!(role["metadata"]["namespace"], NS);
    assert_eq!(
        rules(role),
        BTreeSet::from([
            (
                strings(&["coordination.k8s.io"]),
                strings(&["leases"]),
                vec![],
                strings(&["create"])
            ),
            (
                strings(&["coordination.k8s.io"]),
                strings(&["leases"]),
                strings(&[LABELER]),
                strings(&["get", "update"]),
            ),
        ]),
        "one named Lease (create cannot be limited by name)"
    );
    for (kind, role_kind, role) in [
        ("ClusterRoleBinding", "ClusterRole", cluster_role),
        ("RoleBinding", "Role", role),
    ] {
        let b = objs.get(kind, LABELER);
        assert_eq!(b["roleRef"]["kind"], role_kind);
        assert_eq!(b["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NS}])
        );
    }
}

#[test]
fn label_nodes_builds_on_its_own() {
    let (_, objs) = build(&deploy().join("label-nodes"));
    check_label_nodes(&objs);
    let kinds: BTreeSet<&str> = objs.0.iter().map(|o| s(o, "/kind")).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ])
    );
}

#[test]
fn both_overlays_install_the_labeller() {
    let copy = DeployCopy::new();
    for dir in [
        deploy().join("overlays/cert-manager"),
        copy.path("overlays/self-managed"),
        copy.fail_closed("cert-manager"),
    ] {
        let (_, objs) = build(&dir);
        check_common(
            &objs,
            if dir.ends_with("test-fail-closed-cert-manager") {
                "Fail"
            } else {
                "Ignore"
            },
        );
        check_label_nodes(&objs);
        // The Lease the webhook reads is the one the labeller holds.
        assert_eq!(
            objs.get("Role", "sidecar-kit-webhook")["rules"][0]["resourceNames"][0],
            LABELER
        );
    }
}

#[test]
fn the_base_leaves_the_labeller_out() {
    let (_, objs) = build(&deploy().join("base"));
    assert!(
        objs.0.iter().all(|o| o["metadata"]["name"] != LABELER),
        "deploy/base is the webhook's alone (its labels would mark the labeller as webhook)"
    );
}

#[test]
fn an_image_override_moves_the_shim_image_too() {
    // What README tells users to do: an overlay of their own with `images:` (what
    // `kustomize edit set image` writes).
    let copy = DeployCopy::new();
    let dir = copy.path("overlays/test-own-registry");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources:\n- ../self-managed\nimages:\n- name: ghcr.io/sidecar-kit/sidecar-kit\n  \
         newName: registry.example.com/mirror/sidecar-kit\n  newTag: v9.9.9\n",
    )
    .unwrap();
    let (_, objs) = build(&dir);
    let moved = "registry.example.com/mirror/sidecar-kit:v9.9.9";
    let dep = objs.get("Deployment", "sidecar-kit");
    let c = container(dep, "sidecar-kit");
    assert_eq!(s(c, "/image"), moved);
    assert_eq!(
        env_value(c, "SIDECAR_KIT_SHIM_IMAGE"),
        moved,
        "the shim image follows the container's image"
    );
    // Other values are left alone (the transformer matches the image name only).
    assert_eq!(
        env_value(c, "SIDECAR_KIT_PROFILES"),
        "/etc/sidecar-kit/profiles"
    );
    let labeler = objs.get("Deployment", "sidecar-kit-label-nodes");
    assert_eq!(
        s(&arr(labeler, "/spec/template/spec/containers")[0], "/image"),
        moved
    );
}
