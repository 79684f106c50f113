//! End-to-end suite against a real Kubernetes API server (only the API: no scheduler, no
//! kubelet needed). Runs when `SIDECAR_KIT_E2E_KUBECONFIG` names a kubeconfig; otherwise it
//! passes after printing one line saying why it skipped.
//!
//! One run: namespaces `sk-e2e-<id>-*`, tainted Node objects with chosen kubelet versions,
//! `sidecar-kit label-nodes` (Lease in the run's system namespace), `sidecar-kit serve`
//! registered by URL with `failurePolicy: Fail`, and two small webhooks of the suite (one adds
//! a label and so triggers re-invocation, one strips `restartPolicy` from init containers for
//! `doctor webhooks` to find). Everything is deleted afterwards, also after a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node;

use serde_json::{Value, json};
use sidecar_kit_e2e::{
    Guard, Kubectl, LogChild, MiniWebhook, base64, eventually, http_get, log_addr, run_id, say,
    sidecar_gate, sidecar_kit_bin,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUN_LABEL: &str = "sidecar-kit.io/e2e-run";
const POOL_LABEL: &str = "sidecar-kit.io/e2e-pool";
const STRIP_LABEL: &str = "sidecar-kit.io/e2e-strip";
const TAINT_KEY: &str = "sidecar-kit.io/e2e";
const TOUCHED: &str = "e2e.sidecar-kit.io/touched";
const CLASS_LABEL: &str = "sidecar-kit.io/native-sidecars";
const LEASE: &str = "sidecar-kit-label-nodes";

fn profile(name: &str, fallback: &str) -> Value {
    json!({
        "apiVersion": "sidecar-kit.io/v1alpha1",
        "kind": "SidecarProfile",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"e2e-profile": name}},
            "mode": "auto",
            "fallback": fallback,
            "position": "first",
            "priority": 100,
            "shim": {"image": "registry.example.com/sidecar-kit:e2e"},
            "containers": [{
                "name": "shipper",
                "image": "registry.example.com/shipper:1.0",
                "command": ["/shipper", "--dir", "/data"],
                "readinessProbe": {"exec": {"command": ["/shipper", "ready"]}, "periodSeconds": 5},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "volumeMounts": [{"name": "shipper-data", "mountPath": "/data"}]
            }],
            "volumes": [{"name": "shipper-data", "emptyDir": {}}],
            "appContainers": {
                "volumeMounts": [{"name": "shipper-data", "mountPath": "/data"}],
                "env": [{"name": "SHIPPER", "value": "on"}]
            }
        }
    })
}

struct Run {
    k: Kubectl,
    bin: PathBuf,
    id: String,
    work: PathBuf,
    inject_ns: String,
    gate: bool,
    api_version: String,
}

