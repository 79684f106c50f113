//! The values that have no kustomize twin: where each lands, what the schema refuses, the
//! generated certificate, the profiles, and the README's values table.

use crate::render::{
    self, NS, Objects, changed, chart, ci, drop_certificate_data, env, helm_or_skip, key, unbase64,
};
use clap::CommandFactory;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn values(file: &std::path::Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn pod_spec<'a>(h: &'a Objects, name: &str) -> &'a Value {
    &h.get("Deployment", NS, name)["spec"]["template"]
}

#[test]
fn scheduling_values_land_where_they_belong() {
    let helm = helm_or_skip!("scheduling_values_land_where_they_belong");
    let v = values(&ci("scheduling"));
    let (mut base, mut h) = (
        helm.template(&[ci("default")], &[]),
        helm.template(&[ci("scheduling")], &[]),
    );
    drop_certificate_data(&mut base);
    drop_certificate_data(&mut h);
    let touched: BTreeSet<_> = [
        key("Deployment", NS, "sidecar-kit"),
        key("Deployment", NS, "sidecar-kit-label-nodes"),
        key("PodDisruptionBudget", NS, "sidecar-kit"),
        key("MutatingWebhookConfiguration", "", "sidecar-kit"),
    ]
    .into_iter()
    .collect();
    assert_eq!(changed(&base, &h), touched, "only these objects change");

    let t = pod_spec(&h, "sidecar-kit");
    assert_eq!(
        h.get("Deployment", NS, "sidecar-kit")["spec"]["replicas"],
        3
    );
    for (field, value) in [
        ("imagePullSecrets", &v["imagePullSecrets"]),
        ("priorityClassName", &v["priorityClassName"]),
        ("nodeSelector", &v["nodeSelector"]),
        ("tolerations", &v["tolerations"]),
        ("affinity", &v["affinity"]),
        ("topologySpreadConstraints", &v["topologySpreadConstraints"]),
    ] {
        assert_eq!(&t["spec"][field], value, "webhook pod {field}");
    }
    let c = &t["spec"]["containers"][0];
    assert_eq!(c["resources"], v["resources"]);
    let e = env(c);
    assert_eq!(e["SIDECAR_KIT_ALLOW_NAMESPACES"]["value"], "tools");
    assert_eq!(
        e.len(),
        env(base.webhook_container()).len() + 1,
        "extraEnv adds"
    );
    assert_pod_metadata(t, "sidecar-kit");

    let pdb = &h.get("PodDisruptionBudget", NS, "sidecar-kit")["spec"];
    assert_eq!(pdb["maxUnavailable"], 1);
    assert!(pdb.get("minAvailable").is_none(), "one of the two: {pdb}");

    let hook = &h.get("MutatingWebhookConfiguration", "", "sidecar-kit")["webhooks"][0];
    assert_eq!(hook["timeoutSeconds"], 3);
    assert_eq!(hook["objectSelector"], v["webhook"]["objectSelector"]);
    // Maps merge with the defaults (Helm's rule); the exclusion by name comes last, with the
    // release namespace added.
    assert_eq!(
        hook["namespaceSelector"],
        json!({
            "matchLabels": {"sidecar-kit.io/inject": "enabled", "example.com/sidecars": "on"},
            "matchExpressions": [
                {"key": "example.com/env", "operator": "NotIn", "values": ["sandbox"]},
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                 "values": ["kube-system", "kube-public", "kube-node-lease", "monitoring", NS]}
            ]
        })
    );

    assert_labeller_settings(&base, &h, &v["labelNodes"], &v["imagePullSecrets"]);
}

/// The labeller's values of ci/scheduling-values.yaml, in its pod.
fn assert_labeller_settings(base: &Objects, h: &Objects, lv: &Value, pull: &Value) {
    let l = pod_spec(h, "sidecar-kit-label-nodes");
    assert_eq!(
        h.get("Deployment", NS, "sidecar-kit-label-nodes")["spec"]["replicas"],
        1
    );
    for field in ["priorityClassName", "nodeSelector", "tolerations"] {
        assert_eq!(l["spec"][field], lv[field], "labeller pod {field}");
    }
    assert_eq!(&l["spec"]["imagePullSecrets"], pull);
    assert_eq!(
        l["spec"]["affinity"],
        pod_spec(base, "sidecar-kit-label-nodes")["spec"]["affinity"],
        "the labeller keeps its default affinity"
    );
    assert_eq!(
        env(&l["spec"]["containers"][0])["SIDECAR_KIT_RESYNC_INTERVAL"]["value"],
        "120"
    );
    assert_pod_metadata(l, "sidecar-kit-label-nodes");
}

