//! Reading an AdmissionReview request: the fields a review uses, borrowed from the body.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A request that is not a usable AdmissionReview: answered with HTTP 400, so the
/// webhook's failurePolicy decides.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<Request<'a>>,
}

#[derive(Deserialize, Default)]
pub(super) struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
pub(super) struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

/// The request of an AdmissionReview.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub operation: Option<Cow<'a, str>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
}

impl Request<'_> {
    /// The request's namespace, or empty.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// The request's operation, or empty.
    pub fn operation(&self) -> &str {
        self.operation.as_deref().unwrap_or("")
    }
}

/// The request of an `admission.k8s.io/v1` AdmissionReview body, with a uid.
pub(super) fn parse(body: &[u8]) -> Result<Request<'_>, BadReview> {
    let text =
        std::str::from_utf8(body).map_err(|_| BadReview("request body is not UTF-8".into()))?;
    let review: ReviewIn<'_> = serde_json::from_str(text)
        .map_err(|e| BadReview(format!("request body is not an AdmissionReview: {e}")))?;
    if review.api_version.as_deref() != Some("admission.k8s.io/v1")
        || review.kind.as_deref() != Some("AdmissionReview")
    {
        return Err(BadReview(format!(
            "expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got {:?}/{:?} (set admissionReviewVersions: [v1] in the webhook configuration)",
            review.api_version.as_deref().unwrap_or(""),
            review.kind.as_deref().unwrap_or("")
        )));
    }
    let req = review
        .request
        .ok_or_else(|| BadReview("AdmissionReview has no request".into()))?;
    if req.uid.is_empty() {
        return Err(BadReview("AdmissionReview request has no uid".into()));
    }
    Ok(req)
}
