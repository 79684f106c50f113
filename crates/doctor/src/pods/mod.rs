//! `doctor pods`: pods that native or legacy sidecars got into trouble, read from the
//! pods' status: rejected by their node, stuck in Init on a node that ignores the field,
//! `restartPolicy` lost between the owner's template and the pod, Job pods kept alive by a
//! legacy sidecar, crash-looping sidecars, teardown exits that are not failures, which
//! copy of a universal sidecar runs, and a timeline of every container.

use crate::conn::{ApiProblem, DoctorError, Session, bounded, list_all};
use crate::report::{BlindSpot, Finding, Format, Report, Severity, render};
use crate::timeline::{self, Timeline, Timestamp};
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::{Value, json};
use sidecar_kit_cluster::live::node_facts;
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};
use sidecar_kit_core::version::NodeClass;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which pods to look at.
#[derive(Debug, Clone, Default)]
pub struct PodsOptions {
    /// Namespaces; empty: the kubeconfig's namespace.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    /// One pod by name (in the first namespace).
    pub name: Option<String>,
    /// The time the report is taken at: timelines end there. None: now.
    pub report_time: Option<Timestamp>,
}

/// At most this many timelines per report.
pub const MAX_TIMELINES: usize = 20;

/// The owner's template, as far as it matters here.
#[derive(Debug, Clone, Default)]
pub struct Owner {
    /// `Deployment web (ReplicaSet web-7d9c)`, `Job backup`.
    pub display: String,
    /// Init containers with `restartPolicy: Always` in the template.
    pub template_sidecars: Vec<String>,
}

/// What is known around one pod.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The class of its node, when the node is known and readable.
    pub node_class: Option<NodeClass>,
    pub owner: Option<Owner>,
}

/// Which copy of a universal sidecar runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UniversalCopy {
    pub sidecar: String,
    /// `native`, `legacy`, `both` or `undecided`.
    pub copy: String,
    /// How it was told: `termination message` or `container state`.
    pub from: String,
}

/// One pod's findings and what the table shows.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Sidecars as the table shows them.
    pub sidecars: Vec<String>,
    pub injected: Vec<String>,
    pub universal: Vec<UniversalCopy>,
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn status_of<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod["status"][list]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn is_shim_role(c: &Value, role: &str) -> bool {
    let cmd = c["command"].as_array();
    cmd.and_then(|c| c.first())
        .and_then(Value::as_str)
        .is_some_and(|s| s.ends_with("sidecar-shim"))
        && cmd.and_then(|c| c.get(1)).and_then(Value::as_str) == Some(role)
}

fn terminated<'a>(cs: &'a Value, which: &str) -> Option<&'a Value> {
    cs[which].get("terminated")
}

fn message_of(cs: &Value) -> Option<String> {
    ["state", "lastState"]
        .iter()
        .filter_map(|w| terminated(cs, w))
        .filter_map(|t| t["message"].as_str())
        .map(|m| m.trim().to_string())
        .find(|m| m == "native" || m == "legacy")
}

