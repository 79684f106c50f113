//! The Helm chart `charts/sidecar-kit` against the kustomize install of `deploy/`.
//!
//! Each test renders the chart with `helm template` (release `sidecar-kit`, namespace
//! `sidecar-kit`, CRDs included) under a values file of `charts/sidecar-kit/ci/`, renders the
//! matching overlay with `kubectl kustomize`, and compares the parsed objects keyed by kind,
//! namespace and name. What is left out of a comparison is said where it is left out:
//! `render::normalise` (labels that name the tool, the CRD's labels), and
//! `render::drop_certificate_data` (a certificate only one side can know, checked on its own
//! by `generated_certificate_*`).
//!
//! helm: `SIDECAR_KIT_HELM`, else `helm` on `PATH`; without it every test that needs it
//! prints one line saying it skipped and passes. kubectl: `KUBECTL`, else `kubectl` on
//! `PATH` (required, as by the deploy tests). Neither contacts a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render;
mod settings;

use render::{
    Deploy, NS, Objects, assert_same, changed, ci, drop_certificate_data, env, helm_or_skip, key,
    normalise, unbase64,
};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The stand-in CA of ci/secret-values.yaml, decoded: tls/ca.crt of the kustomize side, so
/// that both sides carry the same caBundle.
fn secret_values_ca() -> String {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(ci("secret")).unwrap()).unwrap();
    let bundle = values["certificates"]["secret"]["caBundle"]
        .as_str()
        .unwrap();
    String::from_utf8(unbase64(bundle).expect("base64")).unwrap()
}

/// kustomize's render of an overlay without the Namespace of deploy/base: the chart leaves
/// the release namespace to `helm install --create-namespace` unless namespace.create is
/// set (Helm writes its release record into the namespace before creating any object, so
/// a chart cannot own it); `namespace_create_*` compares it.
fn overlay(deploy: &Deploy, rel: &str) -> Objects {
    let mut objs = deploy.build(rel);
    objs.remove("Namespace", "", NS);
    objs
}

#[test]
fn default_values_render_the_self_managed_overlay() {
    let helm = helm_or_skip!("default_values_render_the_self_managed_overlay");
    let mut h = helm.template(&[ci("default")], &[]);
    let mut k = overlay(&Deploy::new("stand-in CA\n"), "overlays/self-managed");
    normalise(&mut h, &mut k);
    // The generated certificate cannot equal the stand-in files.
    drop_certificate_data(&mut h);
    drop_certificate_data(&mut k);
    assert_same(&h, &k, "default values vs overlays/self-managed");
    let hook = &h.get("MutatingWebhookConfiguration", "", "sidecar-kit")["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(
        env(h.webhook_container())["SIDECAR_KIT_FAILURE_MODE"]["value"],
        "allow"
    );
}

#[test]
fn secret_source_renders_the_self_managed_overlay_but_its_secret() {
    let helm = helm_or_skip!("secret_source_renders_the_self_managed_overlay_but_its_secret");
    let mut h = helm.template(&[ci("secret")], &[]);
    let mut k = overlay(&Deploy::new(&secret_values_ca()), "overlays/self-managed");
    // The Secret is the user's with this source; kustomize makes it from the files.
    k.remove("Secret", NS, "sidecar-kit-webhook-tls");
    assert!(h.of_kind("Secret").is_empty(), "the chart makes no Secret");
    normalise(&mut h, &mut k);
    // Nothing else is left out: the caBundle is compared too.
    assert_same(
        &h,
        &k,
        "certificates.source=secret vs overlays/self-managed",
    );
}

#[test]
fn cert_manager_source_renders_the_cert_manager_overlay() {
    let helm = helm_or_skip!("cert_manager_source_renders_the_cert_manager_overlay");
    let mut h = helm.template(&[ci("cert-manager")], &[]);
    let mut k = overlay(&Deploy::new(""), "overlays/cert-manager");
    normalise(&mut h, &mut k);
    assert_same(
        &h,
        &k,
        "certificates.source=certManager vs overlays/cert-manager",
    );
    let mwc = h.get("MutatingWebhookConfiguration", "", "sidecar-kit");
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "sidecar-kit/sidecar-kit-webhook"
    );
    assert!(mwc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
}

