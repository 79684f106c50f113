//! `sidecar-kit lint`: offline checks of manifests, for the rules users otherwise meet only
//! at apply time (or, worse, when a pod hangs), on every pod template the core finds
//! (Pods, workloads, CronJobs, Lists), and on the containers of SidecarProfiles as they
//! would be injected. [`lint`] gives both the [`Report`] that every doctor format writes and
//! the [`LintReport`] document of `-o json|yaml` (schema in docs/output-schema.md).

use crate::report::{Finding, Report, Severity};
use serde::Serialize;
use serde_json::{Value, json};
use sidecar_kit_core::pod::{Template, templates};
use sidecar_kit_core::profile::{API_VERSION, Mode};
use view::TemplateView;

/// A document to lint: where it is from, and its JSON.
pub struct Input<'a> {
    pub place: String,
    pub json: &'a str,
}

mod checks;
mod view;

/// `kind` of the lint document.
pub const KIND: &str = "LintReport";

/// What `lint` found, for every output format.
pub struct Linted {
    pub report: Report,
    pub document: LintReport,
}

/// The `LintReport` document of `lint -o json|yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LintReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub counts: LintCounts,
    pub templates: Vec<LintedTemplate>,
    pub findings: Vec<LintFinding>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LintCounts {
    pub documents: usize,
    /// Pod templates and SidecarProfiles linted.
    pub templates: usize,
    pub profiles: usize,
    pub findings: usize,
    pub error: usize,
    pub warning: usize,
    pub info: usize,
}

/// One pod template (or SidecarProfile) linted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LintedTemplate {
    /// What the findings name in `object`.
    pub object: String,
    pub source: String,
    pub kind: String,
    pub name: Option<String>,
    pub spec_pointer: String,
    /// Init containers that are not native sidecars.
    pub init_containers: usize,
    pub sidecars: usize,
    pub containers: usize,
    pub findings: usize,
}

/// A finding, every field present (`null` where absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LintFinding {
    pub check: String,
    pub severity: Severity,
    pub object: Option<String>,
    pub message: String,
    pub fix: Option<String>,
}

/// Lints one template with every check; returns the findings and (init, sidecars,
/// regular) counts.
fn lint_template(view: &TemplateView<'_>, out: &mut Vec<Finding>) -> (usize, usize, usize) {
    for check in checks::ALL {
        out.extend(check(view));
    }
    let sidecars = view.sidecars();
    (view.init.len() - sidecars, sidecars, view.regular.len())
}

/// A SidecarProfile as the pod template its containers make: setup steps and (except in
/// legacy and universal mode, where they stay regular containers or get sidecar-shim's
/// probe) the sidecars as native sidecars. `None` for anything else.
fn profile_pod(json: &str) -> Option<(Option<String>, String)> {
    if !json.contains("SidecarProfile") {
        return None;
    }
    let v: Value = serde_json::from_str(json).ok()?;
    let group = v.get("apiVersion")?.as_str()?.split('/').next()?;
    let api_group = API_VERSION.split('/').next()?;
    if v.get("kind")?.as_str()? != "SidecarProfile" || group != api_group {
        return None;
    }
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let list = |k: &str| {
        spec.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mode = spec
        .get("mode")
        .and_then(Value::as_str)
        .and_then(Mode::parse)
        .unwrap_or_default();
    let (mut init, mut regular) = (list("initContainers"), Vec::new());
    for mut c in list("containers") {
        if matches!(mode, Mode::Legacy | Mode::Universal) {
            regular.push(c);
        } else {
            if let Some(o) = c.as_object_mut() {
                o.entry("restartPolicy").or_insert_with(|| json!("Always"));
            }
            init.push(c);
        }
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"initContainers": init, "containers": regular, "volumes": list("volumes")}});
    Some((name, pod.to_string()))
}

/// Collects findings, the table and the document's templates.
struct Linter {
    report: Report,
    table: Vec<Vec<String>>,
    templates: Vec<LintedTemplate>,
    profiles: usize,
}