impl Run {
    fn pod(&self, name: &str, mode: &str, profile: &str, pool: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.inject_ns,
                "labels": {"app": "e2e", "e2e-profile": profile},
                "annotations": {"sidecar-kit.io/mode": mode, "sidecar-kit.io/profiles": profile}
            },
            "spec": {
                "automountServiceAccountToken": false,
                "nodeSelector": {RUN_LABEL: self.id, POOL_LABEL: pool},
                "tolerations": [
                    {"key": TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists"}
                ],
                "containers": [{"name": "app", "image": "registry.example.com/app:1", "command": ["/app"]}]
            }
        })
    }

    /// The ClusterFacts the webhook should be seeing: the API server's gate, a fresh Lease
    /// (unless `stale`), the run's Node objects as stored (labels from label-nodes included)
    /// and the injection namespace.
    fn facts(&self, lease_fresh: bool) -> Value {
        let nodes: Value = serde_json::from_str(
            &self
                .k
                .run(
                    &[
                        "get",
                        "nodes",
                        "-l",
                        &format!("{RUN_LABEL}={}", self.id),
                        "-o",
                        "json",
                    ],
                    None,
                )
                .unwrap(),
        )
        .unwrap();
        let nodes: Vec<Value> = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                json!({
                    "name": n["metadata"]["name"],
                    "kubeletVersion": n["status"]["nodeInfo"]["kubeletVersion"],
                    "sidecarContainers": "unknown",
                    "unschedulable": n["spec"]["unschedulable"].as_bool().unwrap_or(false),
                    "labels": n["metadata"]["labels"],
                    "taints": n["spec"]["taints"].as_array().cloned().unwrap_or_default()
                        .iter().map(|t| json!({"key": t["key"], "value": t["value"], "effect": t["effect"]}))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let ns = self
            .k
            .get("namespace", &self.inject_ns, None)
            .unwrap()
            .unwrap();
        json!({
            "apiVersion": "sidecar-kit.io/v1alpha1",
            "kind": "ClusterFacts",
            "apiServer": {
                "version": self.api_version,
                "sidecarContainers": if self.gate { "enabled" } else { "disabled" }
            },
            "labeler": {"leaseFresh": lease_fresh},
            "nodes": nodes,
            "namespaces": [{"name": self.inject_ns, "labels": ns["metadata"]["labels"]}]
        })
    }

    /// What the engine plans for `pod` offline (`sidecar-kit inject --facts`).
    fn plan(&self, pod: &Value, lease_fresh: bool) -> Value {
        let facts = self.work.join("facts.json");
        std::fs::write(&facts, self.facts(lease_fresh).to_string()).unwrap();
        let input = self.work.join("pod.json");
        std::fs::write(&input, pod.to_string()).unwrap();
        let out = Command::new(&self.bin)
            .args(["inject", "-o", "json", "-f"])
            .arg(&input)
            .arg("-p")
            .arg(self.work.join("profiles"))
            .arg("--facts")
            .arg(&facts)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sidecar-kit inject: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The parts of a pod that injection decides, comparable between the engine's plan and
    /// the object the API server stored (which adds defaults). `restartPolicy` is compared
    /// only where the API server keeps it.
    fn shape(&self, pod: &Value) -> Value {
        let c = |list: &Value| -> Vec<Value> {
            list.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let mut v = json!({
                        "name": c["name"],
                        "image": c["image"],
                        "command": c["command"],
                        "startupProbe": c.get("startupProbe").is_some(),
                        "readinessProbe": c.get("readinessProbe").is_some(),
                        "env": c["env"].as_array().map(|e| e.iter().map(|e| e["name"].clone()).collect::<Vec<_>>()),
                        "mounts": c["volumeMounts"].as_array().map(|e| e.iter().map(|e| e["mountPath"].clone()).collect::<Vec<_>>()),
                    });
                    if self.gate {
                        v["restartPolicy"] = c["restartPolicy"].clone();
                    }
                    v
                })
                .collect()
        };
        let status: Value = pod["metadata"]["annotations"]["sidecar-kit.io/status"]
            .as_str()
            .map(|s| serde_json::from_str(s).unwrap())
            .unwrap_or(Value::Null);
        json!({
            "initContainers": c(&pod["spec"]["initContainers"]),
            "containers": c(&pod["spec"]["containers"]),
            "volumes": pod["spec"]["volumes"].as_array().map(|v| v.iter().map(|v| v["name"].clone()).collect::<Vec<_>>()),
            "affinity": pod["spec"]["affinity"],
            "defaultContainer": pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
            "status": status,
        })
    }
}

/// The top-level keys of two shapes that differ, and for the status annotation which
/// injection fields do.
fn diff(a: &Value, b: &Value) -> String {
    let mut out = Vec::new();
    for (key, va) in a.as_object().into_iter().flatten() {
        if &b[key] != va {
            if key == "status" {
                let (ia, ib) = (&va["injections"][0], &b[key]["injections"][0]);
                let fields: Vec<&String> = ia
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| &ib[k.as_str()] != *v)
                    .map(|(k, _)| k)
                    .collect();
                out.push(format!("status annotation ({fields:?})"));
            } else {
                out.push(key.clone());
            }
        }
    }
    out.join(", ")
}

fn injected_mode(pod: &Value) -> String {
    let s: Value = serde_json::from_str(
        pod["metadata"]["annotations"]["sidecar-kit.io/status"]
            .as_str()
            .unwrap_or_else(|| panic!("no status annotation on {pod:#}")),
    )
    .unwrap();
    let inj = s["injections"].as_array().unwrap();
    assert_eq!(inj.len(), 1, "exactly one injection: {s:#}");
    inj[0]["mode"].as_str().unwrap().to_string()
}