/// podAnnotations and podLabels are added; the selector labels, the opt-out label and the
/// default-container annotation stay.
fn assert_pod_metadata(template: &Value, deployment: &str) {
    let m = &template["metadata"];
    assert_eq!(
        m["annotations"]["example.com/owner"], "platform",
        "{deployment}"
    );
    assert!(m["annotations"]["kubectl.kubernetes.io/default-container"].is_string());
    assert_eq!(m["labels"]["example.com/tier"], "infra", "{deployment}");
    assert_eq!(
        m["labels"]["sidecar-kit.io/inject"], "disabled",
        "{deployment}"
    );
    assert_eq!(m["labels"]["app.kubernetes.io/instance"], "sidecar-kit");
}

#[test]
fn another_release_and_namespace_name_everything_after_them() {
    let helm = helm_or_skip!("another_release_and_namespace_name_everything_after_them");
    let h = helm
        .try_template("sk", "tools", &[], &["webhook.excludedNamespaces=null"])
        .unwrap();
    let full = "sk-sidecar-kit";
    for (k, obj) in &h.0 {
        if k.0 == "CustomResourceDefinition" {
            continue;
        }
        assert!(k.2.starts_with(full), "{k:?} is named after the release");
        let scoped = !matches!(
            k.0.as_str(),
            "ClusterRole" | "ClusterRoleBinding" | "MutatingWebhookConfiguration"
        );
        assert_eq!(k.1, if scoped { "tools" } else { "" }, "{k:?}");
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"],
            "sk"
        );
    }
    let hook = &h.get("MutatingWebhookConfiguration", "", full)["webhooks"][0];
    assert_eq!(
        hook["clientConfig"]["service"],
        json!({"namespace": "tools", "name": full, "path": "/mutate", "port": 443})
    );
    // The release namespace stays excluded when the list is emptied.
    assert_eq!(
        hook["namespaceSelector"]["matchExpressions"],
        json!([{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["tools"]}])
    );
    for b in h
        .of_kind("ClusterRoleBinding")
        .into_iter()
        .chain(h.of_kind("RoleBinding"))
    {
        assert_eq!(b["subjects"][0]["namespace"], "tools");
    }
    // The Lease is the programs' default name, found in their own namespace.
    for role in [format!("{full}-webhook"), format!("{full}-label-nodes")] {
        let rules = &h.get("Role", "tools", &role)["rules"];
        assert!(
            rules
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["resourceNames"] == json!(["sidecar-kit-label-nodes"])),
            "{role}: {rules}"
        );
    }
}

// === the generated certificate ===

/// The generated Secret's three files, decoded, after checking that the webhook's caBundle
/// is the Secret's ca.crt.
fn generated_pair(h: &Objects, ns: &str, full: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let secret = h.get("Secret", ns, &format!("{full}-webhook-tls"));
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = &secret["data"];
    let bundle =
        &h.get("MutatingWebhookConfiguration", "", full)["webhooks"][0]["clientConfig"]["caBundle"];
    assert_eq!(bundle, &data["ca.crt"], "caBundle is the Secret's CA");
    let file =
        |f: &str| unbase64(data[f].as_str().unwrap_or_else(|| panic!("no {f}"))).expect("base64");
    (file("ca.crt"), file("tls.crt"), file("tls.key"))
}