/// Looks at one pod (raw JSON).
pub fn analyse(pod: &Value, ctx: &Context) -> Analysis {
    let mut a = Analysis::default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let object = Some(format!("Pod {ns}/{name}"));
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let restart_policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always");
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let native: Vec<String> = inits
        .iter()
        .filter(|c| c["restartPolicy"] == "Always")
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let status = pod["metadata"]["annotations"][STATUS_ANNOTATION]
        .as_str()
        .and_then(|s| Status::parse(s).ok());
    let added = status.as_ref().map(Status::all_added).unwrap_or_default();
    if let Some(st) = &status {
        for i in &st.injections {
            a.injected
                .push(format!("{} {} ({})", i.profile, i.mode, i.hash));
        }
    }
    // Legacy sidecars: regular containers that sidecar-kit added.
    let legacy: Vec<String> = names(&pod["spec"]["containers"])
        .into_iter()
        .filter(|n| added.containers.contains(n))
        .collect();
    let apps: Vec<String> = names(&pod["spec"]["containers"])
        .into_iter()
        .filter(|n| !added.containers.contains(n))
        .collect();
    let node_text = if node.is_empty() {
        "no node yet".to_string()
    } else {
        match ctx.node_class {
            Some(c) => format!("node {node} ({c})"),
            None => format!("node {node}"),
        }
    };

    // Rejected by the node.
    if phase == "Failed"
        && pod["status"]["reason"].as_str() == Some("InitContainerRestartPolicyForbidden")
    {
        // Classed capable (from its version, or a label made without its gate) although its
        // kubelet refuses: the node label would steer affinity pods onto it all the same.
        let misclassed = ctx.node_class == Some(NodeClass::Capable);
        a.findings.push(Finding::new(
            "pods.rejected-by-node",
            Severity::Error,
            object.clone(),
            format!(
                "{node_text} refused the pod: {} (its kubelet knows restartPolicy but has the SidecarContainers gate off){}",
                pod["status"]["message"].as_str().unwrap_or("InitContainerRestartPolicyForbidden"),
                if misclassed {
                    "; the node is classed capable all the same (its kubelet's gate was never read), so the node label steers affinity pods onto it too"
                } else {
                    ""
                }
            ),
            Some(if misclassed {
                "turn the gate on for that kubelet; and let label-nodes read each kubelet's gate (get on nodes/proxy) so that the node is labelled rejected and affinity and universal pods keep off it".into()
            } else {
                "turn the gate on for that kubelet, or keep such pods off it: inject in affinity or universal mode (which steer by the node label), or legacy".into()
            }),
        ));
    }

    // A native sidecar running as a plain init container on a node that ignores the field.
    let running_native: Vec<&String> = native
        .iter()
        .filter(|n| {
            status_of(pod, "initContainerStatuses", n)["state"]
                .get("running")
                .is_some()
        })
        .collect();
    if phase == "Pending" && !running_native.is_empty() {
        let list = running_native
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match ctx.node_class {
            Some(NodeClass::Unaware) => a.findings.push(Finding::new(
                "pods.stuck-in-init",
                Severity::Error,
                object.clone(),
                format!(
                    "{node_text} ignores restartPolicy: the sidecar(s) {list} run as plain init containers that never complete, so the pod stays in Init"
                ),
                Some("delete the pod once it can land on a capable node; inject in affinity or universal mode, or legacy, while unaware nodes remain".into()),
            )),
            None | Some(NodeClass::Unknown) => {
                let waiting_apps = apps.iter().all(|n| {
                    status_of(pod, "containerStatuses", n)["state"]["waiting"]["reason"]
                        == "PodInitializing"
                });
                if waiting_apps && !apps.is_empty() {
                    a.findings.push(Finding::new(
                        "pods.stuck-in-init",
                        Severity::Warning,
                        object.clone(),
                        format!(
                            "the sidecar(s) {list} run while the app containers wait in PodInitializing on {node_text}, whose class is unknown: if its kubelet is older than 1.28 the pod never leaves Init"
                        ),
                        Some("run doctor cluster to see the node's class".into()),
                    ));
                }
            }
            _ => {}
        }
    }

    // restartPolicy lost between the owner's template and the pod.
    if let Some(owner) = &ctx.owner {
        let lost: Vec<&String> = owner
            .template_sidecars
            .iter()
            .filter(|n| {
                inits
                    .iter()
                    .any(|c| c["name"] == n.as_str() && c["restartPolicy"] != "Always")
            })
            .collect();
        for n in &lost {
            a.sidecars.push(format!("{n} (restartPolicy lost)"));
        }
        if !lost.is_empty() {
            a.findings.push(Finding::new(
                "pods.restart-policy-stripped",
                Severity::Error,
                object.clone(),
                format!(
                    "{} declares restartPolicy: Always on {}, the pod does not: a mutating webhook (or an API server with the gate off) removed it, so the sidecar became a blocking init container",
                    owner.display,
                    lost.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                Some("run doctor webhooks -n NAMESPACE to find the webhook; it needs patch-based mutation or a build with a 1.28+ client".into()),
            ));
        }
    }
    if let Some(st) = &status {
        for i in &st.injections {
            let mode = i.mode.as_str();
            if mode != "native" && mode != "affinity" {
                continue;
            }
            let ours: Vec<&Value> = inits
                .iter()
                .filter(|c| {
                    c["name"].as_str().is_some_and(|n| {
                        i.added.init_containers.iter().any(|x| x == n)
                            && n != sidecar_kit_core::profile::INSTALL_CONTAINER
                    })
                })
                .collect();
            if !ours.is_empty() && ours.iter().all(|c| c["restartPolicy"] != "Always") {
                a.findings.push(Finding::new(
                    "pods.restart-policy-stripped",
                    Severity::Error,
                    object.clone(),
                    format!(
                        "sidecar-kit injected profile {} in {mode} mode, but none of its init containers carries restartPolicy: Always any more: a later mutating webhook removed it",
                        i.profile
                    ),
                    Some("run doctor webhooks -n NAMESPACE to find the webhook; sidecar-kit's webhook puts the field back when it is re-invoked (reinvocationPolicy: IfNeeded)".into()),
                ));
            }
        }
    }

    // Job pods kept alive by a legacy sidecar.
    if restart_policy != "Always" && phase == "Running" {
        let done = |n: &String| {
            terminated(status_of(pod, "containerStatuses", n), "state")
                .is_some_and(|t| t["exitCode"].as_i64() == Some(0) || restart_policy == "Never")
        };
        let running = |n: &String| {
            status_of(pod, "containerStatuses", n)["state"]
                .get("running")
                .is_some()
        };
        let (finished_apps, still): (Vec<String>, Vec<String>) = if legacy.is_empty() {
            // Without the status annotation: containers still running next to finished ones.
            let all = names(&pod["spec"]["containers"]);
            (
                all.iter().filter(|n| done(n)).cloned().collect(),
                all.iter().filter(|n| running(n)).cloned().collect(),
            )
        } else {
            let apps_done = apps.iter().all(done);
            (
                if apps_done { apps.clone() } else { Vec::new() },
                legacy.iter().filter(|n| running(n)).cloned().collect(),
            )
        };
        if !finished_apps.is_empty() && !still.is_empty() {
            let sure = !legacy.is_empty();
            let (apps_n, still_n) = (finished_apps.len(), still.len());
            a.findings.push(Finding::new(
                "pods.job-kept-alive",
                if sure { Severity::Error } else { Severity::Warning },
                object.clone(),
                format!(
                    "{} {} {} finished, but {} {} still running{} (restartPolicy {restart_policy}): the pod never completes, so its Job never finishes or retries",
                    if apps_n == 1 { "app container" } else { "app containers" },
                    finished_apps.join(", "),
                    if apps_n == 1 { "has" } else { "have" },
                    still.join(", "),
                    if still_n == 1 { "is" } else { "are" },
                    match (sure, still_n == 1) {
                        (true, true) => " as a legacy sidecar",
                        (true, false) => " as legacy sidecars",
                        (false, true) => ", likely a legacy sidecar",
                        (false, false) => ", likely legacy sidecars",
                    }
                ),
                Some("make the sidecar native (Jobs complete without waiting for native sidecars), or use sidecar-kit's Job-safe legacy wiring (sidecar-shim stops the sidecar when the app containers are done)".into()),
            ));
        }
    }

    // Sidecars: crash loops and teardown exits.
    let mut sidecars: Vec<(String, &str)> = native
        .iter()
        .map(|n| (n.clone(), "initContainerStatuses"))
        .collect();
    sidecars.extend(legacy.iter().map(|n| (n.clone(), "containerStatuses")));
    let ending =
        matches!(phase, "Succeeded" | "Failed") || !pod["metadata"]["deletionTimestamp"].is_null();
    for (n, list) in &sidecars {
        let cs = status_of(pod, list, n);
        if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            let last = terminated(cs, "lastState")
                .and_then(|t| t["exitCode"].as_i64())
                .map_or(String::new(), |c| format!(", last exit {c}"));
            a.findings.push(Finding::new(
                "pods.sidecar-crash-looping",
                Severity::Warning,
                object.clone(),
                format!(
                    "sidecar {n} is in CrashLoopBackOff ({} restarts{last})",
                    cs["restartCount"].as_i64().unwrap_or(0)
                ),
                Some(format!("kubectl logs {name} -n {ns} -c {n} --previous")),
            ));
        }
        if let Some(code) = terminated(cs, "state").and_then(|t| t["exitCode"].as_i64())
            && (code == 137 || code == 143)
            && ending
        {
            a.findings.push(Finding::new(
                "pods.sidecar-teardown-exit",
                Severity::Info,
                object.clone(),
                if code == 143 {
                    format!("sidecar {n} exited 143 (SIGTERM) at teardown: expected, not a failure")
                } else {
                    format!("sidecar {n} exited 137 (SIGKILL) at teardown: expected, though it means it did not stop on SIGTERM within the grace period")
                },
                None,
            ));
        }
    }

    // Containers sidecar-kit added that the kubelet will not create because they would run
    // as root under runAsNonRoot (most sidecar images run as root).
    for (list, statuses) in [
        ("initContainers", "initContainerStatuses"),
        ("containers", "containerStatuses"),
    ] {
        for c in pod["spec"][list].as_array().into_iter().flatten() {
            let Some(n) = c["name"].as_str() else {
                continue;
            };
            if !added
                .init_containers
                .iter()
                .chain(&added.containers)
                .any(|a| a == n)
            {
                continue;
            }
            let waiting = &status_of(pod, statuses, n)["state"]["waiting"];
            let message = waiting["message"].as_str().unwrap_or_default();
            if waiting["reason"] != "CreateContainerConfigError"
                || !message.contains("runAsNonRoot")
            {
                continue;
            }
            let own = c["securityContext"]["runAsNonRoot"] == true;
            let wrapped = c["command"][0].as_str() == Some(sidecar_kit_core::engine::SHIM_BIN);
            let fix = if own && wrapped {
                "re-create the pod with this version of sidecar-kit: its shim-wrapped copies keep the profile container's own securityContext (earlier versions added runAsNonRoot: true); or give the sidecar a non-root runAsUser in the profile"
            } else if own {
                "the profile asks for runAsNonRoot: give the sidecar a non-root runAsUser in the profile as well, or use an image whose USER is a numeric non-root user"
            } else {
                "the pod's securityContext asks for runAsNonRoot: give the sidecar a non-root runAsUser in the profile, or use an image whose USER is a numeric non-root user"
            };
            a.findings.push(Finding::new(
                "pods.sidecar-refused-as-root",
                Severity::Error,
                object.clone(),
                format!("the kubelet will not create sidecar container {n}: {message} (CreateContainerConfigError; its image runs as root, and {} asks for runAsNonRoot)", if own { "its own securityContext" } else { "the pod's securityContext" }),
                Some(fix.into()),
            ));
        }
    }

    // Universal: which copy runs the sidecar.
    for c in inits.iter().filter(|c| is_shim_role(c, "native")) {
        let Some(n) = c["name"].as_str() else {
            continue;
        };
        let legacy_name = format!("{n}{}", sidecar_kit_core::profile::LEGACY_SUFFIX);
        let ncs = status_of(pod, "initContainerStatuses", n);
        let lcs = status_of(pod, "containerStatuses", &legacy_name);
        let (nm, lm) = (message_of(ncs), message_of(lcs));
        let (copy, from) = match (nm.as_deref(), lm.as_deref()) {
            (Some("native"), Some("legacy")) => ("both", "termination message"),
            (Some("native"), _) => ("native", "termination message"),
            (_, Some("legacy")) => ("legacy", "termination message"),
            _ => {
                let native_runs = ncs["state"].get("running").is_some()
                    && ncs["started"].as_bool().unwrap_or(false)
                    && ncs["restartCount"].as_i64().unwrap_or(0) >= 1;
                let native_done = terminated(ncs, "state").is_some();
                let legacy_runs = lcs["state"].get("running").is_some();
                if native_runs {
                    ("native", "container state")
                } else if native_done && legacy_runs {
                    ("legacy", "container state")
                } else {
                    ("undecided", "container state")
                }
            }
        };
        if copy == "both" {
            a.findings.push(Finding::new(
                "pods.universal-both-copies",
                Severity::Error,
                object.clone(),
                format!("both copies of universal sidecar {n} ran it ({n} and {legacy_name}): two sidecars in one pod"),
                Some("the native copy needs its startup probe (sidecar-shim probe); re-inject with this sidecar-kit".into()),
            ));
        }
        // Where the API server dropped restartPolicy at admission (its gate off), the native
        // copy is a plain init container and the legacy copy runs the sidecar by design.
        if copy == "legacy"
            && ctx.node_class == Some(NodeClass::Capable)
            && c["restartPolicy"] == "Always"
        {
            a.findings.push(Finding::new(
                "pods.universal-legacy-on-capable-node",
                Severity::Warning,
                object.clone(),
                format!("the legacy copy {legacy_name} runs sidecar {n} although {node_text} runs native sidecars"),
                Some("the native copy's detection restart did not happen: check its logs".into()),
            ));
        }
        a.sidecars.push(format!("{n} (universal: {copy} copy)"));
        a.universal.push(UniversalCopy {
            sidecar: n.to_string(),
            copy: copy.into(),
            from: from.into(),
        });
    }
    let universal_names: BTreeSet<String> = a
        .universal
        .iter()
        .flat_map(|u| {
            [
                u.sidecar.clone(),
                format!("{}{}", u.sidecar, sidecar_kit_core::profile::LEGACY_SUFFIX),
            ]
        })
        .collect();
    for n in &native {
        if !universal_names.contains(n) {
            a.sidecars.push(format!("{n} (native)"));
        }
    }
    for n in &legacy {
        if !universal_names.contains(n) {
            a.sidecars.push(format!("{n} (legacy)"));
        }
    }
    a
}

