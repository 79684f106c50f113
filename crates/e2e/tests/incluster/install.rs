//! The install as a user does it: a copy of `deploy/`, certificates from `sidecar-kit certs`,
//! the image set by an `images:` entry, `kubectl apply -k`; and its removal.

use super::{CLASS_LABEL, Ctx, LABELER, NS, POD_TIMEOUT, RUN_LABEL, WEBHOOK};
use serde_json::{Value, json};
use sidecar_kit_e2e::{Kubectl, eventually, say, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The profiles the scenario installs next to the shipped one (JSON is YAML).
pub const PROFILE: &str = "e2e";
pub const PROFILE_AFFINITY: &str = "e2e-affinity";
/// The env var whose value the profile rotation changes.
pub const REV_ENV: &str = "E2E_PROFILE_REV";

/// `image` split for kustomize's `images:` entry.
fn image_entry(image: &str) -> String {
    let last = image.rfind('/').map_or(0, |i| i + 1);
    if let Some(at) = image.find('@') {
        return format!(
            "- name: ghcr.io/sidecar-kit/sidecar-kit\n  newName: {}\n  digest: {}\n",
            &image[..at],
            &image[at + 1..]
        );
    }
    match image[last..].rfind(':') {
        Some(c) => format!(
            "- name: ghcr.io/sidecar-kit/sidecar-kit\n  newName: {}\n  newTag: {}\n",
            &image[..last + c],
            &image[last + c + 1..]
        ),
        None => format!("- name: ghcr.io/sidecar-kit/sidecar-kit\n  newName: {image}\n"),
    }
}

/// A scenario profile: one sidecar in the shell image that prints `SIDECAR_UP` and stays up;
/// the shim image is left to the server (SIDECAR_KIT_SHIM_IMAGE: the image under test).
pub fn profile(name: &str, mode: &str, fallback: &str, shell: &str, rev: u32) -> Value {
    json!({
        "apiVersion": "sidecar-kit.io/v1alpha1",
        "kind": "SidecarProfile",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"e2e-profile": name}},
            "mode": mode,
            "fallback": fallback,
            "priority": 100,
            "containers": [{
                "name": "shipper",
                "image": shell,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", format!("echo {}; {}", super::SIDECAR_UP, super::UNTIL_TERM)],
                "env": [{"name": REV_ENV, "value": rev.to_string()}],
                "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}}
            }]
        }
    })
}

/// The installed copy; removes everything on drop.
pub struct Install {
    k: Kubectl,
    id: String,
    /// The copy of `deploy/`.
    pub deploy: PathBuf,
    pub bin: PathBuf,
}

impl Install {
    pub fn overlay(&self) -> PathBuf {
        self.deploy.join("overlays/self-managed")
    }

    /// Writes the e2e profile with revision `rev` into the copy's profiles.
    pub fn write_profiles(&self, shell: &str, rev: u32) {
        for (name, fallback) in [(PROFILE, "legacy"), (PROFILE_AFFINITY, "affinity")] {
            std::fs::write(
                self.deploy.join(format!("base/profiles/{name}.yaml")),
                serde_json::to_string_pretty(&profile(name, "auto", fallback, shell, rev)).unwrap(),
            )
            .unwrap();
        }
    }

    /// `kubectl apply -k DIR`.
    pub fn apply_dir(&self, dir: &Path) -> Result<String, String> {
        self.k
            .run(&["apply", "-k", dir.to_str().unwrap_or_default()], None)
    }

    /// An overlay of the self-managed one with `components/fail-closed`, as deploy/README.md
    /// tells users to write it.
    pub fn fail_closed_overlay(&self) -> PathBuf {
        sidecar_kit_testkit::fail_closed_overlay(&self.deploy, "e2e-fail-closed", "self-managed")
    }