/// Whether a client trusting `ca` accepts `cert` for `name`, as the API server checks it.
fn trusted(ca: &[u8], cert: &[u8], name: &str) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let end = CertificateDer::pem_slice_iter(cert)
        .next()
        .unwrap()
        .unwrap();
    verifier
        .verify_server_cert(
            &end,
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn generated_certificate_is_served_and_trusted_for_the_service_names() {
    let helm = helm_or_skip!("generated_certificate_is_served_and_trusted_for_the_service_names");
    for (release, ns, full) in [
        ("sidecar-kit", NS, "sidecar-kit"),
        ("sk", "tools", "sk-sidecar-kit"),
    ] {
        let h = helm.try_template(release, ns, &[], &[]).unwrap();
        let (ca, cert, key) = generated_pair(&h, ns, full);
        // The server loads the pair as it loads the mounted Secret.
        sidecar_kit_webhook::tls::server_config(&cert, &key, None)
            .unwrap_or_else(|e| panic!("the server refuses the generated pair: {e}"));
        for name in [
            format!("{full}.{ns}.svc"),
            format!("{full}.{ns}.svc.cluster.local"),
        ] {
            trusted(&ca, &cert, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(
            trusted(&ca, &cert, &format!("{full}.elsewhere.svc")).is_err(),
            "the certificate names its Service only"
        );
    }
    // Documented: `helm template` cannot read the Secret back, so each run makes a new one.
    let (a, b) = (helm.template(&[], &[]), helm.template(&[], &[]));
    assert_ne!(
        generated_pair(&a, NS, "sidecar-kit").0,
        generated_pair(&b, NS, "sidecar-kit").0
    );
}

// === profiles ===

#[test]
fn profiles_from_values_are_files_the_engine_accepts() {
    let helm = helm_or_skip!("profiles_from_values_are_files_the_engine_accepts");
    let v = values(&ci("profiles"));
    for (file, want) in [
        ("profiles", vec!["job-agent", "mesh-proxy"]),
        ("default", vec!["log-shipper"]),
    ] {
        let h = helm.template(&[ci(file)], &[]);
        let data = h.get("ConfigMap", NS, "sidecar-kit-profiles")["data"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let names: Vec<String> = want.iter().map(|n| format!("{n}.yaml")).collect();
        assert_eq!(data.keys().cloned().collect::<Vec<_>>(), names, "{file}");
        for (name, (fname, text)) in want.iter().zip(&data) {
            let doc: Value = serde_saphyr::from_str(text.as_str().unwrap()).unwrap();
            let p = sidecar_kit_core::profile::Profile::from_value(&doc, fname)
                .unwrap_or_else(|e| panic!("{fname}: the engine refuses it: {e:?}"));
            assert_eq!(p.name, *name);
            if file == "profiles" {
                assert_eq!(
                    doc["spec"], v["profiles"][name],
                    "{fname} holds the values' spec"
                );
            }
        }
    }
}

/// The schema's profile spec follows the CRD: the same fields, required ones and choices.
#[test]
fn the_schema_knows_every_profile_field_of_the_crd() {
    let schema = schema();
    let crd = values(&render::root().join("deploy/base/crd.yaml"));
    let crd_spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let ours = &schema["definitions"]["profileSpec"];
    let fields = |v: &Value| -> BTreeSet<String> {
        v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(fields(ours), fields(crd_spec));
    assert_eq!(ours["required"], crd_spec["required"]);
    for f in ["mode", "fallback", "jobCompletion"] {
        let mut choices = ours["properties"][f]["enum"].clone();
        choices.as_array_mut().unwrap().retain(|c| !c.is_null());
        assert_eq!(choices, crd_spec["properties"][f]["enum"], "{f}");
    }
    assert_eq!(
        fields(&ours["properties"]["appContainers"]),
        fields(&crd_spec["properties"]["appContainers"])
    );
}

// === the commands' flags ===

/// Every variable a container gets is the twin of a flag of the command it runs (or one of
/// the few read otherwise), and the command accepts the values: the flags parse.
#[test]
fn every_variable_is_a_flag_twin_of_its_command() {
    let helm = helm_or_skip!("every_variable_is_a_flag_twin_of_its_command");
    // Read by the allocator, and by label-nodes as the defaults of its identity and Lease
    // namespace: not flag twins (serve's --namespace has POD_NAMESPACE as its twin).
    let not_flags = ["MIMALLOC_PURGE_DELAY", "POD_NAME", "POD_NAMESPACE"];
    let cli = sidecar_kit::Cli::command();
    for file in ["default", "no-nodes-proxy", "scheduling", "fail-closed"] {
        let h = helm.template(&[ci(file)], &[]);
        for d in h.of_kind("Deployment") {
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            let sub_name = c["args"][0].as_str().unwrap();
            let sub = cli.find_subcommand(sub_name).unwrap();
            let twins: BTreeMap<String, String> = sub
                .get_arguments()
                .filter_map(|a| {
                    let env = a.get_env()?.to_string_lossy().into_owned();
                    Some((env, a.get_long()?.to_string()))
                })
                .collect();
            let mut argv = vec!["sidecar-kit".to_string(), sub_name.to_string()];
            for (name, e) in env(c) {
                let Some(flag) = twins.get(&name) else {
                    assert!(
                        not_flags.contains(&name.as_str()),
                        "{file}: {sub_name} has no flag with twin {name}"
                    );
                    continue;
                };
                if let Some(value) = e["value"].as_str() {
                    argv.extend([format!("--{flag}"), value.to_string()]);
                }
            }
            if let Err(e) = <sidecar_kit::Cli as clap::Parser>::try_parse_from(&argv) {
                panic!("{file}: {argv:?} is refused: {e}");
            }
        }
    }
}

// === bad values ===

#[test]
fn bad_values_are_refused_naming_the_key() {
    let helm = helm_or_skip!("bad_values_are_refused_naming_the_key");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["webhook.failurePolicy=Maybe"],
            &["webhook.failurePolicy", "Ignore", "Fail"],
        ),
        (
            &["certificates.source=vault"],
            &["certificates.source", "certManager"],
        ),
        (
            &["certificates.source=secret"],
            &["certificates.secret.name", "certificates.secret.caBundle"],
        ),
        (&["replicas=0"], &["replicas", "greater than or equal to 1"]),
        (&["replica=3"], &["replica is not allowed"]),
        (&["image.pullPolicy=Sometimes"], &["image.pullPolicy"]),
        (&["image.digest=latest"], &["image.digest"]),
        (
            &["labelNodes.nodesProxy=maybe"],
            &["labelNodes.nodesProxy", "boolean"],
        ),
        (
            &["serviceMonitor.interval=soon"],
            &["serviceMonitor.interval"],
        ),
        (&["webhook.timeoutSeconds=60"], &["webhook.timeoutSeconds"]),
        (
            &["podDisruptionBudget.minAvailable=half"],
            &["podDisruptionBudget.minAvailable"],
        ),
        (
            &["profiles.web.mode=sometimes"],
            &[
                "profiles.web",
                "containers is required",
                "profiles.web.mode",
            ],
        ),
        (
            &[
                "profiles.web.containers[0].name=a",
                "profiles.web.sidecars=1",
            ],
            &["profiles.web", "sidecars is not allowed"],
        ),
        (
            &["profiles.Web_1.containers[0].name=a"],
            &["profiles", "Web_1"],
        ),
    ];
    let mut wrong = Vec::new();
    for (sets, words) in cases {
        match helm.try_template("sidecar-kit", NS, &[], sets) {
            Ok(_) => wrong.push(format!("{sets:?} was accepted")),
            Err(e) => {
                let missing: Vec<_> = words.iter().filter(|w| !e.contains(**w)).collect();
                if !missing.is_empty() {
                    wrong.push(format!("{sets:?}: the error lacks {missing:?}:\n{e}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// === the README's values table ===

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
        .unwrap()
}

/// The values of values.yaml as the README lists them: dotted paths with their defaults,
/// descending into a map only where the schema lists its keys (`resources`, selectors,
/// `profiles` and the like are one value each). Every key must have a schema.
fn leaves(v: &Value, schema: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    match (v.as_object(), schema.get("properties")) {
        (Some(m), Some(props)) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let s = props
                    .get(k)
                    .unwrap_or_else(|| panic!("values.schema.json has no {p}"));
                leaves(x, s, &p, out);
            }
        }
        _ => {
            out.insert(path.to_string(), v.clone());
        }
    }
}

/// The README's values table: key → default cell.
fn readme_rows() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(chart().join("README.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(
                cells.len(),
                4,
                "a values row has key, type, default, description: {l}"
            );
            (cells[0].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn the_readme_values_table_matches_values_yaml() {
    let v = values(&chart().join("values.yaml"));
    let mut all = BTreeMap::new();
    leaves(&v, &schema(), "", &mut all);
    assert!(all.len() > 40, "values.yaml read: {all:?}");
    let rows = readme_rows();
    let mut wrong = Vec::new();
    for (path, value) in &all {
        match rows.get(path) {
            None => wrong.push(format!("values.yaml's {path} has no row")),
            // A default too long for the table is described in words.
            Some(cell) if !cell.starts_with('`') => {}
            Some(cell) => {
                let shown: Value = serde_saphyr::from_str(cell.trim_matches('`'))
                    .unwrap_or_else(|e| panic!("row {path}: default {cell} does not parse: {e}"));
                if shown != *value {
                    wrong.push(format!(
                        "row {path}: default {cell}, values.yaml has {value}"
                    ));
                }
            }
        }
    }
    for path in rows.keys().filter(|p| !all.contains_key(*p)) {
        wrong.push(format!("row {path} is not a key of values.yaml"));
    }
    assert!(
        wrong.is_empty(),
        "charts/sidecar-kit/README.md:\n{}",
        wrong.join("\n")
    );
}
