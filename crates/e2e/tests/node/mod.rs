//! The suite's scenarios on a real node: pods placed by `nodeName` on the node named by
//! `SIDECAR_KIT_E2E_NODE` (hostNetwork, so a node without a pod network serves), with
//! `sidecar-shim` from `SIDECAR_KIT_E2E_SHIM_IMAGE` and a shell image for the app and the
//! sidecar. They run the shim's detection protocol and Job-safe shutdown on a real kubelet:
//! - a universal pod: exactly one copy runs the sidecar, the native one where the API server
//!   keeps `restartPolicy`, the legacy one where it drops it; how much later its app starts
//!   than the app of the same pod without injection;
//! - a universal pod that runs to completion: which copy says (termination message) it ran
//!   the sidecar;
//! - a Job whose pod has a legacy sidecar: the pod completes (and the Job, where a Job
//!   controller runs).

use serde_json::{Value, json};
use sidecar_kit_e2e::{Guard, Kubectl, eventually, eventually_or_stop, now_secs, say};
use std::path::Path;
use std::time::Duration;

/// The profile of the node scenarios.
pub const PROFILE: &str = "e2e-node";
/// What the sidecar prints when it starts: the proof of which copy ran it.
const SIDECAR_UP: &str = "e2e-sidecar-up";
/// What the app prints when it starts: its log timestamp is its start time.
const APP_UP: &str = "e2e-app-up";
/// Runs until SIGTERM and then exits 0 at once: as PID 1 a shell without a handler ignores
/// SIGTERM, and a deleted pod would linger for its grace period.
const UNTIL_TERM: &str = "trap 'exit 0' TERM; sleep 3600 & wait";
/// Rounds of the start-delay measurement (plain pod, then universal pod, per round).
const ROUNDS: usize = 3;
/// Generous bound for one pod to get going on a real node (image pulls included).
const POD_TIMEOUT: Duration = Duration::from_secs(180);
/// The universal pod's app may start this much later than the plain pod's, at most (the
/// expected cost on a capable node is a few seconds).
const MAX_COST: f64 = 15.0;
/// How long the suite watches the `kube-controller-manager` Lease for a renewal.
const LEASE_WATCH: Duration = Duration::from_secs(8);
/// Without a renewed `kube-controller-manager` Lease, how long a Job controller gets to create
/// the Job's pod before the suite creates it.
const CONTROLLER_GRACE: Duration = Duration::from_secs(10);

/// Where and with what the node scenarios run.
pub struct NodeSetup {
    pub node: String,
    pub shim_image: String,
    pub shell_image: String,
    /// `SIDECAR_KIT_E2E_REJECTING_NODE`: a node whose kubelet has the SidecarContainers gate
    /// off (it refuses pods with native sidecars).
    pub rejecting: Option<String>,
}

