//! The workload a pod belongs to, as `kubectl rollout` names it, and the command that
//! restarts its pods.

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use std::collections::HashMap;

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

/// The workload of a pod: its controller, a Deployment for a ReplicaSet named after the
/// pod template hash, a CronJob for a Job that `jobs` says one owns (`(namespace, job)` to
/// its CronJob).
pub(super) fn workload_of(pod: &Pod, jobs: &HashMap<(String, String), Option<String>>) -> Workload {
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

#[cfg(test)]
mod tests {
    use super::*;

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
