//! What `doctor injections` reads from the cluster: the pods, their nodes' classes, the
//! labels of their namespaces and which of their Jobs belong to CronJobs. What it may not
//! read becomes a blind spot of the report.

use crate::conn::{DoctorError, Session, bounded};
use crate::pods::{list_pods, node_classes};
use crate::report::{BlindSpot, Report};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::Api;
use sidecar_kit_core::version::NodeClass;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `(namespace, Job name)` to the CronJob that owns the Job, if any.
pub(super) type JobOwners = HashMap<(String, String), Option<String>>;

/// The cluster as `doctor injections` sees it.
pub(super) struct Gathered {
    /// The pods, by namespace and name.
    pub pods: Vec<Pod>,
    /// Node name to class; None: nodes not readable.
    pub classes: Option<HashMap<String, NodeClass>>,
    /// Labels of the pods' namespaces that could be read.
    pub ns_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub jobs: JobOwners,
}

/// Reads the cluster; blind spots go to `report`.
pub(super) async fn gather(
    s: &Session,
    namespaces: &[String],
    all_namespaces: bool,
    report: &mut Report,
) -> Result<Gathered, DoctorError> {
    let mut pods = list_pods(s, namespaces, all_namespaces, None, report).await?;
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let classes = node_classes(s, report).await?;
    let ns_labels = namespace_labels(s, &pods, report).await?;
    let jobs = job_owners(s, &pods, report).await?;
    Ok(Gathered {
        pods,
        classes,
        ns_labels,
        jobs,
    })
}

/// Namespace labels: namespaceSelectors of profiles, and the webhook's opt-in label.
async fn namespace_labels(
    s: &Session,
    pods: &[Pod],
    report: &mut Report,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, DoctorError> {
    let ns_api: Api<Namespace> = Api::all(s.client.clone());
    let wanted: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.namespace.clone())
        .collect();
    let mut ns_labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut ns_hidden = false;
    for ns in &wanted {
        match bounded(ns_api.get_opt(ns)).await {
            Ok(Some(n)) => {
                ns_labels.insert(ns.clone(), n.metadata.labels.unwrap_or_default());
            }
            Ok(None) => {}
            Err(p) if p.is_forbidden() => ns_hidden = true,
            Err(p) => {
                return Err(DoctorError::Cluster(format!(
                    "cannot read namespace {ns}: {}",
                    p.message()
                )));
            }
        }
    }
    if ns_hidden {
        report.blind_spots.push(BlindSpot {
            what: "namespace labels (profiles' namespaceSelectors and the webhook's opt-in label)"
                .into(),
            permission: "get on namespaces".into(),
        });
    }
    Ok(ns_labels)
}

/// Jobs owned by CronJobs, for every Job that owns a pod.
async fn job_owners(
    s: &Session,
    pods: &[Pod],
    report: &mut Report,
) -> Result<JobOwners, DoctorError> {
    let mut jobs = JobOwners::new();
    let mut jobs_hidden = BTreeSet::new();
    for p in pods {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        for r in p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.kind == "Job")
        {
            let key = (ns.clone(), r.name.clone());
            if jobs.contains_key(&key) || jobs_hidden.contains(&ns) {
                continue;
            }
            let api: Api<Job> = Api::namespaced(s.client.clone(), &ns);
            match bounded(api.get_opt(&r.name)).await {
                Ok(j) => {
                    let cj = j.and_then(|j| {
                        j.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .find(|o| o.kind == "CronJob")
                            .map(|o| o.name.clone())
                    });
                    jobs.insert(key, cj);
                }
                Err(p) if p.is_forbidden() => {
                    jobs_hidden.insert(ns.clone());
                }
                Err(p) => {
                    return Err(DoctorError::Cluster(format!(
                        "cannot read job {ns}/{}: {}",
                        r.name,
                        p.message()
                    )));
                }
            }
        }
    }
    for ns in &jobs_hidden {
        report.blind_spots.push(BlindSpot {
            what: format!("which Jobs in {ns} belong to CronJobs (shown as Jobs)"),
            permission: format!("get on jobs.batch in namespace {ns}"),
        });
    }
    Ok(jobs)
}
