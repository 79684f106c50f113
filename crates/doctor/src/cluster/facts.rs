//! The ClusterFacts file that `inject` and `explain` read with `--facts`: what `doctor
//! cluster` found, and the namespaces' labels (for namespaceSelectors).

use super::api_server::ApiServer;
use super::labeler::LeaseRead;
use crate::conn::{DoctorError, Session, list_all};
use crate::report::BlindSpot;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use sidecar_kit_core::facts::{
    ApiServerFacts, ClusterFacts, FACTS_API_VERSION, FACTS_KIND, LabelerFacts, NamespaceFacts,
    NodeFacts,
};

/// The namespaces and their labels, sorted by name; None when listing them is forbidden.
pub async fn read_namespaces(s: &Session) -> Result<Option<Vec<NamespaceFacts>>, DoctorError> {
    let ns_api: Api<Namespace> = Api::all(s.client.clone());
    match list_all(&ns_api, &ListParams::default()).await {
        Ok(list) => {
            let mut v: Vec<NamespaceFacts> = list
                .into_iter()
                .map(|n| NamespaceFacts {
                    name: n.metadata.name.unwrap_or_default(),
                    labels: n.metadata.labels.unwrap_or_default(),
                })
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Some(v))
        }
        Err(p) if p.is_forbidden() => Ok(None),
        Err(p) => Err(DoctorError::Cluster(format!(
            "cannot list namespaces: {}",
            p.message()
        ))),
    }
}

/// What could not be seen when the namespaces could not be listed.
pub fn namespaces_blind_spot() -> BlindSpot {
    BlindSpot {
        what: "namespace labels (left out of the facts file: namespaceSelectors cannot be judged offline)".into(),
        permission: "list on namespaces".into(),
    }
}

/// The facts file's content.
pub fn facts(
    api: ApiServer,
    lease: Option<&LeaseRead>,
    nodes: Vec<NodeFacts>,
    namespaces: Option<Vec<NamespaceFacts>>,
) -> ClusterFacts {
    ClusterFacts {
        api_version: FACTS_API_VERSION.into(),
        kind: FACTS_KIND.into(),
        api_server: ApiServerFacts {
            version: Some(api.read.version),
            sidecar_containers: api.read.gate,
        },
        labeler: lease
            .and_then(|l| l.fresh)
            .map(|f| LabelerFacts { lease_fresh: f }),
        nodes,
        namespaces: namespaces.unwrap_or_default(),
    }
}

/// The facts file as YAML, with a header that says where it came from.
pub fn facts_yaml(facts: &ClusterFacts) -> Result<String, DoctorError> {
    let body = serde_saphyr::to_string(facts)
        .map_err(|e| DoctorError::Runtime(format!("cannot write the facts: {e}")))?;
    Ok(format!(
        "# Written by `sidecar-kit doctor cluster -o facts`; read by `inject` and `explain --facts`.\n{body}"
    ))
}