impl NodeSetup {
    /// From the environment: None when `SIDECAR_KIT_E2E_NODE` is unset; an error when it is
    /// set without `SIDECAR_KIT_E2E_SHIM_IMAGE`.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        match (var("SIDECAR_KIT_E2E_NODE"), var("SIDECAR_KIT_E2E_SHIM_IMAGE")) {
            (None, None) => Ok(None),
            (Some(node), Some(shim_image)) => Ok(Some(Self {
                node,
                shim_image,
                shell_image: var("SIDECAR_KIT_E2E_SHELL_IMAGE")
                    .unwrap_or_else(|| "busybox:1.36".to_string()),
                rejecting: var("SIDECAR_KIT_E2E_REJECTING_NODE"),
            })),
            (Some(_), None) => Err("SIDECAR_KIT_E2E_NODE is set but SIDECAR_KIT_E2E_SHIM_IMAGE is not: name an image that carries sidecar-shim (on PATH, e.g. the release image) or unset both".into()),
            (None, Some(_)) => Err("SIDECAR_KIT_E2E_SHIM_IMAGE is set but SIDECAR_KIT_E2E_NODE is not: name the node to run pods on, or unset both".into()),
        }
    }

    /// The profile the node pods select: one sidecar in the shell image that prints
    /// `SIDECAR_UP` and stays up, and the shim image under test.
    pub fn profile(&self) -> Value {
        json!({
            "apiVersion": "sidecar-kit.io/v1alpha1",
            "kind": "SidecarProfile",
            "metadata": {"name": PROFILE},
            "spec": {
                "selector": {"matchLabels": {"e2e-profile": PROFILE}},
                "mode": "universal",
                "fallback": "legacy",
                "priority": 100,
                "shim": {"image": self.shim_image},
                "containers": [{
                    "name": "shipper",
                    "image": self.shell_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", format!("echo {SIDECAR_UP}; {UNTIL_TERM}")],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]
            }
        })
    }
}

/// One scenario run's context.
pub struct NodeRun<'a> {
    pub setup: &'a NodeSetup,
    pub k: &'a Kubectl,
    /// The `sidecar-kit` binary (for `doctor pods`) and the kubeconfig it is given.
    pub bin: &'a Path,
    pub kubeconfig: &'a Path,
    pub guard: &'a Guard,
    pub ns: &'a str,
    /// Whether the API server keeps `restartPolicy` on init containers.
    pub gate: bool,
    pub report: &'a mut Vec<String>,
    pub failures: &'a mut Vec<String>,
}

/// The status of container `name` (init or regular).
fn status<'v>(pod: &'v Value, name: &str) -> Option<&'v Value> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| pod["status"][k].as_array())
        .flatten()
        .find(|c| c["name"] == name)
}

