//! The Helm chart as a user installs it, once the kustomize install is gone (the webhook
//! configuration, the ClusterRoles and the CRD are cluster-wide, so both cannot run at once):
//! `helm install` of `charts/sidecar-kit` into a namespace of its own with the image under
//! test and `certificates.source=generate`; both Deployments Ready; a pod created in an
//! opted-in namespace comes back injected through the chart's Service; `helm upgrade` keeps
//! the generated certificate; `helm uninstall` leaves nothing of the release behind (the CRD
//! stays, as Helm keeps `crds/`: the scenario deletes it).
//!
//! helm: `SIDECAR_KIT_HELM`, else `helm` on `PATH`; without it the scenario says so in one
//! line and is skipped.

use super::install::{PROFILE, has_sidecar, pod, profile, wait_service_account};
use super::{CLASS_LABEL, Ctx, POD_TIMEOUT, RUN_LABEL, UNTIL_TERM, WEBHOOK};
use serde_json::{Value, json};
use sidecar_kit_e2e::{Kubectl, eventually, say, workspace_root};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The release: named as the chart's README says, so that its objects are named as
/// deploy/'s.
const RELEASE: &str = "sidecar-kit";
const LABELER: &str = "sidecar-kit-label-nodes";
const TLS_SECRET: &str = "sidecar-kit-webhook-tls";
const CRD: &str = "sidecarprofiles.sidecar-kit.io";

/// The installed release; uninstalls it and removes what the scenario made on drop.
struct Release {
    k: Kubectl,
    helm: PathBuf,
    home: PathBuf,
    id: String,
    /// The release namespace.
    ns: String,
}

