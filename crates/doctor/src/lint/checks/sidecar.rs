//! `sidecar.*`: native sidecars (init containers with `restartPolicy: Always`).

use crate::lint::view::{TemplateView, name, restart_policy};
use crate::report::{Finding, Severity};

/// `sidecar.no-startup-probe`: a native sidecar that containers come after needs a
/// startupProbe, or they start before it is ready.
pub(super) fn no_startup_probe(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, c) in t.init.iter().enumerate() {
        let followed = i + 1 < t.init.len() || !t.regular.is_empty();
        if restart_policy(c) == Some("Always") && c.get("startupProbe").is_none() && followed {
            let name = name(c);
            out.push(t.finding("sidecar.no-startup-probe", Severity::Warning, format!("native sidecar {name:?} has no startupProbe: the containers after it start as soon as its process runs, before it is ready"), "add a startupProbe that passes once the sidecar serves (periodSeconds: 1 keeps start-up fast)"));
        }
    }
    out
}

/// `sidecar.needs-1.29`: native sidecars need the SidecarContainers feature everywhere.
pub(super) fn needs_1_29(t: &TemplateView<'_>) -> Vec<Finding> {
    let sidecars = t.sidecars();
    if sidecars == 0 {
        return Vec::new();
    }
    vec![t.finding("sidecar.needs-1.29", Severity::Info, format!("{sidecars} native sidecar(s): they need the SidecarContainers feature on the API server and on every node the pod can land on (Kubernetes 1.29+; 1.28 nodes refuse the pod unless their gate is on)"), "check the cluster with `sidecar-kit doctor cluster`, or inject with sidecar-kit's auto mode")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sidecar_followed_by_containers_needs_a_startup_probe() {
        let sidecar = json!({"name": "proxy", "image": "p", "restartPolicy": "Always"});
        let probed = json!({"name": "proxy", "image": "p", "restartPolicy": "Always",
            "startupProbe": {"tcpSocket": {"port": 1}}});
        let plain_init = json!({"name": "setup", "image": "s"});
        let app = json!({"name": "app", "image": "a"});
        // (init containers, regular containers, findings)
        let cases = [
            (vec![sidecar.clone()], vec![app.clone()], 1),
            (vec![probed.clone()], vec![app.clone()], 0),
            (vec![sidecar.clone()], vec![], 0),
            (vec![sidecar.clone(), plain_init.clone()], vec![], 1),
            (vec![probed, sidecar.clone()], vec![app.clone()], 1),
            (vec![plain_init], vec![app], 0),
        ];
        for (init, regular, want) in cases {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"initContainers": init, "containers": regular}});
            let found = super::super::run_on(no_startup_probe, &pod);
            assert_eq!(found.len(), want, "{pod}");
            assert!(found.iter().all(|f| f.check == "sidecar.no-startup-probe"));
        }
    }
}
