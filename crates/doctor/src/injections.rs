//! `doctor injections`: the migration view. Per workload, the pods whose injection
//! (`sidecar-kit.io/status`) carries an older profile hash than the profile has now, pods
//! with legacy sidecars whose nodes could run native ones, and pods a profile selects that
//! carry no injection; counts per namespace and the commands that restart what is stale.

use crate::conn::{DoctorError, Session, bounded};
use crate::pods::{list_pods, node_classes};
use crate::report::{BlindSpot, Finding, Report, Severity};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::Api;
use serde::Serialize;
use serde_json::json;
use sidecar_kit_core::engine::{self, Options, SYSTEM_NAMESPACES, TemplateResult};
use sidecar_kit_core::facts::{
    ClusterFacts, FACTS_API_VERSION, FACTS_KIND, NamespaceFacts, StaticFacts,
};
use sidecar_kit_core::profile::{Mode, ProfileSet};
use sidecar_kit_core::status::{INJECT_KEY, STATUS_ANNOTATION, Status};
use sidecar_kit_core::version::NodeClass;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Flags of `doctor injections`.
#[derive(Debug, Clone, Default)]
pub struct InjectionsOptions {
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    pub profiles: ProfileSet,
}

/// A workload as `kubectl rollout` names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Workload {
    pub namespace: String,
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod.
    pub kind: String,
    pub name: String,
}

impl Workload {
    /// The command that makes its pods pick up the current profiles.
    pub fn restart(&self) -> String {
        let (ns, n) = (&self.namespace, &self.name);
        match self.kind.as_str() {
            "Deployment" | "StatefulSet" | "DaemonSet" => format!(
                "kubectl rollout restart {}/{n} -n {ns}",
                self.kind.to_lowercase()
            ),
            "CronJob" => format!(
                "the next run of cronjob/{n} is injected anew (now: kubectl create job --from=cronjob/{n} {n}-reinject -n {ns})"
            ),
            "Job" => {
                format!("a Job's pods are not restarted: re-create job/{n} -n {ns} when it is safe")
            }
            "ReplicaSet" => format!(
                "kubectl delete pods -n {ns} -l <the ReplicaSet's selector> (replicaset/{n} re-creates them)"
            ),
            _ => format!("kubectl delete pod {n} -n {ns} and create it again"),
        }
    }
}

/// Per-workload counts.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub pods: usize,
    pub current: usize,
    pub stale: usize,
    pub profile_gone: usize,
    pub legacy_on_capable: usize,
    pub not_injected: usize,
    #[serde(skip)]
    stale_hashes: BTreeSet<(String, String, String)>,
    #[serde(skip)]
    gone: BTreeSet<String>,
    #[serde(skip)]
    would_inject: BTreeSet<String>,
}

impl Counts {
    fn needs_restart(&self) -> bool {
        self.stale + self.profile_gone + self.legacy_on_capable + self.not_injected > 0
    }
}

/// What one pod's injection says, against the current profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    Current,
    /// (profile, pod's hash, current hash).
    Stale(Vec<(String, String, String)>),
    ProfileGone(Vec<String>),
    LegacyOnCapable,
    /// Profiles that would inject it now.
    NotInjected(Vec<String>),
    /// No injection and no profile selects it.
    Untouched,
}

/// Judges one pod (raw JSON) against the profiles; `would_inject` is what the engine
/// would do to it now (profile names), `node` the class of its node.
pub fn judge(
    pod: &serde_json::Value,
    profiles: &ProfileSet,
    would_inject: &[String],
    node: Option<NodeClass>,
) -> PodState {
    let Some(st) = pod["metadata"]["annotations"][STATUS_ANNOTATION]
        .as_str()
        .and_then(|s| Status::parse(s).ok())
    else {
        return if would_inject.is_empty() {
            PodState::Untouched
        } else {
            PodState::NotInjected(would_inject.to_vec())
        };
    };
    let mut stale = Vec::new();
    let mut gone = Vec::new();
    for i in &st.injections {
        match profiles.get(&i.profile) {
            None => gone.push(i.profile.clone()),
            Some(p) if p.hash != i.hash => {
                stale.push((i.profile.clone(), i.hash.clone(), p.hash.clone()))
            }
            Some(_) => {}
        }
    }
    if !stale.is_empty() {
        PodState::Stale(stale)
    } else if !gone.is_empty() {
        PodState::ProfileGone(gone)
    } else if node == Some(NodeClass::Capable)
        && st.injections.iter().any(|i| i.mode == Mode::Legacy)
    {
        PodState::LegacyOnCapable
    } else {
        PodState::Current
    }
}

