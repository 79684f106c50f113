//! Rendering both ways (`helm template`, `kubectl kustomize`), and comparing the objects.

use serde_json::{Map, Value};
use sidecar_kit_testkit::TempDir;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The release name and namespace of the comparisons: the names deploy/ uses.
pub const RELEASE: &str = "sidecar-kit";
pub const NS: &str = "sidecar-kit";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn chart() -> PathBuf {
    root().join("charts/sidecar-kit")
}

/// `charts/sidecar-kit/ci/NAME-values.yaml`.
pub fn ci(name: &str) -> PathBuf {
    let p = chart().join("ci").join(format!("{name}-values.yaml"));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

pub use sidecar_kit_testkit::unbase64;

/// Removes the variables that could point a tool away from loopback or at a real cluster,
/// helm's own included.
fn isolate(cmd: &mut Command) {
    sidecar_kit_testkit::isolate(cmd);
    for var in ["HELM_KUBECONTEXT", "HELM_NAMESPACE"] {
        cmd.env_remove(var);
    }
}

// === helm ===

/// helm with its own empty configuration, cache and data directories.
pub struct Helm {
    bin: PathBuf,
    home: TempDir,
}

/// Skips the calling test, with one line saying why, when there is no helm.
macro_rules! helm_or_skip {
    ($test:literal) => {
        match render::Helm::find() {
            Some(h) => h,
            None => {
                eprintln!(
                    "{}: skipped: no helm (set SIDECAR_KIT_HELM to its path or put helm on PATH)",
                    $test
                );
                return;
            }
        }
    };
}
pub(crate) use helm_or_skip;

impl Helm {
    pub fn find() -> Option<Helm> {
        sidecar_kit_testkit::helm_bin().map(|bin| Helm {
            bin,
            home: TempDir::new("helm-home"),
        })
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        isolate(&mut cmd);
        for (var, dir) in [
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_DATA_HOME", "data"),
        ] {
            cmd.env(var, self.home.path().join(dir));
        }
        cmd
    }

    /// `helm template RELEASE charts/sidecar-kit --namespace NS --include-crds` with values
    /// files and `--set`s: Ok(objects), or Err(stderr) when helm refuses.
    pub fn try_template(
        &self,
        release: &str,
        ns: &str,
        files: &[PathBuf],
        sets: &[&str],
    ) -> Result<Objects, String> {
        let mut cmd = self.cmd();
        cmd.args(["template", release])
            .arg(chart())
            .args(["--namespace", ns, "--include-crds"]);
        for f in files {
            cmd.arg("--values").arg(f);
        }
        for s in sets {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}): fix SIDECAR_KIT_HELM",
                self.bin.display()
            )
        });
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Objects::parse(&String::from_utf8(out.stdout).unwrap()))
    }

    /// As [`Helm::try_template`] with the comparisons' release and namespace; helm must
    /// accept the values.
    pub fn template(&self, files: &[PathBuf], sets: &[&str]) -> Objects {
        self.try_template(RELEASE, NS, files, sets)
            .unwrap_or_else(|e| panic!("helm template {files:?} {sets:?} failed:\n{e}"))
    }

    /// `helm lint --strict charts/sidecar-kit --values FILE`: Ok(output) or Err(output).
    pub fn lint(&self, file: &Path) -> Result<String, String> {
        let out = self
            .cmd()
            .args(["lint", "--strict"])
            .arg(chart())
            .arg("--values")
            .arg(file)
            .args(["--namespace", NS])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

// === kustomize ===

/// A throwaway copy of `deploy/`, with the files `sidecar-kit certs` would write into the
/// self-managed overlay's tls/ (stand-ins: kustomize only copies them into the Secret).
pub struct Deploy {
    dir: TempDir,
}

impl Deploy {
    /// The copy, with `ca_pem` as tls/ca.crt.
    pub fn new(ca_pem: &str) -> Deploy {
        let dir = TempDir::new("chart-deploy");
        sidecar_kit_testkit::copy_deploy_tree(&root().join("deploy"), &dir.path().join("deploy"));
        let d = Deploy { dir };
        let tls = d.path("overlays/self-managed/tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.crt"), ca_pem).unwrap();
        std::fs::write(tls.join("tls.crt"), "stand-in certificate\n").unwrap();
        std::fs::write(tls.join("tls.key"), "stand-in key\n").unwrap();
        d
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("deploy").join(rel)
    }

    /// `kubectl kustomize deploy/REL`.
    pub fn build(&self, rel: &str) -> Objects {
        Objects::parse(&sidecar_kit_testkit::kustomize(&self.path(rel)))
    }

    /// An overlay of `overlay` with components/fail-closed, as deploy/README.md tells users
    /// to write it; returns its path relative to deploy/.
    pub fn fail_closed(&self, overlay: &str) -> String {
        let name = format!("test-fail-closed-{overlay}");
        sidecar_kit_testkit::fail_closed_overlay(&self.path(""), &name, overlay);
        format!("overlays/{name}")
    }
}