    /// Runs `sidecar-kit certs` into the overlay's tls/ (`force`: a rotation).
    pub fn certs(&self, force: bool) -> Result<(), String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "certs",
            "--service",
            WEBHOOK,
            "--namespace",
            NS,
            "--out-dir",
        ])
        .arg(self.overlay().join("tls"));
        if force {
            cmd.arg("--force");
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "sidecar-kit certs: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Copies `deploy/`, makes certificates and profiles, sets the image and applies the
    /// self-managed overlay; waits for both Deployments. None (with a failed check) when
    /// the install does not come up.
    pub fn apply(ctx: &mut Ctx) -> Option<Install> {
        for (kind, name) in [("namespace", NS), ("mutatingwebhookconfiguration", WEBHOOK)] {
            if ctx.k.get(kind, name, None).ok().flatten().is_some() {
                ctx.check(
                    false,
                    format!("{kind} {name} exists: sidecar-kit is already installed in this cluster; the scenario installs its own, so uninstall first (kubectl delete -k deploy/overlays/...)"),
                );
                return None;
            }
        }
        let deploy = ctx.work.join("deploy");
        sidecar_kit_testkit::copy_deploy_tree(&workspace_root().join("deploy"), &deploy);
        let inst = Install {
            k: ctx.k.clone(),
            id: ctx.id.clone(),
            deploy,
            bin: ctx.bin.clone(),
        };
        inst.certs(false).unwrap();
        inst.write_profiles(&ctx.shell, 1);
        // The generator lists its files: add the scenario's.
        let base = inst.deploy.join("base/kustomization.yaml");
        let text = std::fs::read_to_string(&base).unwrap();
        let text = text.replacen(
            "  - profiles/log-shipper.yaml\n",
            &format!(
                "  - profiles/log-shipper.yaml\n  - profiles/{PROFILE}.yaml\n  - profiles/{PROFILE_AFFINITY}.yaml\n"
            ),
            1,
        );
        std::fs::write(&base, text).unwrap();
        // What `kustomize edit set image` writes.
        let kust = inst.overlay().join("kustomization.yaml");
        let mut text = std::fs::read_to_string(&kust).unwrap();
        text.push_str(&format!("\nimages:\n{}", image_entry(&ctx.image)));
        std::fs::write(&kust, text).unwrap();

        if let Err(e) = inst.apply_dir(&inst.overlay()) {
            ctx.check(
                false,
                format!("kubectl apply -k overlays/self-managed: {e}"),
            );
            return Some(inst);
        }
        for d in [WEBHOOK, LABELER] {
            match wait_rollout(ctx, d) {
                Ok(()) => {
                    let dep = ctx.k.get("deployment", d, Some(NS)).ok().flatten();
                    let ready = dep
                        .as_ref()
                        .and_then(|d| d["status"]["readyReplicas"].as_i64())
                        .unwrap_or(0);
                    ctx.check(
                        ready == 2,
                        format!("deployment {d}: {ready} replicas Ready, expected 2"),
                    );
                }
                Err(e) => ctx.check(false, format!("deployment {d} did not become Ready: {e}")),
            }
        }
        let pods = webhook_pods(&ctx.k);
        let image_ok = pods.iter().all(|p| p.image == ctx.image);
        ctx.check(
            image_ok,
            format!(
                "webhook pods run {:?}, expected {}",
                pods.iter().map(|p| &p.image).collect::<Vec<_>>(),
                ctx.image
            ),
        );
        ctx.note(format!(
            "kubectl apply -k overlays/self-managed (image {}): {WEBHOOK} and {LABELER} 2/2 Ready, webhook pods on {:?}",
            ctx.image,
            pods.iter().map(|p| p.node.as_str()).collect::<Vec<_>>()
        ));
        Some(inst)
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        // First nothing intercepts pod creation any more, then the run's namespaces go,
        // then the install (waiting, so that the next run can install again), then the
        // labels label-nodes put on the nodes.
        self.k.cleanup(&[
            "delete",
            "mutatingwebhookconfiguration",
            WEBHOOK,
            "--ignore-not-found",
        ]);
        self.k.cleanup(&[
            "delete",
            "namespace",
            "-l",
            &format!("{RUN_LABEL}={}", self.id),
            "--wait=false",
        ]);
        let overlay = self.overlay();
        self.k.cleanup(&[
            "delete",
            "-k",
            overlay.to_str().unwrap_or_default(),
            "--ignore-not-found",
            "--timeout=180s",
        ]);
        self.k
            .cleanup(&["label", "nodes", "--all", &format!("{CLASS_LABEL}-")]);
    }
}

/// `kubectl rollout status` of a Deployment in the install's namespace.
pub fn wait_rollout(ctx: &Ctx, name: &str) -> Result<(), String> {
    ctx.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "-n",
        NS,
        &format!("--timeout={}s", POD_TIMEOUT.as_secs()),
    ])
    .map(|_| ())
}