fn owner_ref(pod: &Pod) -> Option<(String, String)> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone()))
}

fn template_sidecars(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.clone())
        .collect()
}

/// Reads the owner's template; `Err` names the permission that is missing.
async fn owner(
    s: &Session,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<Option<Owner>, (String, ApiProblem)> {
    let c = s.client.clone();
    macro_rules! get {
        ($t:ty, $res:literal) => {{
            let api: Api<$t> = Api::namespaced(c, ns);
            bounded(api.get_opt(name))
                .await
                .map_err(|p| (format!("get on {} in namespace {ns}", $res), p))?
        }};
    }
    Ok(match kind {
        "ReplicaSet" => get!(ReplicaSet, "replicasets.apps").map(|rs| {
            let deploy = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Deployment")
                .map(|o| o.name.clone());
            Owner {
                display: match deploy {
                    Some(d) => format!("Deployment {d} (ReplicaSet {name})"),
                    None => format!("ReplicaSet {name}"),
                },
                template_sidecars: template_sidecars(
                    rs.spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .and_then(|t| t.spec.as_ref()),
                ),
            }
        }),
        "StatefulSet" => get!(StatefulSet, "statefulsets.apps").map(|o| Owner {
            display: format!("StatefulSet {name}"),
            template_sidecars: template_sidecars(
                o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            ),
        }),
        "DaemonSet" => get!(DaemonSet, "daemonsets.apps").map(|o| Owner {
            display: format!("DaemonSet {name}"),
            template_sidecars: template_sidecars(
                o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            ),
        }),
        "Job" => get!(Job, "jobs.batch").map(|o| {
            let cron = o
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.kind == "CronJob")
                .map(|r| r.name.clone());
            Owner {
                display: match cron {
                    Some(cj) => format!("CronJob {cj} (Job {name})"),
                    None => format!("Job {name}"),
                },
                template_sidecars: template_sidecars(
                    o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
                ),
            }
        }),
        _ => None,
    })
}

