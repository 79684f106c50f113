//! `sidecar-kit lint`: offline checks of manifests, for the rules users otherwise meet only
//! at apply time (or, worse, when a pod hangs), on every pod template the core finds
//! (Pods, workloads, CronJobs, Lists).

use crate::report::{Finding, Report, Severity};
use serde_json::{Value, json};
use sidecar_kit_core::pod::{Template, templates};
use sidecar_kit_core::profile::is_dns_label;
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};
use std::collections::{BTreeMap, BTreeSet};

/// A document to lint: where it is from, and its JSON.
pub struct Input<'a> {
    pub place: String,
    pub json: &'a str,
}

/// Names of images and containers that are sidecars by nature (proxies, agents, shippers).
const SIDECAR_HINTS: [&str; 16] = [
    "istio-proxy",
    "linkerd-proxy",
    "envoy",
    "fluent-bit",
    "fluentd",
    "vault-agent",
    "cloud-sql-proxy",
    "otel-collector",
    "opentelemetry-collector",
    "datadog-agent",
    "oauth2-proxy",
    "promtail",
    "filebeat",
    "vector",
    "consul-dataplane",
    "dapr",
];

fn looks_like_sidecar(c: &Value) -> bool {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let image_name = image
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split([':', '@'])
        .next()
        .unwrap_or("");
    SIDECAR_HINTS
        .iter()
        .any(|h| name == *h || name.starts_with(&format!("{h}-")) || image_name == *h)
        || name.ends_with("-sidecar")
        || name.ends_with("-proxy")
}

fn is_shim_wrapped(c: &Value) -> bool {
    c.pointer("/command/0")
        .and_then(Value::as_str)
        .is_some_and(|s| s.ends_with("sidecar-shim"))
}

const PROBES: [&str; 4] = [
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
];

