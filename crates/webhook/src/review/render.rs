//! The AdmissionReview response: rendered from a decision and the uid of the request it
//! answers.

use super::decision::Decision;
use super::parse::BadReview;
use serde::Serialize;
use std::collections::BTreeMap;

/// The response after its uid: every field but the uid, as serde writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TailOut<'a> {
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

/// What every response starts with, up to its uid.
const HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// The response body answering the request `uid` with `decision`: its head, the uid, and the
/// decision's tail (written once per decision; a cached one serves every repeat).
pub(super) fn render(uid: &str, decision: &Decision) -> Result<Vec<u8>, BadReview> {
    let tail = match decision.tail.get() {
        Some(t) => t,
        None => {
            let t = tail(decision)?;
            decision.tail.get_or_init(|| t)
        }
    };
    let mut out = Vec::with_capacity(HEAD.len() + uid.len() + 2 + tail.len());
    out.extend_from_slice(HEAD);
    sidecar_kit_core::text::push_json_string(&mut out, uid);
    out.extend_from_slice(tail);
    Ok(out)
}

/// The tail's fields, with `patch` as the patch's text (`None`: the patch, if any, is
/// written by the caller, and the patch type with it).
fn tail_out<'a>(decision: &'a Decision, patch: Option<&'a str>) -> TailOut<'a> {
    TailOut {
        allowed: decision.denial.is_none(),
        patch_type: patch.map(|_| "JSONPatch"),
        patch,
        status: decision.denial.as_deref().map(|message| StatusOut {
            code: 500,
            reason: "InternalError",
            message,
        }),
        warnings: &decision.warnings,
        audit_annotations: &decision.audit,
    }
}

/// `,"allowed":...}}`: the response's other fields, and the ends of the response and the
/// review. The patch (base64, which JSON needs no escape for, as its type says: a few KB
/// that serde would look up byte by byte in its escape table) is written as it is; serde
/// writes the rest.
fn tail(decision: &Decision) -> Result<Vec<u8>, BadReview> {
    let rest =
        serde_json::to_vec(&tail_out(decision, None)).map_err(|e| BadReview(e.to_string()))?;
    let Some(patch) = &decision.patch else {
        let mut t = rest;
        // `{"allowed":...}` always has a field: its `{` becomes the comma after the uid.
        t[0] = b',';
        t.push(b'}');
        return Ok(t);
    };
    // `{"allowed":true` + what follows the patch (`,"status":...` or nothing) + `}`.
    let (allowed, after) = match rest.iter().position(|&b| b == b',') {
        Some(i) => (&rest[1..i], &rest[i..rest.len() - 1]),
        None => (&rest[1..rest.len() - 1], &[][..]),
    };
    let mut t = Vec::with_capacity(rest.len() + patch.as_bytes().len() + 40);
    t.push(b',');
    t.extend_from_slice(allowed);
    t.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
    t.extend_from_slice(patch.as_bytes());
    t.push(b'"');
    t.extend_from_slice(after);
    t.extend_from_slice(b"}}");
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::super::base64::encode;
    use super::super::decision::Result_;
    use super::*;

    /// The whole response, as serde writes it (the reference for head + uid + tail).
    fn serde_render(uid: &str, decision: &Decision) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ReviewOut<'a> {
            api_version: &'static str,
            kind: &'static str,
            response: ResponseOut<'a>,
        }
        #[derive(Serialize)]
        struct ResponseOut<'a> {
            uid: &'a str,
            #[serde(flatten)]
            rest: TailOut<'a>,
        }
        serde_json::to_vec(&ReviewOut {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: ResponseOut {
                uid,
                rest: tail_out(
                    decision,
                    decision
                        .patch
                        .as_ref()
                        .map(|p| std::str::from_utf8(p.as_bytes()).unwrap()),
                ),
            },
        })
        .unwrap()
    }

    #[test]
    fn head_uid_and_tail_are_the_whole_response() {
        let plain = Decision::new(Result_::Passed, "not a pod".into());
        let mut full = Decision::new(Result_::Injected, "r".into());
        full.patch = Some(encode(br#"[{"op":"add"}]"#));
        full.warnings = vec!["sidecar-kit: \"quoted\"".into()];
        full.audit.insert("injected", "p=native".into());
        let mut patch_only = Decision::new(Result_::Injected, "r".into());
        patch_only.patch = Some(encode(br#"[{"op":"add"}]"#));
        let mut denied = Decision::new(Result_::ErrorDenied, "e".into());
        denied.denial = Some("could not decide: x".into());
        for d in [&plain, &full, &denied, &patch_only] {
            for uid in ["u-1", "we\"ird\\uid\u{1}"] {
                assert_eq!(render(uid, d).unwrap(), serde_render(uid, d), "{d:?}");
                // A second answer from the same decision (a cache hit) is the same.
                assert_eq!(render(uid, d).unwrap(), serde_render(uid, d));
            }
        }
        let v: serde_json::Value = serde_json::from_slice(&render("u", &full).unwrap()).unwrap();
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert_eq!(v["response"]["patch"], "W3sib3AiOiJhZGQifV0=");
    }
}
