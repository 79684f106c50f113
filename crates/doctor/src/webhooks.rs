//! `doctor webhooks`: which mutating webhooks see pod creations, in the order the API
//! server calls them, and whether `restartPolicy: Always` on a native sidecar survives
//! them, proved by a server-side dry-run create of a probe pod (nothing is stored).
//!
//! The API's answer says whether the field survived, not which webhook removed it: where
//! it did not, every webhook's rules, selectors and `matchConditions` are evaluated
//! against the probe to name the ones that saw it. The audit log would name the culprit
//! (`patch.webhook.admission.k8s.io/round_N_index_M`), and the report says so.

use crate::cel::{self, CelError};
use crate::conn::{ApiProblem, DoctorError, REQUEST_TIMEOUT, Session, bounded, list_all};
use crate::report::{BlindSpot, Finding, Report, Severity};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde_json::{Value, json};
use sidecar_kit_cluster::apiserver::metrics_gate;
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_core::selector::LabelSelector;
use sidecar_kit_core::version::{FieldKept, GateState, KubeVersion, api_server_keeps_field};
use std::collections::{BTreeMap, BTreeSet};

/// Flags of `doctor webhooks`.
#[derive(Debug, Clone, Default)]
pub struct WebhooksOptions {
    /// Namespaces to probe; empty: the kubeconfig's namespace.
    pub namespaces: Vec<String>,
    /// Profiles whose selected workloads' labels are probed too.
    pub profiles: Option<ProfileSet>,
}

/// Name of the probe's native sidecar.
pub const PROBE_SIDECAR: &str = "sidecar-kit-doctor-probe";
/// The label every probe carries.
pub const PROBE_LABEL: (&str, &str) = ("app.kubernetes.io/name", "sidecar-kit-doctor-probe");
/// The configuration name of sidecar-kit's own webhook (deploy/base).
pub const OWN_CONFIGURATION: &str = "sidecar-kit";
/// Label sets probed per namespace, besides the plain probe.
const MAX_WORKLOAD_PROBES: usize = 8;

const AUDIT_NOTE: &str = "the API's answer does not say which webhook changed the pod; the API server's audit log does, in the annotations patch.webhook.admission.k8s.io/round_N_index_M (needs access to the audit log, at level Metadata or above)";

/// One mutating webhook that intercepts pod CREATE.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// 1-based position in the order the API server calls them.
    pub order: usize,
    pub configuration: String,
    pub webhook: String,
    pub failure_policy: String,
    pub reinvocation_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<Value>,
    pub match_conditions: Vec<(String, String)>,
}

/// Whether a webhook's rules cover pod CREATE (`v1` pods in the core group).
pub fn intercepts_pod_create(w: &MutatingWebhook) -> bool {
    let any = |list: &[String], want: &[&str]| list.iter().any(|x| want.contains(&x.as_str()));
    w.rules.as_deref().unwrap_or_default().iter().any(|r| {
        let ops = r.operations.as_deref().unwrap_or_default();
        let groups = r.api_groups.as_deref().unwrap_or_default();
        let versions = r.api_versions.as_deref().unwrap_or_default();
        let resources = r.resources.as_deref().unwrap_or_default();
        any(ops, &["CREATE", "*"])
            && any(groups, &["", "*"])
            && any(versions, &["v1", "*"])
            && any(resources, &["pods", "*", "*/*"])
            && r.scope
                .as_deref()
                .is_none_or(|s| s == "*" || s == "Namespaced")
    })
}

fn to_core(sel: &K8sSelector) -> Option<LabelSelector> {
    serde_json::to_value(sel)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// `a=b,c in (d,e),!f` as kubectl writes selectors; `<all>` for an empty one.
pub fn selector_text(sel: Option<&K8sSelector>) -> String {
    let Some(sel) = sel else {
        return "<all>".into();
    };
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {op} ({vals})", e.key),
        });
    }
    if parts.is_empty() {
        "<all>".into()
    } else {
        parts.join(",")
    }
}

/// Whether a webhook would see a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Yes,
    No(String),
    /// Cannot tell: why.
    Unknown(String),
}

