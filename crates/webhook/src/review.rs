//! AdmissionReview in, AdmissionReview out. This only adapts: every decision is the core
//! engine's, so the webhook and `sidecar-kit inject` always agree.

use crate::cache::{self, Cache};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sidecar_kit_core::engine::{self, Options, SkipCode, TemplateResult};
use sidecar_kit_core::facts::Facts;
use sidecar_kit_core::patch;
use sidecar_kit_core::profile::Mode;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What to do when the webhook cannot decide (a bug, or a pod it cannot read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Allow the pod without injection, with a warning in the response.
    Allow,
    /// Deny the pod with a clear message.
    Deny,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize, Default)]
struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    group: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    group: Cow<'a, str>,
    #[serde(borrow, default)]
    resource: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    resource: GroupVersionResource<'a>,
    #[serde(borrow, default)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

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
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct StatusOut {
    code: u16,
    reason: &'static str,
    message: String,
}

/// A request that is not a usable AdmissionReview: answered with HTTP 400, so the
/// webhook's failurePolicy decides.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result_ {
    Injected,
    Unchanged,
    Removed,
    Skipped,
    /// Not a pod CREATE: passed without looking.
    Passed,
    /// Internal error, pod allowed without injection.
    ErrorAllowed,
    /// Internal error, pod denied.
    ErrorDenied,
}

impl Result_ {
    pub fn as_str(self) -> &'static str {
        match self {
            Result_::Injected => "injected",
            Result_::Unchanged => "unchanged",
            Result_::Removed => "removed",
            Result_::Skipped => "skipped",
            Result_::Passed => "passed",
            Result_::ErrorAllowed => "error-allowed",
            Result_::ErrorDenied => "error-denied",
        }
    }
}

/// The answer to one review, with what logs and metrics need.
#[derive(Debug)]
pub struct Reviewed {
    pub body: Vec<u8>,
    pub result: Result_,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub dry_run: bool,
    /// `profile:mode` per injection.
    pub injections: Vec<(String, Mode)>,
    pub reason: String,
    pub skip: Option<SkipCode>,
    pub warnings: Vec<String>,
    /// Answered from the cache.
    pub cached: bool,
    /// The engine panicked: its message, and the pod's name (or generateName) if known.
    pub panic: Option<Panic>,
}

/// What a panic of the engine left behind.
#[derive(Debug, Clone)]
pub struct Panic {
    pub message: String,
    pub pod: String,
}

/// The planning step of a review: the engine's `inject` (a field of the context, so that
/// tests can put a failing one in its place).
pub type Plan = fn(
    &str,
    &sidecar_kit_core::profile::ProfileSet,
    &dyn Facts,
    &Options,
) -> Result<engine::Outcome, sidecar_kit_core::pod::ViewError>;

/// Everything a review needs besides the request.
pub struct ReviewContext<'a> {
    /// The profile set with its generation: answers are cached under the generation of the
    /// set they were planned from.
    pub profiles: &'a crate::Profiles,
    pub facts: &'a dyn Facts,
    pub options: &'a Options,
    pub failure: FailureMode,
    /// Answers to pods seen before, filed under the generations of the profile set and the
    /// facts they were planned from.
    pub cache: Option<&'a Cache<Cached>>,
    /// Plans the injection (`engine::inject`).
    pub plan: Plan,
}

/// A review answer as the cache keeps it: everything but the request's uid.
#[derive(Debug, Clone)]
pub struct Cached {
    patch: Option<String>,
    warnings: Vec<String>,
    audit: BTreeMap<&'static str, String>,
    result: Result_,
    injections: Vec<(String, Mode)>,
    reason: String,
    skip: Option<SkipCode>,
}

impl Cached {
    fn size(&self) -> usize {
        self.patch.as_ref().map_or(0, String::len)
            + self.reason.len()
            + self.warnings.iter().map(String::len).sum::<usize>()
            + 256
    }
}

const MAX_WARNING: usize = 240;

