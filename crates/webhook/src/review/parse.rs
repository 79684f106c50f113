//! Reading an AdmissionReview request: the fields a review uses, borrowed from the body.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sidecar_kit_core::pod::{ObjectRead, walk_answer_inputs, walk_object};
use sidecar_kit_core::walk::Walk;
use std::borrow::Cow;

/// A request that is not a usable AdmissionReview: answered with HTTP 400, so the
/// webhook's failurePolicy decides.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadReview(pub String);

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<Request<'a>>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
pub(super) struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
pub(super) struct GroupVersionResource<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

/// The request of an AdmissionReview.
#[derive(Deserialize, Debug)]
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
    /// The object's JSON text.
    #[serde(borrow, default, deserialize_with = "raw_text")]
    pub object: Option<&'a str>,
    /// What the answer cache's key is made of and, for a Pod, its template, read by the walk
    /// in the same pass as the object's text (serde leaves both to the cache and the engine).
    #[serde(skip)]
    pub read: Option<ObjectRead<'a>>,
}

fn raw_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    Ok(Option::<&'de RawValue>::deserialize(d)?.map(RawValue::get))
}

/// The review read in one pass (see [`Walk`]); `None` for anything the walk does not expect,
/// which serde then reads, and words. With `read_pod`, a Pod object is read for the engine
/// too (see [`walk_object`]); else only what the cache key is made of.
fn walk_review(text: &str, read_pod: bool) -> Option<ReviewIn<'_>> {
    let mut w = Walk::new(text);
    let (mut api_version, mut kind, mut request) = (None, None, None);
    let found = w.object(|w, key| match key {
        "apiVersion" => w.once(&mut api_version, Walk::opt_str),
        "kind" => w.once(&mut kind, Walk::opt_str),
        "request" => w.once(&mut request, |w| walk_request(w, read_pod)),
        _ => w.skip(),
    })?;
    if !found || !w.at_end() {
        return None;
    }
    Some(ReviewIn {
        api_version: api_version.flatten(),
        kind: kind.flatten(),
        request: request.flatten(),
    })
}

fn walk_request<'a>(w: &mut Walk<'a>, read_pod: bool) -> Option<Option<Request<'a>>> {
    let (mut uid, mut kind, mut resource, mut sub_resource) = (None, None, None, None);
    let (mut name, mut namespace, mut operation, mut dry_run, mut object) =
        (None, None, None, None, None);
    let present = w.object(|w, key| match key {
        "uid" => w.once(&mut uid, Walk::str),
        "kind" => w.once(&mut kind, |w| {
            let (group, kind) = walk_group_and(w, "kind")?;
            Some(GroupVersionKind { group, kind })
        }),
        "resource" => w.once(&mut resource, |w| {
            let (group, resource) = walk_group_and(w, "resource")?;
            Some(GroupVersionResource { group, resource })
        }),
        "subResource" => w.once(&mut sub_resource, Walk::opt_str),
        "name" => w.once(&mut name, Walk::opt_str),
        "namespace" => w.once(&mut namespace, Walk::opt_str),
        "operation" => w.once(&mut operation, Walk::opt_str),
        "dryRun" => w.once(&mut dry_run, |w| match w.text()? {
            None => Some(None),
            Some("true") => Some(Some(true)),
            Some("false") => Some(Some(false)),
            Some(_) => None,
        }),
        "object" => w.once(&mut object, |w| {
            let start = w.here()?;
            // (a pod is read for the engine only where it may be planned: not once the
            // request said it is no CREATE; the API server writes the operation first)
            let create = operation
                .as_ref()
                .is_none_or(|o: &Option<Cow<'_, str>>| o.as_deref() == Some("CREATE"));
            let read = if read_pod && create {
                walk_object(w)?
            } else {
                walk_answer_inputs(w)?.map(|inputs| ObjectRead { inputs, pod: None })
            };
            Some(read.map(|r| (w.since(start), r)))
        }),
        _ => w.skip(),
    })?;
    if !present {
        return Some(None);
    }
    let (object, read) = object.flatten().unzip();
    Some(Some(Request {
        uid: uid?,
        kind: kind.unwrap_or_default(),
        resource: resource.unwrap_or_default(),
        sub_resource: sub_resource.flatten(),
        name: name.flatten(),
        namespace: namespace.flatten(),
        operation: operation.flatten(),
        dry_run: dry_run.flatten(),
        object,
        read,
    }))
}

