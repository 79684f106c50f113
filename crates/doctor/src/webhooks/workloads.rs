//! The label sets of the workloads a profile selects in a namespace: read from the pod
//! templates of Deployments, StatefulSets, DaemonSets, Jobs and CronJobs, then chosen
//! (selected by a profile, without the labels Job controllers add, each once, at most
//! [`MAX_WORKLOAD_PROBES`]).

use super::MAX_WORKLOAD_PROBES;
use crate::conn::{DoctorError, Session, list_all};
use crate::report::BlindSpot;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Resource;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;
use sidecar_kit_core::profile::ProfileSet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// Where a label set comes from (`Deployment web`), and the labels.
pub(super) type Labelled = (String, BTreeMap<String, String>);

/// A kind whose objects hold a pod template.
trait TemplateOwner:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug
{
    const KIND: &'static str;
    /// The resource, as a permission names it.
    const RESOURCE: &'static str;
    fn template(&self) -> Option<&PodTemplateSpec>;
}

/// The kinds whose pod template is `spec.template`.
macro_rules! spec_template {
    ($($t:ty, $kind:literal, $resource:literal;)*) => {$(
        impl TemplateOwner for $t {
            const KIND: &'static str = $kind;
            const RESOURCE: &'static str = $resource;
            fn template(&self) -> Option<&PodTemplateSpec> {
                self.spec.as_ref().map(|s| &s.template)
            }
        }
    )*};
}

spec_template! {
    Deployment, "Deployment", "deployments.apps";
    StatefulSet, "StatefulSet", "statefulsets.apps";
    DaemonSet, "DaemonSet", "daemonsets.apps";
    Job, "Job", "jobs.batch";
}

impl TemplateOwner for CronJob {
    const KIND: &'static str = "CronJob";
    const RESOURCE: &'static str = "cronjobs.batch";
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .map(|s| &s.template)
    }
}

/// Label sets of pod templates in `ns` that a profile selects.
pub(super) async fn workload_labels(
    s: &Session,
    ns: &str,
    ns_labels: Option<&BTreeMap<String, String>>,
    profiles: &ProfileSet,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<Vec<Labelled>, DoctorError> {
    let mut templates = Vec::new();
    templates_of::<Deployment>(s, ns, &mut templates, blind_spots).await?;
    templates_of::<StatefulSet>(s, ns, &mut templates, blind_spots).await?;
    templates_of::<DaemonSet>(s, ns, &mut templates, blind_spots).await?;
    templates_of::<Job>(s, ns, &mut templates, blind_spots).await?;
    templates_of::<CronJob>(s, ns, &mut templates, blind_spots).await?;
    Ok(selected(templates, ns_labels, profiles))
}

/// The template labels of every `K` in `ns`; a kind not listable is a blind spot.
async fn templates_of<K: TemplateOwner>(
    s: &Session,
    ns: &str,
    out: &mut Vec<Labelled>,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<(), DoctorError> {
    let api: Api<K> = Api::namespaced(s.client.clone(), ns);
    match list_all(&api, &ListParams::default()).await {
        Ok(items) => {
            for o in items {
                let name = o.meta().name.clone().unwrap_or_default();
                let labels = o
                    .template()
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                out.push((format!("{} {name}", K::KIND), labels));
            }
            Ok(())
        }
        Err(p) if p.is_forbidden() => {
            blind_spots.push(BlindSpot {
                what: format!(
                    "the pod labels of {}s in namespace {ns} (probed without them)",
                    K::KIND
                ),
                permission: format!("list on {} in namespace {ns}", K::RESOURCE),
            });
            Ok(())
        }
        Err(p) => Err(DoctorError::Cluster(format!(
            "cannot list {}s in {ns}: {}",
            K::KIND,
            p.message()
        ))),
    }
}

/// The label sets worth a probe: those a profile selects (its namespaceSelector judged
/// where the namespace's labels are known), without the run-specific labels of Jobs, each
/// once and none empty, at most [`MAX_WORKLOAD_PROBES`].
pub(super) fn selected(
    templates: Vec<Labelled>,
    ns_labels: Option<&BTreeMap<String, String>>,
    profiles: &ProfileSet,
) -> Vec<Labelled> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (origin, mut labels) in templates {
        let selected = profiles.iter().any(|p| {
            p.spec.selector.matches(&labels)
                && match (&p.spec.namespace_selector, ns_labels) {
                    (Some(sel), Some(l)) => sel.matches(l),
                    _ => true,
                }
        });
        // Job controllers add run-specific labels; they say nothing about selection.
        for k in [
            "batch.kubernetes.io/controller-uid",
            "controller-uid",
            "batch.kubernetes.io/job-name",
            "job-name",
        ] {
            labels.remove(k);
        }
        if selected && !labels.is_empty() && seen.insert(labels.clone()) {
            out.push((origin, labels));
        }
    }
    out.truncate(MAX_WORKLOAD_PROBES);
    out
}