fn native_copy(pod: &Value) -> Option<&Value> {
    pod["spec"]["initContainers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "shipper")
}

fn required_terms(pod: &Value) -> Vec<Value> {
    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn terms_require(pod: &Value, op: &str, value: &str) -> bool {
    let terms = required_terms(pod);
    !terms.is_empty()
        && terms.iter().all(|t| {
            t["matchExpressions"].as_array().is_some_and(|e| {
                e.iter().any(|e| {
                    e["key"] == CLASS_LABEL && e["operator"] == op && e["values"] == json!([value])
                })
            })
        })
}

use sidecar_kit_e2e::{finding_ids, reviews_total};

fn doctor(bin: &Path, kubeconfig: &Path, args: &[&str]) -> (i32, Value) {
    sidecar_kit_e2e::doctor(bin, kubeconfig, args).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn e2e() {
    let Some(kubeconfig) = std::env::var_os("SIDECAR_KIT_E2E_KUBECONFIG").filter(|v| !v.is_empty())
    else {
        say(
            "e2e skipped: SIDECAR_KIT_E2E_KUBECONFIG is not set (point it at a cluster's kubeconfig to run the suite)",
        );
        return;
    };
    let started = Instant::now();
    let node_setup = node::NodeSetup::from_env().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = PathBuf::from(kubeconfig);
    let k = Kubectl::new(kubeconfig.clone());
    let bin = sidecar_kit_bin().unwrap();
    let metrics = k.raw("/metrics").expect("the API server's /metrics");
    let version: Value = serde_json::from_str(&k.raw("/version").unwrap()).unwrap();
    let api_version = version["gitVersion"].as_str().unwrap().to_string();
    // No metric line: the gate is GA (or gone): on.
    let gate = sidecar_gate(&metrics).unwrap_or(true);
    let id = run_id();
    let prefix = format!("sk-e2e-{id}-");
    say(&format!(
        "e2e: run {id} against {api_version}, SidecarContainers {} on the API server, binary {}",
        if gate { "on" } else { "off" },
        bin.display()
    ));
    let guard = Guard::new(k.clone());

    // Work directory: certificates and profiles.
    let work = std::env::temp_dir().join(format!("sk-e2e-{id}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("profiles")).unwrap();
    let host = std::env::var("SIDECAR_KIT_E2E_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let listen_host = if host == "127.0.0.1" || host == "localhost" {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    };
    let certs = Command::new(&bin)
        .args([
            "certs",
            "--san",
            "127.0.0.1",
            "--san",
            "localhost",
            "--san",
            &host,
            "--out-dir",
        ])
        .arg(work.join("tls"))
        .output()
        .unwrap();
    assert!(
        certs.status.success(),
        "{}",
        String::from_utf8_lossy(&certs.stderr)
    );
    let ca_bundle = base64(&std::fs::read(work.join("tls/ca.crt")).unwrap());
    for (name, fallback) in [("e2e-affinity", "affinity"), ("e2e-universal", "universal")] {
        std::fs::write(
            work.join(format!("profiles/{name}.yaml")),
            profile(name, fallback).to_string(),
        )
        .unwrap();
    }

    if let Some(setup) = &node_setup {
        std::fs::write(
            work.join(format!("profiles/{}.yaml", node::PROFILE)),
            setup.profile().to_string(),
        )
        .unwrap();
    }

    // Namespaces and their default ServiceAccounts.
    let system_ns = format!("{prefix}system");
    let inject_ns = format!("{prefix}inject");
    let doctor_ns = format!("{prefix}doctor");
    for (ns, labels) in [
        (&system_ns, json!({RUN_LABEL.to_string() + "-system": id})),
        (
            &inject_ns,
            json!({RUN_LABEL: id, "sidecar-kit.io/inject": "enabled"}),
        ),
        (&doctor_ns, json!({STRIP_LABEL: id})),
    ] {
        k.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}))
            .unwrap();
        guard.track("namespace", ns);
        // A full cluster's ServiceAccount controller may have made it already (kubectl says
        // "already exists"; the API's reason is AlreadyExists).
        if let Err(e) = k.run(&["create", "serviceaccount", "default", "-n", ns], None) {
            assert!(
                e.contains("AlreadyExists") || e.contains("already exists"),
                "{e}"
            );
        }
    }

    // The node scenarios' pods use the host network: allowed whatever the cluster's default
    // Pod Security level is.
    if node_setup.is_some() {
        k.run(
            &[
                "label",
                "namespace",
                &inject_ns,
                "pod-security.kubernetes.io/enforce=privileged",
                "--overwrite",
            ],
            None,
        )
        .unwrap();
    }

    // Node objects: tainted, labelled for the run, kubelet versions through /status.
    let nodes = [
        ("capable", "capable", "v1.31.4", "true"),
        ("mixed-new", "mixed", "v1.31.4", "true"),
        ("mixed-old", "mixed", "v1.27.9", "false"),
        ("mixed-128", "mixed", "v1.28.7", "rejected"),
        ("old", "old", "v1.27.9", "false"),
    ];
    for (suffix, pool, kubelet, _) in nodes {
        let name = format!("{prefix}{suffix}");
        k.create(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                RUN_LABEL: id, POOL_LABEL: pool,
                "kubernetes.io/os": "linux", "kubernetes.io/hostname": name
            }},
            "spec": {"taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]}
        }))
        .unwrap();
        guard.track("node", &name);
        let status = json!({"status": {"nodeInfo": {
            "kubeletVersion": kubelet, "kubeProxyVersion": kubelet, "machineID": "", "systemUUID": "",
            "bootID": "", "kernelVersion": "", "osImage": "e2e", "containerRuntimeVersion": "",
            "operatingSystem": "linux", "architecture": "amd64"
        }}});
        k.run(
            &[
                "patch",
                "node",
                &name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &status.to_string(),
            ],
            None,
        )
        .unwrap();
    }

    // label-nodes, with its Lease in the system namespace.
    let mut cmd = Command::new(&bin);
    cmd.args(["label-nodes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--namespace",
            &system_ns,
            "--identity",
            &format!("e2e-{id}"),
            "--node-metrics",
            "false",
            "--lease-duration",
            "4",
            "--lease-renew-interval",
            "1",
            "--probe-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]);
    cmd.stdout(Stdio::null());
    let mut labeler = Some(LogChild::spawn("label-nodes", cmd, false).unwrap());
    let t = Instant::now();
    eventually(
        "label-nodes labels every Node object",
        Duration::from_secs(60),
        || {
            for (suffix, _, _, class) in nodes {
                let n = k
                    .get("node", &format!("{prefix}{suffix}"), None)?
                    .ok_or("node gone")?;
                if n["metadata"]["labels"][CLASS_LABEL] != class {
                    return Err(format!("{suffix}: {}", n["metadata"]["labels"]));
                }
            }
            Ok(Some(()))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; label-nodes logs: {:#?}",
            labeler.as_mut().unwrap().logs()
        )
    });
    let lease = k
        .get("lease", LEASE, Some(&system_ns))
        .unwrap()
        .expect("the Lease exists");
    assert_eq!(lease["spec"]["holderIdentity"], format!("e2e-{id}"));
    say(&format!(
        "e2e: label-nodes labelled the 5 Node objects true/true/false/rejected/false in {:.1}s and holds the Lease",
        t.elapsed().as_secs_f64()
    ));

    // sidecar-kit serve.
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .arg("--profiles")
        .arg(work.join("profiles"))
        .arg("--tls-cert")
        .arg(work.join("tls/tls.crt"))
        .arg("--tls-key")
        .arg(work.join("tls/tls.key"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--listen",
            &format!("{listen_host}:0"),
            "--probe-listen",
            "127.0.0.1:0",
            "--namespace",
            &system_ns,
            "--no-crd-profiles",
            "--log-format",
            "json",
            "--reload-interval",
            "1",
        ])
        .env_remove("POD_NAMESPACE")
        .stdout(Stdio::null());
    let mut serve = LogChild::spawn("serve", cmd, false).unwrap();
    let probe = log_addr(&serve.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    let port = log_addr(&serve.wait_log("webhook listening (POST /mutate)")).port();
    eventually(
        "serve's cluster facts synced",
        Duration::from_secs(30),
        || {
            let (_, m) = http_get(probe, "/metrics")?;
            Ok(m.lines()
                .any(|l| l.starts_with("sidecar_kit_cluster_facts_synced") && l.ends_with(" 1"))
                .then_some(()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; serve logs: {:#?}", serve.logs()));

    // The suite's two other webhooks.
    let cert = work.join("tls/tls.crt");
    let key = work.join("tls/tls.key");
    let labeller = MiniWebhook::start(
        &cert,
        &key,
        Arc::new(|pod: &Value| {
            if pod["metadata"]["labels"][TOUCHED].is_string() {
                vec![]
            } else if pod["metadata"]["labels"].is_object() {
                vec![json!({"op": "add", "path": format!("/metadata/labels/{}", TOUCHED.replace('/', "~1")), "value": "yes"})]
            } else {
                vec![json!({"op": "add", "path": "/metadata/labels", "value": {TOUCHED: "yes"}})]
            }
        }),
    )
    .unwrap();
    let stripper = MiniWebhook::start(
        &cert,
        &key,
        Arc::new(|pod: &Value| {
            let Some(inits) = pod["spec"]["initContainers"].as_array() else {
                return vec![];
            };
            if !inits.iter().any(|c| c.get("restartPolicy").is_some()) {
                return vec![];
            }
            let stripped: Vec<Value> = inits
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.as_object_mut().unwrap().remove("restartPolicy");
                    c
                })
                .collect();
            vec![json!({"op": "replace", "path": "/spec/initContainers", "value": stripped})]
        }),
    )
    .unwrap();
    let webhook = |name: &str,
                   port: u16,
                   path: &str,
                   selector: Value,
                   reinvoke: &str,
                   side: &str| {
        json!({
            "name": name,
            "clientConfig": {"url": format!("https://{host}:{port}{path}"), "caBundle": ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": selector},
            "reinvocationPolicy": reinvoke,
            "sideEffects": side,
            "failurePolicy": "Fail",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10
        })
    };
    let config_name = format!("sk-e2e-{id}");
    k.create(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": config_name},
        "webhooks": [
            webhook("inject.sidecar-kit.io", port, "/mutate", json!({RUN_LABEL: id}), "IfNeeded", "NoneOnDryRun"),
            webhook("label.e2e.sidecar-kit.io", labeller.addr.port(), "/", json!({RUN_LABEL: id}), "Never", "None"),
            webhook("strip.e2e.sidecar-kit.io", stripper.addr.port(), "/", json!({STRIP_LABEL: id}), "Never", "None"),
        ]
    }))
    .unwrap();
    guard.track("mutatingwebhookconfiguration", &config_name);

    let run = Run {
        k: k.clone(),
        bin: bin.clone(),
        id: id.clone(),
        work: work.clone(),
        inject_ns: inject_ns.clone(),
        gate,
        api_version,
    };

    // Wait until the configuration is in force and serve sees the fresh Lease: the first
    // review of a dry run of auto on the mixed pool decides what the engine plans with a fresh
    // Lease.
    let probe_pod = run.pod("warmup", "auto", "e2e-affinity", "mixed");
    let want = format!(
        "e2e-affinity={}",
        injected_mode(&run.plan(&probe_pod, true))
    );
    eventually(
        "the webhook in force with the Lease fresh",
        Duration::from_secs(60),
        || {
            let mark = serve.logs().len();
            let _ = run.k.create_dry_run(&probe_pod)?;
            std::thread::sleep(Duration::from_millis(100));
            let first = serve.logs()[mark..]
                .iter()
                .find(|l| l["message"] == "review" && l["name"] == "warmup")
                .cloned();
            Ok(first
                .filter(|l| l["injections"] == want.as_str())
                .map(|_| ()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; serve logs: {:#?}", serve.logs()));
    let mut report: Vec<String> = Vec::new();
    // Failed checks are collected so that every scenario runs and reports; the test fails at
    // the end if any did.
    let mut failures: Vec<String> = Vec::new();
    macro_rules! check {
        ($cond:expr, $($fmt:tt)+) => {
            if !($cond) {
                let msg = format!($($fmt)+);
                say(&format!("e2e: FAILED CHECK: {}", msg.lines().next().unwrap_or("")));
                failures.push(msg);
            }
        };
    }

    // 1+2+3. Every mode through the API server; the stored object is the engine's plan; a
    // dry run gives the same and stores nothing; re-invocation (the labeller's label) leaves
    // one intact injection.
    let expected = |mode: &str| -> String {
        match (mode, gate) {
            ("auto", true) => "native",
            ("auto", false) => "legacy",
            ("native" | "affinity", false) => "legacy",
            (m, _) => m,
        }
        .to_string()
    };
    for mode in ["native", "legacy", "affinity", "universal", "auto"] {
        let profile = if mode == "universal" {
            "e2e-universal"
        } else {
            "e2e-affinity"
        };
        let pod = run.pod(&format!("mode-{mode}"), mode, profile, "capable");
        let plan = run.plan(&pod, true);
        let before = reviews_total(&http_get(probe, "/metrics").unwrap().1);
        let stored = k
            .create(&pod)
            .unwrap_or_else(|e| panic!("{mode}: {e}; serve logs: {:#?}", serve.logs()));
        let after = reviews_total(&http_get(probe, "/metrics").unwrap().1);
        let got = injected_mode(&stored);
        check!(
            got == expected(mode),
            "mode {mode}: injected as {got}, expected {}",
            expected(mode)
        );
        let (s_stored, s_plan) = (run.shape(&stored), run.shape(&plan));
        check!(
            s_stored == s_plan,
            "mode {mode}: stored differs from the engine's plan in {}:\nstored: {s_stored}\nplan:   {s_plan}",
            diff(&s_stored, &s_plan)
        );
        // Re-invocation: the labeller's label is there, our injection once.
        check!(
            stored["metadata"]["labels"][TOUCHED] == "yes",
            "{mode}: the second webhook did not run"
        );
        check!(
            (after - before) as i64 >= 2,
            "{mode}: not re-invoked (reviews {before} -> {after})"
        );
        let all: Vec<&Value> = stored["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                stored["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .collect();
        check!(
            all.iter().filter(|c| c["name"] == "shipper").count() == 1,
            "{mode}: shipper not exactly once"
        );
        if !gate {
            assert!(
                stored["spec"]["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|c| c.get("restartPolicy").is_none()),
                "{mode}: the gate-off API server keeps no restartPolicy"
            );
        }
        match got.as_str() {
            "native" => check!(
                native_copy(&stored).is_some_and(|n| n["restartPolicy"] == "Always"),
                "{mode}: native sidecar without restartPolicy Always"
            ),
            "affinity" => {
                check!(
                    native_copy(&stored).is_some_and(|n| n["restartPolicy"] == "Always"),
                    "{mode}: affinity sidecar without restartPolicy Always"
                );
                check!(
                    terms_require(&stored, "In", "true"),
                    "{mode}: affinity terms: {}",
                    stored["spec"]["affinity"]
                );
            }
            "universal" => {
                check!(
                    native_copy(&stored).is_some_and(|n| n["startupProbe"].is_object() == gate),
                    "{mode}: universal startup probe only with the gate on"
                );
                check!(
                    all.iter().any(|c| c["name"] == "shipper-legacy"),
                    "{mode}: no legacy copy"
                );
                check!(
                    terms_require(&stored, "NotIn", "rejected"),
                    "{mode}: universal terms: {}",
                    stored["spec"]["affinity"]
                );
            }
            _ => check!(
                native_copy(&stored).is_none(),
                "{mode}: a native copy in legacy mode"
            ),
        }
        // Dry run: the same, nothing stored.
        let dry_pod = run.pod(&format!("dry-{mode}"), mode, profile, "capable");
        let dry = k.create_dry_run(&dry_pod).unwrap();
        check!(
            run.shape(&dry) == run.shape(&stored),
            "{mode}: dry run differs from stored in {}:\ndry:    {}\nstored: {}",
            diff(&run.shape(&dry), &run.shape(&stored)),
            run.shape(&dry),
            run.shape(&stored)
        );
        check!(
            k.get("pod", &format!("dry-{mode}"), Some(&inject_ns))
                .unwrap()
                .is_none(),
            "{mode}: the dry run stored a pod"
        );
        report.push(format!(
            "mode {mode} -> {got} (stored = plan, dry run = stored, re-invoked {}x, injected once)",
            after - before
        ));
    }

    // On a real node: the shim's detection protocol and Job-safe shutdown on a kubelet.
    match &node_setup {
        Some(setup) => {
            let t = Instant::now();
            node::NodeRun {
                setup,
                k: &k,
                bin: &bin,
                kubeconfig: &kubeconfig,
                guard: &guard,
                ns: &inject_ns,
                gate,
                report: &mut report,
                failures: &mut failures,
            }
            .run();
            say(&format!(
                "e2e: node scenarios on {} took {:.1}s",
                setup.node,
                t.elapsed().as_secs_f64()
            ));
        }
        None => say(
            "e2e: node scenarios skipped: SIDECAR_KIT_E2E_NODE is not set (a node for hostNetwork pods placed by nodeName, with SIDECAR_KIT_E2E_SHIM_IMAGE runs them)",
        ),
    }

    // 3b. Events reach the real API server: an injected pod owned by a ReplicaSet gets an
    // Injected Event on the ReplicaSet, with a name the API server accepts (a name prefix
    // ending in a dot is refused there, and the fake API server once let it pass).
    {
        let rs_name = "web-5d8f";
        let rs = k
            .create(&json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": run.inject_ns},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"e2e-events": "owner"}},
                    "template": {"metadata": {"labels": {"e2e-events": "owner"}},
                        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}}
            }))
            .unwrap_or_else(|e| panic!("ReplicaSet {rs_name}: {e}"));
        let mut pod = run.pod("events-owned", "native", "e2e-affinity", "capable");
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": rs_name, "uid": rs["metadata"]["uid"], "controller": true}]);
        k.create(&pod)
            .unwrap_or_else(|e| panic!("events-owned: {e}; serve logs: {:#?}", serve.logs()));
        let found = eventually(
            "an Injected Event on the ReplicaSet",
            Duration::from_secs(20),
            || {
                let list: Value = serde_json::from_str(&k.run(
                    &[
                        "get",
                        "events.events.k8s.io",
                        "-n",
                        &run.inject_ns,
                        "-o",
                        "json",
                    ],
                    None,
                )?)
                .map_err(|e| e.to_string())?;
                Ok(list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["regarding"]["name"] == rs_name && e["reason"] == "Injected")
                    .cloned())
            },
        );
        let refused: Vec<String> = serve
            .logs()
            .iter()
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("cannot post an Event"))
            })
            .map(|l| l.to_string())
            .collect();
        check!(
            refused.is_empty(),
            "the API server refused Events: {refused:?}"
        );
        match found {
            Ok(ev) => {
                let name = ev["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                check!(
                    name.starts_with(&format!("{rs_name}."))
                        && ev["reportingController"] == "sidecar-kit.io/webhook",
                    "Event {name}: {ev}"
                );
                say(&format!(
                    "e2e: Event {name} ({}: {}) posted on ReplicaSet {rs_name}",
                    ev["reason"], ev["note"]
                ));
            }
            Err(e) => check!(false, "{e}; serve logs: {:#?}", serve.logs()),
        }
    }

    // 4. auto follows the Node objects' versions and labels (and the Lease).
    for (pool, profile, want_on) in [
        ("capable", "e2e-affinity", "native"),
        ("mixed", "e2e-affinity", "affinity"),
        ("mixed", "e2e-universal", "universal"),
        ("old", "e2e-universal", "legacy"),
    ] {
        let pod = run.pod(
            &format!("auto-{pool}-{}", profile.trim_start_matches("e2e-")),
            "auto",
            profile,
            pool,
        );
        let plan = run.plan(&pod, true);
        let stored = k.create(&pod).unwrap();
        let got = injected_mode(&stored);
        if gate {
            check!(
                got == want_on,
                "auto on {pool} with {profile}: {got}, expected {want_on}"
            );
        } else {
            check!(
                got != "native" && got != "affinity",
                "auto on {pool} with {profile}: {got} with the gate off"
            );
        }
        let (s_stored, s_plan) = (run.shape(&stored), run.shape(&plan));
        check!(
            s_stored == s_plan,
            "auto on {pool} with {profile}: stored differs from the engine's plan in {}:\nstored: {s_stored}\nplan:   {s_plan}",
            diff(&s_stored, &s_plan)
        );
        if got == "affinity" {
            check!(
                terms_require(&stored, "In", "true"),
                "auto {pool}: affinity terms"
            );
        }
        if got == "universal" {
            check!(
                terms_require(&stored, "NotIn", "rejected"),
                "auto {pool}: universal terms"
            );
            check!(
                native_copy(&stored).is_some_and(|n| n["startupProbe"].is_object() == gate),
                "auto {pool}: universal startup probe"
            );
        }
        let reason: Value = serde_json::from_str(
            stored["metadata"]["annotations"]["sidecar-kit.io/status"]
                .as_str()
                .unwrap_or("null"),
        )
        .unwrap_or(Value::Null);
        report.push(format!(
            "auto on pool {pool} ({profile}) -> {got} ({})",
            reason["injections"][0]["reason"].as_str().unwrap_or("")
        ));
    }
    // Lease goes stale when label-nodes stops: the affinity fallback turns legacy.
    drop(labeler.take());
    let stale_pod = run.pod("auto-stale", "auto", "e2e-affinity", "mixed");
    let want = run.shape(&run.plan(&stale_pod, false));
    let t = Instant::now();
    eventually(
        "auto on mixed nodes to fall back to legacy once the Lease is stale",
        Duration::from_secs(60),
        || Ok((run.shape(&k.create_dry_run(&stale_pod)?) == want).then_some(())),
    )
    .unwrap_or_else(|e| {
        check!(false, "{e}");
    });
    let stored = k.create(&stale_pod).unwrap();
    check!(
        injected_mode(&stored) == "legacy",
        "stale Lease: auto on mixed nodes injected as {}",
        injected_mode(&stored)
    );
    report.push(format!(
        "label-nodes stopped: auto on mixed (affinity fallback) -> legacy after {:.1}s{}",
        t.elapsed().as_secs_f64(),
        if gate {
            " (Lease stale)"
        } else {
            " (legacy anyway with the gate off)"
        }
    ));

    // 5. doctor webhooks finds the webhook that strips restartPolicy.
    let (code, out) = doctor(&bin, &kubeconfig, &["webhooks", "-n", &doctor_ns]);
    let text = out.to_string();
    if gate {
        check!(
            text.contains("strip.e2e.sidecar-kit.io"),
            "doctor webhooks does not name the stripper: {out:#}"
        );
        check!(
            code == 12,
            "doctor webhooks exit {code}, expected 12 (an error finding): {out:#}"
        );
        check!(
            stripper.calls.load(std::sync::atomic::Ordering::Relaxed) >= 1,
            "doctor webhooks: the stripper was never called"
        );
        check!(
            finding_ids(&out)
                .iter()
                .any(|i| i == "webhooks.restart-policy-stripped"),
            "doctor webhooks: no webhooks.restart-policy-stripped finding: {out:#}"
        );
        report.push(format!(
            "doctor webhooks: exit {code}, names strip.e2e.sidecar-kit.io, findings {:?}",
            finding_ids(&out)
        ));
    } else {
        check!(
            text.contains("webhooks.apiserver-drops-restart-policy"),
            "doctor webhooks does not blame the API server (gate off): {out:#}"
        );
        report.push(format!(
            "doctor webhooks (gate off): exit {code}, findings {:?}",
            finding_ids(&out)
        ));
    }

    // 6. doctor cluster reads the real /metrics.
    // (label-nodes is stopped: once its Lease has expired the doctor must call it stale.)
    let lease_arg = format!("{system_ns}/{LEASE}");
    let mut last = (0, Value::Null);
    let stale = eventually(
        "doctor cluster to see the Lease stale",
        Duration::from_secs(20),
        || {
            last = doctor(
                &bin,
                &kubeconfig,
                &["cluster", "--labeler-lease", &lease_arg],
            );
            Ok((last.1["data"]["labeler"]["leaseFresh"] == false).then_some(()))
        },
    );
    let (code, out) = last;
    check!(
        stale.is_ok(),
        "doctor cluster: the stopped labeler's Lease should turn stale: {}",
        out["data"]["labeler"]
    );
    check!(
        out["data"]["apiServer"]["from"] == "/metrics",
        "doctor cluster did not read /metrics: {out:#}"
    );
    check!(
        out["data"]["apiServer"]["sidecarContainers"] == if gate { "enabled" } else { "disabled" },
        "doctor cluster reads the gate wrong: {out:#}"
    );
    report.push(format!(
        "doctor cluster: exit {code}: {}; findings {:?}",
        out["summary"][0],
        finding_ids(&out)
    ));

    // 7. The gate-off fallbacks (checked above per mode) or one line saying why not.
    if gate {
        say(
            "e2e: gate-off scenario skipped: the API server's /metrics shows SidecarContainers on (rig.sh up --feature-gates=SidecarContainers=false runs it)",
        );
    } else {
        let summary = out["summary"].to_string();
        check!(
            out.to_string()
                .contains("cluster.apiserver-drops-restart-policy"),
            "doctor cluster has no cluster.apiserver-drops-restart-policy finding: {out:#}"
        );
        check!(
            summary.contains("disabled"),
            "doctor cluster does not say the gate is off: {summary}"
        );
        report.push("gate off: native and affinity -> legacy, universal without startup probe, no restartPolicy stored".into());
    }

    for line in &report {
        say(&format!("e2e: {line}"));
    }
    say(&format!(
        "e2e: {} in {:.1}s",
        if failures.is_empty() {
            "passed".to_string()
        } else {
            format!("{} failed checks", failures.len())
        },
        started.elapsed().as_secs_f64()
    ));
    drop(serve);
    drop(guard);
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        failures.is_empty(),
        "failed checks:\n{}",
        failures.join("\n\n")
    );
}
