//! The pods' owners' templates, read from the API (once per owner): which init containers
//! they declare with `restartPolicy: Always`, and the permissions missing to read them.

use super::context::Owner;
use crate::conn::{ApiProblem, DoctorError, Session, bounded};
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use std::collections::{BTreeMap, HashMap};

fn owner_ref(pod: &Pod) -> Option<(String, String)> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone()))
}

fn template_sidecars(spec: Option<&PodSpec>) -> Vec<String> {
    spec.and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.clone())
        .collect()
}

/// `Deployment web (ReplicaSet web-7d9c)` when `meta` names an owner of kind `outer`,
/// else `ReplicaSet web-7d9c`.
fn display(meta: &ObjectMeta, outer: &str, kind: &str, name: &str) -> String {
    match meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == outer)
    {
        Some(o) => format!("{outer} {} ({kind} {name})", o.name),
        None => format!("{kind} {name}"),
    }
}

/// Reads the owner's template; `Err` names the permission that is missing.
async fn owner(
    s: &Session,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<Option<Owner>, (String, ApiProblem)> {
    let c = s.client.clone();
    macro_rules! get {
        ($t:ty, $res:literal) => {{
            let api: Api<$t> = Api::namespaced(c, ns);
            bounded(api.get_opt(name))
                .await
                .map_err(|p| (format!("get on {} in namespace {ns}", $res), p))?
        }};
    }
    Ok(match kind {
        "ReplicaSet" => get!(ReplicaSet, "replicasets.apps").map(|rs| Owner {
            display: display(&rs.metadata, "Deployment", kind, name),
            template_sidecars: template_sidecars(
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref()),
            ),
        }),
        "StatefulSet" => get!(StatefulSet, "statefulsets.apps").map(|o| Owner {
            display: format!("StatefulSet {name}"),
            template_sidecars: template_sidecars(
                o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            ),
        }),
        "DaemonSet" => get!(DaemonSet, "daemonsets.apps").map(|o| Owner {
            display: format!("DaemonSet {name}"),
            template_sidecars: template_sidecars(
                o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            ),
        }),
        "Job" => get!(Job, "jobs.batch").map(|o| Owner {
            display: display(&o.metadata, "CronJob", kind, name),
            template_sidecars: template_sidecars(
                o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
            ),
        }),
        _ => None,
    })
}

/// The owners read so far, and how many could not be read for want of each permission.
#[derive(Default)]
pub struct Owners {
    /// By (namespace, kind, name); None: not there, not a kind with a template, or
    /// forbidden.
    read: HashMap<(String, String, String), Option<Owner>>,
    /// Permission to the number of owners it would have let read.
    pub missing_perms: BTreeMap<String, usize>,
}

impl Owners {
    /// The owner of `pod` when the pod has init containers without `restartPolicy: Always`
    /// (only then can it have been lost), read once per owner.
    pub async fn of(&mut self, s: &Session, pod: &Pod) -> Result<Option<Owner>, DoctorError> {
        let inits_without_field = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|l| {
                l.iter()
                    .any(|c| c.restart_policy.as_deref() != Some("Always"))
            });
        let Some((kind, oname)) = owner_ref(pod).filter(|_| inits_without_field) else {
            return Ok(None);
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let key = (ns, kind, oname);
        if !self.read.contains_key(&key) {
            let (ns, kind, oname) = &key;
            let got = match owner(s, ns, kind, oname).await {
                Ok(o) => o,
                Err((perm, p)) if p.is_forbidden() => {
                    *self.missing_perms.entry(perm).or_default() += 1;
                    None
                }
                Err((_, p)) => {
                    return Err(DoctorError::Cluster(format!(
                        "cannot read {kind} {ns}/{oname}: {}",
                        p.message()
                    )));
                }
            };
            self.read.insert(key.clone(), got);
        }
        Ok(self.read.get(&key).cloned().flatten())
    }
}
