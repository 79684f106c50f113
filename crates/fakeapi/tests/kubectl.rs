//! The real kubectl against the fake, through the kubeconfig it writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_testkit::TempDir;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeSeed};

const KUBECTL: &str = "/usr/bin/kubectl";

fn kubectl_present() -> bool {
    if Path::new(KUBECTL).exists() {
        return true;
    }
    eprintln!("skipped: {KUBECTL} is not installed");
    false
}

struct Kubectl {
    /// For the kubeconfig, kubectl's cache and input files; removed with the Kubectl.
    dir: TempDir,
    kubeconfig: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(fake: &FakeApi) -> Kubectl {
        let dir = TempDir::new("fakeapi-kubectl");
        let kubeconfig = fake.write_kubeconfig(dir.path()).unwrap();
        Kubectl { dir, kubeconfig }
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new(KUBECTL)
            .args(args)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .output()
            .await
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires exit 0.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, 0,
            "kubectl {args:?}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_nodes_and_raw_endpoints() {
    if !kubectl_present() {
        return;
    }
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let s = fake.state();
    s.seed_node(NodeSeed::new("n1", "v1.31.2").control_plane())
        .unwrap();
    s.seed_node(NodeSeed::new("n2", "v1.28.5").unschedulable(true))
        .unwrap();
    let k = Kubectl::new(&fake);

    let v: Value = serde_json::from_str(&k.ok(&["version", "-o", "json"]).await).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.32.3");
    assert_eq!(v["serverVersion"]["minor"], "32");

    let table = k.ok(&["get", "nodes"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    );
    assert!(
        lines[1].starts_with("n1")
            && lines[1].contains("control-plane")
            && lines[1].ends_with("v1.31.2"),
        "{table}"
    );
    assert!(
        lines[2].contains("Ready,SchedulingDisabled") && lines[2].ends_with("v1.28.5"),
        "{table}"
    );
    let wide = k.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(
        wide.contains("INTERNAL-IP") && wide.contains("containerd://"),
        "{wide}"
    );

    let list: Value = serde_json::from_str(&k.ok(&["get", "nodes", "-o", "json"]).await).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(
        list["items"][1]["status"]["nodeInfo"]["kubeletVersion"],
        "v1.28.5"
    );
    assert_eq!(list["items"][0]["kind"], "Node");

    let one = k
        .ok(&["get", "node", "n2", "-o", "jsonpath={.spec.unschedulable}"])
        .await;
    assert_eq!(one, "true");

    let metrics = k.ok(&["get", "--raw", "/metrics"]).await;
    assert!(
        metrics
            .contains("kubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 1\n")
    );
    let kubelet = k
        .ok(&["get", "--raw", "/api/v1/nodes/n1/proxy/metrics"])
        .await;
    assert!(kubelet.len() >= 100_000);
    assert!(
        kubelet
            .contains("kubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 1\n")
    );
    let missing = k.run(&["get", "node", "nope"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): nodes \"nope\" not found"),
        "{}",
        missing.stderr
    );
    fake.shutdown().await;
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: sidecar-probe
spec:
  initContainers:
  - name: proxy
    image: envoy:1.30
    restartPolicy: Always
  containers:
  - name: app
    image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_create_runs_the_mutation_and_stores_nothing() {
    if !kubectl_present() {
        return;
    }
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    // A webhook that re-serialises pods with a pre-1.28 client.
    fake.set_pod_mutation(|pod| {
        if let Some(inits) = pod["spec"]["initContainers"].as_array_mut() {
            for c in inits {
                if let Some(c) = c.as_object_mut() {
                    c.remove("restartPolicy");
                }
            }
        }
        pod["metadata"]["annotations"] = json!({"example.com/mutated": "true"});
    });
    let k = Kubectl::new(&fake);
    let file = k.file("pod.yaml", POD);
    let out: Value = serde_json::from_str(
        &k.ok(&["create", "-f", &file, "--dry-run=server", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["annotations"]["example.com/mutated"],
        "true"
    );
    assert!(
        out["spec"]["initContainers"][0]
            .get("restartPolicy")
            .is_none(),
        "{out}"
    );
    assert_eq!(
        out["spec"]["initContainers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(out["metadata"]["namespace"], "default");
    assert!(fake.state().list("pods", None).unwrap().is_empty());
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, "/api/v1/namespaces/default/pods");
    assert_eq!(post.param("dryRun").as_deref(), Some("All"));

    // With the API server's gate off and a probe, the pod is refused as the real one does.
    fake.clear_pod_mutation();
    fake.set_sidecar_containers(false);
    let probe = POD.replace(
        "    restartPolicy: Always\n",
        "    restartPolicy: Always\n    startupProbe:\n      exec:\n        command: [\"true\"]\n",
    );
    let file = k.file("probe.yaml", &probe);
    let out = k.run(&["create", "-f", &file, "--dry-run=server"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("The Pod \"sidecar-probe\" is invalid: spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always"),
        "{}",
        out.stderr
    );
    fake.shutdown().await;
}

const LEASE: &str = "apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: sidecar-kit-labeler
  namespace: kube-node-lease
spec:
  holderIdentity: HOLDER
  leaseDurationSeconds: 15
";

const PROFILE: &str = "apiVersion: sidecar-kit.io/v1alpha1
kind: SidecarProfile
metadata:
  name: log-shipper
spec:
  mode: MODE
  priority: 100
  containers:
  - name: shipper
    image: busybox
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_a_crd_a_profile_and_a_lease() {
    if !kubectl_present() {
        return;
    }
    let fake = FakeApi::start(FakeConfig {
        install_sidecar_profile_crd: false,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let k = Kubectl::new(&fake);
    let profile = k.file("profile.yaml", &PROFILE.replace("MODE", "native"));
    let before = k.run(&["apply", "-f", &profile]).await;
    assert_eq!(before.code, 1, "no CRD yet: {}", before.stdout);
    assert!(
        before
            .stderr
            .contains("no matches for kind \"SidecarProfile\""),
        "{}",
        before.stderr
    );

    let crd = k.file(
        "crd.json",
        &sidecar_kit_fakeapi::sidecar_profile_crd().to_string(),
    );
    let out = k.ok(&["apply", "-f", &crd]).await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/sidecarprofiles.sidecar-kit.io created"
    );
    let out = k.ok(&["apply", "-f", &profile]).await;
    assert_eq!(
        out.trim(),
        "sidecarprofile.sidecar-kit.io/log-shipper created"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &profile]).await.trim(),
        "sidecarprofile.sidecar-kit.io/log-shipper unchanged"
    );
    let profile = k.file("profile.yaml", &PROFILE.replace("MODE", "universal"));
    assert_eq!(
        k.ok(&["apply", "-f", &profile]).await.trim(),
        "sidecarprofile.sidecar-kit.io/log-shipper configured"
    );
    let stored = fake
        .state()
        .get("sidecarprofiles", None, "log-shipper")
        .unwrap()
        .unwrap();
    assert_eq!(stored["spec"]["mode"], "universal");
    assert_eq!(stored["metadata"]["generation"], 2);
    let table = k.ok(&["get", "sidecarprofiles"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("log-shipper") && table.contains("universal"),
        "{table}"
    );

    let lease = k.file("lease.yaml", &LEASE.replace("HOLDER", "labeler-a"));
    assert_eq!(
        k.ok(&["apply", "-f", &lease]).await.trim(),
        "lease.coordination.k8s.io/sidecar-kit-labeler created"
    );
    let lease = k.file("lease.yaml", &LEASE.replace("HOLDER", "labeler-b"));
    assert_eq!(
        k.ok(&["apply", "-f", &lease]).await.trim(),
        "lease.coordination.k8s.io/sidecar-kit-labeler configured"
    );
    let leases = k.ok(&["get", "leases", "-A"]).await;
    let lines: Vec<Vec<&str>> = leases
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAMESPACE", "NAME", "HOLDER", "AGE"]);
    assert_eq!(
        lines[1][..3],
        ["kube-node-lease", "sidecar-kit-labeler", "labeler-b"]
    );
    let dry = k.ok(&["apply", "-f", &lease, "--dry-run=server"]).await;
    assert!(dry.contains("(server dry run)"), "{dry}");
    let out = k.ok(&["delete", "-f", &lease]).await;
    assert_eq!(
        out.trim(),
        "lease.coordination.k8s.io \"sidecar-kit-labeler\" deleted"
    );
    let out = k.run(&["get", "leases", "-n", "kube-node-lease"]).await;
    assert_eq!(
        (out.code, out.stderr.trim()),
        (0, "No resources found in kube-node-lease namespace.")
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_patch_nodes() {
    if !kubectl_present() {
        return;
    }
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.state()
        .seed_node(NodeSeed::new("n1", "v1.31.2"))
        .unwrap();
    let k = Kubectl::new(&fake);
    assert_eq!(
        k.ok(&["label", "node", "n1", "sidecar-kit.io/native-sidecars=true"])
            .await
            .trim(),
        "node/n1 labeled"
    );
    assert_eq!(
        k.ok(&["patch", "node", "n1", "--type=json", "-p", r#"[{"op":"add","path":"/metadata/annotations/sidecar-kit.io~1native-sidecars-reason","value":"{\"gate\":\"enabled\"}"}]"#]).await.trim(),
        "node/n1 patched"
    );
    assert_eq!(
        k.ok(&[
            "patch",
            "node",
            "n1",
            "--type=merge",
            "-p",
            r#"{"spec":{"unschedulable":true}}"#
        ])
        .await
        .trim(),
        "node/n1 patched"
    );
    let n = fake.state().get("nodes", None, "n1").unwrap().unwrap();
    assert_eq!(
        n["metadata"]["labels"]["sidecar-kit.io/native-sidecars"],
        "true"
    );
    assert_eq!(
        n["metadata"]["annotations"]["sidecar-kit.io/native-sidecars-reason"],
        "{\"gate\":\"enabled\"}"
    );
    assert_eq!(n["spec"]["unschedulable"], true);
    assert_eq!(
        k.ok(&["label", "node", "n1", "sidecar-kit.io/native-sidecars-"])
            .await
            .trim(),
        "node/n1 unlabeled"
    );
    let n = fake.state().get("nodes", None, "n1").unwrap().unwrap();
    assert!(
        n["metadata"]["labels"]
            .get("sidecar-kit.io/native-sidecars")
            .is_none()
    );
    let selected = k
        .ok(&[
            "get",
            "nodes",
            "-l",
            "kubernetes.io/os=linux,!sidecar-kit.io/native-sidecars",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(selected.trim(), "node/n1");
    fake.shutdown().await;
}