/// Node classes by node name (from versions and the labeler's annotation); None when
/// nodes cannot be listed.
pub async fn node_classes(
    s: &Session,
    report: &mut Report,
) -> Result<Option<HashMap<String, NodeClass>>, DoctorError> {
    let api: Api<Node> = Api::all(s.client.clone());
    match list_all(&api, &ListParams::default()).await {
        Ok(nodes) => Ok(Some(
            nodes
                .iter()
                .map(|n| {
                    let f = node_facts(n);
                    (f.name.clone(), f.class())
                })
                .collect(),
        )),
        Err(p) if p.is_forbidden() => {
            report.blind_spots.push(BlindSpot {
                what: "node classes (which pods sit on unaware or rejecting nodes)".into(),
                permission: "list on nodes".into(),
            });
            Ok(None)
        }
        Err(p) => Err(DoctorError::Cluster(format!(
            "cannot list nodes: {}",
            p.message()
        ))),
    }
}

/// Lists the pods asked for. A namespace whose pods are forbidden is a blind spot; when
/// nothing at all can be read, the command ends (exit 3). With `-A` and no cluster-wide
/// `list` on pods, the namespaces are listed and read one by one.
pub async fn list_pods(
    s: &Session,
    namespaces: &[String],
    all: bool,
    name: Option<&str>,
    report: &mut Report,
) -> Result<Vec<Pod>, DoctorError> {
    let fail = |what: String, p: ApiProblem| {
        if p.is_forbidden() {
            DoctorError::Cluster(format!(
                "cannot read pods {what}: {} (grant list and get on pods)",
                p.message()
            ))
        } else {
            DoctorError::Cluster(format!("cannot read pods {what}: {}", p.message()))
        }
    };
    let mut namespaces: Vec<String> = if namespaces.is_empty() {
        vec![s.namespace.clone()]
    } else {
        namespaces.to_vec()
    };
    if let Some(name) = name {
        let ns = &namespaces[0];
        let api: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        return match bounded(api.get_opt(name)).await {
            Ok(Some(p)) => Ok(vec![p]),
            Ok(None) => Err(DoctorError::Input(format!("pod {ns}/{name} not found"))),
            Err(p) => Err(fail(format!("in namespace {ns}"), p)),
        };
    }
    if all {
        let api: Api<Pod> = Api::all(s.client.clone());
        match list_all(&api, &ListParams::default()).await {
            Ok(pods) => return Ok(pods),
            Err(p) if p.is_forbidden() => {
                let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.client.clone());
                let list = list_all(&ns_api, &ListParams::default())
                    .await
                    .map_err(|_| fail("in all namespaces".into(), p))?;
                namespaces = list.into_iter().filter_map(|n| n.metadata.name).collect();
                namespaces.sort();
            }
            Err(p) => return Err(fail("in all namespaces".into(), p)),
        }
    }
    let mut out = Vec::new();
    let mut readable = 0;
    let mut last = None;
    for ns in &namespaces {
        let api: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        match list_all(&api, &ListParams::default()).await {
            Ok(pods) => {
                readable += 1;
                out.extend(pods);
            }
            Err(p) if p.is_forbidden() => {
                report.blind_spots.push(BlindSpot {
                    what: format!("the pods in namespace {ns}"),
                    permission: format!("list on pods in namespace {ns}"),
                });
                last = Some((ns.clone(), p));
            }
            Err(p) => return Err(fail(format!("in namespace {ns}"), p)),
        }
    }
    match (readable, last) {
        (0, Some((ns, p))) => Err(fail(format!("in namespace {ns}"), p)),
        _ => Ok(out),
    }
}