fn warning(s: &str) -> String {
    let s = format!("sidecar-kit: {s}");
    if s.len() <= MAX_WARNING {
        return s;
    }
    let mut end = MAX_WARNING - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Answers one AdmissionReview body.
pub fn review(body: &[u8], ctx: &ReviewContext<'_>) -> Result<Reviewed, BadReview> {
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
    let operation = req.operation.as_deref().unwrap_or("").to_string();
    let mut out = Reviewed {
        body: Vec::new(),
        result: Result_::Passed,
        uid: req.uid.to_string(),
        namespace: req.namespace.as_deref().unwrap_or("").to_string(),
        name: req.name.as_deref().unwrap_or("").to_string(),
        operation: operation.clone(),
        dry_run: req.dry_run.unwrap_or(false),
        injections: Vec::new(),
        reason: String::new(),
        skip: None,
        warnings: Vec::new(),
        cached: false,
        panic: None,
    };
    let is_pod = req.kind.group.is_empty()
        && req.kind.kind == "Pod"
        && req.resource.group.is_empty()
        && req.resource.resource == "pods";
    let sub = req.sub_resource.as_deref().unwrap_or("");
    let mut response = ResponseOut {
        uid: &req.uid,
        allowed: true,
        patch_type: None,
        patch: None,
        status: None,
        warnings: Vec::new(),
        audit_annotations: BTreeMap::new(),
    };
    match (is_pod && sub.is_empty(), operation.as_str(), req.object) {
        (false, _, _) => {
            out.reason = format!(
                "not a pod ({}/{} {sub}): allowed unchanged",
                req.resource.group, req.resource.resource
            )
        }
        (true, op, _) if op != "CREATE" => {
            out.reason = format!("operation {op}: allowed unchanged")
        }
        (true, _, None) => return Err(BadReview("pod CREATE review has no object".into())),
        (true, _, Some(object)) => {
            let generations = (ctx.profiles.generation, ctx.facts.generation());
            let key = ctx
                .cache
                .filter(|c| c.enabled())
                .and_then(|_| cache::key(object.get(), &out.namespace, generations));
            let hit = match (&key, ctx.cache) {
                (Some(k), Some(c)) => c.get(k),
                _ => None,
            };
            if let Some(hit) = hit {
                out.cached = true;
                out.result = hit.result;
                out.injections.clone_from(&hit.injections);
                out.reason.clone_from(&hit.reason);
                out.skip = hit.skip;
                response.warnings.clone_from(&hit.warnings);
                response.audit_annotations.clone_from(&hit.audit);
                if let Some(p) = &hit.patch {
                    response.patch_type = Some("JSONPatch");
                    response.patch = Some(p.clone());
                }
            } else {
                let mut options = ctx.options.clone();
                if !out.namespace.is_empty() {
                    options.namespace = Some(out.namespace.clone());
                }
                let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (ctx.plan)(object.get(), &ctx.profiles.set, ctx.facts, &options)
                }));
                let failure = match planned {
                    Ok(Ok(outcome)) => {
                        record(&mut out, &mut response, &outcome);
                        if !outcome.patch.is_empty() {
                            response.patch_type = Some("JSONPatch");
                            response.patch = Some(
                                base64::engine::general_purpose::STANDARD
                                    .encode(patch::to_json(&outcome.patch)),
                            );
                        }
                        if let (Some(k), Some(c)) = (key, ctx.cache)
                            && c.admit(&k)
                        {
                            let answer = Cached {
                                patch: response.patch.clone(),
                                warnings: response.warnings.clone(),
                                audit: response.audit_annotations.clone(),
                                result: out.result,
                                injections: out.injections.clone(),
                                reason: out.reason.clone(),
                                skip: out.skip,
                            };
                            let size = answer.size();
                            c.insert(k, answer, size);
                        }
                        None
                    }
                    Ok(Err(e)) => Some(format!("cannot read the pod: {e}")),
                    Err(payload) => {
                        out.panic = Some(Panic {
                            message: sidecar_kit_probes::panic_message(payload.as_ref()),
                            pod: pod_name(object.get()),
                        });
                        Some("internal error in the injection engine".to_string())
                    }
                };
                if let Some(msg) = failure {
                    out.reason = msg.clone();
                    match ctx.failure {
                        FailureMode::Allow => {
                            out.result = Result_::ErrorAllowed;
                            response.warnings.push(warning(&format!(
                                "{msg}; the pod is admitted without sidecar injection"
                            )));
                            response.audit_annotations.insert("error", msg);
                        }
                        FailureMode::Deny => {
                            out.result = Result_::ErrorDenied;
                            response.allowed = false;
                            response.status = Some(StatusOut {
                                code: 500,
                                reason: "InternalError",
                                message: format!(
                                    "sidecar-kit could not inject this pod: {msg}; the webhook is configured to deny in that case (failure mode deny)"
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    out.warnings = response.warnings.clone();
    out.body = serde_json::to_vec(&ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response,
    })
    .map_err(|e| BadReview(e.to_string()))?;
    Ok(out)
}

/// The pod's name, else its generateName followed by '*', else empty.
fn pod_name(object: &str) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta<'a> {
        #[serde(borrow, default)]
        name: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        generate_name: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        metadata: Option<Meta<'a>>,
    }
    let Ok(Head { metadata: Some(m) }) = serde_json::from_str::<Head<'_>>(object) else {
        return String::new();
    };
    match (m.name, m.generate_name) {
        (Some(n), _) if !n.is_empty() => n.into_owned(),
        (_, Some(g)) if !g.is_empty() => format!("{g}*"),
        _ => String::new(),
    }
}

fn record(out: &mut Reviewed, response: &mut ResponseOut<'_>, outcome: &engine::Outcome) {
    // The webhook sees a single pod: one template.
    let Some(t) = outcome.templates.first() else {
        out.result = Result_::Passed;
        out.reason = "no pod spec: allowed unchanged".into();
        return;
    };
    for w in &t.warnings {
        response.warnings.push(warning(w));
    }
    match &t.result {
        TemplateResult::Injected { status, changed } => {
            out.result = if *changed {
                Result_::Injected
            } else {
                Result_::Unchanged
            };
            out.injections = status
                .injections
                .iter()
                .map(|i| (i.profile.clone(), i.mode))
                .collect();
            out.reason = status
                .injections
                .iter()
                .map(|i| format!("{}: {}", i.profile, i.reason))
                .collect::<Vec<_>>()
                .join("; ");
            let summary = status
                .injections
                .iter()
                .map(|i| format!("{}={}", i.profile, i.mode))
                .collect::<Vec<_>>()
                .join(",");
            response.audit_annotations.insert("injected", summary);
        }
        TemplateResult::Removed { .. } => {
            out.result = Result_::Removed;
            out.reason = "no profile applies any more: the earlier injection was removed".into();
        }
        TemplateResult::Skipped(s) => {
            out.result = Result_::Skipped;
            out.skip = Some(s.code);
            out.reason = s.message.clone();
            response
                .audit_annotations
                .insert("skip-reason", format!("{}: {}", s.code.as_str(), s.message));
            if s.code.is_input_error() {
                response
                    .warnings
                    .push(warning(&format!("not injected: {}", s.message)));
            }
        }
    }
}