/// The `terminated` state of container `name` (Null when it has none).
fn terminated(pod: &Value, name: &str) -> Value {
    status(pod, name)
        .map(|s| s["state"]["terminated"].clone())
        .unwrap_or_default()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

impl NodeRun<'_> {
    fn check(&mut self, ok: bool, msg: String) {
        if !ok {
            say(&format!(
                "e2e: FAILED CHECK: {}",
                msg.lines().next().unwrap_or_default()
            ));
            self.failures.push(msg);
        }
    }

    /// A pod for the node: placed by nodeName, hostNetwork, tolerating every taint (the node
    /// may be NotReady for want of a pod network), non-root (the injected containers carry the
    /// restricted security context, and the shell image may default to root).
    fn pod(&self, name: &str, inject: Option<&str>, restart: &str, app: &str) -> Value {
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": {"app": "e2e-node", "e2e-profile": if inject.is_some() { PROFILE } else { "none" }},
            },
            "spec": {
                "nodeName": self.setup.node,
                "hostNetwork": true,
                "restartPolicy": restart,
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 5,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532},
                "tolerations": [{"operator": "Exists"}],
                "containers": [{
                    "name": "app",
                    "image": self.setup.shell_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", app]
                }]
            }
        });
        if let Some(mode) = inject {
            pod["metadata"]["annotations"] =
                json!({"sidecar-kit.io/mode": mode, "sidecar-kit.io/profiles": PROFILE});
        }
        pod
    }

    fn get(&self, name: &str) -> Result<Value, String> {
        self.k
            .get("pod", name, Some(self.ns))?
            .ok_or_else(|| format!("pod {name} is gone"))
    }

    /// The times at which `container` of `name` logged a line containing `text` (current
    /// and, with `previous`, the last terminated instance); empty when it has no logs yet.
    fn logged(&self, name: &str, container: &str, previous: bool, text: &str) -> Vec<f64> {
        self.k
            .logs(self.ns, name, container, previous)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, l)| l.contains(text))
            .map(|(t, _)| t)
            .collect()
    }

    fn create(&self, pod: &Value) -> Result<Value, String> {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let stored = self.k.create(pod)?;
        self.guard.track_in("pod", self.ns, name);
        Ok(stored)
    }

    /// Deletes pod `name`; with `wait`, until it is gone (at most a minute).
    fn delete(&self, name: &str, wait: bool) {
        let wait = if wait {
            "--timeout=60s"
        } else {
            "--wait=false"
        };
        let args = [
            "delete",
            "pod",
            name,
            "-n",
            self.ns,
            "--ignore-not-found",
            wait,
        ];
        if let Err(e) = self.k.run(&args, None) {
            say(&format!("e2e: deleting pod {name}: {e}"));
        }
    }

    /// Waits for `name`'s app to log APP_UP; its start time minus `created`, in seconds.
    fn app_start(&self, name: &str, created: f64) -> Result<f64, String> {
        eventually_or_stop(
            &format!("the app of pod {name} to start"),
            POD_TIMEOUT,
            || {
                let pod = self.get(name)?;
                if pod["status"]["phase"] == "Failed" {
                    return Ok(Some(Err(format!("pod {name} failed: {}", pod["status"]))));
                }
                Ok(self
                    .logged(name, "app", false, APP_UP)
                    .first()
                    .map(|t| Ok(t - created)))
            },
        )
        .map_err(|e| {
            format!("{e} (`kubectl logs` must reach the node's kubelet through the API server)")
        })
    }

    /// Waits until `name` has finished (Succeeded or Failed); the pod.
    fn finished(&self, name: &str) -> Result<Value, String> {
        eventually(&format!("pod {name} to finish"), POD_TIMEOUT, || {
            let pod = self.get(name)?;
            Ok(matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
            .then_some(pod))
        })
    }

    /// What `doctor pods NAME` says about the universal sidecar of pod `name`: the copy it
    /// names, how it told, and the ids of its findings.
    fn doctor_copy(&self, name: &str) -> Result<(String, String, Vec<String>), String> {
        let (_, report) =
            sidecar_kit_e2e::doctor(self.bin, self.kubeconfig, &["pods", name, "-n", self.ns])?;
        let u = &report["data"]["pods"][0]["universal"][0];
        Ok((
            u["copy"].as_str().unwrap_or("none").to_string(),
            u["from"].as_str().unwrap_or("").to_string(),
            super::finding_ids(&report),
        ))
    }

    /// Checks that `doctor pods` names `want` as the copy that runs pod `name`'s sidecar,
    /// told from `from`, without a finding about the pod's universal sidecar; a report line.
    fn check_doctor(&mut self, name: &str, want: &str, from: &str) -> String {
        match self.doctor_copy(name) {
            Ok((copy, told, ids)) => {
                self.check(
                    copy == want && told == from,
                    format!("doctor pods {name}: copy {copy:?} from {told:?}, expected {want:?} from {from:?}"),
                );
                let universal: Vec<&String> = ids
                    .iter()
                    .filter(|i| i.starts_with("pods.universal"))
                    .collect();
                self.check(
                    universal.is_empty(),
                    format!("doctor pods {name}: findings {universal:?} about a universal sidecar that works"),
                );
                format!("doctor pods: {copy} copy (from {told}), findings {ids:?}")
            }
            Err(e) => {
                self.check(false, e.clone());
                e
            }
        }
    }

    /// Waits until `name` has finished; on a timeout gives the pod up and returns None.
    fn finished_or_fail(&mut self, name: &str) -> Option<Value> {
        self.finished(name).map_err(|e| self.give_up(name, &e)).ok()
    }

    /// Records the failed check `e` about pod `name`, with the pod's status, and deletes it.
    fn give_up(&mut self, name: &str, e: &str) {
        let pod = self.get(name).unwrap_or_default();
        self.delete(name, false);
        self.check(false, format!("{e}; status: {}", pod["status"]));
    }

    /// Checks that pod `name` ended Succeeded.
    fn check_succeeded(&mut self, name: &str, pod: &Value) {
        self.check(
            pod["status"]["phase"] == "Succeeded",
            format!(
                "{name}: phase {}, expected Succeeded: {}",
                pod["status"]["phase"], pod["status"]
            ),
        );
    }

    /// The container expected to run the sidecar, the other copy, and the word the working
    /// copy writes to its termination message (which doctor uses too).
    fn copies(&self) -> (&'static str, &'static str, &'static str) {
        if self.gate {
            ("shipper", "shipper-legacy", "native")
        } else {
            ("shipper-legacy", "shipper", "legacy")
        }
    }

    /// A universal pod next to the same pod without injection, ROUNDS times: which copy runs
    /// the sidecar, and how much later the app starts.
    fn start_delay(&mut self) {
        let (runs, idle, runs_copy) = self.copies();
        let (mut plain, mut universal) = (Vec::new(), Vec::new());
        let mut restarts = Vec::new();
        let mut seen: Vec<Vec<&str>> = Vec::new();
        let mut doctor_line = String::new();
        for round in 0..ROUNDS {
            for inject in [None, Some("universal")] {
                let name = format!(
                    "node-{}-{round}",
                    if inject.is_some() {
                        "universal"
                    } else {
                        "plain"
                    }
                );
                let pod = self.pod(
                    &name,
                    inject,
                    "Always",
                    &format!("echo {APP_UP}; {UNTIL_TERM}"),
                );
                let created = now_secs();
                let stored = match self.create(&pod) {
                    Ok(s) => s,
                    Err(e) => return self.check(false, format!("create {name}: {e}")),
                };
                let delay = match self.app_start(&name, created) {
                    Ok(d) => d,
                    Err(e) => {
                        self.delete(&name, false);
                        return self.check(false, e);
                    }
                };
                if inject.is_none() {
                    self.check(
                        stored["spec"]["containers"].as_array().map(Vec::len) == Some(1)
                            && stored["spec"].get("initContainers").is_none(),
                        format!(
                            "{name}: the pod without a matching profile was changed: {}",
                            stored["spec"]
                        ),
                    );
                    plain.push(delay);
                    self.delete(&name, true);
                    continue;
                }
                universal.push(delay);
                // Settled: the sidecar up in one of the copies, the native copy exited for
                // good (a plain init container) or running and started, and the legacy copy
                // running with its decision logged.
                let settled = eventually(
                    &format!("{name}: the sidecar up and both copies settled"),
                    POD_TIMEOUT,
                    || {
                        let pod = self.get(&name)?;
                        let up = [runs, idle]
                            .iter()
                            .any(|c| !self.logged(&name, c, false, SIDECAR_UP).is_empty());
                        let native = status(&pod, "shipper").cloned().unwrap_or_default();
                        let native_settled = native["state"]["terminated"].is_object()
                            || (native["state"]["running"].is_object()
                                && native["started"] == true);
                        let legacy_settled = status(&pod, "shipper-legacy")
                            .is_some_and(|s| s["state"]["running"].is_object())
                            && !self.logged(&name, "shipper-legacy", false, "").is_empty();
                        Ok((up && native_settled && legacy_settled).then_some(pod))
                    },
                );
                let pod = match settled {
                    Ok(p) => p,
                    Err(e) => return self.give_up(&name, &e),
                };
                let ran: Vec<&str> = [runs, idle]
                    .into_iter()
                    .filter(|c| {
                        !self.logged(&name, c, false, SIDECAR_UP).is_empty()
                            || !self.logged(&name, c, true, SIDECAR_UP).is_empty()
                    })
                    .collect();
                self.check(
                    ran == [runs],
                    format!("{name}: the sidecar ran in {ran:?}, expected only in {runs}"),
                );
                seen.push(ran);
                let native = status(&pod, "shipper").cloned().unwrap_or_default();
                let count = native["restartCount"].as_i64().unwrap_or(-1);
                restarts.push(count);
                if self.gate {
                    // The detection restart: the first run found no state and exited 0.
                    self.check(
                        count == 1 && native["lastState"]["terminated"]["exitCode"] == 0,
                        format!(
                            "{name}: the native copy should show one restart after exit 0: {native}"
                        ),
                    );
                    self.check(
                        native["started"] == true && native["state"]["running"].is_object(),
                        format!("{name}: the native copy is not running and started: {native}"),
                    );
                } else {
                    // A plain init container that wrote native-pending and exited 0.
                    self.check(
                        count == 0 && native["state"]["terminated"]["exitCode"] == 0,
                        format!("{name}: the native copy (a plain init container without restartPolicy) should have exited 0 once: {native}"),
                    );
                }
                if round == 0 {
                    doctor_line = self.check_doctor(&name, runs_copy, "container state");
                }
                // Gone before the next measurement, which it would otherwise share the node with.
                self.delete(&name, true);
            }
        }
        if plain.is_empty() || universal.is_empty() {
            return;
        }
        let (p, u) = (median(&mut plain), median(&mut universal));
        self.check(
            u - p <= MAX_COST,
            format!(
                "universal: the app starts {:.1}s later than without injection (bound {MAX_COST}s)",
                u - p
            ),
        );
        self.report.push(format!(
            "node {}: universal pod x{ROUNDS}: the sidecar ran in {seen:?} (expected {runs} only), native copy restarts {restarts:?}; app up {u:.2}s after the create request vs {p:.2}s without injection (this machine's clock against the runtime's log times: the difference is the cost; medians of {ROUNDS}: +{:.2}s; each: universal {universal:.2?}, plain {plain:.2?}); {doctor_line}",
            self.setup.node,
            u - p
        ));
    }

    /// A pod with `restartPolicy: OnFailure` and a legacy sidecar whose app fails once: the
    /// kubelet restarts the app, the sidecar keeps running through the failure and stops once
    /// the app has succeeded, and the pod completes.
    fn retried_app_completes(&mut self) {
        let name = "node-legacy-onfailure";
        let mut pod = self.pod(
            name,
            Some("legacy"),
            "OnFailure",
            &format!("echo {APP_UP}; if [ -e /work/failed-once ]; then exit 0; fi; touch /work/failed-once; exit 1"),
        );
        pod["spec"]["volumes"] = json!([{"name": "work", "emptyDir": {}}]);
        pod["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "work", "mountPath": "/work"}]);
        if let Err(e) = self.create(&pod) {
            return self.check(false, format!("create {name}: {e}"));
        }
        let Some(pod) = self.finished_or_fail(name) else {
            return;
        };
        let app = status(&pod, "app").cloned().unwrap_or_default();
        let sidecar = status(&pod, "shipper").cloned().unwrap_or_default();
        self.check_succeeded(name, &pod);
        // Under OnFailure the kubelet restarts only a failed container (a finished pod's
        // status keeps no lastState), so one restart and a final exit 0 are the one failure.
        self.check(
            app["restartCount"] == 1 && app["state"]["terminated"]["exitCode"] == 0,
            format!("{name}: the app should have failed once, been restarted and succeeded: {app}"),
        );
        self.check(
            sidecar["restartCount"] == 0
                && sidecar["state"]["terminated"]["exitCode"] == 0
                && sidecar["state"]["terminated"]["message"] == "legacy",
            format!("{name}: the sidecar should run through the app's failure and exit 0 once it succeeded: {sidecar}"),
        );
        self.report.push(format!(
            "node {}: OnFailure pod, app failing once -> {} (app restarts {}, sidecar exit {} {:?}, restarts {})",
            self.setup.node,
            pod["status"]["phase"].as_str().unwrap_or("?"),
            app["restartCount"],
            sidecar["state"]["terminated"]["exitCode"],
            sidecar["state"]["terminated"]["message"].as_str().unwrap_or(""),
            sidecar["restartCount"]
        ));
        self.delete(name, false);
    }

    /// A universal pod that runs to completion: the copy that ran the sidecar says so in its
    /// termination message. `as_root`: without the pod's non-root security context, so the
    /// sidecar's image runs as its own user, root, as most sidecar images do (a real kubelet
    /// refuses such a container if the wiring adds `runAsNonRoot`).
    fn universal_completes(&mut self, as_root: bool) {
        let (runs, idle, want) = self.copies();
        let name = if as_root {
            "node-universal-job-root"
        } else {
            "node-universal-job"
        };
        let mut pod = self.pod(
            name,
            Some("universal"),
            "Never",
            &format!("echo {APP_UP}; sleep 2"),
        );
        if as_root && let Some(spec) = pod["spec"].as_object_mut() {
            spec.remove("securityContext");
        }
        if let Err(e) = self.create(&pod) {
            return self.check(false, format!("create {name}: {e}"));
        }
        let Some(pod) = self.finished_or_fail(name) else {
            return;
        };
        let term = |c: &str| terminated(&pod, c);
        self.check_succeeded(name, &pod);
        self.check(
            term(runs)["message"] == want,
            format!(
                "{name}: {runs} should say {want:?} in its termination message: {}",
                term(runs)
            ),
        );
        self.check(
            term(idle).is_object() && term(idle).get("message").is_none(),
            format!(
                "{name}: {idle} should have ended without a termination message (it did not run the sidecar): {}",
                term(idle)
            ),
        );
        self.check(
            term("app")["exitCode"] == 0,
            format!("{name}: app {}", term("app")),
        );
        let doctor_line = self.check_doctor(name, want, "termination message");
        self.report.push(format!(
            "node {}: universal pod with restartPolicy Never{} -> {}; termination messages {runs}={} (exit {}), {idle}={} (exit {}); {doctor_line}",
            self.setup.node,
            if as_root { ", sidecar image as root" } else { "" },
            pod["status"]["phase"].as_str().unwrap_or("?"),
            term(runs)["message"],
            term(runs)["exitCode"],
            term(idle)["message"],
            term(idle)["exitCode"],
        ));
        self.delete(name, false);
    }

    /// A Job whose pod has a legacy sidecar: the pod completes. Its pod comes from the Job
    /// controller where one runs (its `kube-controller-manager` Lease in kube-system renewed
    /// within LEASE_WATCH, or a pod within CONTROLLER_GRACE), else the suite creates it
    /// as the controller would (owner reference and labels).
    fn job_completes(&mut self) {
        let name = "node-legacy-job";
        let template = self.pod(
            name,
            Some("legacy"),
            "Never",
            &format!("echo {APP_UP}; sleep 2"),
        );
        let job = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {
                        "labels": template["metadata"]["labels"],
                        "annotations": template["metadata"]["annotations"]
                    },
                    "spec": template["spec"]
                }
            }
        });
        let job = match self.k.create(&job) {
            Ok(j) => j,
            Err(e) => return self.check(false, format!("create Job {name}: {e}")),
        };
        self.guard.track_in("job", self.ns, name);
        // A Job controller shows itself by its Lease, or by the pod it creates; without
        // either the suite stands in for it.
        // A Lease outlives its holder, so only one being renewed counts: its renewTime moves
        // (every 2 s by default) while the suite watches, whatever the clocks say.
        let renewed = || {
            self.k
                .get("lease", "kube-controller-manager", Some("kube-system"))
                .ok()
                .flatten()
                .map(|l| l["spec"]["renewTime"].clone())
        };
        let lease = renewed().is_some_and(|first| {
            eventually(
                "the kube-controller-manager Lease to be renewed",
                LEASE_WATCH,
                || Ok(renewed().filter(|t| *t != first).map(|_| ())),
            )
            .is_ok()
        });
        let found = eventually(
            &format!("the Job controller to create the pod of {name}"),
            if lease { POD_TIMEOUT } else { CONTROLLER_GRACE },
            || Ok(self.job_pods(name)?.into_iter().next()),
        );
        let controller = found.is_ok();
        let pod_name = if let Ok(p) = found {
            self.guard.track_in("pod", self.ns, &p);
            p
        } else if lease {
            return self.check(false, found.err().unwrap_or_default());
        } else {
            let uid = job["metadata"]["uid"].clone();
            let mut pod = template.clone();
            pod["metadata"]["name"] = json!(format!("{name}-pod"));
            for (k, v) in [
                ("job-name", json!(name)),
                ("batch.kubernetes.io/job-name", json!(name)),
                ("controller-uid", uid.clone()),
                ("batch.kubernetes.io/controller-uid", uid.clone()),
            ] {
                pod["metadata"]["labels"][k] = v;
            }
            pod["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true
            }]);
            if let Err(e) = self.create(&pod) {
                return self.check(false, format!("create the pod of Job {name}: {e}"));
            }
            format!("{name}-pod")
        };
        let Some(pod) = self.finished_or_fail(&pod_name) else {
            return;
        };
        let stored_mode = pod["metadata"]["annotations"]["sidecar-kit.io/status"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .map(|s| s["injections"][0]["mode"].clone())
            .unwrap_or_default();
        let term = |c: &str| terminated(&pod, c);
        self.check(
            stored_mode == "legacy",
            format!("{pod_name}: injected as {stored_mode}, expected legacy"),
        );
        self.check_succeeded(&pod_name, &pod);
        self.check(
            term("shipper")["exitCode"] == 0 && term("shipper")["message"] == "legacy",
            format!(
                "{pod_name}: the legacy sidecar should exit 0 saying \"legacy\": {}",
                term("shipper")
            ),
        );
        let mut job_line = String::from(
            "no Job controller (kube-controller-manager Lease not renewed, no pod within 10 s): the suite created the pod",
        );
        // A controller slower than the grace shows itself now by a pod of its own.
        let mut controller = controller;
        if !controller {
            let mut late = self.job_pods(name).unwrap_or_default();
            late.retain(|p| *p != pod_name);
            if !late.is_empty() {
                say(&format!(
                    "e2e: a Job controller made pod(s) {late:?} after the suite's stand-in: checking the Job itself too"
                ));
                for p in &late {
                    self.guard.track_in("pod", self.ns, p);
                }
                controller = true;
            }
        }
        if controller {
            let complete =
                eventually_or_stop(&format!("Job {name} to be Complete"), POD_TIMEOUT, || {
                    let j = self.k.get("job", name, Some(self.ns))?.ok_or("Job gone")?;
                    let conds = j["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if conds
                        .iter()
                        .any(|c| c["type"] == "Failed" && c["status"] == "True")
                    {
                        return Ok(Some(Err(format!("Job failed: {}", j["status"]))));
                    }
                    Ok(conds
                        .iter()
                        .any(|c| c["type"] == "Complete" && c["status"] == "True")
                        .then_some(Ok(())))
                });
            job_line = match complete {
                Ok(()) => "Job Complete".into(),
                Err(e) => {
                    self.check(false, e.clone());
                    e
                }
            };
        }
        self.report.push(format!(
            "node {}: Job with a legacy sidecar: pod {} (sidecar exit {} {:?}, app finished {} / sidecar finished {}); {job_line}",
            self.setup.node,
            pod["status"]["phase"].as_str().unwrap_or("?"),
            term("shipper")["exitCode"],
            term("shipper")["message"].as_str().unwrap_or(""),
            term("app")["finishedAt"].as_str().unwrap_or("?"),
            term("shipper")["finishedAt"].as_str().unwrap_or("?"),
        ));
        self.delete(&pod_name, false);
    }

    /// The names of the pods of Job `name` (by the `job-name` label the Job controller sets).
    fn job_pods(&self, name: &str) -> Result<Vec<String>, String> {
        let selector = format!("job-name={name}");
        let out = self.k.run(
            &[
                "get",
                "pods",
                "-n",
                self.ns,
                "-l",
                &selector,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        )?;
        Ok(out.split_whitespace().map(str::to_string).collect())
    }

    /// All node scenarios.
    pub fn run(&mut self) {
        let nodes = [
            Some(("SIDECAR_KIT_E2E_NODE", &self.setup.node)),
            self.setup
                .rejecting
                .as_ref()
                .map(|r| ("SIDECAR_KIT_E2E_REJECTING_NODE", r)),
        ];
        for (var, node) in nodes.into_iter().flatten() {
            match self.k.get("node", node, None) {
                Ok(Some(_)) => {}
                Ok(None) => return self.check(false, format!("{var}={node}: no such node")),
                Err(e) => return self.check(false, e),
            }
        }
        self.start_delay();
        self.universal_completes(false);
        self.universal_completes(true);
        self.job_completes();
        self.retried_app_completes();
        match (self.setup.rejecting.clone(), self.gate) {
            (Some(node), true) => self.rejecting_node(&node),
            (Some(_), false) => say(
                "e2e: rejecting-node scenario skipped: the API server drops restartPolicy, so no pod reaches that kubelet with a native sidecar",
            ),
            (None, _) => say(
                "e2e: rejecting-node scenario skipped: SIDECAR_KIT_E2E_REJECTING_NODE is not set (a node whose kubelet has SidecarContainers off runs it)",
            ),
        }
    }

    /// On a kubelet with the SidecarContainers gate off: a pod with a native sidecar is
    /// refused, and `doctor pods` says why; the same pod in legacy mode runs.
    fn rejecting_node(&mut self, node: &str) {
        let mut lines = Vec::new();
        for mode in ["native", "legacy"] {
            let name = format!("node-rejecting-{mode}");
            let mut pod = self.pod(
                &name,
                Some(mode),
                "Always",
                &format!("echo {APP_UP}; {UNTIL_TERM}"),
            );
            pod["spec"]["nodeName"] = json!(node);
            if let Err(e) = self.create(&pod) {
                return self.check(false, format!("create {name}: {e}"));
            }
            if mode == "native" {
                let refused =
                    eventually_or_stop(&format!("{node} to refuse {name}"), POD_TIMEOUT, || {
                        let pod = self.get(&name)?;
                        if status(&pod, "app").is_some_and(|s| s["state"]["running"].is_object()) {
                            return Ok(Some(Err(format!(
                                "{name} runs on {node}: is its SidecarContainers gate off?"
                            ))));
                        }
                        Ok((pod["status"]["phase"] == "Failed").then_some(Ok(pod)))
                    });
                match refused {
                    Ok(pod) => {
                        self.check(
                            pod["status"]["reason"] == "InitContainerRestartPolicyForbidden",
                            format!("{name}: refused with reason {}", pod["status"]["reason"]),
                        );
                        let doctor = self.doctor_copy(&name).map(|(_, _, ids)| ids);
                        let ids = doctor.clone().unwrap_or_default();
                        self.check(
                            ids.iter().any(|i| i == "pods.rejected-by-node"),
                            format!(
                                "doctor pods {name}: no pods.rejected-by-node finding: {doctor:?}"
                            ),
                        );
                        lines.push(format!(
                            "native -> {} ({}), doctor pods {ids:?}",
                            pod["status"]["phase"].as_str().unwrap_or("?"),
                            pod["status"]["reason"].as_str().unwrap_or("?")
                        ));
                    }
                    Err(e) => self.check(false, e),
                }
            } else {
                match self.app_start(&name, now_secs()) {
                    Ok(_) => lines.push("legacy -> app running".into()),
                    Err(e) => self.check(false, e),
                }
            }
            self.delete(&name, false);
        }
        self.report.push(format!(
            "rejecting node {node} (kubelet gate off): {}",
            lines.join("; ")
        ));
    }
}
