//! What `doctor webhooks` reads from the cluster: the webhook chain, whether the API server
//! itself keeps the field, and per namespace its labels and the answers to the dry-run
//! probes. What it may not read becomes a blind spot.

use super::WebhooksOptions;
use super::chain::in_call_order;
use super::probe::{ProbeResult, judge, probe_pod};
use super::workloads::{Labelled, workload_labels};
use crate::conn::{DoctorError, REQUEST_TIMEOUT, Session, bounded, list_all};
use crate::report::BlindSpot;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;
use sidecar_kit_cluster::apiserver::metrics_gate;
use sidecar_kit_core::version::{FieldKept, GateState, KubeVersion, api_server_keeps_field};
use std::collections::BTreeMap;

/// The cluster as `doctor webhooks` sees it.
pub(super) struct Gathered {
    /// The webhooks that intercept pod CREATE, in call order; None: the configurations
    /// could not be listed.
    pub chain: Option<Vec<(String, MutatingWebhook)>>,
    /// Whether the API server itself keeps `restartPolicy` on init containers.
    pub kept: FieldKept,
    /// The probed namespaces, in the order asked for.
    pub namespaces: Vec<ProbedNamespace>,
}

/// One namespace and its probes.
pub(super) struct ProbedNamespace {
    pub name: String,
    /// False: it does not exist, and was not probed.
    pub exists: bool,
    /// Its labels; None when they could not be read.
    pub labels: Option<BTreeMap<String, String>>,
    pub probes: Vec<Probed>,
}

/// One dry-run probe and the API server's answer.
pub(super) struct Probed {
    /// Where its labels came from: `the plain probe`, or a workload.
    pub origin: String,
    pub labels: BTreeMap<String, String>,
    /// The probe pod as sent.
    pub pod: Value,
    pub result: ProbeResult,
}

/// Reads the cluster; blind spots go to `blind_spots`.
pub(super) async fn gather(
    s: &Session,
    o: &WebhooksOptions,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<Gathered, DoctorError> {
    let chain = chain(s, blind_spots).await?;
    let api_version = KubeVersion::parse(&s.version.git_version);
    let gate = match metrics_gate(&s.client, "/metrics", REQUEST_TIMEOUT).await {
        Ok(Some(g)) => g,
        _ => GateState::Unknown,
    };
    let kept = api_server_keeps_field(api_version.as_ref(), gate);
    let names = if o.namespaces.is_empty() {
        vec![s.namespace.clone()]
    } else {
        o.namespaces.clone()
    };
    let mut namespaces = Vec::new();
    for ns in names {
        namespaces.push(namespace(s, o, ns, blind_spots).await?);
    }
    Ok(Gathered {
        chain,
        kept,
        namespaces,
    })
}

/// The webhooks that intercept pod CREATE, in call order.
async fn chain(
    s: &Session,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<Option<Vec<(String, MutatingWebhook)>>, DoctorError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(s.client.clone());
    match list_all(&api, &ListParams::default()).await {
        Ok(configs) => Ok(Some(in_call_order(configs))),
        Err(p) if p.is_forbidden() => {
            blind_spots.push(BlindSpot {
                what: "the mutating webhooks (their order, rules, selectors and matchConditions)"
                    .into(),
                permission: "list on mutatingwebhookconfigurations.admissionregistration.k8s.io"
                    .into(),
            });
            Ok(None)
        }
        Err(p) => Err(DoctorError::Cluster(format!(
            "cannot list mutating webhook configurations: {}",
            p.message()
        ))),
    }
}

/// A namespace's labels and its probes: the plain one, and one per label set of the
/// workloads a profile selects there.
async fn namespace(
    s: &Session,
    o: &WebhooksOptions,
    ns: String,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<ProbedNamespace, DoctorError> {
    let ns_api: Api<Namespace> = Api::all(s.client.clone());
    let labels = match bounded(ns_api.get_opt(&ns)).await {
        Ok(Some(n)) => Some(n.metadata.labels.unwrap_or_default()),
        Ok(None) => {
            return Ok(ProbedNamespace {
                name: ns,
                exists: false,
                labels: None,
                probes: Vec::new(),
            });
        }
        Err(p) if p.is_forbidden() => {
            blind_spots.push(BlindSpot {
                what: format!(
                    "the labels of namespace {ns} (webhook namespaceSelectors cannot be judged)"
                ),
                permission: "get on namespaces".into(),
            });
            None
        }
        Err(p) => {
            return Err(DoctorError::Cluster(format!(
                "cannot read namespace {ns}: {}",
                p.message()
            )));
        }
    };
    let mut sets: Vec<Labelled> = vec![("the plain probe".to_string(), BTreeMap::new())];
    if let Some(profiles) = &o.profiles {
        sets.extend(workload_labels(s, &ns, labels.as_ref(), profiles, blind_spots).await?);
    }
    let mut probes = Vec::new();
    for (origin, set) in sets {
        probes.push(probe(s, &ns, origin, set, blind_spots).await?);
    }
    Ok(ProbedNamespace {
        name: ns,
        exists: true,
        labels,
        probes,
    })
}

/// Creates one probe pod as a dry run and judges the answer; a forbidden one is a blind
/// spot.
async fn probe(
    s: &Session,
    ns: &str,
    origin: String,
    labels: BTreeMap<String, String>,
    blind_spots: &mut Vec<BlindSpot>,
) -> Result<Probed, DoctorError> {
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), ns);
    let pod_json = probe_pod(ns, &labels);
    let pod: Pod = serde_json::from_value(pod_json.clone())
        .map_err(|e| DoctorError::Runtime(format!("the probe pod does not decode: {e}")))?;
    let pp = PostParams {
        dry_run: true,
        field_manager: Some("sidecar-kit-doctor".into()),
    };
    let answer = bounded(pods.create(&pp, &pod)).await;
    let answer_json = answer
        .as_ref()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
    let result = judge(answer_json.as_ref().map_err(|e| *e));
    if result == ProbeResult::Forbidden {
        blind_spots.push(BlindSpot {
            what: format!("whether restartPolicy survives the webhooks in namespace {ns}"),
            permission: format!("create on pods in namespace {ns} (a dry run: nothing is stored)"),
        });
    }
    Ok(Probed {
        origin,
        labels,
        pod: pod_json,
        result,
    })
}