#[test]
fn fail_policy_renders_the_fail_closed_component() {
    let helm = helm_or_skip!("fail_policy_renders_the_fail_closed_component");
    let mut h = helm.template(&[ci("fail-closed")], &[]);
    let deploy = Deploy::new("stand-in CA\n");
    let mut k = overlay(&deploy, &deploy.fail_closed("self-managed"));
    normalise(&mut h, &mut k);
    render::env_by_name(&mut h);
    render::env_by_name(&mut k);
    drop_certificate_data(&mut h);
    drop_certificate_data(&mut k);
    assert_same(&h, &k, "failurePolicy Fail vs components/fail-closed");
    // Both sides could be wrong alike: the pairing itself.
    let hook = &h.get("MutatingWebhookConfiguration", "", "sidecar-kit")["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(
        env(h.webhook_container())["SIDECAR_KIT_FAILURE_MODE"]["value"],
        "deny"
    );
}

#[test]
fn namespace_create_renders_the_namespace_of_the_base() {
    let helm = helm_or_skip!("namespace_create_renders_the_namespace_of_the_base");
    let mut h = helm.template(&[ci("namespace")], &[]);
    let mut k = Deploy::new("stand-in CA\n").build("overlays/self-managed");
    normalise(&mut h, &mut k);
    drop_certificate_data(&mut h);
    drop_certificate_data(&mut k);
    assert_same(&h, &k, "namespace.create=true vs overlays/self-managed");
    let default = helm.template(&[ci("default")], &[]);
    assert!(default.of_kind("Namespace").is_empty());
}

/// The default rendering and another, certificate data dropped from both (each run of
/// `helm template` generates a new one).
fn against_default(helm: &render::Helm, file: &str) -> (Objects, Objects) {
    let mut base = helm.template(&[ci("default")], &[]);
    let mut other = helm.template(&[ci(file)], &[]);
    drop_certificate_data(&mut base);
    drop_certificate_data(&mut other);
    (base, other)
}

#[test]
fn label_nodes_disabled_drops_exactly_the_label_nodes_objects() {
    let helm = helm_or_skip!("label_nodes_disabled_drops_exactly_the_label_nodes_objects");
    let (base, off) = against_default(&helm, "no-label-nodes");
    // What deploy/label-nodes holds: every object kustomize labels component label-nodes.
    let k = Deploy::new("").build("overlays/self-managed");
    let labeller: std::collections::BTreeSet<_> = k
        .0
        .iter()
        .filter(|(_, o)| o["metadata"]["labels"]["app.kubernetes.io/component"] == "label-nodes")
        .map(|(k, _)| k.clone())
        .collect();
    let name = "sidecar-kit-label-nodes";
    let expected = [
        key("ServiceAccount", NS, name),
        key("ClusterRole", "", name),
        key("ClusterRoleBinding", "", name),
        key("Role", NS, name),
        key("RoleBinding", NS, name),
        key("Deployment", NS, name),
    ];
    assert_eq!(labeller, expected.iter().cloned().collect());
    assert_eq!(changed(&base, &off), labeller, "dropped or changed");
    assert!(changed(&off, &base).is_empty(), "nothing else changes");
}

