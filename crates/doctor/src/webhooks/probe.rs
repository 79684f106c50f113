//! The probe: a minimal pod with a native sidecar, created as a server-side dry run, and
//! what the API server's answer says about `restartPolicy: Always`.

use super::{PROBE_LABEL, PROBE_SIDECAR};
use crate::conn::ApiProblem;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The probe pod: a native sidecar and an app container, both passing the `restricted`
/// Pod Security profile, with `labels` (the probe label always included).
pub fn probe_pod(namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut all = labels.clone();
    all.insert(PROBE_LABEL.0.into(), PROBE_LABEL.1.into());
    let container = |name: &str| {
        json!({
            "name": name,
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"}
            }
        })
    };
    let mut sidecar = container(PROBE_SIDECAR);
    sidecar["restartPolicy"] = json!("Always");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{PROBE_SIDECAR}-"),
            "namespace": namespace,
            "labels": all,
            "annotations": {"sidecar-kit.io/doctor": "dry-run probe: never stored"}
        },
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [sidecar],
            "containers": [container("app")],
            "terminationGracePeriodSeconds": 1
        }
    })
}

/// What happened to one probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum ProbeResult {
    /// `restartPolicy: Always` came back.
    Kept,
    /// The sidecar came back without it (or not at all).
    Lost { detail: String },
    /// The dry run was refused for another reason.
    Refused { message: String },
    /// Not allowed to dry-run pods here.
    Forbidden,
}

/// Judges the API server's answer to the dry-run create.
pub fn judge(answer: Result<&Value, &ApiProblem>) -> ProbeResult {
    match answer {
        Ok(pod) => {
            let inits = pod["spec"]["initContainers"].as_array();
            match inits.and_then(|l| l.iter().find(|c| c["name"] == PROBE_SIDECAR)) {
                Some(c) if c["restartPolicy"] == "Always" => ProbeResult::Kept,
                Some(_) => ProbeResult::Lost {
                    detail: "the sidecar came back without restartPolicy".into(),
                },
                None => ProbeResult::Lost {
                    detail: "the sidecar is gone from initContainers".into(),
                },
            }
        }
        Err(p) if p.is_forbidden() => ProbeResult::Forbidden,
        Err(p) if p.message().contains("without restartPolicy=Always") => ProbeResult::Lost {
            detail: format!("the pod became invalid without the field: {}", p.message()),
        },
        Err(p) => ProbeResult::Refused {
            message: p.message().to_string(),
        },
    }
}

/// One probe as the report's data lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Probe {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Where the labels came from.
    pub origin: String,
    #[serde(flatten)]
    pub result: ProbeResult,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Value>,
}

/// `k=v,k2=v2`.
pub(super) fn labels_text(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
