//! `sidecar-kit lint`: offline checks of manifests, for the rules users otherwise meet only
//! at apply time (or, worse, when a pod hangs), on every pod template the core finds
//! (Pods, workloads, CronJobs, Lists).

use crate::report::{Finding, Report, Severity};
use serde_json::json;
use sidecar_kit_core::pod::{Template, templates};
use std::collections::BTreeMap;
use view::TemplateView;

/// A document to lint: where it is from, and its JSON.
pub struct Input<'a> {
    pub place: String,
    pub json: &'a str,
}

mod checks;
mod view;

/// Lints one template with every check; returns the findings and (init, sidecars,
/// regular) counts.
fn lint_template(t: &Template<'_>, object: &str, out: &mut Vec<Finding>) -> (usize, usize, usize) {
    let view = TemplateView::of(t, object);
    for check in checks::ALL {
        out.extend(check(&view));
    }
    let sidecars = view.sidecars();
    (view.init.len() - sidecars, sidecars, view.regular.len())
}

/// Lints documents. Objects that are not pod templates are skipped; unreadable ones are errors.
pub fn lint(inputs: &[Input<'_>]) -> Report {
    let mut report = Report::new("lint");
    let mut table = vec![vec![
        "OBJECT".to_string(),
        "INIT".into(),
        "SIDECARS".into(),
        "CONTAINERS".into(),
        "FINDINGS".into(),
    ]];
    let mut templates_seen = 0;
    for input in inputs {
        let ts = match templates(input.json) {
            Ok(t) => t,
            Err(e) => {
                report.findings.push(Finding::new(
                    "manifest.unreadable",
                    Severity::Error,
                    Some(input.place.clone()),
                    format!("{}: {}", e.pointer, e.message),
                    Some("correct the field".into()),
                ));
                continue;
            }
        };
        for t in &ts {
            templates_seen += 1;
            let object = if t.spec_pointer == "/spec" {
                input.place.clone()
            } else {
                format!("{} at {}", input.place, t.spec_pointer)
            };
            let before = report.findings.len();
            let (init, sidecars, regular) = lint_template(t, &object, &mut report.findings);
            table.push(vec![
                object,
                init.to_string(),
                sidecars.to_string(),
                regular.to_string(),
                (report.findings.len() - before).to_string(),
            ]);
        }
    }
    report.summary.push(format!(
        "{} pod template(s) in {} document(s)",
        templates_seen,
        inputs.len()
    ));
    if templates_seen > 0 {
        report.table = table;
    }
    report.sorted();
    let counts: BTreeMap<&str, usize> = report.findings.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(f.severity.as_str()).or_default() += 1;
        m
    });
    report.summary.push(format!(
        "{} error(s), {} warning(s), {} info",
        counts.get("error").unwrap_or(&0),
        counts.get("warning").unwrap_or(&0),
        counts.get("info").unwrap_or(&0)
    ));
    report.data = json!({"templates": templates_seen, "documents": inputs.len()});
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(json: &str) -> Vec<String> {
        lint(&[Input {
            place: "x".into(),
            json,
        }])
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
}