/// The report and the timelines drawn.
pub struct PodsResult {
    pub report: Report,
    /// Pods with a finding first (in the order of the sorted findings), then the others
    /// (by name); at most [`MAX_TIMELINES`].
    pub timelines: Vec<Timeline>,
    /// How many of `timelines`, from the start, are of pods with a finding.
    pub with_findings: usize,
    /// The time the report was taken at, to the second.
    pub report_time: Timestamp,
}

/// The report as text: the summary, the table and the findings, then the timelines.
pub fn text(r: &PodsResult) -> String {
    let mut t = render(&r.report, Format::Table, None);
    for tl in &r.timelines {
        t.push('\n');
        t.push_str(&timeline::text(tl));
    }
    t
}

/// The report as an HTML page: the summary, the table and the findings first, then the
/// timeline of each pod with a finding, then (in a section the reader can fold) the
/// timelines of the other pods.
pub fn html(r: &PodsResult) -> String {
    let (flagged, others) = r.timelines.split_at(r.with_findings.min(r.timelines.len()));
    let mut extra = String::new();
    if !flagged.is_empty() {
        extra.push_str("<h2>Timelines of the pods with findings</h2>\n");
        for t in flagged {
            extra.push_str(&timeline::html(t));
        }
    }
    if !others.is_empty() {
        extra.push_str(&format!(
            "<details class=\"other-timelines\" open>\n<summary><h2>Timelines of {} other pod(s)</h2></summary>\n",
            others.len()
        ));
        for t in others {
            extra.push_str(&timeline::html(t));
        }
        extra.push_str("</details>\n");
    }
    render(
        &r.report,
        Format::Html,
        (!extra.is_empty()).then_some(extra.as_str()),
    )
}