impl Linter {
    fn unreadable(&mut self, place: &str, message: String, fix: &str) {
        self.report.findings.push(Finding::new(
            "manifest.unreadable",
            Severity::Error,
            Some(place.to_string()),
            message,
            Some(fix.into()),
        ));
    }

    fn template(
        &mut self,
        source: &str,
        view: &TemplateView<'_>,
        name: Option<String>,
        spec_pointer: &str,
    ) {
        let before = self.report.findings.len();
        let (init, sidecars, regular) = lint_template(view, &mut self.report.findings);
        let findings = self.report.findings.len() - before;
        let object = view.object().to_string();
        self.table.push(vec![
            object.clone(),
            init.to_string(),
            sidecars.to_string(),
            regular.to_string(),
            findings.to_string(),
        ]);
        self.templates.push(LintedTemplate {
            object,
            source: source.to_string(),
            kind: view.kind.to_string(),
            name,
            spec_pointer: spec_pointer.to_string(),
            init_containers: init,
            sidecars,
            containers: regular,
            findings,
        });
    }

    fn profile(&mut self, input: &Input<'_>, name: Option<String>, pod: &str) {
        self.profiles += 1;
        match templates(pod) {
            Ok(ts) => {
                for t in &ts {
                    let view = TemplateView::of_profile(t, &input.place);
                    self.template(&input.place, &view, name.clone(), "/spec");
                }
            }
            Err(e) => self.unreadable(
                &input.place,
                format!("SidecarProfile containers: {}", e.message),
                "check the profile with `sidecar-kit profiles validate`",
            ),
        }
    }

    fn pod_template(&mut self, input: &Input<'_>, t: &Template<'_>) {
        let object = if t.spec_pointer == "/spec" {
            input.place.clone()
        } else {
            format!("{} at {}", input.place, t.spec_pointer)
        };
        let view = TemplateView::of(t, &object);
        self.template(
            &input.place,
            &view,
            t.object_name.as_deref().map(str::to_string),
            &t.spec_pointer,
        );
    }
}

