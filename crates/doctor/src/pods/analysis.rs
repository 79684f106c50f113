//! One pod's analysis: the checks run in order over the pod's view, and the sidecars and
//! injections as the report's table shows them.

use super::checks::{self, restart_policy_stripped};
use super::context::Context;
use super::universal::UniversalCopy;
use super::view::PodView;
use crate::report::Finding;
use serde_json::Value;
use std::collections::BTreeSet;

/// One pod's findings and what the table shows.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Sidecars as the table shows them.
    pub sidecars: Vec<String>,
    pub injected: Vec<String>,
    pub universal: Vec<UniversalCopy>,
}

/// Looks at one pod (raw JSON).
pub fn analyse(pod: &Value, ctx: &Context) -> Analysis {
    let view = PodView::of(pod);
    let mut findings = Vec::new();
    for check in checks::ALL {
        check(&view, ctx, &mut findings);
    }
    Analysis {
        findings,
        sidecars: sidecars(&view, ctx),
        injected: view
            .status
            .iter()
            .flat_map(|st| &st.injections)
            .map(|i| format!("{} {} ({})", i.profile, i.mode, i.hash))
            .collect(),
        universal: view.universal.iter().map(|u| u.to_copy()).collect(),
    }
}

/// The sidecars as the table shows them: those whose `restartPolicy` was lost, the
/// universal ones with the copy that runs them, then the other native and legacy ones.
fn sidecars(view: &PodView, ctx: &Context) -> Vec<String> {
    let mut out: Vec<String> = ctx
        .owner
        .iter()
        .flat_map(|o| restart_policy_stripped::lost(view, o))
        .map(|n| format!("{n} (restartPolicy lost)"))
        .collect();
    out.extend(
        view.universal
            .iter()
            .map(|u| format!("{} (universal: {} copy)", u.sidecar, u.copy)),
    );
    let universal_names: BTreeSet<&str> = view
        .universal
        .iter()
        .flat_map(|u| [u.sidecar, u.legacy_name.as_str()])
        .collect();
    let others = |c: &&super::view::Container| !universal_names.contains(c.name);
    out.extend(
        view.native_sidecars()
            .filter(others)
            .map(|c| format!("{} (native)", c.name)),
    );
    out.extend(
        view.legacy_sidecars()
            .filter(others)
            .map(|c| format!("{} (legacy)", c.name)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::Owner;
    use crate::report::Severity;
    use serde_json::json;
    use sidecar_kit_core::status::STATUS_ANNOTATION;
    use sidecar_kit_core::version::NodeClass;

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec, "status": status})
    }

    /// A pod on a node of class `class`, without a known owner.
    fn on(class: NodeClass) -> Context {
        Context {
            node_class: Some(class),
            owner: None,
        }
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
        let ctx = on(NodeClass::Capable);
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
        let a = analyse(&p, &on(NodeClass::Rejecting));
        assert_eq!(checks(&a), vec![("pods.rejected-by-node", Severity::Error)]);
        assert!(a.findings[0].message.contains("node n1 (rejecting)"));
        assert!(!a.findings[0].message.contains("classed capable"));
        // A node classed capable (its gate never read) that refused the pod: said, with the fix
        // that makes the label right.
        let a = analyse(&p, &on(NodeClass::Capable));
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
        let a = analyse(&stuck, &on(NodeClass::Unaware));
        assert_eq!(checks(&a), vec![("pods.stuck-in-init", Severity::Error)]);
        let a = analyse(&stuck, &Context::default());
        assert_eq!(checks(&a), vec![("pods.stuck-in-init", Severity::Warning)]);
        let a = analyse(&stuck, &on(NodeClass::Capable));
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
        let a = analyse(&legacy, &on(NodeClass::Capable));
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
        let a = analyse(&dropped, &on(NodeClass::Capable));
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