impl Release {
    /// `helm ARGS --kubeconfig K`, with its own configuration and cache directories.
    fn helm(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(&self.helm);
        cmd.args(args).arg("--kubeconfig").arg(&self.k.kubeconfig);
        for (var, dir) in [
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_DATA_HOME", "data"),
        ] {
            cmd.env(var, self.home.join(dir));
        }
        cmd.env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT");
        let out = cmd
            .output()
            .map_err(|e| format!("{}: {e}", self.helm.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "helm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The data of the generated Secret and the webhook's caBundle.
    fn certificate(&self) -> (Value, Value) {
        let secret = self
            .k
            .get("secret", TLS_SECRET, Some(&self.ns))
            .ok()
            .flatten()
            .unwrap_or_default();
        let mwc = self
            .k
            .get("mutatingwebhookconfiguration", WEBHOOK, None)
            .ok()
            .flatten()
            .unwrap_or_default();
        (
            secret["data"].clone(),
            mwc["webhooks"][0]["clientConfig"]["caBundle"].clone(),
        )
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        self.k.cleanup(&[
            "delete",
            "mutatingwebhookconfiguration",
            WEBHOOK,
            "--ignore-not-found",
        ]);
        if let Err(e) = self.helm(&[
            "uninstall",
            RELEASE,
            "--namespace",
            &self.ns,
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "3m",
        ]) {
            eprintln!("e2e cleanup: {e}");
        }
        self.k.cleanup(&[
            "delete",
            "namespace",
            "-l",
            &format!("{RUN_LABEL}={}", self.id),
            "--wait=false",
        ]);
        self.k
            .cleanup(&["delete", "crd", CRD, "--ignore-not-found"]);
        self.k
            .cleanup(&["label", "nodes", "--all", &format!("{CLASS_LABEL}-")]);
    }
}

/// `image` as the chart's values: repository and tag, or repository and digest.
fn image_sets(image: &str) -> Vec<String> {
    let last = image.rfind('/').map_or(0, |i| i + 1);
    if let Some(at) = image.find('@') {
        return vec![
            format!("image.repository={}", &image[..at]),
            format!("image.digest={}", &image[at + 1..]),
        ];
    }
    match image[last..].rfind(':') {
        Some(c) => vec![
            format!("image.repository={}", &image[..last + c]),
            format!("image.tag={}", &image[last + c + 1..]),
        ],
        None => vec![format!("image.repository={image}")],
    }
}

pub fn run(ctx: &mut Ctx) {
    let Some(helm) = sidecar_kit_testkit::helm_bin() else {
        say(
            "e2e: Helm chart scenario skipped: no helm (set SIDECAR_KIT_HELM to its path or put helm on PATH)",
        );
        return;
    };
    if ctx
        .k
        .get("mutatingwebhookconfiguration", WEBHOOK, None)
        .ok()
        .flatten()
        .is_some()
    {
        ctx.check(
            false,
            "helm: mutatingwebhookconfiguration sidecar-kit still exists after the kustomize install was removed",
        );
        return;
    }
    let rel = Release {
        k: ctx.k.clone(),
        helm,
        home: ctx.work.join("helm-home"),
        id: ctx.id.clone(),
        ns: format!("sk-e2e-{}-helm", ctx.id),
    };
    if !install(ctx, &rel) {
        return;
    }
    check_injection(ctx, &rel);
    check_upgrade_keeps_certificate(ctx, &rel);
    check_uninstall(ctx, &rel);
}

/// The release namespace as the chart's README makes it, then `helm install --wait`; checks
/// both Deployments and their image.
fn install(ctx: &mut Ctx, rel: &Release) -> bool {
    let made = ctx.k.create(&json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": rel.ns, "labels": {
            RUN_LABEL: ctx.id, "sidecar-kit.io/inject": "disabled",
            "pod-security.kubernetes.io/enforce": "restricted"
        }}
    }));
    if let Err(e) = made {
        ctx.check(false, format!("helm: namespace {}: {e}", rel.ns));
        return false;
    }
    let values = ctx.work.join("helm-values.json");
    let spec = profile(PROFILE, "auto", "legacy", &ctx.shell, 1)["spec"].clone();
    std::fs::write(&values, json!({"profiles": {PROFILE: spec}}).to_string()).unwrap();
    let chart = workspace_root().join("charts/sidecar-kit");
    let mut args: Vec<String> = vec![
        "install".into(),
        RELEASE.into(),
        chart.to_string_lossy().into_owned(),
        "--namespace".into(),
        rel.ns.clone(),
        "--values".into(),
        values.to_string_lossy().into_owned(),
        "--set".into(),
        "certificates.source=generate".into(),
        "--wait".into(),
        "--timeout".into(),
        format!("{}s", POD_TIMEOUT.as_secs()),
    ];
    for s in image_sets(&ctx.image) {
        args.extend(["--set-string".into(), s]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Err(e) = rel.helm(&args) {
        ctx.check(false, format!("helm install: {e}"));
        return false;
    }
    for d in [RELEASE, LABELER] {
        let dep = ctx
            .k
            .get("deployment", d, Some(&rel.ns))
            .ok()
            .flatten()
            .unwrap_or_default();
        let ready = dep["status"]["readyReplicas"].as_i64().unwrap_or(0);
        ctx.check(
            ready == 2,
            format!("helm: deployment {d}: {ready} of 2 replicas Ready"),
        );
        let image = &dep["spec"]["template"]["spec"]["containers"][0]["image"];
        ctx.check(
            image == ctx.image.as_str(),
            format!("helm: deployment {d} runs {image}, expected {}", ctx.image),
        );
    }
    let (data, bundle) = rel.certificate();
    ctx.check(
        !bundle.is_null() && bundle == data["ca.crt"],
        "helm: the webhook's caBundle is the generated Secret's ca.crt",
    );
    ctx.note(format!(
        "helm install {RELEASE} charts/sidecar-kit -n {} (image {}, certificates generated): both Deployments Ready",
        rel.ns, ctx.image
    ));
    true
}

/// A pod created through the API server in an opted-in namespace comes back injected; the
/// webhook configuration names the chart's Service.
fn check_injection(ctx: &mut Ctx, rel: &Release) {
    let apps = format!("{}-apps", rel.ns);
    let made = ctx.k.create(&json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": apps, "labels": {RUN_LABEL: ctx.id, "sidecar-kit.io/inject": "enabled"}}
    }));
    if let Err(e) = made {
        ctx.check(false, format!("helm: namespace {apps}: {e}"));
        return;
    }
    wait_service_account(ctx, &apps);
    let mwc = ctx
        .k
        .get("mutatingwebhookconfiguration", WEBHOOK, None)
        .ok()
        .flatten()
        .unwrap_or_default();
    let svc = &mwc["webhooks"][0]["clientConfig"]["service"];
    ctx.check(
        svc["name"] == RELEASE && svc["namespace"] == rel.ns.as_str(),
        format!(
            "helm: the webhook is called through Service {}/{RELEASE}: {svc}",
            rel.ns
        ),
    );
    let mut p = pod(
        ctx,
        "helm-service-path",
        PROFILE,
        Some("legacy"),
        None,
        UNTIL_TERM,
        "Always",
    );
    p["metadata"]["namespace"] = json!(apps);
    // The replicas may still be loading the profiles right after the rollout: retry briefly.
    let k = ctx.k.clone();
    let stored = eventually(
        "an injected pod from the chart's webhook",
        Duration::from_secs(60),
        || {
            let s = k.create_dry_run(&p)?;
            Ok(has_sidecar(&s).then_some(s))
        },
    );
    match stored {
        Ok(_) => ctx.note(format!(
            "helm: a pod created in {apps} came back injected through Service {}/{RELEASE}",
            rel.ns
        )),
        Err(e) => ctx.check(
            false,
            format!("helm: a pod created in {apps} is injected: {e}"),
        ),
    }
}