/// Waits for the namespace's `default` ServiceAccount (made by the controller manager).
pub fn wait_service_account(ctx: &Ctx, ns: &str) {
    eventually(
        "the default ServiceAccount",
        Duration::from_secs(60),
        || {
            ctx.k
                .get("serviceaccount", "default", Some(ns))
                .map(|s| s.map(|_| ()))
        },
    )
    .unwrap();
}

/// A webhook replica.
#[derive(Debug, Clone)]
pub struct Replica {
    pub name: String,
    pub uid: String,
    pub ip: String,
    pub node: String,
    pub image: String,
    pub restarts: i64,
    pub ready: bool,
    pub terminating: bool,
    /// The pod-template-hash label: which ReplicaSet.
    pub hash: String,
}

/// The webhook's pods.
pub fn webhook_pods(k: &Kubectl) -> Vec<Replica> {
    let list: Value = k
        .run(
            &[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                "app.kubernetes.io/name=sidecar-kit,app.kubernetes.io/component=webhook",
                "-o",
                "json",
            ],
            None,
        )
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let cs = &p["status"]["containerStatuses"][0];
            Replica {
                name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
                uid: p["metadata"]["uid"].as_str().unwrap_or_default().into(),
                ip: p["status"]["podIP"].as_str().unwrap_or_default().into(),
                node: p["spec"]["nodeName"].as_str().unwrap_or_default().into(),
                image: p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                restarts: cs["restartCount"].as_i64().unwrap_or(0),
                ready: cs["ready"] == true,
                terminating: p["metadata"].get("deletionTimestamp").is_some(),
                hash: p["metadata"]["labels"]["pod-template-hash"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            }
        })
        .collect()
}

/// A pod of the scenario in the opted-in namespace: non-root, short grace period, pinned to
/// `node` when given.
pub fn pod(
    ctx: &Ctx,
    name: &str,
    profile: &str,
    mode: Option<&str>,
    node: Option<&str>,
    app: &str,
    restart: &str,
) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ctx.ns, "labels": {"e2e-profile": profile}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532},
            "containers": [{
                "name": "app",
                "image": ctx.shell,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", app],
                "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}}
            }]
        }
    });
    if let Some(m) = mode {
        p["metadata"]["annotations"] = json!({"sidecar-kit.io/mode": m});
    }
    if let Some(n) = node {
        p["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": n});
    }
    p
}

/// The mode recorded in a pod's status annotation (first injection), or "none".
pub fn injected_mode(pod: &Value) -> String {
    pod["metadata"]["annotations"]["sidecar-kit.io/status"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v["injections"][0]["mode"].as_str().map(str::to_string))
        .unwrap_or_else(|| "none".into())
}

/// Whether `pod` carries the profile's sidecar (as an init or a regular container).
pub fn has_sidecar(pod: &Value) -> bool {
    ["initContainers", "containers"].iter().any(|l| {
        pod["spec"][l]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["name"] == "shipper" || c["name"] == "shipper-legacy")
    })
}

/// The API server calls the webhook through its Service: the configuration names the
/// Service, and a pod created in the opted-in namespace comes back injected.
pub fn check_service_path(ctx: &mut Ctx) {
    let mwc = ctx
        .k
        .get("mutatingwebhookconfiguration", WEBHOOK, None)
        .ok()
        .flatten()
        .unwrap_or_default();
    let svc = &mwc["webhooks"][0]["clientConfig"]["service"];
    ctx.check(
        svc["name"] == WEBHOOK
            && svc["namespace"] == NS
            && mwc["webhooks"][0]["clientConfig"].get("url").is_none(),
        format!("the webhook is called through Service {NS}/{WEBHOOK}, not a URL: {svc}"),
    );
    let p = pod(
        ctx,
        "service-path",
        PROFILE,
        Some("legacy"),
        None,
        super::UNTIL_TERM,
        "Always",
    );
    let stored = ctx
        .k
        .run(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&p.to_string()),
        )
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .unwrap_or_default();
    ctx.check(
        has_sidecar(&stored),
        format!(
            "a pod created in {} through the API server is injected: {}",
            ctx.ns, stored["spec"]
        ),
    );
    let reviews = webhook_pods(&ctx.k)
        .iter()
        .filter_map(|r| {
            ctx.k
                .raw(&format!(
                    "/api/v1/namespaces/{NS}/pods/{}:8080/proxy/metrics",
                    r.name
                ))
                .ok()
        })
        .map(|m| sidecar_kit_e2e::reviews_total(&m))
        .sum::<f64>();
    ctx.check(
        reviews >= 1.0,
        format!("the replicas' metrics count {reviews} reviews after a pod creation"),
    );
    ctx.note(format!(
        "API server -> Service {NS}/{WEBHOOK}: a pod created in {} came back injected ({} by the replicas' metrics)",
        ctx.ns, reviews
    ));
}