// === objects ===

/// kind, namespace ("" when cluster-scoped), name.
pub type Key = (String, String, String);

/// Rendered objects by kind, namespace and name.
#[derive(Clone, Debug)]
pub struct Objects(pub BTreeMap<Key, Value>);

pub fn key(kind: &str, ns: &str, name: &str) -> Key {
    (kind.to_string(), ns.to_string(), name.to_string())
}

impl Objects {
    pub fn parse(text: &str) -> Objects {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"));
        let mut map = BTreeMap::new();
        for d in docs.into_iter().filter(|d| !d.is_null()) {
            let k = key(
                d["kind"].as_str().unwrap_or_default(),
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default(),
            );
            assert!(
                !k.0.is_empty() && !k.2.is_empty(),
                "object without kind or name: {d}"
            );
            assert!(map.insert(k.clone(), d).is_none(), "{k:?} rendered twice");
        }
        Objects(map)
    }

    pub fn get(&self, kind: &str, ns: &str, name: &str) -> &Value {
        self.0
            .get(&key(kind, ns, name))
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name} among {:?}", self.keys()))
    }

    pub fn remove(&mut self, kind: &str, ns: &str, name: &str) -> Value {
        self.0
            .remove(&key(kind, ns, name))
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name} to remove"))
    }

    pub fn keys(&self) -> BTreeSet<Key> {
        self.0.keys().cloned().collect()
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|(k, _)| k.0 == kind)
            .map(|(_, v)| v)
            .collect()
    }

    /// The webhook Deployment and its container.
    pub fn webhook_container(&self) -> &Value {
        &self.get("Deployment", NS, "sidecar-kit")["spec"]["template"]["spec"]["containers"][0]
    }
}

// === normalising ===

/// Labels whose values differ by design between the two renderings: helm.sh/chart exists
/// only under Helm, and app.kubernetes.io/managed-by says `Helm` or `kustomize`. Nothing else
/// is dropped: app.kubernetes.io/version is compared (appVersion against deploy/'s label).
const TOOL_LABELS: &[&str] = &["helm.sh/chart", "app.kubernetes.io/managed-by"];

/// Prepares both renderings for comparison, dropping only:
/// - the [`TOOL_LABELS`], from objects and pod templates;
/// - the CRD's labels, after checking that the chart's are among kustomize's: Helm installs
///   `crds/` as it is, untemplated (by design), so its CRD carries only the labels of the
///   generated file, while kustomize's transformer adds instance, component, version and
///   managed-by.
///
/// The profiles ConfigMap's files are compared parsed (YAML text differs in comments, key
/// order and flow style, not in content).
pub fn normalise(helm: &mut Objects, kust: &mut Objects) {
    let crd = key(
        "CustomResourceDefinition",
        "",
        "sidecarprofiles.sidecar-kit.io",
    );
    if let (Some(h), Some(k)) = (helm.0.get_mut(&crd), kust.0.get_mut(&crd)) {
        let hl = h["metadata"].as_object_mut().unwrap().remove("labels");
        let kl = k["metadata"].as_object_mut().unwrap().remove("labels");
        let (hl, kl) = (hl.unwrap_or_default(), kl.unwrap_or_default());
        for (name, value) in hl.as_object().into_iter().flatten() {
            assert_eq!(
                kl.get(name),
                Some(value),
                "CRD label {name} of crds/ differs from deploy/'s"
            );
        }
    }
    for objs in [helm, kust] {
        for obj in objs.0.values_mut() {
            for ptr in ["/metadata/labels", "/spec/template/metadata/labels"] {
                if let Some(m) = obj.pointer_mut(ptr).and_then(Value::as_object_mut) {
                    for l in TOOL_LABELS {
                        m.remove(*l);
                    }
                }
            }
        }
        if let Some(cm) = objs
            .0
            .get_mut(&key("ConfigMap", NS, "sidecar-kit-profiles"))
        {
            parse_profiles(cm);
        }
        unwrap_base64(objs);
    }
}