fn workload_of(pod: &Pod, jobs: &HashMap<(String, String), Option<String>>) -> Workload {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let (kind, wname) = match owner {
        None => ("Pod".to_string(), name),
        Some(o) if o.kind == "ReplicaSet" => {
            // A Deployment's ReplicaSet is NAME-<pod-template-hash>.
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            match hash.and_then(|h| o.name.strip_suffix(&format!("-{h}"))) {
                Some(d) => ("Deployment".to_string(), d.to_string()),
                None => ("ReplicaSet".to_string(), o.name.clone()),
            }
        }
        Some(o) if o.kind == "Job" => {
            match jobs.get(&(ns.clone(), o.name.clone())).cloned().flatten() {
                Some(cj) => ("CronJob".to_string(), cj),
                None => ("Job".to_string(), o.name.clone()),
            }
        }
        Some(o) => (o.kind.clone(), o.name.clone()),
    };
    Workload {
        namespace: ns,
        kind,
        name: wname,
    }
}

/// Runs `doctor injections`.
pub async fn run(s: &Session, o: &InjectionsOptions) -> Result<Report, DoctorError> {
    let mut report = Report::new("doctor injections");
    let mut pods = list_pods(s, &o.namespaces, o.all_namespaces, None, &mut report).await?;
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let classes = node_classes(s, &mut report).await?;

    // Namespace labels: namespaceSelectors of profiles, and the webhook's opt-in label.
    let ns_api: Api<Namespace> = Api::all(s.client.clone());
    let wanted: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.namespace.clone())
        .collect();
    let mut ns_labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut ns_hidden = false;
    for ns in &wanted {
        match bounded(ns_api.get_opt(ns)).await {
            Ok(Some(n)) => {
                ns_labels.insert(ns.clone(), n.metadata.labels.unwrap_or_default());
            }
            Ok(None) => {}
            Err(p) if p.is_forbidden() => ns_hidden = true,
            Err(p) => {
                return Err(DoctorError::Cluster(format!(
                    "cannot read namespace {ns}: {}",
                    p.message()
                )));
            }
        }
    }
    if ns_hidden {
        report.blind_spots.push(BlindSpot {
            what: "namespace labels (profiles' namespaceSelectors and the webhook's opt-in label)"
                .into(),
            permission: "get on namespaces".into(),
        });
    }
    let facts = StaticFacts::new(ClusterFacts {
        api_version: FACTS_API_VERSION.into(),
        kind: FACTS_KIND.into(),
        namespaces: ns_labels
            .iter()
            .map(|(n, l)| NamespaceFacts {
                name: n.clone(),
                labels: l.clone(),
            })
            .collect(),
        ..ClusterFacts::default()
    });

    // Jobs owned by CronJobs.
    let mut jobs: HashMap<(String, String), Option<String>> = HashMap::new();
    let mut jobs_hidden = BTreeSet::new();
    for p in &pods {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        for r in p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.kind == "Job")
        {
            let key = (ns.clone(), r.name.clone());
            if jobs.contains_key(&key) || jobs_hidden.contains(&ns) {
                continue;
            }
            let api: Api<Job> = Api::namespaced(s.client.clone(), &ns);
            match bounded(api.get_opt(&r.name)).await {
                Ok(j) => {
                    let cj = j.and_then(|j| {
                        j.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .find(|o| o.kind == "CronJob")
                            .map(|o| o.name.clone())
                    });
                    jobs.insert(key, cj);
                }
                Err(p) if p.is_forbidden() => {
                    jobs_hidden.insert(ns.clone());
                }
                Err(p) => {
                    return Err(DoctorError::Cluster(format!(
                        "cannot read job {ns}/{}: {}",
                        r.name,
                        p.message()
                    )));
                }
            }
        }
    }
    for ns in &jobs_hidden {
        report.blind_spots.push(BlindSpot {
            what: format!("which Jobs in {ns} belong to CronJobs (shown as Jobs)"),
            permission: format!("get on jobs.batch in namespace {ns}"),
        });
    }

    let opts = Options {
        excluded_namespaces: SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let mut by_workload: BTreeMap<Workload, Counts> = BTreeMap::new();
    for p in &pods {
        let w = workload_of(p, &jobs);
        let raw = serde_json::to_value(p).unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let class = classes.as_ref().and_then(|c| c.get(&node).copied());
        let mut would = Vec::new();
        if raw["metadata"]["annotations"][STATUS_ANNOTATION].is_null() {
            let text = raw.to_string();
            let opts = Options {
                namespace: Some(w.namespace.clone()),
                ..opts.clone()
            };
            if let Ok(out) = engine::inject(&text, &o.profiles, &facts, &opts) {
                for t in out.templates {
                    if let TemplateResult::Injected {
                        status,
                        changed: true,
                    } = t.result
                    {
                        would.extend(status.injections.into_iter().map(|i| i.profile));
                    }
                }
            }
        }
        let state = judge(&raw, &o.profiles, &would, class);
        let c = by_workload.entry(w).or_default();
        c.pods += 1;
        match state {
            PodState::Current => c.current += 1,
            PodState::Stale(list) => {
                c.stale += 1;
                c.stale_hashes.extend(list);
            }
            PodState::ProfileGone(list) => {
                c.profile_gone += 1;
                c.gone.extend(list);
            }
            PodState::LegacyOnCapable => c.legacy_on_capable += 1,
            PodState::NotInjected(list) => {
                c.not_injected += 1;
                c.would_inject.extend(list);
            }
            PodState::Untouched => {}
        }
    }

    let mut per_ns: BTreeMap<String, Counts> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut restarts = Vec::new();
    let mut data = Vec::new();
    for (w, c) in &by_workload {
        let touched =
            c.current + c.stale + c.profile_gone + c.legacy_on_capable + c.not_injected > 0;
        if !touched {
            continue;
        }
        let t = per_ns.entry(w.namespace.clone()).or_default();
        t.pods += c.pods;
        t.current += c.current;
        t.stale += c.stale;
        t.profile_gone += c.profile_gone;
        t.legacy_on_capable += c.legacy_on_capable;
        t.not_injected += c.not_injected;
        let object = Some(format!("{} {}/{}", w.kind, w.namespace, w.name));
        let fix = Some(w.restart());
        if c.stale > 0 {
            let hashes: Vec<String> = c
                .stale_hashes
                .iter()
                .map(|(p, old, new)| format!("{p} {old} (now {new})"))
                .collect();
            report.findings.push(Finding::new(
                "injections.stale",
                Severity::Warning,
                object.clone(),
                format!(
                    "{} of {} pod(s) carry an older injection: {}",
                    c.stale,
                    c.pods,
                    hashes.join(", ")
                ),
                fix.clone(),
            ));
        }
        if c.profile_gone > 0 {
            report.findings.push(Finding::new(
                "injections.profile-gone",
                Severity::Warning,
                object.clone(),
                format!(
                    "{} of {} pod(s) carry an injection of profile(s) that no longer exist: {}",
                    c.profile_gone,
                    c.pods,
                    c.gone.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                fix.clone(),
            ));
        }
        if c.legacy_on_capable > 0 {
            report.findings.push(Finding::new(
                "injections.legacy-on-capable-node",
                Severity::Info,
                object.clone(),
                format!(
                    "{} of {} pod(s) run legacy sidecars on nodes that run native ones: re-created, auto may choose native",
                    c.legacy_on_capable, c.pods
                ),
                fix.clone(),
            ));
        }
        if c.not_injected > 0 {
            let opted_in = ns_labels
                .get(&w.namespace)
                .map(|l| l.get(INJECT_KEY).map(String::as_str) == Some("enabled"));
            let note = match opted_in {
                Some(false) => format!(
                    "; namespace {} lacks the label {INJECT_KEY}=enabled, so the webhook never sees its pods",
                    w.namespace
                ),
                _ => String::new(),
            };
            report.findings.push(Finding::new(
                "injections.not-injected",
                Severity::Warning,
                object.clone(),
                format!(
                    "{} of {} pod(s) carry no injection although profile(s) {} select them (created before the profile, or the webhook was skipped){note}",
                    c.not_injected,
                    c.pods,
                    c.would_inject.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                if opted_in == Some(false) {
                    Some(format!("kubectl label namespace {} {INJECT_KEY}=enabled, then {}", w.namespace, w.restart()))
                } else {
                    fix.clone()
                },
            ));
        }
        if c.needs_restart() {
            restarts.push(w.restart());
        }
        rows.push(vec![
            w.namespace.clone(),
            format!("{}/{}", w.kind, w.name),
            c.pods.to_string(),
            c.current.to_string(),
            c.stale.to_string(),
            c.profile_gone.to_string(),
            c.legacy_on_capable.to_string(),
            c.not_injected.to_string(),
        ]);
        data.push(
            json!({"workload": w, "counts": c, "restart": c.needs_restart().then(|| w.restart())}),
        );
    }
    report.summary.push(format!(
        "{} pod(s) in {} workload(s) looked at against {} profile(s)",
        pods.len(),
        by_workload.len(),
        o.profiles.len()
    ));
    for (ns, t) in &per_ns {
        report.summary.push(format!(
            "namespace {ns}: {} current, {} stale, {} of removed profiles, {} legacy on capable nodes, {} not injected",
            t.current, t.stale, t.profile_gone, t.legacy_on_capable, t.not_injected
        ));
    }
    restarts.dedup();
    if !restarts.is_empty() {
        report.summary.push("to bring them up to date:".into());
        for r in &restarts {
            report.summary.push(format!("  {r}"));
        }
    }
    if !rows.is_empty() {
        report.table.push(
            [
                "NAMESPACE",
                "WORKLOAD",
                "PODS",
                "CURRENT",
                "STALE",
                "PROFILE GONE",
                "LEGACY ON CAPABLE",
                "NOT INJECTED",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        report.table.extend(rows);
    }
    report.data = json!({
        "workloads": data,
        "namespaces": per_ns,
        "restart": restarts,
    });
    report.sorted();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use sidecar_kit_core::profile::Profile;

    fn profiles() -> ProfileSet {
        let p: Value = json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
            "metadata": {"name": "log"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "containers": [{"name": "log", "image": "log:1"}]}});
        ProfileSet::new(vec![Profile::from_value(&p, "test").unwrap()], None).unwrap()
    }

    fn pod_with(hash: &str, mode: &str) -> Value {
        let st = format!(
            r#"{{"v":1,"injections":[{{"profile":"log","hash":"{hash}","mode":"{mode}","reason":"r","added":{{}}}}]}}"#
        );
        json!({"metadata": {"annotations": {STATUS_ANNOTATION: st}}})
    }

    #[test]
    fn pod_states() {
        let set = profiles();
        let current = set.get("log").unwrap().hash.clone();
        assert_eq!(
            judge(&pod_with(&current, "native"), &set, &[], None),
            PodState::Current
        );
        assert_eq!(
            judge(&pod_with("sha256:0", "native"), &set, &[], None),
            PodState::Stale(vec![("log".into(), "sha256:0".into(), current.clone())])
        );
        assert_eq!(
            judge(
                &pod_with(&current, "legacy"),
                &set,
                &[],
                Some(NodeClass::Capable)
            ),
            PodState::LegacyOnCapable
        );
        assert_eq!(
            judge(
                &pod_with(&current, "legacy"),
                &set,
                &[],
                Some(NodeClass::Unaware)
            ),
            PodState::Current
        );
        assert_eq!(
            judge(
                &pod_with(&current, "native"),
                &ProfileSet::default(),
                &[],
                None
            ),
            PodState::ProfileGone(vec!["log".into()])
        );
        assert_eq!(
            judge(&json!({"metadata": {}}), &set, &["log".into()], None),
            PodState::NotInjected(vec!["log".into()])
        );
        assert_eq!(
            judge(&json!({"metadata": {}}), &set, &[], None),
            PodState::Untouched
        );
    }

    #[test]
    fn restart_commands() {
        let w = |k: &str| Workload {
            namespace: "shop".into(),
            kind: k.into(),
            name: "web".into(),
        };
        assert_eq!(
            w("Deployment").restart(),
            "kubectl rollout restart deployment/web -n shop"
        );
        assert_eq!(
            w("StatefulSet").restart(),
            "kubectl rollout restart statefulset/web -n shop"
        );
        assert!(
            w("CronJob")
                .restart()
                .contains("kubectl create job --from=cronjob/web")
        );
        assert!(
            w("Pod")
                .restart()
                .starts_with("kubectl delete pod web -n shop")
        );
    }
}
