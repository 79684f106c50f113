//! Which reviews are the engine's: a pod's CREATE. Every other request is allowed unchanged.

use super::parse::{BadReview, Request};

/// What a review is about.
pub(super) enum Subject<'a> {
    /// Not the engine's: allowed unchanged, for this reason.
    Passed(String),
    /// The CREATE of this pod (its JSON text).
    PodCreate(&'a str),
}

/// Sorts a request; a pod CREATE without its object is no usable review.
pub(super) fn classify<'a>(req: &Request<'a>) -> Result<Subject<'a>, BadReview> {
    let is_pod = req.kind.group.is_empty()
        && req.kind.kind == "Pod"
        && req.resource.group.is_empty()
        && req.resource.resource == "pods";
    let sub = req.sub_resource.as_deref().unwrap_or("");
    if !(is_pod && sub.is_empty()) {
        return Ok(Subject::Passed(format!(
            "not a pod ({}/{} {sub}): allowed unchanged",
            req.resource.group, req.resource.resource
        )));
    }
    let op = req.operation();
    if op != "CREATE" {
        return Ok(Subject::Passed(format!(
            "operation {op}: allowed unchanged"
        )));
    }
    req.object
        .map(Subject::PodCreate)
        .ok_or_else(|| BadReview("pod CREATE review has no object".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(request: &str) -> Result<String, String> {
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        );
        let req = super::super::parse::parse(body.as_bytes(), true).map_err(|e| e.0)?;
        match classify(&req) {
            Ok(Subject::Passed(reason)) => Ok(reason),
            Ok(Subject::PodCreate(object)) => Ok(format!("pod {object}")),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn only_a_pod_create_is_the_engines() {
        let pod = r#""kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"}"#;
        for (request, expected) in [
            (
                format!(r#"{{"uid":"u",{pod},"operation":"CREATE","object":{{"a":1}}}}"#),
                Ok("pod {\"a\":1}"),
            ),
            (
                format!(r#"{{"uid":"u",{pod},"operation":"UPDATE","object":{{}}}}"#),
                Ok("operation UPDATE: allowed unchanged"),
            ),
            (
                format!(r#"{{"uid":"u",{pod},"object":{{}}}}"#),
                Ok("operation : allowed unchanged"),
            ),
            (
                format!(r#"{{"uid":"u",{pod},"subResource":"status","operation":"CREATE"}}"#),
                Ok("not a pod (/pods status): allowed unchanged"),
            ),
            (
                r#"{"uid":"u","kind":{"group":"apps","kind":"Deployment"},"resource":{"group":"apps","resource":"deployments"},"operation":"CREATE"}"#.to_string(),
                Ok("not a pod (apps/deployments ): allowed unchanged"),
            ),
            (
                format!(r#"{{"uid":"u",{pod},"operation":"CREATE"}}"#),
                Err("pod CREATE review has no object"),
            ),
        ] {
            assert_eq!(
                subject(&request),
                expected.map(str::to_string).map_err(str::to_string),
                "{request}"
            );
        }
    }
}