#[test]
fn nodes_proxy_false_drops_exactly_that_rule_and_turns_metrics_reads_off() {
    let helm =
        helm_or_skip!("nodes_proxy_false_drops_exactly_that_rule_and_turns_metrics_reads_off");
    let (base, off) = against_default(&helm, "no-nodes-proxy");
    let name = "sidecar-kit-label-nodes";
    let mut expected = std::collections::BTreeSet::new();
    expected.insert(key("ClusterRole", "", name));
    expected.insert(key("Deployment", NS, name));
    assert_eq!(changed(&base, &off), expected);
    assert_eq!(base.keys(), off.keys());

    let proxy_rule = json!({"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]});
    let mut rules = base.get("ClusterRole", "", name)["rules"].clone();
    let all = rules.as_array_mut().unwrap();
    let before = all.len();
    all.retain(|r| *r != proxy_rule);
    assert_eq!(all.len(), before - 1, "the default grants nodes/proxy once");
    assert_eq!(off.get("ClusterRole", "", name)["rules"], rules);

    // The labeller is told not to try, with the flag twin of --node-metrics (that it is one:
    // settings::every_variable_is_a_flag_twin_of_its_command); nothing else changes.
    let mut off_deploy = off.get("Deployment", NS, name).clone();
    let e = off_deploy
        .pointer_mut("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut)
        .unwrap();
    let i = e
        .iter()
        .position(|v| v["name"] == "SIDECAR_KIT_NODE_METRICS")
        .expect("SIDECAR_KIT_NODE_METRICS is set");
    assert_eq!(
        e.remove(i),
        json!({"name": "SIDECAR_KIT_NODE_METRICS", "value": "false"})
    );
    assert_eq!(&off_deploy, base.get("Deployment", NS, name));
}

#[test]
fn digest_renders_repository_at_digest_everywhere() {
    let helm = helm_or_skip!("digest_renders_repository_at_digest_everywhere");
    let h = helm.template(&[ci("digest")], &[]);
    let want = "registry.example.com/platform/sidecar-kit@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    images_are(&h, want);
    // A digest wins over a tag.
    let h = helm.template(&[ci("digest")], &["image.tag=v9.9.9"]);
    images_are(&h, want);
    // A tag alone, and the version label follows it.
    let h = helm.template(&[], &["image.tag=v9.9.9"]);
    images_are(&h, "ghcr.io/sidecar-kit/sidecar-kit:v9.9.9");
    let d = h.get("Deployment", NS, "sidecar-kit");
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/version"],
        "v9.9.9"
    );
}

/// The webhook's and the labeller's images, and the shim image, are all `want`.
fn images_are(h: &Objects, want: &str) {
    let c = h.webhook_container();
    assert_eq!(c["image"], want);
    assert_eq!(env(c)["SIDECAR_KIT_SHIM_IMAGE"]["value"], want);
    let l = &h.get("Deployment", NS, "sidecar-kit-label-nodes")["spec"]["template"]["spec"]["containers"]
        [0];
    assert_eq!(l["image"], want);
}

#[test]
fn service_monitor_scrapes_the_metrics_port_when_on() {
    let helm = helm_or_skip!("service_monitor_scrapes_the_metrics_port_when_on");
    let default = helm.template(&[ci("default")], &[]);
    assert!(
        default.of_kind("ServiceMonitor").is_empty(),
        "off by default"
    );
    let h = helm.template(&[ci("service-monitor")], &[]);
    let sm = h.get("ServiceMonitor", NS, "sidecar-kit");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"], json!([NS]));
    let svc = h.get("Service", NS, "sidecar-kit");
    let svc_labels = svc["metadata"]["labels"].as_object().unwrap();
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            svc_labels.get(k),
            Some(v),
            "the selector picks the Service ({k})"
        );
    }
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(
        (
            ep["port"].as_str(),
            ep["path"].as_str(),
            ep["interval"].as_str(),
            ep["scrapeTimeout"].as_str()
        ),
        (
            Some("http-metrics"),
            Some("/metrics"),
            Some("15s"),
            Some("5s")
        )
    );
    assert!(
        svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "http-metrics" && p["port"] == 8080),
        "the Service has the port the ServiceMonitor names"
    );
}

#[test]
fn helm_lint_passes_with_each_ci_values_file() {
    let helm = helm_or_skip!("helm_lint_passes_with_each_ci_values_file");
    let mut files: Vec<PathBuf> = std::fs::read_dir(render::chart().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the ci values files: {files:?}");
    let failed: Vec<String> = files
        .iter()
        .filter_map(|f| helm.lint(f).err().map(|e| format!("{}:\n{e}", f.display())))
        .collect();
    assert!(
        failed.is_empty(),
        "helm lint --strict failed:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_chart_crd_is_the_generated_crd() {
    // crds/ is installed as it is; the file in deploy/base is checked against `sidecar-kit
    // crd` by the deploy tests.
    let chart = std::fs::read_to_string(render::chart().join("crds/sidecarprofiles.yaml")).unwrap();
    let base = std::fs::read_to_string(render::root().join("deploy/base/crd.yaml")).unwrap();
    assert!(
        chart == base,
        "charts/sidecar-kit/crds/sidecarprofiles.yaml differs from deploy/base/crd.yaml: copy it (cp deploy/base/crd.yaml charts/sidecar-kit/crds/sidecarprofiles.yaml)"
    );
}