/// label-nodes labels each node as its kubelet says; `doctor cluster` shows the gates from
/// the kubelets.
pub fn check_labels(ctx: &mut Ctx) {
    let want: Vec<(String, &'static str)> = ctx
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.class.label()))
        .collect();
    let k = ctx.k.clone();
    let got = eventually(
        "label-nodes to label every node",
        Duration::from_secs(120),
        || {
            let mut got = Vec::new();
            for (name, want) in &want {
                let n = k.get("node", name, None)?.unwrap_or_default();
                let v = n["metadata"]["labels"][CLASS_LABEL]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if v != *want {
                    return Ok(None);
                }
                got.push(format!("{name}={v}"));
            }
            Ok(Some(got))
        },
    );
    match got {
        Ok(got) => ctx.note(format!("label-nodes: {CLASS_LABEL} {}", got.join(", "))),
        Err(e) => {
            let now: Vec<String> = want
                .iter()
                .map(|(n, w)| {
                    let node = ctx
                        .k
                        .get("node", n, None)
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    format!(
                        "{n}: {} (expected {w})",
                        node["metadata"]["labels"][CLASS_LABEL]
                    )
                })
                .collect();
            ctx.check(false, format!("{e}: {}", now.join(", ")));
        }
    }
    match sidecar_kit_e2e::doctor(&ctx.bin, &ctx.kubeconfig, &["cluster"]) {
        Ok((_, report)) => {
            let rows = report["table"].as_array().cloned().unwrap_or_default();
            let header: Vec<&str> = rows
                .first()
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(|c| c.as_str()).collect())
                .unwrap_or_default();
            let col = |name: &str| header.iter().position(|h| *h == name);
            let (Some(nc), Some(fc)) = (col("NODE"), col("FROM")) else {
                ctx.check(
                    false,
                    format!("doctor cluster: no NODE/FROM columns in {header:?}"),
                );
                return;
            };
            let mut seen = Vec::new();
            for n in ctx.nodes.clone() {
                let row = rows.iter().find(|r| r[nc] == n.name.as_str());
                let from = row
                    .map(|r| r[fc].as_str().unwrap_or("").to_string())
                    .unwrap_or_default();
                let want = if n.from_metrics { "metrics" } else { "version" };
                ctx.check(
                    from == want,
                    format!(
                        "doctor cluster: node {} gate from {from:?}, expected {want:?}",
                        n.name
                    ),
                );
                seen.push(format!("{} from {from}", n.name));
            }
            ctx.note(format!("doctor cluster: gates {}", seen.join(", ")));
        }
        Err(e) => ctx.check(false, e),
    }
    // The webhook reads the labeler's Lease on its refresh period (10 s): until each
    // replica has seen it fresh, auto's affinity and universal fallbacks fall back to legacy
    // (and say so). Wait for what /readyz reports.
    let t0 = std::time::Instant::now();
    let k = ctx.k.clone();
    let seen = eventually(
        "every replica to see the labeler's Lease fresh",
        Duration::from_secs(60),
        || {
            let replicas = webhook_pods(&k);
            let all = !replicas.is_empty()
                && replicas.iter().all(|r| {
                    k.raw(&format!(
                        "/api/v1/namespaces/{NS}/pods/{}:8080/proxy/readyz",
                        r.name
                    ))
                    .is_ok_and(|b| b.contains("labeler lease fresh"))
                });
            Ok(all.then_some(()))
        },
    );
    match seen {
        Ok(()) => ctx.note(format!(
            "every replica's /readyz says \"labeler lease fresh\" {:.1} s after the labels were checked",
            t0.elapsed().as_secs_f64()
        )),
        Err(e) => ctx.check(false, e),
    }
    say("e2e: labels and doctor cluster checked");
}
