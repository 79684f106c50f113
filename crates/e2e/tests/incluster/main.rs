//! The in-cluster scenario: sidecar-kit installed as users install it, on a real cluster.
//!
//! Runs when `SIDECAR_KIT_E2E_KUBECONFIG` names a kubeconfig and `SIDECAR_KIT_E2E_IMAGE` names
//! the release image, already present on every node (or pullable by them); otherwise it
//! passes after one line saying why it skipped. Works on any conformant cluster (kind, k3d,
//! minikube, the project's loopback tools); the checks that need a node class the cluster
//! does not have (capable, rejecting: 1.28 with the gate off, unaware: older than 1.28) are
//! skipped with a line each.
//!
//! 1. `kubectl apply -k` of a copy of `deploy/overlays/self-managed`, with certificates from
//!    `sidecar-kit certs` and the image set by an `images:` entry: both webhook replicas and
//!    both label-nodes replicas Ready; the API server calls the webhook through its Service.
//! 2. label-nodes labels each node by its kubelet (metrics through `nodes/proxy`);
//!    `doctor cluster` shows each gate from the kubelet.
//! 3. Pods per node class, Jobs, `doctor pods`, Events (`pools.rs`).
//! 4. Rotation of the serving certificate and the profiles through the kubelet's volume
//!    updates, timed per replica (`rotation.rs`).
//! 5. A rolling restart of the webhook during a burst of pod creations, with failurePolicy
//!    Ignore and with `components/fail-closed` (`burst.rs`).
//! 6. Once that install is removed: the Helm chart `charts/sidecar-kit`, installed with
//!    `helm install` into a namespace of its own (image under test, generated certificate),
//!    an injection through its Service, `helm upgrade` keeping the certificate, and `helm
//!    uninstall` leaving nothing of the release (`helm.rs`; skipped without helm).
//!
//! Everything it creates is deleted afterwards, also after a failure; every failed check is
//! listed at the end.
//!
//! Variables: `SIDECAR_KIT_E2E_SHELL_IMAGE` (a busybox-like image for apps and sidecars,
//! default `busybox:1.36`), `SIDECAR_KIT_E2E_BURST` (pods per burst, default 3000),
//! `SIDECAR_KIT_E2E_BIN` (the host's `sidecar-kit` for `certs` and `doctor`),
//! `SIDECAR_KIT_HELM` (helm for step 6; else `helm` on `PATH`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod burst;
mod helm;
mod install;
mod pools;
mod rotation;

use serde_json::{Value, json};
use sidecar_kit_e2e::{Kubectl, eventually, run_id, say, sidecar_kit_bin};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Label on everything the run creates outside the install (namespaces).
pub const RUN_LABEL: &str = "sidecar-kit.io/e2e-run";
/// The node label label-nodes maintains.
pub const CLASS_LABEL: &str = "sidecar-kit.io/native-sidecars";
/// The install's namespace, Deployments and webhook configuration.
pub const NS: &str = "sidecar-kit";
pub const WEBHOOK: &str = "sidecar-kit";
pub const LABELER: &str = "sidecar-kit-label-nodes";
/// The TLS server name of the webhook's Service.
pub const SERVER_NAME: &str = "sidecar-kit.sidecar-kit.svc";
/// What the sidecar prints when it starts: the proof of which copy ran it.
pub const SIDECAR_UP: &str = "e2e-sidecar-up";
/// Runs until SIGTERM, then exits 0 at once.
pub const UNTIL_TERM: &str = "trap 'exit 0' TERM; sleep 3600 & wait";
/// Generous bound for one pod or rollout on a real node.
pub const POD_TIMEOUT: Duration = Duration::from_secs(180);

/// A node's class by its kubelet, told by the suite itself (not by label-nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Runs native sidecars.
    Capable,
    /// Knows `restartPolicy` with the gate off: refuses native sidecars.
    Rejecting,
    /// Older than 1.28: runs a native sidecar as a plain init container.
    Unaware,
}

impl Class {
    /// The value label-nodes should give the node.
    pub fn label(self) -> &'static str {
        match self {
            Class::Capable => "true",
            Class::Rejecting => "rejected",
            Class::Unaware => "false",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub version: String,
    pub class: Class,
    /// Whether the gate came from the kubelet's metrics (else from its version).
    pub from_metrics: bool,
}

/// One run.
pub struct Ctx {
    pub k: Kubectl,
    pub kubeconfig: PathBuf,
    /// The host's `sidecar-kit` (certs, doctor).
    pub bin: PathBuf,
    pub image: String,
    pub shell: String,
    pub id: String,
    pub work: PathBuf,
    /// The opted-in namespace of the pods.
    pub ns: String,
    pub nodes: Vec<Node>,
    pub failures: Vec<String>,
    pub report: Vec<String>,
}

impl Ctx {
    /// Records a check; a failed one is said at once and listed at the end.
    pub fn check(&mut self, ok: bool, msg: impl Into<String>) {
        let msg = msg.into();
        if !ok {
            say(&format!(
                "e2e: FAILED CHECK: {}",
                msg.lines().next().unwrap_or_default()
            ));
            self.failures.push(msg);
        }
    }

    /// A line of the final report (also said at once).
    pub fn note(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        say(&format!("e2e: {msg}"));
        self.report.push(msg);
    }

    /// The first node of a class, or None with a line saying what is skipped.
    pub fn node(&self, class: Class, skipping: &str) -> Option<String> {
        let n = self.nodes.iter().find(|n| n.class == class);
        if n.is_none() {
            say(&format!(
                "e2e: no {class:?} node in this cluster: skipping {skipping}"
            ));
        }
        n.map(|n| n.name.clone())
    }