/// Judges a webhook (already known to intercept pod CREATE) against a pod in a namespace.
pub fn sees(
    w: &MutatingWebhook,
    namespace: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    pod: &Value,
) -> Seen {
    let mut unknown = Vec::new();
    if let Some(sel) = &w.namespace_selector {
        match (to_core(sel), ns_labels) {
            (None, _) => unknown.push("its namespaceSelector cannot be read".to_string()),
            (Some(s), _) if s == LabelSelector::default() => {}
            (Some(_), None) => unknown.push(format!(
                "the labels of namespace {namespace} are not readable for its namespaceSelector"
            )),
            (Some(s), Some(l)) if !s.matches(l) => {
                return Seen::No(format!(
                    "its namespaceSelector {} does not match namespace {namespace}",
                    selector_text(Some(sel))
                ));
            }
            _ => {}
        }
    }
    if let Some(sel) = &w.object_selector {
        let labels: BTreeMap<String, String> = pod["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        match to_core(sel) {
            None => unknown.push("its objectSelector cannot be read".into()),
            Some(s) if !s.matches(&labels) => {
                return Seen::No(format!(
                    "its objectSelector {} does not match the pod's labels",
                    selector_text(Some(sel))
                ));
            }
            _ => {}
        }
    }
    let request = json!({"namespace": namespace, "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}});
    let env = cel::Env {
        object: pod,
        request: &request,
    };
    for c in w.match_conditions.iter().flatten() {
        match cel::evaluate(&c.expression, &env) {
            Ok(true) => {}
            Ok(false) => return Seen::No(format!("its matchCondition {:?} is false", c.name)),
            Err(e @ CelError::Runtime(_)) => unknown.push(format!(
                "matchCondition {:?}: {e} (the API server then applies failurePolicy {})",
                c.name,
                w.failure_policy.as_deref().unwrap_or("Fail")
            )),
            Err(e) => unknown.push(format!("matchCondition {:?}: {e}", c.name)),
        }
    }
    if unknown.is_empty() {
        Seen::Yes
    } else {
        Seen::Unknown(unknown.join("; "))
    }
}

/// The probe pod: a native sidecar and an app container, both passing the `restricted`
/// Pod Security profile, with `labels` (the probe label always included).
pub fn probe_pod(namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut all = labels.clone();
    all.insert(PROBE_LABEL.0.into(), PROBE_LABEL.1.into());
    let container = |name: &str| {
        json!({
            "name": name,
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"}
            }
        })
    };
    let mut sidecar = container(PROBE_SIDECAR);
    sidecar["restartPolicy"] = json!("Always");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{PROBE_SIDECAR}-"),
            "namespace": namespace,
            "labels": all,
            "annotations": {"sidecar-kit.io/doctor": "dry-run probe: never stored"}
        },
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [sidecar],
            "containers": [container("app")],
            "terminationGracePeriodSeconds": 1
        }
    })
}

/// What happened to one probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum ProbeResult {
    /// `restartPolicy: Always` came back.
    Kept,
    /// The sidecar came back without it (or not at all).
    Lost { detail: String },
    /// The dry run was refused for another reason.
    Refused { message: String },
    /// Not allowed to dry-run pods here.
    Forbidden,
}