/// Removes the line breaks kustomize puts into long base64 values (the Secret's data, and
/// the caBundle copied from it): the API server decodes both the same way.
fn unwrap_base64(objs: &mut Objects) {
    for obj in objs.0.values_mut() {
        let mut values: Vec<&mut Value> = Vec::new();
        if obj["kind"] == "Secret" {
            values.extend(
                obj["data"]
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|m| m.values_mut()),
            );
        } else if obj["kind"] == "MutatingWebhookConfiguration" {
            values.extend(
                obj["webhooks"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| h.pointer_mut("/clientConfig/caBundle")),
            );
        }
        for v in values {
            if let Some(s) = v.as_str() {
                *v = Value::String(s.split_whitespace().collect());
            }
        }
    }
}

/// Orders each container's environment by name: Kubernetes keys the list by name, and
/// kustomize's strategic merge patch (components/fail-closed) moves the variable it patches
/// to the front.
pub fn env_by_name(objs: &mut Objects) {
    for obj in objs.0.values_mut() {
        let Some(cs) = obj
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs {
            if let Some(e) = c["env"].as_array_mut() {
                e.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            }
        }
    }
}

/// Replaces each file of the profiles ConfigMap by its parsed content.
fn parse_profiles(cm: &mut Value) {
    if let Some(data) = cm["data"].as_object_mut() {
        for (file, text) in data.iter_mut() {
            let parsed: Value = serde_saphyr::from_str(text.as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("profile file {file} does not parse: {e}"));
            *text = parsed;
        }
    }
}

/// Drops the serving certificate's data, which only the generating side can know: the TLS
/// Secret's `data` and the webhook's `caBundle`. `generated_certificate_*` checks them.
pub fn drop_certificate_data(objs: &mut Objects) {
    if let Some(secret) = objs
        .0
        .get_mut(&key("Secret", NS, "sidecar-kit-webhook-tls"))
    {
        secret.as_object_mut().unwrap().remove("data");
    }
    if let Some(mwc) = objs
        .0
        .get_mut(&key("MutatingWebhookConfiguration", "", "sidecar-kit"))
    {
        for hook in mwc["webhooks"].as_array_mut().into_iter().flatten() {
            hook["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
        }
    }
}

// === comparing ===

/// Every difference between two values, as `path: left != right`.
pub fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                diff(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                diff(l, r, &format!("{path}/{i}"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} != {b}")),
    }
}

/// Asserts that both renderings hold the same objects with the same content, listing every
/// difference (`helm` on the left).
pub fn assert_same(helm: &Objects, kust: &Objects, what: &str) {
    let mut out = Vec::new();
    for k in helm.keys().symmetric_difference(&kust.keys()) {
        let side = if helm.0.contains_key(k) {
            "helm only"
        } else {
            "kustomize only"
        };
        out.push(format!("{side}: {k:?}"));
    }
    for (k, h) in &helm.0 {
        if let Some(kv) = kust.0.get(k) {
            let mut d = Vec::new();
            diff(h, kv, "", &mut d);
            out.extend(d.into_iter().map(|d| format!("{} {}: {d}", k.0, k.2)));
        }
    }
    assert!(
        out.is_empty(),
        "{what}: helm (left) and kustomize (right) differ:\n  {}",
        out.join("\n  ")
    );
}

/// The objects of `a` that `b` lacks or holds otherwise, by key.
pub fn changed(a: &Objects, b: &Objects) -> BTreeSet<Key> {
    a.0.iter()
        .filter(|(k, v)| b.0.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The environment of a container as name → entry.
pub fn env(container: &Value) -> Map<String, Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e.clone(),
            )
        })
        .collect()
}