/// Lints one template; returns the findings and (init, sidecars, regular) counts.
fn lint_template(t: &Template<'_>, object: &str, out: &mut Vec<Finding>) -> (usize, usize, usize) {
    let f = |check: &str, sev: Severity, msg: String, fix: &str| {
        Finding::new(
            check,
            sev,
            Some(object.to_string()),
            msg,
            Some(fix.to_string()),
        )
    };
    let init: Vec<Value> = t.spec.init_containers.iter().map(|c| c.value()).collect();
    let regular: Vec<Value> = t.spec.containers.iter().map(|c| c.value()).collect();
    let volumes: BTreeSet<&str> = t.spec.volumes.iter().map(|v| v.name.as_str()).collect();
    let pod_restart = t.spec.restart_policy.as_deref().unwrap_or("Always");
    let job = pod_restart != "Always" || t.kind == "Job" || t.kind == "CronJob";
    let mut sidecars = 0;

    // Names: unique across init and regular containers, DNS labels.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (list, cs) in [("initContainers", &init), ("containers", &regular)] {
        for c in cs.iter() {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(first) = seen.insert(name, list) {
                out.push(f("pod.duplicate-container-name", Severity::Error, format!("container name {name:?} is used in {first} and in {list}"), "give every container of a pod a unique name (the API server rejects duplicates)"));
            }
            if !is_dns_label(name) {
                out.push(f(
                    "pod.invalid-container-name",
                    Severity::Error,
                    format!("container name {name:?} is not a DNS-1123 label"),
                    "use at most 63 lowercase letters, digits and '-'",
                ));
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(|i| i.trim().is_empty())
                && t.kind == "Pod"
            {
                out.push(f(
                    "pod.missing-image",
                    Severity::Error,
                    format!("container {name:?} has no image"),
                    "give the image",
                ));
            }
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let v = m.get("name").and_then(Value::as_str).unwrap_or("");
                if !volumes.contains(v) {
                    out.push(f(
                        "pod.mount-without-volume",
                        Severity::Error,
                        format!(
                            "container {name:?} mounts volume {v:?}, which the pod does not define"
                        ),
                        "add the volume to spec.volumes, or fix the name",
                    ));
                }
            }
        }
    }
    let mut vols = BTreeSet::new();
    for v in &t.spec.volumes {
        if !vols.insert(v.name.as_str()) {
            out.push(f(
                "pod.duplicate-volume-name",
                Severity::Error,
                format!("volume {:?} is defined twice", v.name),
                "remove or rename one",
            ));
        }
    }

    // Init containers: restartPolicy Always makes a sidecar; anything else is invalid.
    for (i, c) in init.iter().enumerate() {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match c.get("restartPolicy").and_then(Value::as_str) {
            Some("Always") => {
                sidecars += 1;
                if c.get("startupProbe").is_none() && (i + 1 < init.len() || !regular.is_empty()) {
                    out.push(f("sidecar.no-startup-probe", Severity::Warning, format!("native sidecar {name:?} has no startupProbe: the containers after it start as soon as its process runs, before it is ready"), "add a startupProbe that passes once the sidecar serves (periodSeconds: 1 keeps start-up fast)"));
                }
            }
            Some(other) => out.push(f("init.invalid-restart-policy", Severity::Error, format!("init container {name:?} has restartPolicy {other:?}: only Always is allowed (it makes a native sidecar)"), "set restartPolicy: Always, or remove it")),
            None => {
                for k in PROBES {
                    if c.get(k).is_some() {
                        out.push(f("init.probe-without-restart-policy", Severity::Error, format!("init container {name:?} has {k} but no restartPolicy: Always; the API server rejects the pod (\"may not be set for init containers without restartPolicy=Always\")"), "make it a native sidecar (restartPolicy: Always), or remove the probe"));
                    }
                }
            }
        }
    }
    if sidecars > 0 {
        out.push(f("sidecar.needs-1.29", Severity::Info, format!("{sidecars} native sidecar(s): they need the SidecarContainers feature on the API server and on every node the pod can land on (Kubernetes 1.29+; 1.28 nodes refuse the pod unless their gate is on)"), "check the cluster with `sidecar-kit doctor cluster`, or inject with sidecar-kit's auto mode"));
    }

    // Regular containers.
    for c in &regular {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(rp) = c.get("restartPolicy") {
            out.push(f("container.restart-policy", Severity::Error, format!("regular container {name:?} has restartPolicy {rp}: rejected unless the ContainerRestartRules gate (alpha, 1.34+) is on"), "remove it; for a sidecar, move the container to initContainers with restartPolicy: Always"));
        }
        if job && looks_like_sidecar(c) && !is_shim_wrapped(c) {
            out.push(f("job.legacy-sidecar", Severity::Warning, format!("{name:?} looks like a sidecar but runs as a regular container of a pod with restartPolicy {pod_restart}: the pod does not complete while it runs"), "make it a native sidecar (initContainers, restartPolicy: Always), or inject it with sidecar-kit, whose legacy mode stops it when the app is done"));
        }
    }
    if !["Always", "OnFailure", "Never"].contains(&pod_restart) {
        out.push(f(
            "pod.invalid-restart-policy",
            Severity::Error,
            format!("restartPolicy {pod_restart:?} is not Always, OnFailure or Never"),
            "use one of them",
        ));
    }
    if (t.kind == "Job" || t.kind == "CronJob") && pod_restart == "Always" {
        out.push(f(
            "job.restart-policy-always",
            Severity::Error,
            "a Job's pod template needs restartPolicy Never or OnFailure".into(),
            "set spec.template.spec.restartPolicy: Never (or OnFailure)",
        ));
    }

    // sidecar-kit's own annotation.
    if let Some(s) = t.meta.annotation(STATUS_ANNOTATION)
        && let Err(e) = Status::parse(s)
    {
        out.push(f("sidecar-kit.bad-status", Severity::Warning, format!("annotation {STATUS_ANNOTATION} cannot be read ({e}): sidecar-kit cannot update or remove what it injected"), "remove the annotation and what it describes, then inject again"));
    }
    (init.len() - sidecars, sidecars, regular.len())
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