/// Judges the API server's answer to the dry-run create.
pub fn judge(answer: Result<&Value, &ApiProblem>) -> ProbeResult {
    match answer {
        Ok(pod) => {
            let inits = pod["spec"]["initContainers"].as_array();
            match inits.and_then(|l| l.iter().find(|c| c["name"] == PROBE_SIDECAR)) {
                Some(c) if c["restartPolicy"] == "Always" => ProbeResult::Kept,
                Some(_) => ProbeResult::Lost {
                    detail: "the sidecar came back without restartPolicy".into(),
                },
                None => ProbeResult::Lost {
                    detail: "the sidecar is gone from initContainers".into(),
                },
            }
        }
        Err(p) if p.is_forbidden() => ProbeResult::Forbidden,
        Err(p) if p.message().contains("without restartPolicy=Always") => ProbeResult::Lost {
            detail: format!("the pod became invalid without the field: {}", p.message()),
        },
        Err(p) => ProbeResult::Refused {
            message: p.message().to_string(),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    namespace: String,
    labels: BTreeMap<String, String>,
    /// Where the labels came from.
    origin: String,
    #[serde(flatten)]
    result: ProbeResult,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhooks: Vec<Value>,
}

fn labels_text(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Label sets of pod templates in `ns` that a profile selects.
async fn workload_labels(
    s: &Session,
    ns: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    profiles: &ProfileSet,
    report: &mut Report,
) -> Result<Vec<(String, BTreeMap<String, String>)>, DoctorError> {
    let mut templates: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    macro_rules! kind {
        ($t:ty, $kind:literal, $res:literal, $labels:expr) => {{
            let api: Api<$t> = Api::namespaced(s.client.clone(), ns);
            match list_all(&api, &ListParams::default()).await {
                Ok(items) => {
                    for o in items {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        let labels: BTreeMap<String, String> = $labels(&o).unwrap_or_default();
                        templates.push((format!("{} {name}", $kind), labels));
                    }
                }
                Err(p) if p.is_forbidden() => report.blind_spots.push(BlindSpot {
                    what: format!(
                        "the pod labels of {}s in namespace {ns} (probed without them)",
                        $kind
                    ),
                    permission: format!("list on {} in namespace {ns}", $res),
                }),
                Err(p) => {
                    return Err(DoctorError::Cluster(format!(
                        "cannot list {}s in {ns}: {}",
                        $kind,
                        p.message()
                    )));
                }
            }
        }};
    }
    kind!(
        Deployment,
        "Deployment",
        "deployments.apps",
        |o: &Deployment| o
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
    );
    kind!(
        StatefulSet,
        "StatefulSet",
        "statefulsets.apps",
        |o: &StatefulSet| o
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
    );
    kind!(
        DaemonSet,
        "DaemonSet",
        "daemonsets.apps",
        |o: &DaemonSet| o
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
    );
    kind!(Job, "Job", "jobs.batch", |o: &Job| o
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone()));
    kind!(CronJob, "CronJob", "cronjobs.batch", |o: &CronJob| o
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone()));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (origin, labels) in templates {
        let selected = profiles.iter().any(|p| {
            p.spec.selector.matches(&labels)
                && match (&p.spec.namespace_selector, ns_labels) {
                    (Some(sel), Some(l)) => sel.matches(l),
                    _ => true,
                }
        });
        // Job controllers add run-specific labels; they say nothing about selection.
        let mut labels = labels;
        for k in [
            "batch.kubernetes.io/controller-uid",
            "controller-uid",
            "batch.kubernetes.io/job-name",
            "job-name",
        ] {
            labels.remove(k);
        }
        if selected && !labels.is_empty() && seen.insert(labels.clone()) {
            out.push((origin, labels));
        }
    }
    out.truncate(MAX_WORKLOAD_PROBES);
    Ok(out)
}

/// Runs `doctor webhooks`.
pub async fn run(s: &Session, o: &WebhooksOptions) -> Result<Report, DoctorError> {
    let mut report = Report::new("doctor webhooks");

    // --- the webhooks, in call order ---
    let api: Api<MutatingWebhookConfiguration> = Api::all(s.client.clone());
    let mut configs = match list_all(&api, &ListParams::default()).await {
        Ok(c) => Some(c),
        Err(p) if p.is_forbidden() => {
            report.blind_spots.push(BlindSpot {
                what: "the mutating webhooks (their order, rules, selectors and matchConditions)"
                    .into(),
                permission: "list on mutatingwebhookconfigurations.admissionregistration.k8s.io"
                    .into(),
            });
            None
        }
        Err(p) => {
            return Err(DoctorError::Cluster(format!(
                "cannot list mutating webhook configurations: {}",
                p.message()
            )));
        }
    };
    let mut webhooks: Vec<(String, MutatingWebhook)> = Vec::new();
    if let Some(configs) = configs.as_mut() {
        configs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for c in configs.iter() {
            let cname = c.metadata.name.clone().unwrap_or_default();
            for w in c.webhooks.iter().flatten() {
                if intercepts_pod_create(w) {
                    webhooks.push((cname.clone(), w.clone()));
                }
            }
        }
    }
    let hooks: Vec<Hook> = webhooks
        .iter()
        .enumerate()
        .map(|(i, (cname, w))| Hook {
            order: i + 1,
            configuration: cname.clone(),
            webhook: w.name.clone(),
            failure_policy: w.failure_policy.clone().unwrap_or_else(|| "Fail".into()),
            reinvocation_policy: w
                .reinvocation_policy
                .clone()
                .unwrap_or_else(|| "Never".into()),
            namespace_selector: w
                .namespace_selector
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            object_selector: w
                .object_selector
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            match_conditions: w
                .match_conditions
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.expression.clone()))
                .collect(),
        })
        .collect();
    if configs.is_some() && !hooks.is_empty() {
        report.table.push(
            [
                "#",
                "CONFIGURATION",
                "WEBHOOK",
                "FAILURE",
                "REINVOKE",
                "NAMESPACES",
                "OBJECTS",
                "MATCH CONDITIONS",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        for (h, (_, w)) in hooks.iter().zip(&webhooks) {
            report.table.push(vec![
                h.order.to_string(),
                h.configuration.clone(),
                h.webhook.clone(),
                h.failure_policy.clone(),
                h.reinvocation_policy.clone(),
                selector_text(w.namespace_selector.as_ref()),
                selector_text(w.object_selector.as_ref()),
                if h.match_conditions.is_empty() {
                    "-".into()
                } else {
                    h.match_conditions
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ]);
        }

        // Our own webhook re-asserts restartPolicy on re-invocation only.
        for h in hooks
            .iter()
            .filter(|h| h.configuration == OWN_CONFIGURATION)
        {
            if h.reinvocation_policy != "IfNeeded" && hooks.len() > 1 {
                report.findings.push(Finding::new(
                    "webhooks.sidecar-kit-not-reinvoked",
                    Severity::Warning,
                    Some(format!("MutatingWebhookConfiguration {}, webhook {}", h.configuration, h.webhook)),
                    format!(
                        "reinvocationPolicy is {}: a later webhook that strips restartPolicy from the injected sidecars is never undone",
                        h.reinvocation_policy
                    ),
                    Some("set reinvocationPolicy: IfNeeded (as deploy/base does)".into()),
                ));
            }
        }
    }

    if configs.is_some() {
        report.summary.insert(
            0,
            format!(
                "{} mutating webhook(s) intercept pod CREATE{}",
                hooks.len(),
                if hooks.is_empty() {
                    ""
                } else {
                    ", called in this order (by configuration name, then position)"
                }
            ),
        );
    }

    // --- does the API server itself keep the field? ---
    let api_version = KubeVersion::parse(&s.version.git_version);
    let gate = match metrics_gate(&s.client, "/metrics", REQUEST_TIMEOUT).await {
        Ok(Some(g)) => g,
        _ => GateState::Unknown,
    };
    let kept = api_server_keeps_field(api_version.as_ref(), gate);
    if let FieldKept::No(reason) = &kept {
        report.findings.push(Finding::new(
            "webhooks.apiserver-drops-restart-policy",
            Severity::Error,
            Some("API server".into()),
            format!("{reason}: every pod loses restartPolicy, whatever the webhooks do"),
            Some("turn the SidecarContainers gate on for the API server, or upgrade it (see doctor cluster)".into()),
        ));
    }

    // --- probes ---
    let namespaces = if o.namespaces.is_empty() {
        vec![s.namespace.clone()]
    } else {
        o.namespaces.clone()
    };
    let mut probes = Vec::new();
    let mut suspects: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for ns in &namespaces {
        let ns_api: Api<Namespace> = Api::all(s.client.clone());
        let ns_labels = match bounded(ns_api.get_opt(ns)).await {
            Ok(Some(n)) => Some(n.metadata.labels.unwrap_or_default()),
            Ok(None) => {
                report.findings.push(Finding::new(
                    "webhooks.namespace-missing",
                    Severity::Warning,
                    Some(format!("Namespace {ns}")),
                    "does not exist: not probed",
                    None,
                ));
                continue;
            }
            Err(p) if p.is_forbidden() => {
                report.blind_spots.push(BlindSpot {
                    what: format!(
                        "the labels of namespace {ns} (webhook namespaceSelectors cannot be judged)"
                    ),
                    permission: "get on namespaces".into(),
                });
                None
            }
            Err(p) => {
                return Err(DoctorError::Cluster(format!(
                    "cannot read namespace {ns}: {}",
                    p.message()
                )));
            }
        };
        let mut sets = vec![("the plain probe".to_string(), BTreeMap::new())];
        if let Some(profiles) = &o.profiles {
            sets.extend(workload_labels(s, ns, ns_labels.as_ref(), profiles, &mut report).await?);
        }
        let pods: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        for (origin, labels) in sets {
            let pod_json = probe_pod(ns, &labels);
            let pod: Pod = serde_json::from_value(pod_json.clone())
                .map_err(|e| DoctorError::Runtime(format!("the probe pod does not decode: {e}")))?;
            let pp = PostParams {
                dry_run: true,
                field_manager: Some("sidecar-kit-doctor".into()),
            };
            let answer = bounded(pods.create(&pp, &pod)).await;
            let answer_json = answer
                .as_ref()
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
            let result = judge(answer_json.as_ref().map_err(|e| *e));
            let mut hook_notes = Vec::new();
            match &result {
                ProbeResult::Forbidden => report.blind_spots.push(BlindSpot {
                    what: format!("whether restartPolicy survives the webhooks in namespace {ns}"),
                    permission: format!("create on pods in namespace {ns} (a dry run: nothing is stored)"),
                }),
                ProbeResult::Refused { message } => report.findings.push(Finding::new(
                    "webhooks.probe-refused",
                    Severity::Warning,
                    Some(format!("Namespace {ns}")),
                    format!(
                        "the dry-run probe pod ({origin}) was refused, so whether restartPolicy survives is unknown: {message}"
                    ),
                    Some("a webhook or policy rejected a minimal restricted pod: check the message".into()),
                )),
                ProbeResult::Lost { detail } if !kept.is_no() => {
                    let mut matched = Vec::new();
                    let mut unclear = Vec::new();
                    for (i, (cname, w)) in webhooks.iter().enumerate() {
                        let seen = sees(w, ns, ns_labels.as_ref(), &pod_json);
                        let name = format!("{cname}/{}", w.name);
                        hook_notes.push(json!({"order": i + 1, "webhook": name, "sees": match &seen {
                            Seen::Yes if cname == OWN_CONFIGURATION => "yes (sidecar-kit's own webhook: JSON Patch, keeps the field)".to_string(),
                            Seen::Yes => "yes".to_string(),
                            Seen::No(why) => format!("no: {why}"),
                            Seen::Unknown(why) => format!("cannot tell: {why}"),
                        }}));
                        // Our own webhook patches with RFC 6902 operations and puts the
                        // field back on re-invocation: never a suspect.
                        if cname == OWN_CONFIGURATION {
                            continue;
                        }
                        match seen {
                            Seen::Yes => {
                                matched.push(name);
                                suspects.entry(i).or_default().insert(ns.clone());
                            }
                            Seen::Unknown(why) => {
                                unclear.push(format!("{name} ({why})"));
                                suspects.entry(i).or_default().insert(ns.clone());
                            }
                            Seen::No(_) => {}
                        }
                    }
                    let who = match (matched.len(), unclear.is_empty()) {
                        (0, true) if configs.is_none() => "the webhooks could not be listed".to_string(),
                        (0, true) => "no listed webhook intercepts it: look at mutating admission policies or admission plugins".to_string(),
                        (1, true) => format!("the only webhook that sees it is {}", matched[0]),
                        _ => {
                            let mut parts = Vec::new();
                            if !matched.is_empty() {
                                parts.push(format!("webhooks that see it: {}", matched.join(", ")));
                            }
                            if !unclear.is_empty() {
                                parts.push(format!("may see it: {}", unclear.join(", ")));
                            }
                            parts.join("; ")
                        }
                    };
                    let with = if labels.is_empty() {
                        String::new()
                    } else {
                        format!(" with the labels of {origin} ({})", labels_text(&labels))
                    };
                    report.findings.push(Finding::new(
                        "webhooks.restart-policy-stripped",
                        Severity::Error,
                        Some(format!("Namespace {ns}")),
                        format!(
                            "a dry-run pod{with} lost restartPolicy: Always on its native sidecar in the admission chain ({detail}); {who}. Pods with native sidecars here are rejected or hang in Init. Note: {AUDIT_NOTE}"
                        ),
                        Some("have the webhook mutate with a JSON Patch of only the fields it changes (patch-based mutation) instead of re-serialising the pod, or upgrade it to a build with a Kubernetes 1.28+ client; until then exclude this namespace from it (namespaceSelector), or use legacy or universal mode here".into()),
                    ));
                }
                _ => {}
            }
            probes.push(Probe {
                namespace: ns.clone(),
                labels: labels.clone(),
                origin,
                result,
                webhooks: hook_notes,
            });
        }
    }
    for (i, namespaces) in &suspects {
        let (cname, w) = &webhooks[*i];
        report.findings.push(Finding::new(
            "webhooks.suspect",
            Severity::Warning,
            Some(format!("MutatingWebhookConfiguration {cname}, webhook {}", w.name)),
            format!(
                "sees (or may see) the probe pods that lost restartPolicy in {}: it is a suspect (webhooks built on a client older than Kubernetes 1.28, or that re-serialise the whole pod, drop the field)",
                namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Some("ask its maintainers for patch-based mutation or a build with a 1.28+ client; meanwhile exclude namespaces that use native sidecars with its namespaceSelector".into()),
        ));
    }
    for p in &probes {
        let with = if p.labels.is_empty() {
            String::new()
        } else {
            format!(" with {} ({})", p.origin, labels_text(&p.labels))
        };
        let what = match &p.result {
            ProbeResult::Kept => "restartPolicy: Always survived the admission chain".to_string(),
            ProbeResult::Lost { .. } => {
                "restartPolicy: Always was LOST in the admission chain".to_string()
            }
            ProbeResult::Refused { .. } => "the dry run was refused".to_string(),
            ProbeResult::Forbidden => "not probed (forbidden)".to_string(),
        };
        report
            .summary
            .push(format!("probe in {}{with}: {what}", p.namespace));
    }
    if probes
        .iter()
        .any(|p| matches!(p.result, ProbeResult::Lost { .. }))
    {
        report.summary.push(format!("Note: {AUDIT_NOTE}"));
    }
    report.data = json!({
        "webhooks": hooks,
        "apiServerKeepsRestartPolicy": match &kept { FieldKept::Yes(_) => "yes", FieldKept::No(_) => "no", FieldKept::Unknown(_) => "unknown" },
        "probes": probes,
        "note": AUDIT_NOTE,
    });
    report.sorted();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: Value) -> MutatingWebhook {
        let mut base = json!({
            "name": "x.example.com",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://x.invalid"},
            "sideEffects": "None",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
        });
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                b.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn rules_that_intercept_pod_create() {
        assert!(intercepts_pod_create(&hook(json!({}))));
        assert!(intercepts_pod_create(&hook(
            json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]})
        )));
        assert!(!intercepts_pod_create(&hook(
            json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]})
        )));
        assert!(!intercepts_pod_create(&hook(
            json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/status"]}]})
        )));
        assert!(!intercepts_pod_create(&hook(
            json!({"rules": [{"operations": ["CREATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]})
        )));
    }

    #[test]
    fn selectors_and_conditions_decide_what_a_webhook_sees() {
        let pod = probe_pod(
            "shop",
            &BTreeMap::from([("app".to_string(), "web".to_string())]),
        );
        let ns = BTreeMap::from([("team".to_string(), "a".to_string())]);
        let w = hook(
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}, "objectSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}),
        );
        assert_eq!(sees(&w, "shop", Some(&ns), &pod), Seen::Yes);
        assert!(matches!(sees(&w, "shop", None, &pod), Seen::Unknown(_)));
        let other = BTreeMap::from([("team".to_string(), "b".to_string())]);
        assert!(matches!(sees(&w, "shop", Some(&other), &pod), Seen::No(_)));
        let w = hook(
            json!({"matchConditions": [{"name": "only-db", "expression": "object.metadata.labels['app'] == 'db'"}]}),
        );
        assert!(matches!(sees(&w, "shop", Some(&ns), &pod), Seen::No(m) if m.contains("only-db")));
        let w = hook(
            json!({"matchConditions": [{"name": "fn", "expression": "object.metadata.name.startsWith('x')"}]}),
        );
        assert!(
            matches!(sees(&w, "shop", Some(&ns), &pod), Seen::Unknown(m) if m.contains("cannot evaluate"))
        );
        assert_eq!(selector_text(w.namespace_selector.as_ref()), "<all>");
        let sel: K8sSelector = serde_json::from_value(json!({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["d", "e"]}, {"key": "f", "operator": "DoesNotExist"}]})).unwrap();
        assert_eq!(selector_text(Some(&sel)), "a=b,c notin (d,e),!f");
    }

    #[test]
    fn judging_the_dry_run() {
        let mut pod = probe_pod("shop", &BTreeMap::new());
        assert_eq!(judge(Ok(&pod)), ProbeResult::Kept);
        pod["spec"]["initContainers"][0]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        assert!(matches!(judge(Ok(&pod)), ProbeResult::Lost { .. }));
        assert_eq!(
            judge(Err(&ApiProblem::Forbidden("no".into()))),
            ProbeResult::Forbidden
        );
        assert!(matches!(
            judge(Err(&ApiProblem::Other("spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always".into()))),
            ProbeResult::Lost { .. }
        ));
        assert!(matches!(
            judge(Err(&ApiProblem::Other("denied".into()))),
            ProbeResult::Refused { .. }
        ));
        // The probe passes the restricted profile's container rules.
        let c = &probe_pod("x", &BTreeMap::new())["spec"]["initContainers"][0];
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    }
}
