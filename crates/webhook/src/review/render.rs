//! The AdmissionReview response: rendered from a decision and the uid of the request it
//! answers.

use super::decision::Decision;
use super::parse::BadReview;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    /// Base64 of the JSON Patch, as the admission API documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "no_warnings")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "no_annotations")]
    audit_annotations: &'a BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

fn no_warnings(w: &&[String]) -> bool {
    w.is_empty()
}

fn no_annotations(a: &&BTreeMap<&'static str, String>) -> bool {
    a.is_empty()
}

/// The response body answering the request `uid` with `decision`.
pub(super) fn render(uid: &str, decision: &Decision) -> Result<Vec<u8>, BadReview> {
    serde_json::to_vec(&ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: decision.denial.is_none(),
            patch_type: decision.patch.as_ref().map(|_| "JSONPatch"),
            patch: decision.patch.as_deref(),
            status: decision.denial.as_deref().map(|message| StatusOut {
                code: 500,
                reason: "InternalError",
                message,
            }),
            warnings: &decision.warnings,
            audit_annotations: &decision.audit,
        },
    })
    .map_err(|e| BadReview(e.to_string()))
}