/// `helm upgrade --reuse-values` reads the generated Secret back: certificate, key and CA
/// bundle stay as they were.
fn check_upgrade_keeps_certificate(ctx: &mut Ctx, rel: &Release) {
    let before = rel.certificate();
    let chart = workspace_root().join("charts/sidecar-kit");
    let upgraded = rel.helm(&[
        "upgrade",
        RELEASE,
        chart.to_str().unwrap_or_default(),
        "--namespace",
        &rel.ns,
        "--reuse-values",
        "--wait",
        "--timeout",
        "3m",
    ]);
    match upgraded {
        Ok(_) => {
            let after = rel.certificate();
            ctx.check(
                before == after && !before.0.is_null(),
                "helm upgrade keeps the generated certificate and the caBundle",
            );
            ctx.note(
                "helm upgrade --reuse-values: the generated certificate and caBundle are unchanged",
            );
        }
        Err(e) => ctx.check(false, format!("helm upgrade: {e}")),
    }
}

/// `helm uninstall --wait` leaves no object of the release, in its namespace or cluster-wide.
/// The CRD stays (Helm keeps `crds/` by design), and so does the Lease that label-nodes
/// itself created in the namespace: both are reported.
fn check_uninstall(ctx: &mut Ctx, rel: &Release) {
    let uninstalled = rel.helm(&[
        "uninstall",
        RELEASE,
        "--namespace",
        &rel.ns,
        "--wait",
        "--timeout",
        "3m",
    ]);
    if let Err(e) = uninstalled {
        ctx.check(false, format!("helm uninstall: {e}"));
        return;
    }
    let k = ctx.k.clone();
    let mut seen = String::new();
    let gone = eventually(
        "the release's objects to go",
        Duration::from_secs(120),
        || {
            seen = release_objects(&k, &rel.ns)?;
            Ok(seen.trim().is_empty().then_some(()))
        },
    );
    match gone {
        Ok(()) => {
            let crd = ctx.k.get("crd", CRD, None).ok().flatten().is_some();
            let lease = ctx
                .k
                .get("lease", LABELER, Some(&rel.ns))
                .ok()
                .flatten()
                .is_some();
            ctx.note(format!(
                "helm uninstall: nothing of the release is left (CRD {CRD} {}, as Helm keeps crds/; label-nodes' own Lease {})",
                if crd { "kept" } else { "gone" },
                if lease { "kept until the namespace goes" } else { "gone" }
            ));
        }
        Err(e) => ctx.check(
            false,
            format!("helm uninstall left objects behind: {e}:\n{seen}"),
        ),
    }
    say("e2e: Helm chart scenario done");
}

/// The objects of the release still present: labelled with its instance (in its namespace
/// and cluster-wide), and Helm's release records; one name a line.
fn release_objects(k: &Kubectl, ns: &str) -> Result<String, String> {
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let namespaced = "deployments,replicasets,pods,services,endpointslices,configmaps,secrets,\
                      serviceaccounts,roles,rolebindings,poddisruptionbudgets";
    let mut left = k.run(
        &["get", namespaced, "-n", ns, "-l", &selector, "-o", "name"],
        None,
    )?;
    left.push_str(&k.run(
        &["get", "secrets", "-n", ns, "-l", "owner=helm", "-o", "name"],
        None,
    )?);
    left.push_str(&k.run(
        &[
            "get",
            "clusterroles,clusterrolebindings,mutatingwebhookconfigurations",
            "-l",
            &selector,
            "-o",
            "name",
        ],
        None,
    )?);
    Ok(left)
}
