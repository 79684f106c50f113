//! `pods.stuck-in-init`: a native sidecar running as a plain init container, which never
//! completes, on a node that ignores `restartPolicy` (or whose class is unknown while the
//! app containers wait).

use crate::pods::context::Context;
use crate::pods::view::PodView;
use crate::report::{Finding, Severity};
use sidecar_kit_core::version::NodeClass;

pub fn check(pod: &PodView, ctx: &Context, out: &mut Vec<Finding>) {
    if pod.phase != "Pending" {
        return;
    }
    let running: Vec<&str> = pod
        .native_sidecars()
        .filter(|c| pod.init_status(c.name).running)
        .map(|c| c.name)
        .collect();
    if running.is_empty() {
        return;
    }
    let list = running.join(", ");
    match ctx.node_class {
        Some(NodeClass::Unaware) => out.push(Finding::new(
            "pods.stuck-in-init",
            Severity::Error,
            pod.object(),
            format!(
                "{} ignores restartPolicy: the sidecar(s) {list} run as plain init containers that never complete, so the pod stays in Init",
                ctx.node_text(pod)
            ),
            Some("delete the pod once it can land on a capable node; inject in affinity or universal mode, or legacy, while unaware nodes remain".into()),
        )),
        None | Some(NodeClass::Unknown) => {
            let mut apps = pod.apps().peekable();
            let any_app = apps.peek().is_some();
            let waiting_apps =
                apps.all(|c| pod.status(c.name).waiting_reason == Some("PodInitializing"));
            if waiting_apps && any_app {
                out.push(Finding::new(
                    "pods.stuck-in-init",
                    Severity::Warning,
                    pod.object(),
                    format!(
                        "the sidecar(s) {list} run while the app containers wait in PodInitializing on {}, whose class is unknown: if its kubelet is older than 1.28 the pod never leaves Init",
                        ctx.node_text(pod)
                    ),
                    Some("run doctor cluster to see the node's class".into()),
                ));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(phase: &str, app: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"nodeName": "n1", "initContainers": [{"name": "proxy", "restartPolicy": "Always"}, {"name": "setup"}], "containers": [{"name": "app"}]},
            "status": {"phase": phase,
                "initContainerStatuses": [{"name": "proxy", "state": {"running": {}}}, {"name": "setup", "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "state": app}]}})
    }

    #[test]
    fn by_node_class_and_phase() {
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        let running = json!({"running": {}});
        let cases = [
            (
                "Pending",
                Some(NodeClass::Unaware),
                &waiting,
                Some(Severity::Error),
            ),
            (
                "Pending",
                Some(NodeClass::Unaware),
                &running,
                Some(Severity::Error),
            ),
            ("Pending", None, &waiting, Some(Severity::Warning)),
            (
                "Pending",
                Some(NodeClass::Unknown),
                &waiting,
                Some(Severity::Warning),
            ),
            // Unknown class but the apps do not wait: nothing to say.
            ("Pending", None, &running, None),
            ("Pending", Some(NodeClass::Capable), &waiting, None),
            ("Pending", Some(NodeClass::Rejecting), &waiting, None),
            ("Running", Some(NodeClass::Unaware), &waiting, None),
        ];
        for (phase, class, app, want) in cases {
            let p = pod(phase, app.clone());
            let ctx = Context {
                node_class: class,
                owner: None,
            };
            let mut out = Vec::new();
            check(&PodView::of(&p), &ctx, &mut out);
            assert_eq!(
                out.iter().map(|f| f.severity).collect::<Vec<_>>(),
                want.into_iter().collect::<Vec<_>>(),
                "{phase} {class:?} {app}"
            );
            // Only the native sidecar is named, never the plain init container.
            for f in &out {
                assert!(f.message.contains("sidecar(s) proxy run"), "{}", f.message);
            }
        }
    }
}