    /// `kubectl` with `args`, Ok(stdout).
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        self.k.run(args, None)
    }

    pub fn get_json(&self, args: &[&str]) -> Result<Value, String> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.k.run(&a, None)?;
        serde_json::from_str(&out).map_err(|e| format!("kubectl {}: {e}", args.join(" ")))
    }
}

/// The minor version of `v1.28.3`.
pub fn minor(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// The nodes that are Ready, each classed from its version and, through `nodes/proxy`, its
/// kubelet's `kubernetes_feature_enabled` metric.
fn classify(k: &Kubectl) -> Result<Vec<Node>, String> {
    let list: Value = serde_json::from_str(&k.run(&["get", "nodes", "-o", "json"], None)?)
        .map_err(|e| e.to_string())?;
    let mut nodes = Vec::new();
    for n in list["items"].as_array().cloned().unwrap_or_default() {
        let ready = n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if !ready || n["spec"]["unschedulable"] == true {
            continue;
        }
        let name = n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let version = n["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let gate = k
            .raw(&format!("/api/v1/nodes/{name}/proxy/metrics"))
            .ok()
            .and_then(|m| sidecar_kit_e2e::sidecar_gate(&m));
        let m = minor(&version).unwrap_or(0);
        let class = match gate {
            _ if m < 28 => Class::Unaware,
            Some(false) => Class::Rejecting,
            Some(true) => Class::Capable,
            // No metric line: GA (locked on) from 1.33; before, the default (on from 1.29).
            None if m >= 29 => Class::Capable,
            None => Class::Rejecting,
        };
        nodes.push(Node {
            name,
            version,
            class,
            from_metrics: gate.is_some(),
        });
    }
    Ok(nodes)
}

#[test]
fn in_cluster() {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    let (Some(kubeconfig), Some(image)) = (
        var("SIDECAR_KIT_E2E_KUBECONFIG"),
        var("SIDECAR_KIT_E2E_IMAGE"),
    ) else {
        say(
            "in-cluster e2e skipped: set SIDECAR_KIT_E2E_KUBECONFIG and SIDECAR_KIT_E2E_IMAGE (the release image, present on the nodes) to run it",
        );
        return;
    };
    let started = Instant::now();
    let kubeconfig = PathBuf::from(kubeconfig);
    let k = Kubectl::new(kubeconfig.clone());
    let burst: usize = var("SIDECAR_KIT_E2E_BURST")
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("SIDECAR_KIT_E2E_BURST={v}: give a number of pods"))
        })
        .unwrap_or(3000);
    let rate: f64 = var("SIDECAR_KIT_E2E_BURST_RATE")
        .map(|v| {
            v.parse()
                .ok()
                .filter(|r: &f64| *r > 0.0)
                .unwrap_or_else(|| panic!("SIDECAR_KIT_E2E_BURST_RATE={v}: give pods per second"))
        })
        .unwrap_or(100.0);
    let id = run_id();
    let work = std::env::temp_dir().join(format!("sk-incluster-{id}"));
    std::fs::create_dir_all(&work).unwrap();
    let nodes = eventually("Ready nodes", Duration::from_secs(60), || {
        classify(&k).map(|n| (!n.is_empty()).then_some(n))
    })
    .unwrap();
    let mut ctx = Ctx {
        k: k.clone(),
        kubeconfig,
        bin: sidecar_kit_bin().unwrap(),
        image,
        shell: var("SIDECAR_KIT_E2E_SHELL_IMAGE").unwrap_or_else(|| "busybox:1.36".into()),
        ns: format!("sk-e2e-{id}-apps"),
        id,
        work,
        nodes,
        failures: Vec::new(),
        report: Vec::new(),
    };
    let classes: Vec<String> = ctx
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{} {} {:?} (gate from {})",
                n.name,
                n.version,
                n.class,
                if n.from_metrics {
                    "kubelet metrics"
                } else {
                    "version"
                }
            )
        })
        .collect();
    ctx.note(format!(
        "in-cluster run {} with image {}: nodes {}",
        ctx.id,
        ctx.image,
        classes.join(", ")
    ));

    // Deleted on drop, in order: webhook configuration, the run's namespaces, the install,
    // the node labels.
    let installed = install::Install::apply(&mut ctx);
    if let Some(inst) = &installed {
        k.create(&json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ctx.ns, "labels": {RUN_LABEL: ctx.id, "sidecar-kit.io/inject": "enabled"}}
        }))
        .unwrap();
        install::wait_service_account(&ctx, &ctx.ns.clone());
        install::check_service_path(&mut ctx);
        install::check_labels(&mut ctx);
        pools::run(&mut ctx);
        rotation::run(&mut ctx, inst);
        burst::run(&mut ctx, inst, burst, rate);
    }
    drop(installed);
    // The chart installs the same cluster-wide objects: only after the kustomize install
    // is gone.
    helm::run(&mut ctx);

    let secs = started.elapsed().as_secs_f64();
    say(&format!("e2e: in-cluster report ({secs:.1} s):"));
    for line in &ctx.report {
        say(&format!("  {line}"));
    }
    if ctx.failures.is_empty() {
        say(&format!("e2e: in-cluster passed in {secs:.1}s"));
    } else {
        say(&format!("e2e: {} failed check(s):", ctx.failures.len()));
        for f in &ctx.failures {
            say(&format!("  - {f}"));
        }
        panic!("{} in-cluster check(s) failed", ctx.failures.len());
    }
}
