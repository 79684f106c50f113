//! `job.*`: pods meant to finish (Jobs, CronJobs, restartPolicy other than Always), which
//! a sidecar that runs as a regular container keeps from completing.

use crate::lint::view::{TemplateView, name};
use crate::report::{Finding, Severity};
use serde_json::Value;

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

/// `job.legacy-sidecar`: a container that looks like a sidecar, running as a regular
/// container of a pod meant to finish, unless sidecar-kit's shim stops it.
pub(super) fn legacy_sidecar(t: &TemplateView<'_>) -> Vec<Finding> {
    if !t.runs_to_completion() {
        return Vec::new();
    }
    let pod_restart = t.restart_policy;
    t.regular
        .iter()
        .filter(|c| looks_like_sidecar(c) && !is_shim_wrapped(c))
        .map(|c| {
            let name = name(c);
            t.finding("job.legacy-sidecar", Severity::Warning, format!("{name:?} looks like a sidecar but runs as a regular container of a pod with restartPolicy {pod_restart}: the pod does not complete while it runs"), "make it a native sidecar (initContainers, restartPolicy: Always), or inject it with sidecar-kit, whose legacy mode stops it when the app is done")
        })
        .collect()
}

/// `job.restart-policy-always`: a Job's template does not restart its pods.
pub(super) fn restart_policy_always(t: &TemplateView<'_>) -> Vec<Finding> {
    if !(t.of_job() && t.restart_policy == "Always") {
        return Vec::new();
    }
    vec![t.finding(
        "job.restart-policy-always",
        Severity::Error,
        "a Job's pod template needs restartPolicy Never or OnFailure".into(),
        "set spec.template.spec.restartPolicy: Never (or OnFailure)",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sidecars_as_regular_containers_of_pods_meant_to_finish() {
        let shim = json!({"name": "fluent-bit", "image": "fluent/fluent-bit:3",
            "command": ["/sidecar-kit/sidecar-shim", "--", "fluent-bit"]});
        // (kind, pod restartPolicy, container, findings)
        let cases = [
            (
                "Job",
                Some("Never"),
                json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22"}),
                1,
            ),
            (
                "Job",
                Some("Never"),
                json!({"name": "logs", "image": "docker.io/timberio/vector:0.40@sha256:0"}),
                1,
            ),
            (
                "Job",
                Some("Never"),
                json!({"name": "envoy-main", "image": "e"}),
                1,
            ),
            (
                "Pod",
                Some("OnFailure"),
                json!({"name": "log-sidecar", "image": "l"}),
                1,
            ),
            (
                "Pod",
                Some("Never"),
                json!({"name": "auth-proxy", "image": "a"}),
                1,
            ),
            ("Pod", None, json!({"name": "envoy", "image": "envoy"}), 0),
            ("Job", Some("Never"), shim, 0),
            (
                "Job",
                Some("Never"),
                json!({"name": "worker", "image": "w"}),
                0,
            ),
        ];
        for (kind, policy, container, want) in cases {
            let spec = json!({"restartPolicy": policy, "containers": [{"name": "app", "image": "a"}, container]});
            let doc = if kind == "Job" {
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                    "spec": {"template": {"spec": spec}}})
            } else {
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
            };
            let found = super::super::run_on(legacy_sidecar, &doc);
            assert_eq!(found.len(), want, "{doc}");
        }
    }
}
