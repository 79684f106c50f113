//! `doctor pods`: pods that native or legacy sidecars got into trouble, read from the
//! pods' status: rejected by their node, stuck in Init on a node that ignores the field,
//! `restartPolicy` lost between the owner's template and the pod, Job pods kept alive by a
//! legacy sidecar, crash-looping sidecars, teardown exits that are not failures, which
//! copy of a universal sidecar runs, and a timeline of every container.
//!
//! Each pod is read once into a [`PodView`]; the checks (one per file under `checks/`)
//! read the view and what is known around the pod ([`Context`]: its node's class, its
//! owner's template) and add findings; [`analyse`] runs them in order.

mod analysis;
pub mod checks;
mod collect;
mod context;
mod listing;
mod output;
mod owners;
pub mod universal;
pub mod view;

pub use analysis::{Analysis, analyse};
pub use context::{Context, Owner};
pub use listing::{list_pods, node_classes};
pub use output::{PodsResult, html, text};
pub use universal::UniversalCopy;
pub use view::PodView;

use crate::conn::{DoctorError, Session};
use crate::report::Report;
use crate::timeline::Timestamp;
use collect::Collected;
use owners::Owners;

/// Which pods to look at.
#[derive(Debug, Clone, Default)]
pub struct PodsOptions {
    /// Namespaces; empty: the kubeconfig's namespace.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    /// One pod by name (in the first namespace).
    pub name: Option<String>,
    /// The time the report is taken at: timelines end there. None: now.
    pub report_time: Option<Timestamp>,
}

/// At most this many timelines per report.
pub const MAX_TIMELINES: usize = 20;

/// Runs `doctor pods`: reads the pods (sorted by namespace and name), their nodes' classes
/// and their owners' templates, and analyses each.
pub async fn run(s: &Session, o: &PodsOptions) -> Result<PodsResult, DoctorError> {
    let mut report = Report::new("doctor pods");
    let mut pods = list_pods(
        s,
        &o.namespaces,
        o.all_namespaces,
        o.name.as_deref(),
        &mut report,
    )
    .await?;
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    let classes = if pods
        .iter()
        .any(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
    {
        node_classes(s, &mut report).await?
    } else {
        None
    };
    let taken = o.report_time.unwrap_or_else(Timestamp::now);
    // Kubernetes records whole seconds; so does the report.
    let taken = Timestamp::from_second(taken.as_second()).unwrap_or(taken);
    let mut owners = Owners::default();
    let mut collected = Collected::default();
    for pod in &pods {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let ctx = Context {
            node_class: classes
                .as_ref()
                .and_then(|c| c.get(node.unwrap_or_default()).copied()),
            owner: owners.of(s, pod).await?,
        };
        collected.add(pod, &ctx, taken, o.name.is_some());
    }
    Ok(collected.finish(
        report,
        o,
        &s.namespace,
        pods.len(),
        owners.missing_perms,
        taken,
    ))
}
