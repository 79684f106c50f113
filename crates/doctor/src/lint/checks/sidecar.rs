//! `sidecar.*`: native sidecars (init containers with `restartPolicy: Always`).

use crate::lint::view::{TemplateView, name, restart_policy};
use crate::report::{Finding, Severity};
use sidecar_kit_core::status::Status;

/// `sidecar.no-startup-probe`: a native sidecar that containers come after needs a
/// startupProbe, or they start before it is ready.
pub(super) fn no_startup_probe(t: &TemplateView<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, c) in t.init.iter().enumerate() {
        let followed = i + 1 < t.init.len() || !t.regular.is_empty() || t.profile;
        if restart_policy(c) == Some("Always") && c.get("startupProbe").is_none() && followed {
            let name = name(c);
            out.push(t.finding("sidecar.no-startup-probe", Severity::Warning, format!("native sidecar {name:?} has no startupProbe: the containers after it start as soon as its process runs, before it is ready"), "add a startupProbe that passes once the sidecar serves (periodSeconds: 1 keeps start-up fast)"));
        }
    }
    out
}

/// `sidecar.needs-1.29`: native sidecars need the SidecarContainers feature everywhere.
/// On sidecar-kit's own output (its status annotation is there) the mode was already
/// decided: the fix says which and why, and does not send the user back to `auto`.
pub(super) fn needs_1_29(t: &TemplateView<'_>) -> Vec<Finding> {
    let sidecars = t.sidecars();
    if sidecars == 0 || t.profile {
        return Vec::new();
    }
    let decided = t
        .status
        .and_then(|s| Status::parse(s).ok())
        .filter(|s| !s.injections.is_empty())
        .map(|s| {
            s.injections
                .iter()
                .map(|i| format!("{} mode for profile {} ({})", i.mode, i.profile, i.reason))
                .collect::<Vec<_>>()
                .join("; ")
        });
    let fix = match decided {
        Some(choices) => format!(
            "check with `sidecar-kit doctor cluster` that every node the pod can land on runs them; sidecar-kit chose {choices}"
        ),
        None => "check the cluster with `sidecar-kit doctor cluster`, or inject with sidecar-kit's auto mode".to_string(),
    };
    vec![t.finding("sidecar.needs-1.29", Severity::Info, format!("{sidecars} native sidecar(s): they need the SidecarContainers feature on the API server and on every node the pod can land on (Kubernetes 1.29+; 1.28 nodes refuse the pod unless their gate is on)"), &fix)]
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

    #[test]
    fn needs_1_29_on_sidecar_kit_output_says_what_was_chosen() {
        let spec = json!({"initContainers": [{"name": "log-shipper", "image": "l", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "a"}]});
        let status = r#"{"v":1,"injections":[{"profile":"log-shipper","hash":"sha256:1","mode":"native","reason":"auto: all 3 candidate nodes are capable: native","added":{"initContainers":["log-shipper"]}}]}"#;
        let fix = |annotations: serde_json::Value| {
            let pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "annotations": annotations}, "spec": spec});
            let found = super::super::run_on(needs_1_29, &pod);
            assert_eq!(found.len(), 1, "{pod}");
            found[0].fix.clone().unwrap()
        };
        assert_eq!(
            fix(json!({})),
            "check the cluster with `sidecar-kit doctor cluster`, or inject with sidecar-kit's auto mode"
        );
        assert_eq!(
            fix(json!({"sidecar-kit.io/status": status})),
            "check with `sidecar-kit doctor cluster` that every node the pod can land on runs them; sidecar-kit chose native mode for profile log-shipper (auto: all 3 candidate nodes are capable: native)"
        );
        // An unreadable annotation is sidecar-kit.bad-status's finding; this one stays general.
        assert!(fix(json!({"sidecar-kit.io/status": "{"})).contains("auto mode"));
    }
}