/// Runs `doctor pods`.
pub async fn run(s: &Session, o: &PodsOptions) -> Result<PodsResult, DoctorError> {
    let mut report = Report::new("doctor pods");
    let mut pods = list_pods(
        s,
        &o.namespaces,
        o.all_namespaces,
        o.name.as_deref(),
        &mut report,
    )
    .await?;
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let classes = if pods
        .iter()
        .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
    {
        node_classes(s, &mut report).await?
    } else {
        None
    };
    let mut owners: HashMap<(String, String, String), Option<Owner>> = HashMap::new();
    let mut missing_perms: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut data = Vec::new();
    let mut timelines = Vec::new();
    let taken = o.report_time.unwrap_or_else(Timestamp::now);
    // Kubernetes records whole seconds; so does the report.
    let taken = Timestamp::from_second(taken.as_second()).unwrap_or(taken);
    let total = pods.len();
    for pod in &pods {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
        let inits_without_field = spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|l| {
                l.iter()
                    .any(|c| c.restart_policy.as_deref() != Some("Always"))
            });
        let mut ctx = Context {
            node_class: classes.as_ref().and_then(|c| c.get(&node).copied()),
            owner: None,
        };
        if inits_without_field && let Some((kind, oname)) = owner_ref(pod) {
            let key = (ns.clone(), kind.clone(), oname.clone());
            if !owners.contains_key(&key) {
                let got = match owner(s, &ns, &kind, &oname).await {
                    Ok(o) => o,
                    Err((perm, p)) if p.is_forbidden() => {
                        *missing_perms.entry(perm).or_default() += 1;
                        None
                    }
                    Err((_, p)) => {
                        return Err(DoctorError::Cluster(format!(
                            "cannot read {kind} {ns}/{oname}: {}",
                            p.message()
                        )));
                    }
                };
                owners.insert(key.clone(), got);
            }
            ctx.owner = owners.get(&key).cloned().flatten();
        }
        let raw = serde_json::to_value(pod).unwrap_or(Value::Null);
        let a = analyse(&raw, &ctx);
        let interesting =
            !a.sidecars.is_empty() || !a.injected.is_empty() || !a.findings.is_empty();
        if !interesting && o.name.is_none() {
            continue;
        }
        let phase = raw["status"]["phase"].as_str().unwrap_or("-").to_string();
        rows.push(vec![
            format!("{ns}/{name}"),
            phase.clone(),
            if node.is_empty() {
                "-".into()
            } else {
                match ctx.node_class {
                    Some(c) => format!("{node} ({c})"),
                    None => node.clone(),
                }
            },
            if a.sidecars.is_empty() {
                "-".into()
            } else {
                a.sidecars.join(", ")
            },
            if a.injected.is_empty() {
                "-".into()
            } else {
                a.injected.join(", ")
            },
        ]);
        let tl = timeline::of(&raw, taken);
        data.push(json!({
            "pod": format!("{ns}/{name}"),
            "phase": phase,
            "node": node,
            "nodeClass": ctx.node_class,
            "sidecars": a.sidecars,
            "injected": a.injected,
            "universal": a.universal,
            "timeline": tl,
        }));
        if let Some(t) = tl {
            timelines.push(t);
        }
        report.findings.extend(a.findings);
    }
    for (perm, n) in missing_perms {
        report.blind_spots.push(BlindSpot {
            what: format!("the owners' templates of {n} workload(s) (whether restartPolicy was lost between template and pod)"),
            permission: perm,
        });
    }
    let scope = if o.all_namespaces {
        "all namespaces".to_string()
    } else if o.namespaces.is_empty() {
        format!("namespace {}", s.namespace)
    } else {
        format!("namespace(s) {}", o.namespaces.join(", "))
    };
    report.summary.push(format!(
        "{total} pod(s) in {scope}; {} with sidecars or findings",
        rows.len()
    ));
    report
        .summary
        .push(format!("report taken at {taken}; the timelines end there"));
    report.sorted();
    // Timelines: the pods with a finding first, in the order of the findings.
    let mut order: Vec<String> = Vec::new();
    for f in &report.findings {
        if let Some(p) = f.object.as_deref().and_then(|o| o.strip_prefix("Pod "))
            && !order.iter().any(|x| x == p)
        {
            order.push(p.to_string());
        }
    }
    let rank = |t: &Timeline| {
        order
            .iter()
            .position(|p| *p == t.pod)
            .unwrap_or(order.len())
    };
    timelines.sort_by_key(|t| rank(t));
    let with_findings = timelines
        .iter()
        .filter(|t| rank(t) < order.len())
        .count()
        .min(MAX_TIMELINES);
    if timelines.len() > MAX_TIMELINES {
        report.summary.push(format!(
            "timelines drawn for {MAX_TIMELINES} pods (those with findings first); {} more in -o json (or name one pod)",
            timelines.len() - MAX_TIMELINES
        ));
        timelines.truncate(MAX_TIMELINES);
    }
    if !rows.is_empty() {
        report.table.push(
            ["POD", "PHASE", "NODE", "SIDECARS", "INJECTED"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        report.table.extend(rows);
    }
    report.data = json!({ "reportTime": taken.to_string(), "pods": data });
    Ok(PodsResult {
        report,
        timelines,
        with_findings,
        report_time: taken,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec, "status": status})
    }

    fn checks(a: &Analysis) -> Vec<(&str, Severity)> {
        a.findings
            .iter()
            .map(|f| (f.check.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn sidecar_refused_as_root() {
        let st = r#"{"v":1,"injections":[{"profile":"log","hash":"sha256:1","mode":"universal","reason":"r","added":{"initContainers":["sidecar-kit-install","log"],"containers":["log-legacy"],"volumes":["sidecar-kit"]}}]}"#;
        let refused = json!({"waiting": {"reason": "CreateContainerConfigError", "message": "container has runAsNonRoot and image will run as root (pod: \"p_ns(1)\", container: log-legacy)"}});
        let mut p = pod(
            json!({"nodeName": "n1",
                "initContainers": [{"name": "sidecar-kit-install"}, {"name": "log", "restartPolicy": "Always", "command": ["/sidecar-kit/bin/sidecar-shim", "native"], "securityContext": {"runAsNonRoot": true}}],
                "containers": [{"name": "app"}, {"name": "log-legacy", "command": ["/sidecar-kit/bin/sidecar-shim", "legacy"], "securityContext": {"runAsNonRoot": true}}]}),
            json!({"phase": "Pending",
                "initContainerStatuses": [{"name": "log", "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "state": {"running": {}}}, {"name": "log-legacy", "state": refused}]}),
        );
        p["metadata"]["annotations"] = json!({STATUS_ANNOTATION: st});
        let ctx = Context {
            node_class: Some(NodeClass::Capable),
            owner: None,
        };
        let a = analyse(&p, &ctx);
        assert_eq!(
            checks(&a),
            vec![("pods.sidecar-refused-as-root", Severity::Error)]
        );
        assert!(
            a.findings[0]
                .message
                .contains("sidecar container log-legacy"),
            "{}",
            a.findings[0].message
        );
        assert!(
            a.findings[0]
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("keep the profile container's own securityContext")
        );
        // The same wait on an app container is not sidecar-kit's to explain.
        p["status"]["containerStatuses"] = json!([{"name": "app", "state": refused}, {"name": "log-legacy", "state": {"running": {}}}]);
        assert!(checks(&analyse(&p, &ctx)).is_empty());
    }

    #[test]
    fn rejected_and_stuck() {
        let spec = json!({"nodeName": "n1", "initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Failed", "reason": "InitContainerRestartPolicyForbidden", "message": "Init container \"proxy\" may not have a non-default restartPolicy"}),
        );
        let a = analyse(
            &p,
            &Context {
                node_class: Some(NodeClass::Rejecting),
                owner: None,
            },
        );
        assert_eq!(checks(&a), vec![("pods.rejected-by-node", Severity::Error)]);
        assert!(a.findings[0].message.contains("node n1 (rejecting)"));
        assert!(!a.findings[0].message.contains("classed capable"));
        // A node classed capable (its gate never read) that refused the pod: said, with the fix
        // that makes the label right.
        let a = analyse(
            &p,
            &Context {
                node_class: Some(NodeClass::Capable),
                owner: None,
            },
        );
        assert_eq!(checks(&a), vec![("pods.rejected-by-node", Severity::Error)]);
        assert!(
            a.findings[0]
                .message
                .contains("classed capable all the same"),
            "{}",
            a.findings[0].message
        );
        assert!(
            a.findings[0]
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("nodes/proxy")),
            "{:?}",
            a.findings[0].fix
        );
        let stuck = pod(
            spec,
            json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "proxy", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        let a = analyse(
            &stuck,
            &Context {
                node_class: Some(NodeClass::Unaware),
                owner: None,
            },
        );
        assert_eq!(checks(&a), vec![("pods.stuck-in-init", Severity::Error)]);
        let a = analyse(&stuck, &Context::default());
        assert_eq!(checks(&a), vec![("pods.stuck-in-init", Severity::Warning)]);
        let a = analyse(
            &stuck,
            &Context {
                node_class: Some(NodeClass::Capable),
                owner: None,
            },
        );
        assert!(a.findings.is_empty());
        assert_eq!(a.sidecars, vec!["proxy (native)"]);
    }

    #[test]
    fn stripped_against_the_template() {
        let p = pod(
            json!({"initContainers": [{"name": "proxy"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending"}),
        );
        let owner = Owner {
            display: "Deployment web (ReplicaSet web-1)".into(),
            template_sidecars: vec!["proxy".into()],
        };
        let a = analyse(
            &p,
            &Context {
                node_class: None,
                owner: Some(owner),
            },
        );
        assert_eq!(
            checks(&a),
            vec![("pods.restart-policy-stripped", Severity::Error)]
        );
        assert!(
            a.findings[0]
                .message
                .starts_with("Deployment web (ReplicaSet web-1) declares")
        );
    }

    #[test]
    fn job_kept_alive_and_teardown() {
        let st = r#"{"v":1,"injections":[{"profile":"log","hash":"sha256:1","mode":"legacy","reason":"r","added":{"containers":["log"]}}]}"#;
        let mut p = pod(
            json!({"restartPolicy": "Never", "containers": [{"name": "app"}, {"name": "log"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0}}},
                {"name": "log", "state": {"running": {}}}]}),
        );
        p["metadata"]["annotations"] = json!({ STATUS_ANNOTATION: st });
        let a = analyse(&p, &Context::default());
        assert_eq!(checks(&a), vec![("pods.job-kept-alive", Severity::Error)]);
        assert_eq!(
            a.findings[0].message,
            "app container app has finished, but log is still running as a legacy sidecar (restartPolicy Never): the pod never completes, so its Job never finishes or retries"
        );
        // Without the status annotation: a guess, said as one, in words that fit the count.
        let mut guessed = p.clone();
        guessed["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        guessed["spec"]["containers"] =
            json!([{"name": "app"}, {"name": "log"}, {"name": "metrics"}]);
        guessed["status"]["containerStatuses"] = json!([
            {"name": "app", "state": {"terminated": {"exitCode": 0}}},
            {"name": "log", "state": {"running": {}}},
            {"name": "metrics", "state": {"running": {}}}]);
        let g = analyse(&guessed, &Context::default());
        assert_eq!(checks(&g), vec![("pods.job-kept-alive", Severity::Warning)]);
        assert!(
            g.findings[0].message.starts_with(
                "app container app has finished, but log, metrics are still running, likely legacy sidecars (restartPolicy Never)"
            ),
            "{}",
            g.findings[0].message
        );
        assert_eq!(a.sidecars, vec!["log (legacy)"]);
        assert_eq!(a.injected, vec!["log legacy (sha256:1)"]);
        let done = pod(
            json!({"restartPolicy": "Never", "initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Succeeded", "initContainerStatuses": [{"name": "proxy", "state": {"terminated": {"exitCode": 143}}}],
                   "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 0}}}]}),
        );
        let a = analyse(&done, &Context::default());
        assert_eq!(
            checks(&a),
            vec![("pods.sidecar-teardown-exit", Severity::Info)]
        );
        let crash = pod(
            json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Running", "initContainerStatuses": [{"name": "proxy", "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}]}),
        );
        let a = analyse(&crash, &Context::default());
        assert_eq!(
            checks(&a),
            vec![("pods.sidecar-crash-looping", Severity::Warning)]
        );
        assert!(a.findings[0].message.contains("5 restarts, last exit 1"));
    }

    #[test]
    fn universal_copies() {
        let spec = json!({"initContainers": [
                {"name": "sidecar-kit-install", "command": ["sidecar-shim", "install", "/sidecar-kit/bin"]},
                {"name": "log", "restartPolicy": "Always", "command": ["/sidecar-kit/bin/sidecar-shim", "native", "--state", "/sidecar-kit/state/log", "--", "ship"]}],
            "containers": [{"name": "app"}, {"name": "log-legacy", "command": ["/sidecar-kit/bin/sidecar-shim", "legacy", "--state", "/sidecar-kit/state/log", "--pod-restart-policy", "Always", "--", "ship"]}]});
        let native = pod(
            spec.clone(),
            json!({"phase": "Running", "initContainerStatuses": [
            {"name": "log", "restartCount": 1, "started": true, "state": {"running": {}}}]}),
        );
        let a = analyse(&native, &Context::default());
        assert_eq!(a.universal[0].copy, "native");
        assert_eq!(a.sidecars, vec!["log (universal: native copy)"]);
        let legacy = pod(
            spec.clone(),
            json!({"phase": "Running",
            "initContainerStatuses": [{"name": "log", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "log-legacy", "state": {"running": {}}}]}),
        );
        let a = analyse(
            &legacy,
            &Context {
                node_class: Some(NodeClass::Capable),
                owner: None,
            },
        );
        assert_eq!(a.universal[0].copy, "legacy");
        assert_eq!(
            checks(&a),
            vec![("pods.universal-legacy-on-capable-node", Severity::Warning)]
        );
        // The same pod from an API server that dropped restartPolicy (gate off): the native
        // copy is a plain init container, so the legacy copy runs the sidecar as designed.
        let mut dropped = legacy.clone();
        dropped["spec"]["initContainers"][1]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        let a = analyse(
            &dropped,
            &Context {
                node_class: Some(NodeClass::Capable),
                owner: None,
            },
        );
        assert_eq!(a.universal[0].copy, "legacy");
        assert_eq!(checks(&a), vec![], "no warning: {:?}", a.findings);
        let both = pod(
            spec,
            json!({"phase": "Running",
            "initContainerStatuses": [{"name": "log", "lastState": {"terminated": {"exitCode": 0, "message": "native"}}, "state": {"running": {}}}],
            "containerStatuses": [{"name": "log-legacy", "lastState": {"terminated": {"exitCode": 0, "message": "legacy\n"}}, "state": {"running": {}}}]}),
        );
        let a = analyse(&both, &Context::default());
        assert_eq!(
            (a.universal[0].copy.as_str(), a.universal[0].from.as_str()),
            ("both", "termination message")
        );
        assert_eq!(
            checks(&a),
            vec![("pods.universal-both-copies", Severity::Error)]
        );
    }
}
