//! Reading what `doctor pods` (and `doctor injections`) look at: the pods asked for, and
//! the class of every node.

use crate::conn::{ApiProblem, DoctorError, Session, bounded, list_all};
use crate::report::{BlindSpot, Report};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams};
use sidecar_kit_cluster::live::node_facts;
use sidecar_kit_core::version::NodeClass;
use std::collections::HashMap;

/// Node classes by node name (from versions and the labeler's annotation); None when
/// nodes cannot be listed.
pub async fn node_classes(
    s: &Session,
    report: &mut Report,
) -> Result<Option<HashMap<String, NodeClass>>, DoctorError> {
    let api: Api<Node> = Api::all(s.client.clone());
    match list_all(&api, &ListParams::default()).await {
        Ok(nodes) => Ok(Some(
            nodes
                .iter()
                .map(|n| {
                    let f = node_facts(n);
                    (f.name.clone(), f.class())
                })
                .collect(),
        )),
        Err(p) if p.is_forbidden() => {
            report.blind_spots.push(BlindSpot {
                what: "node classes (which pods sit on unaware or rejecting nodes)".into(),
                permission: "list on nodes".into(),
            });
            Ok(None)
        }
        Err(p) => Err(DoctorError::Cluster(format!(
            "cannot list nodes: {}",
            p.message()
        ))),
    }
}

/// Lists the pods asked for. A namespace whose pods are forbidden is a blind spot; when
/// nothing at all can be read, the command ends (exit 3). With `-A` and no cluster-wide
/// `list` on pods, the namespaces are listed and read one by one.
pub async fn list_pods(
    s: &Session,
    namespaces: &[String],
    all: bool,
    name: Option<&str>,
    report: &mut Report,
) -> Result<Vec<Pod>, DoctorError> {
    let fail = |what: String, p: ApiProblem| {
        if p.is_forbidden() {
            DoctorError::Cluster(format!(
                "cannot read pods {what}: {} (grant list and get on pods)",
                p.message()
            ))
        } else {
            DoctorError::Cluster(format!("cannot read pods {what}: {}", p.message()))
        }
    };
    let mut namespaces: Vec<String> = if namespaces.is_empty() {
        vec![s.namespace.clone()]
    } else {
        namespaces.to_vec()
    };
    if let Some(name) = name {
        let ns = &namespaces[0];
        let api: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        return match bounded(api.get_opt(name)).await {
            Ok(Some(p)) => Ok(vec![p]),
            Ok(None) => Err(DoctorError::Input(format!("pod {ns}/{name} not found"))),
            Err(p) => Err(fail(format!("in namespace {ns}"), p)),
        };
    }
    if all {
        let api: Api<Pod> = Api::all(s.client.clone());
        match list_all(&api, &ListParams::default()).await {
            Ok(pods) => return Ok(pods),
            Err(p) if p.is_forbidden() => {
                let ns_api: Api<Namespace> = Api::all(s.client.clone());
                let list = list_all(&ns_api, &ListParams::default())
                    .await
                    .map_err(|_| fail("in all namespaces".into(), p))?;
                namespaces = list.into_iter().filter_map(|n| n.metadata.name).collect();
                namespaces.sort();
            }
            Err(p) => return Err(fail("in all namespaces".into(), p)),
        }
    }
    let mut out = Vec::new();
    let mut readable = 0;
    let mut last = None;
    for ns in &namespaces {
        let api: Api<Pod> = Api::namespaced(s.client.clone(), ns);
        match list_all(&api, &ListParams::default()).await {
            Ok(pods) => {
                readable += 1;
                out.extend(pods);
            }
            Err(p) if p.is_forbidden() => {
                report.blind_spots.push(BlindSpot {
                    what: format!("the pods in namespace {ns}"),
                    permission: format!("list on pods in namespace {ns}"),
                });
                last = Some((ns.clone(), p));
            }
            Err(p) => return Err(fail(format!("in namespace {ns}"), p)),
        }
    }
    match (readable, last) {
        (0, Some((ns, p))) => Err(fail(format!("in namespace {ns}"), p)),
        _ => Ok(out),
    }
}