/// The group and one more field (`kind` of a GroupVersionKind, `resource` of a
/// GroupVersionResource) as serde reads them into those structs: other fields stepped over,
/// each field at most once, a missing one empty; `None` (serde's error) for null.
fn walk_group_and<'a>(w: &mut Walk<'a>, name: &str) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    let (mut group, mut other) = (None, None);
    let present = w.object(|w, key| match key {
        "group" => w.once(&mut group, Walk::str),
        k if k == name => w.once(&mut other, Walk::str),
        _ => w.skip(),
    })?;
    present.then(|| (group.unwrap_or_default(), other.unwrap_or_default()))
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

/// The request of an `admission.k8s.io/v1` AdmissionReview body, with a uid; a Pod object
/// read for the engine too where `read_pod` (see [`walk_review`]).
pub(super) fn parse(body: &[u8], read_pod: bool) -> Result<Request<'_>, BadReview> {
    let text = simdutf8::basic::from_utf8(body)
        .map_err(|_| BadReview("request body is not UTF-8".into()))?;
    let review: ReviewIn<'_> = match walk_review(text, read_pod) {
        Some(r) => r,
        None => serde_json::from_str(text)
            .map_err(|e| BadReview(format!("request body is not an AdmissionReview: {e}")))?,
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_kit_core::pod::{PodRead, templates};

    /// What the walk read of a request's object beside its text (taken out of `r`): the
    /// cache key's inputs, those of the object's own; a Pod read for the engine (only with
    /// `read_pod`), the template or the error the engine reads from the object's text. 1
    /// where it read a Pod.
    fn check_read(r: &mut Request<'_>, text: &str, read_pod: bool) -> usize {
        let read = r.read.take();
        let own = r.object.and_then(sidecar_kit_core::pod::answer_inputs);
        assert_eq!(read.as_ref().map(|r| &r.inputs), own.as_ref(), "{text}");
        assert_eq!(read.is_some(), r.object.is_some(), "{text}");
        let pod = read.and_then(|r| r.pod);
        assert!(read_pod || pod.is_none(), "{text}");
        // (anything but a Pod of the one pass the engine reads from the text)
        let object = r.object.unwrap_or_default();
        match pod.map(PodRead::template) {
            Some(Ok(Some(t))) => {
                let own = templates(object).unwrap();
                assert_eq!(format!("{:?}", [t]), format!("{own:?}"), "{text}");
                1
            }
            Some(Err(e)) => {
                assert_eq!(Err(e), templates(object).map(|_| ()), "{text}");
                1
            }
            _ => 0,
        }
    }

    /// No pod is read for the engine in a request that is no CREATE.
    #[test]
    fn a_pod_is_read_for_the_engine_only_in_a_create() {
        let update = r#"{"request":{"uid":"u","operation":"UPDATE","object":{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"c"}]}}}}"#;
        let create = update.replace("UPDATE", "CREATE");
        let update = walk_review(update, true).and_then(|r| r.request?.read);
        let update = update.unwrap();
        assert!(update.pod.is_none() && update.inputs.spec.is_some());
        let create = walk_review(&create, true).and_then(|r| r.request?.read);
        assert!(create.unwrap().pod.is_some());
    }

    /// The one-pass reading of reviews and serde's agree: the same request where both read
    /// one, and no walk where serde refuses the text (its error is then the answer).
    #[test]
    fn the_walk_reads_as_serde_reads() {
        let fixture = include_str!("../../tests/data/pod-create.json");
        let compact =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(fixture).unwrap())
                .unwrap();
        let texts = [
            fixture.to_string(),
            compact,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","resource":"pods"},"subResource":null,"namespace":"ns","operation":"CREATE","dryRun":true,"object":null,"oldObject":{"a":[1,2]},"userInfo":{"username":"x"}}}"#.into(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#.into(),
            r#"{"request":{"u\u0069d":"esc\"aped","object":{"kind":"Pod"}}}"#.into(),
            r#"{"request":{"uid":"u","uid":"v"}}"#.into(),
            r#"{"request":{"kind":"Pod","uid":"u"}}"#.into(),
            r#"{"request":{"object":{}}}"#.into(),
            r#"{"request":{"uid":null}}"#.into(),
            r#"{"request":{"uid":"u","dryRun":"yes"}}"#.into(),
            r#"{"request":{"uid":"u","dryRun":null,"name":null,"operation":null,"namespace":null}}"#.into(),
            r#"{"request":{"uid":"u","dryRun":false,"name":"p","operation":"DELETE"}}"#.into(),
            r#"{"request":{"uid":"u","dryRun":trueish}}"#.into(),
            r#"{"apiVersion":null,"kind":5,"request":{"uid":"u"}}"#.into(),
            r#"{"apiVersion":"admission.k8s.io/v1","apiVersion":"v1","request":{"uid":"u"}}"#.into(),
            r#"{"request":{"uid":"u","kind":null}}"#.into(),
            r#"{"request":{"uid":"u","kind":{"group":"apps","group":"x","kind":"Pod"}}}"#.into(),
            r#"{"request":{"uid":"u","kind":{"kind":"P\u006fd","extra":[1,{"b":null}]},"resource":{}}}"#.into(),
            r#"{"request":{"uid":"u","resource":{"group":null,"resource":"pods"}}}"#.into(),
            r#"{"request":{"uid":"u","resource":{"resource":"pods","version":"v1","group":""},"subResource":"status"}}"#.into(),
            r#"{"request":{"uid":"u","resource":"pods"}}"#.into(),
            r#"{"request":{"uid":"u"}} trailing"#.into(),
            r#"{"request":{"uid":"u","object":{"a":}}}"#.into(),
            // (a Pod the engine's walk leaves to the general path; not a Pod)
            r#"{"request":{"uid":"u","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":5,"labels":{"a":"b"}},"spec":{"containers":[]}}}}"#.into(),
            r#"{"request":{"uid":"u","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"namespace":"n"},"spec":{"template":{"spec":{}}}}}}"#.into(),
            // (Pods the engine's text reading leaves to its general path: the kind late or
            // escaped; and one whose affinity is no node selector: the same error)
            r#"{"request":{"uid":"u","object":{"metadata":{"generateName":"web-","labels":{"app":"web","logging":"shipped","team":"a-team-with-a-long-name","tier":"frontend-of-the-shop"}},"spec":{"containers":[{"name":"web","env":[{"name":"A"}]}]},"apiVersion":"v1","kind":"Pod"}}}"#.into(),
            r#"{"request":{"uid":"u","object":{"k\u0069nd":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],"restartPolicy":"Never"}}}}"#.into(),
            r#"{"request":{"uid":"u","object":{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"c"}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":5}]}}}}}}}"#.into(),
            r#"["admission.k8s.io/v1","AdmissionReview",null]"#.into(),
            "null".into(),
        ];
        let mut pods = 0;
        for (text, read_pod) in texts.iter().flat_map(|t| [(t, true), (t, false)]) {
            let serde: Result<ReviewIn<'_>, _> = serde_json::from_str(text);
            match walk_review(text, read_pod) {
                Some(mut walked) => {
                    if let Some(r) = walked.request.as_mut() {
                        pods += check_read(r, text, read_pod);
                    }
                    // (a request's fields compared as text: a Pod's template has no `==`)
                    assert_eq!(
                        format!("{:?}", Some(&walked)),
                        format!("{:?}", serde.as_ref().ok()),
                        "{text}"
                    );
                }
                // (serde also reads a struct from an array; no review is one)
                None => assert!(
                    serde.is_err() || text.starts_with('['),
                    "the walk gave up on a review serde reads: {text}"
                ),
            }
        }
        assert_eq!(
            pods, 5,
            "the fixture's Pod, pretty and compact, and the three odd ones read in the review's pass"
        );
        let walked = walk_review(&texts[4], true).expect("escaped key");
        assert_eq!(walked.request.unwrap().uid, "esc\"aped");
        assert_eq!(
            walk_review(&texts[0], true)
                .unwrap()
                .request
                .unwrap()
                .object,
            serde_json::from_str::<ReviewIn<'_>>(&texts[0])
                .unwrap()
                .request
                .unwrap()
                .object,
            "the object's text is the same slice of the body"
        );
    }
}