/// Lints documents. Objects that are neither pod templates nor SidecarProfiles are
/// skipped; unreadable ones are errors.
pub fn lint(inputs: &[Input<'_>]) -> Linted {
    let mut l = Linter {
        report: Report::new("lint"),
        table: vec![crate::report::header(&[
            "OBJECT",
            "INIT",
            "SIDECARS",
            "CONTAINERS",
            "FINDINGS",
        ])],
        templates: Vec::new(),
        profiles: 0,
    };
    for input in inputs {
        if let Some((name, pod)) = profile_pod(input.json) {
            l.profile(input, name, &pod);
            continue;
        }
        match templates(input.json) {
            Ok(ts) => ts.iter().for_each(|t| l.pod_template(input, t)),
            Err(e) => l.unreadable(
                &input.place,
                format!("{}: {}", e.pointer, e.message),
                "correct the field",
            ),
        }
    }
    finish(l, inputs.len())
}

/// The summary, the sorted findings and the document.
fn finish(mut l: Linter, documents: usize) -> Linted {
    let mut report = l.report;
    let seen = l.templates.len();
    let pod_templates = seen - l.profiles;
    report.summary.push(if l.profiles > 0 {
        format!(
            "{pod_templates} pod template(s) and {} SidecarProfile(s) in {documents} document(s)",
            l.profiles
        )
    } else {
        format!("{pod_templates} pod template(s) in {documents} document(s)")
    });
    if seen > 0 {
        report.table = std::mem::take(&mut l.table);
    }
    report.sorted();
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let counts = LintCounts {
        documents,
        templates: seen,
        profiles: l.profiles,
        findings: report.findings.len(),
        error: count(Severity::Error),
        warning: count(Severity::Warning),
        info: count(Severity::Info),
    };
    report.summary.push(format!(
        "{} error(s), {} warning(s), {} info",
        counts.error, counts.warning, counts.info
    ));
    report.data = json!({"templates": seen, "documents": documents});
    let document = LintReport {
        api_version: API_VERSION,
        kind: KIND,
        counts,
        templates: l.templates,
        findings: report
            .findings
            .iter()
            .map(|f| LintFinding {
                check: f.check.clone(),
                severity: f.severity,
                object: f.object.clone(),
                message: f.message.clone(),
                fix: f.fix.clone(),
            })
            .collect(),
    };
    Linted { report, document }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(json: &str) -> Vec<String> {
        lint(&[Input {
            place: "x".into(),
            json,
        }])
        .report
        .findings
        .iter()
        .map(|f| f.check.clone())
        .collect()
    }

    #[test]
    fn finds_apply_time_errors() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{
            "initContainers":[{"name":"setup","image":"s","readinessProbe":{"exec":{"command":["x"]}}},
                              {"name":"proxy","image":"envoy","restartPolicy":"Always"},
                              {"name":"odd","image":"o","restartPolicy":"OnFailure"}],
            "containers":[{"name":"app","image":"a","restartPolicy":"Always","volumeMounts":[{"name":"missing","mountPath":"/m"}]},
                          {"name":"setup","image":"b"}]}}"#;
        let c = checks(pod);
        for want in [
            "init.probe-without-restart-policy",
            "init.invalid-restart-policy",
            "container.restart-policy",
            "pod.mount-without-volume",
            "pod.duplicate-container-name",
            "sidecar.no-startup-probe",
            "sidecar.needs-1.29",
        ] {
            assert!(c.contains(&want.to_string()), "{want} in {c:?}");
        }
    }

    #[test]
    fn legacy_sidecars_in_jobs() {
        let job = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":"Never",
            "containers":[{"name":"work","image":"w"},{"name":"istio-proxy","image":"docker.io/istio/proxyv2:1.22"},{"name":"logs","image":"fluent/fluent-bit:3"}]}}}}"#;
        let c = checks(job);
        assert_eq!(
            c.iter().filter(|x| *x == "job.legacy-sidecar").count(),
            2,
            "{c:?}"
        );
        let clean = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"a"}]}}"#;
        assert!(checks(clean).is_empty());
        assert_eq!(
            checks(
                r#"{"apiVersion":"batch/v1","kind":"Job","spec":{"template":{"spec":{"containers":[{"name":"a","image":"a"}]}}}}"#
            ),
            ["job.restart-policy-always"]
        );
    }

    #[test]
    fn profiles_are_linted_as_the_containers_they_inject() {
        let profile = |mode: &str, probe: bool| {
            let mut c = json!({"name": "shipper", "image": "s", "command": ["ship"],
                "volumeMounts": [{"name": "app-data", "mountPath": "/data"}]});
            if probe {
                c["startupProbe"] = json!({"tcpSocket": {"port": 1}});
            }
            json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
                "metadata": {"name": "p"}, "spec": {"mode": mode, "containers": [c],
                "initContainers": [{"name": "setup", "image": "s", "readinessProbe": {"exec": {"command": ["x"]}}}]}})
            .to_string()
        };
        // (mode, startup probe, checks found, sidecars)
        let cases = [
            (
                "auto",
                false,
                vec![
                    "init.probe-without-restart-policy",
                    "sidecar.no-startup-probe",
                ],
                1,
            ),
            ("native", true, vec!["init.probe-without-restart-policy"], 1),
            (
                "legacy",
                false,
                vec!["init.probe-without-restart-policy"],
                0,
            ),
            (
                "universal",
                false,
                vec!["init.probe-without-restart-policy"],
                0,
            ),
        ];
        for (mode, probe, want, sidecars) in cases {
            let json = profile(mode, probe);
            let linted = lint(&[Input {
                place: "x".into(),
                json: &json,
            }]);
            let found: Vec<&str> = linted
                .report
                .findings
                .iter()
                .map(|f| f.check.as_str())
                .collect();
            assert_eq!(
                found, want,
                "{mode}: the app's volumes are not known, so no pod.mount-without-volume"
            );
            let t = &linted.document.templates[0];
            assert_eq!(
                (t.kind.as_str(), t.sidecars),
                ("SidecarProfile", sidecars),
                "{mode}"
            );
            assert_eq!(linted.document.counts.profiles, 1);
        }
    }
}
