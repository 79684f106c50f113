//! `doctor webhooks`: which mutating webhooks see pod creations, in the order the API
//! server calls them, and whether `restartPolicy: Always` on a native sidecar survives
//! them, proved by a server-side dry-run create of a probe pod (nothing is stored).
//!
//! The API's answer says whether the field survived, not which webhook removed it: where
//! it did not, every webhook's rules, selectors and `matchConditions` are evaluated
//! against the probe to name the ones that saw it. The audit log would name the culprit
//! (`patch.webhook.admission.k8s.io/round_N_index_M`), and the report says so.

use crate::conn::{DoctorError, Session};
use crate::report::Report;
use gather::{Gathered, ProbedNamespace};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use probe::{Probe, labels_text};
use serde_json::json;
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_core::version::FieldKept;
use std::collections::{BTreeMap, BTreeSet};

mod chain;
mod checks;
mod gather;
mod probe;
mod sees;
mod workloads;

pub use chain::{Hook, intercepts_pod_create};
pub use probe::{ProbeResult, judge, probe_pod};
pub use sees::{Seen, sees, selector_text};

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

/// Runs `doctor webhooks`: reads the chain and probes the namespaces, checks what came
/// back, and sums it up.
pub async fn run(s: &Session, o: &WebhooksOptions) -> Result<Report, DoctorError> {
    let mut report = Report::new("doctor webhooks");
    let g = gather::gather(s, o, &mut report.blind_spots).await?;
    let chain = g.chain.as_deref().unwrap_or_default();
    let hooks = Hook::list(chain);
    report.table = chain::table(&hooks, chain);
    report.findings.extend(checks::not_reinvoked(&hooks));
    report.findings.extend(checks::apiserver_drops(&g.kept));
    let (probes, suspects) = check_probes(&g, chain, &mut report);
    report.findings.extend(checks::suspects(chain, &suspects));
    summary(&g, &hooks, &probes, &mut report);
    report.data = json!({
        "webhooks": hooks,
        "apiServerKeepsRestartPolicy": match &g.kept { FieldKept::Yes(_) => "yes", FieldKept::No(_) => "no", FieldKept::Unknown(_) => "unknown" },
        "probes": probes,
        "note": AUDIT_NOTE,
    });
    report.sorted();
    Ok(report)
}

/// The checks of each namespace and probe; returns the probes as the data lists them, and
/// the suspects (positions in the chain to the namespaces of the lost probes they see).
fn check_probes(
    g: &Gathered,
    chain: &[(String, MutatingWebhook)],
    report: &mut Report,
) -> (Vec<Probe>, BTreeMap<usize, BTreeSet<String>>) {
    let mut probes = Vec::new();
    let mut suspects: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for ns in &g.namespaces {
        report.findings.extend(checks::namespace_missing(ns));
        for p in &ns.probes {
            report.findings.extend(checks::probe_refused(ns, p));
            let mut notes = Vec::new();
            if let ProbeResult::Lost { detail } = &p.result
                && !g.kept.is_no()
            {
                let sightings = sees::sightings(chain, &ns.name, ns.labels.as_ref(), &p.pod);
                report
                    .findings
                    .push(checks::restart_policy_stripped(&checks::LostProbe {
                        namespace: &ns.name,
                        origin: &p.origin,
                        labels: &p.labels,
                        detail,
                        sightings: &sightings,
                        chain_listed: g.chain.is_some(),
                    }));
                for i in &sightings.suspects {
                    suspects.entry(*i).or_default().insert(ns.name.clone());
                }
                notes = sightings.notes;
            }
            probes.push(data_of(ns, p, notes));
        }
    }
    (probes, suspects)
}

/// A probe as the report's data lists it.
fn data_of(ns: &ProbedNamespace, p: &gather::Probed, webhooks: Vec<serde_json::Value>) -> Probe {
    Probe {
        namespace: ns.name.clone(),
        labels: p.labels.clone(),
        origin: p.origin.clone(),
        result: p.result.clone(),
        webhooks,
    }
}

/// The summary: the size of the chain, one line per probe, and the audit-log note when a
/// probe lost the field.
fn summary(g: &Gathered, hooks: &[Hook], probes: &[Probe], report: &mut Report) {
    if g.chain.is_some() {
        report.summary.push(format!(
            "{} mutating webhook(s) intercept pod CREATE{}",
            hooks.len(),
            if hooks.is_empty() {
                ""
            } else {
                ", called in this order (by configuration name, then position)"
            }
        ));
    }
    for p in probes {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ApiProblem;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
    use serde_json::Value;
    use std::collections::BTreeMap;

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
