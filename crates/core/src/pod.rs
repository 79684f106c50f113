//! A read-only view of raw object JSON: finds pod templates in Pods, workloads and Lists,
//! and reads the few fields decisions need. Everything else is skipped, never decoded into
//! a model, never re-encoded: the engine answers with a JSON Patch against these bytes.

use crate::facts::{NodeSelectorTerm, Scheduling, Toleration};
use crate::text::cat;
use crate::walk::Walk;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An error in the object, located by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ViewError {
    pub pointer: String,
    pub message: String,
}

fn parse<'a, T: Deserialize<'a>>(raw: &'a str, pointer: &str) -> Result<T, ViewError> {
    // The fast path; only a failure is parsed again with path tracking, for the message.
    if let Ok(v) = serde_json::from_str(raw) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let read: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if read.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ViewError {
            pointer: if pointer.is_empty() {
                "/".into()
            } else {
                pointer.into()
            },
            message: without_position(&e.to_string()),
        });
    }
    read.map_err(|e| {
        let path = e.path().to_string();
        let msg = without_position(&e.into_inner().to_string());
        let sub = if path == "." {
            String::new()
        } else {
            format!("/{}", path.replace('.', "/"))
        };
        ViewError {
            pointer: format!("{pointer}{sub}"),
            message: msg,
        }
    })
}

/// serde_json's message without its " at line L column C".
fn without_position(msg: &str) -> String {
    msg.find(" at line ").map_or(msg, |i| &msg[..i]).to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct WithTemplate<'a> {
    #[serde(borrow, default)]
    template: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec<'a> {
    #[serde(borrow, default)]
    job_template: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JobTemplate<'a> {
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TemplateParts<'a> {
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

/// The metadata fields the engine reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaView<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub generate_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub labels: Option<StrMap<'a>>,
    #[serde(borrow, default)]
    pub annotations: Option<StrMap<'a>>,
}

/// Labels or annotations, their text borrowed from the object where it has no escapes.
pub type StrMap<'a> = BTreeMap<Cow<'a, str>, Cow<'a, str>>;

impl MetaView<'_> {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(|v| &**v)
    }
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(|v| &**v)
    }
}

#[derive(Debug, Default, Deserialize)]
struct PodOs {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecRaw<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    volumes: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    restart_policy: Option<Cow<'a, str>>,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    node_selector: Option<BTreeMap<String, String>>,
    #[serde(borrow, default)]
    affinity: Option<&'a RawValue>,
    #[serde(default)]
    tolerations: Option<Vec<Toleration>>,
    #[serde(default)]
    os: Option<PodOs>,
    #[serde(default)]
    overhead: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MountView<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub mount_path: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct EnvName<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
}

/// A container's `resources` as the reading checks them: `requests`, where present, is an
/// object. Its quantities are read from the container's text where they are needed (the
/// effective requests of `explain`), so none is kept here.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResourcesView {
    #[serde(default)]
    pub requests: Option<AnyObject>,
}

/// A JSON object of any members, none kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AnyObject, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<AnyObject, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Members)
    }
}

/// The container fields the engine reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(borrow, default)]
    pub volume_mounts: Option<Vec<MountView<'a>>>,
    #[serde(borrow, default)]
    pub env: Option<Vec<EnvName<'a>>>,
    #[serde(borrow, default)]
    pub restart_policy: Option<Cow<'a, str>>,
    #[serde(default)]
    pub resources: Option<ResourcesView>,
}

/// A container: what the engine reads of it, and its JSON text.
#[derive(Debug, Clone)]
pub struct ContainerRef<'a> {
    pub view: ContainerView<'a>,
    pub raw: &'a str,
}

impl ContainerRef<'_> {
    /// The container as a JSON value (parsed on demand).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.raw).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct VolumeRef<'a> {
    pub name: Cow<'a, str>,
    /// Its JSON text.
    pub raw: &'a str,
}

#[derive(Deserialize)]
struct VolumeName<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

/// A pod spec as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct PodSpecView<'a> {
    pub containers: Vec<ContainerRef<'a>>,
    pub containers_present: bool,
    pub init_containers: Vec<ContainerRef<'a>>,
    pub init_containers_present: bool,
    pub volumes: Vec<VolumeRef<'a>>,
    pub volumes_present: bool,
    pub restart_policy: Option<Cow<'a, str>>,
    pub affinity: Option<Value>,
    pub scheduling: Scheduling,
    pub windows: bool,
    pub overhead: BTreeMap<String, Value>,
}

/// One pod template found in an object.
#[derive(Debug, Clone)]
pub struct Template<'a> {
    /// JSON pointer of the template's `metadata`, e.g. `/spec/template/metadata`.
    pub meta_pointer: String,
    /// JSON pointer of the pod spec, e.g. `/spec/template/spec`.
    pub spec_pointer: String,
    /// Kind of the object that holds the template (Pod, Deployment, ...).
    pub kind: Cow<'a, str>,
    /// Name of that object.
    pub object_name: Option<Cow<'a, str>>,
    /// Namespace of that object.
    pub object_namespace: Option<Cow<'a, str>>,
    pub meta_present: bool,
    /// The template's metadata has no field but `annotations` (for Pods, the object's own).
    pub meta_only_annotations: bool,
    pub meta: MetaView<'a>,
    pub spec: PodSpecView<'a>,
}

/// The kinds that carry a pod template, and where.
fn template_route(kind: &str, api_version: &str) -> Option<&'static str> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (kind, group) {
        ("Pod", "") => Some("pod"),
        ("ReplicationController", "") => Some("template"),
        ("Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet", "apps" | "extensions") => {
            Some("template")
        }
        ("Job", "batch") => Some("template"),
        ("CronJob", "batch") => Some("cronjob"),
        _ => None,
    }
}

/// Finds the pod templates in an object (recursing into `v1 List` items).
/// Objects of other kinds yield none.
pub fn templates<'a>(raw: &'a str) -> Result<Vec<Template<'a>>, ViewError> {
    let mut out = Vec::new();
    collect(raw, "", &mut out, 0)?;
    Ok(out)
}

fn collect<'a>(
    raw: &'a str,
    prefix: &str,
    out: &mut Vec<Template<'a>>,
    depth: usize,
) -> Result<(), ViewError> {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with('{') {
        return Err(ViewError {
            pointer: if prefix.is_empty() {
                "/".into()
            } else {
                prefix.into()
            },
            message: "expected a JSON object".into(),
        });
    }
    if let Some(t) = one_pass_pod(raw, prefix)? {
        out.push(t);
        return Ok(());
    }
    collect_general(raw, prefix, out, depth)
}

/// [`templates`] without the one-pass walk (to hold the walk to it).
#[cfg(test)]
fn templates_general(raw: &str) -> Result<Vec<Template<'_>>, ViewError> {
    let mut out = Vec::new();
    collect_general(raw, "", &mut out, 0)?;
    Ok(out)
}

/// Reads an object the general way: its head first, then what its kind holds.
fn collect_general<'a>(
    raw: &'a str,
    prefix: &str,
    out: &mut Vec<Template<'a>>,
    depth: usize,
) -> Result<(), ViewError> {
    let head: Head<'a> = parse(raw, prefix)?;
    let kind = head.kind.as_deref().unwrap_or("");
    let api_version = head.api_version.as_deref().unwrap_or("");
    if kind.ends_with("List") && head.items.is_some() {
        if depth > 4 {
            return Err(ViewError {
                pointer: prefix.into(),
                message: "Lists nested too deeply".into(),
            });
        }
        for (i, item) in head.items.into_iter().flatten().enumerate() {
            collect(item.get(), &format!("{prefix}/items/{i}"), out, depth + 1)?;
        }
        return Ok(());
    }
    let Some(route) = template_route(kind, api_version) else {
        return Ok(());
    };
    let object_meta: MetaView = match head.metadata {
        Some(m) => parse(m.get(), &format!("{prefix}/metadata"))?,
        None => MetaView::default(),
    };
    let (meta_raw, spec_raw, tpl_pointer) = match route {
        "pod" => (head.metadata, head.spec, prefix.to_string()),
        _ => {
            let Some(spec) = head.spec else { return Ok(()) };
            let Some((template, pointer)) = workload_template(spec, route, prefix)? else {
                return Ok(());
            };
            let parts: TemplateParts = parse(template.get(), &pointer)?;
            (parts.metadata, parts.spec, pointer)
        }
    };
    let meta_pointer = format!("{tpl_pointer}/metadata");
    let spec_pointer = format!("{tpl_pointer}/spec");
    let meta: MetaView = match (route, meta_raw) {
        ("pod", _) => object_meta.clone(),
        (_, Some(m)) => parse(m.get(), &meta_pointer)?,
        (_, None) => MetaView::default(),
    };
    let Some(spec_raw) = spec_raw else {
        return Ok(());
    };
    let spec = pod_spec(spec_raw.get(), &spec_pointer)?;
    let meta_only_annotations = meta_raw
        .and_then(|raw| {
            serde_json::from_str::<BTreeMap<String, serde::de::IgnoredAny>>(raw.get()).ok()
        })
        .is_some_and(|m| m.keys().all(|k| k == "annotations"));
    out.push(Template {
        meta_pointer,
        spec_pointer,
        kind: Cow::Owned(kind.to_string()),
        object_name: object_meta
            .name
            .clone()
            .or_else(|| object_meta.generate_name.clone()),
        object_namespace: object_meta.namespace.clone(),
        meta_present: meta_raw.is_some(),
        meta_only_annotations,
        meta,
        spec,
    });
    Ok(())
}

/// A Pod (its kind near the start, as the API server and the engine's callers write it,
/// compact or not), read in one pass by [`Walk`]. `None` for anything else, or where that
/// pass fails: the general path then reads it and words any error.
fn one_pass_pod<'a>(raw: &'a str, prefix: &str) -> Result<Option<Template<'a>>, ViewError> {
    if !says_pod(raw) {
        return Ok(None);
    }
    match PodDoc::walk(raw) {
        Some(doc) => doc.template(prefix),
        None => Ok(None),
    }
}

/// Whether `"kind": "Pod"` (with any whitespace) comes near the start: a cheap look before
/// the walk, which reads the kind itself.
fn says_pod(raw: &str) -> bool {
    let head = &raw.as_bytes()[..raw.len().min(160)];
    head.windows(6)
        .enumerate()
        .filter(|(_, w)| *w == br#""kind""#)
        .any(|(i, _)| {
            let rest = head[i + 6..].trim_ascii_start();
            rest.strip_prefix(b":")
                .is_some_and(|r| r.trim_ascii_start().starts_with(br#""Pod""#))
        })
}

/// What a decision about an object depends on, each part as its JSON text (`None` where
/// absent or null): its kind and apiVersion, whether it has metadata, the metadata's labels,
/// annotations and namespace, and its spec. Nothing else of an object changes the engine's
/// answer (its name, uid, managedFields, status... do not), so these make a cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerInputs<'a> {
    pub kind: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub metadata: bool,
    pub labels: Option<&'a str>,
    pub annotations: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub spec: Option<&'a str>,
}

/// The [`AnswerInputs`] of `raw`, read in one pass that steps over everything else; `None`
/// where `raw` is not one JSON object (or has one of these fields twice, or metadata that is
/// not an object).
pub fn answer_inputs(raw: &str) -> Option<AnswerInputs<'_>> {
    let mut w = Walk::new(raw);
    let a = walk_answer_inputs(&mut w)??;
    w.at_end().then_some(a)
}

/// The [`AnswerInputs`] of the object where `w` is, stepped over (`None` inside for null):
/// how a reader of a larger document (an AdmissionReview) takes them in its own pass.
/// `None` as [`answer_inputs`] has it.
pub fn walk_answer_inputs<'a>(w: &mut Walk<'a>) -> Option<Option<AnswerInputs<'a>>> {
    let (mut kind, mut api, mut meta, mut spec) = (None, None, None, None);
    let (mut labels, mut annotations, mut namespace) = (None, None, None);
    let found = w.object(|w, key| match key {
        "kind" => w.once(&mut kind, Walk::text),
        "apiVersion" => w.once(&mut api, Walk::text),
        "spec" => w.once(&mut spec, Walk::text),
        "metadata" => w.once(&mut meta, |w| {
            w.object(|w, key| match key {
                "labels" => w.once(&mut labels, Walk::text),
                "annotations" => w.once(&mut annotations, Walk::text),
                "namespace" => w.once(&mut namespace, Walk::text),
                _ => w.skip(),
            })
        }),
        _ => w.skip(),
    })?;
    Some(found.then(|| AnswerInputs {
        kind: kind.flatten(),
        api_version: api.flatten(),
        metadata: meta.unwrap_or(false),
        labels: labels.flatten(),
        annotations: annotations.flatten(),
        namespace: namespace.flatten(),
        spec: spec.flatten(),
    }))
}

/// A Pod as [`Walk`] reads it.
struct PodDoc<'a> {
    kind: Option<Cow<'a, str>>,
    api_version: Option<Cow<'a, str>>,
    /// The metadata, and whether `annotations` is its only field.
    metadata: Option<(MetaView<'a>, bool)>,
    spec: Option<SpecParts<'a>>,
    /// The texts an answer depends on, taken in the same pass.
    inputs: AnswerInputs<'a>,
}

/// The texts of the metadata's parts that an answer depends on.
#[derive(Default)]
struct MetaTexts<'a> {
    namespace: Option<&'a str>,
    labels: Option<&'a str>,
    annotations: Option<&'a str>,
}

impl<'a> PodDoc<'a> {
    fn walk(raw: &'a str) -> Option<PodDoc<'a>> {
        let mut w = Walk::new(raw);
        let doc = PodDoc::walk_at(&mut w)??;
        w.at_end().then_some(doc)
    }

    /// The object where `w` is (`None` inside for null).
    fn walk_at(w: &mut Walk<'a>) -> Option<Option<PodDoc<'a>>> {
        // (null members count as absent, as `#[serde(default)]` options read them)
        let (mut kind, mut api, mut meta, mut spec) = (None, None, None, None);
        let (mut kind_text, mut api_text, mut spec_text) = (None, None, None);
        let mut meta_texts = MetaTexts::default();
        let found = w.object(|w, key| match key {
            "kind" => w.once(&mut kind, |w| with_text(w, Walk::opt_str, &mut kind_text)),
            "apiVersion" => w.once(&mut api, |w| with_text(w, Walk::opt_str, &mut api_text)),
            "metadata" => w.once(&mut meta, |w| walk_meta(w, &mut meta_texts)),
            "spec" => w.once(&mut spec, |w| with_text(w, walk_spec, &mut spec_text)),
            _ => w.skip(),
        })?;
        if !found {
            return Some(None);
        }
        let metadata = meta.flatten();
        // (every part named, so that a part added to AnswerInputs is taken here too)
        let inputs = AnswerInputs {
            kind: kind_text,
            api_version: api_text,
            metadata: metadata.is_some(),
            labels: meta_texts.labels,
            annotations: meta_texts.annotations,
            namespace: meta_texts.namespace,
            spec: spec_text,
        };
        Some(Some(PodDoc {
            kind: kind.flatten(),
            api_version: api.flatten(),
            metadata,
            spec: spec.flatten(),
            inputs,
        }))
    }

    /// Its template, where it is a Pod with a spec.
    fn template(self, prefix: &str) -> Result<Option<Template<'a>>, ViewError> {
        let api_version = self.api_version.as_deref().unwrap_or("");
        if self.kind.as_deref() != Some("Pod") || template_route("Pod", api_version) != Some("pod")
        {
            return Ok(None);
        }
        let Some(spec) = self.spec else {
            return Ok(None);
        };
        let spec_pointer = cat!(prefix, "/spec");
        let spec = finish_spec(spec, &spec_pointer)?;
        let (meta, meta_present, meta_only_annotations) = match self.metadata {
            Some((m, only_annotations)) => (m, true, only_annotations),
            None => (MetaView::default(), false, false),
        };
        Ok(Some(Template {
            meta_pointer: cat!(prefix, "/metadata"),
            spec_pointer,
            kind: Cow::Borrowed("Pod"),
            object_name: meta.name.clone().or_else(|| meta.generate_name.clone()),
            object_namespace: meta.namespace.clone(),
            meta_present,
            meta_only_annotations,
            meta,
            spec,
        }))
    }
}

/// The value `read` reads where `w` is (`None` inside for null), and its text into `text`
/// where it is not null: how the walk takes an [`AnswerInputs`] part.
fn with_text<'a, T>(
    w: &mut Walk<'a>,
    read: impl FnOnce(&mut Walk<'a>) -> Option<Option<T>>,
    text: &mut Option<&'a str>,
) -> Option<Option<T>> {
    let (v, t) = w.spanned(read)?;
    *text = v.is_some().then_some(t);
    Some(v)
}

/// An object read in the pass of a larger document (an AdmissionReview's): what an answer
/// depends on and, where the one-pass walk read it, the object for the engine.
#[derive(Debug)]
pub struct ObjectRead<'a> {
    pub inputs: AnswerInputs<'a>,
    /// The object as the engine's one-pass walk read it (`None` where the walk leaves it to
    /// the general path: the engine then reads the text).
    pub pod: Option<PodRead<'a>>,
}

/// An object read by the engine's one-pass walk, for [`crate::engine::inject_read`]: what
/// [`templates`] reads of the same text, finished (checked, its Pod template built) by the
/// engine.
pub struct PodRead<'a>(PodDoc<'a>);

impl<'a> PodRead<'a> {
    /// Its template, as [`templates`] reads it of the object's text: the same template, or
    /// the same error; `None` where the object is no Pod the one pass reads (the general
    /// path reads it then).
    pub fn template(self) -> Result<Option<Template<'a>>, ViewError> {
        self.0.template("")
    }
}

impl std::fmt::Debug for PodRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PodRead { .. }")
    }
}

/// The object where `w` is, read (`None` inside for null): by the engine's one-pass walk
/// where it reads it, else only for its [`AnswerInputs`]. `None` as [`walk_answer_inputs`]
/// has it.
pub fn walk_object<'a>(w: &mut Walk<'a>) -> Option<Option<ObjectRead<'a>>> {
    let mut probe = w.clone();
    if let Some(doc) = PodDoc::walk_at(&mut probe) {
        *w = probe;
        return Some(doc.map(|mut doc| ObjectRead {
            inputs: std::mem::take(&mut doc.inputs),
            pod: Some(PodRead(doc)),
        }));
    }
    let inputs = walk_answer_inputs(w)?;
    Some(inputs.map(|inputs| ObjectRead { inputs, pod: None }))
}

fn walk_meta<'a>(
    w: &mut Walk<'a>,
    texts: &mut MetaTexts<'a>,
) -> Option<Option<(MetaView<'a>, bool)>> {
    let (mut name, mut generate, mut namespace, mut labels, mut annotations) =
        (None, None, None, None, None);
    let mut only_annotations = true;
    let present = w.object(|w, key| {
        if key != "annotations" {
            only_annotations = false;
        }
        match key {
            "name" => w.once(&mut name, Walk::opt_str),
            "generateName" => w.once(&mut generate, Walk::opt_str),
            "namespace" => w.once(&mut namespace, |w| {
                with_text(w, Walk::opt_str, &mut texts.namespace)
            }),
            "labels" => w.once(&mut labels, |w| {
                with_text(w, Walk::str_map, &mut texts.labels)
            }),
            "annotations" => w.once(&mut annotations, |w| {
                with_text(w, Walk::str_map, &mut texts.annotations)
            }),
            _ => w.skip(),
        }
    })?;
    let m = MetaView {
        name: name.flatten(),
        generate_name: generate.flatten(),
        namespace: namespace.flatten(),
        labels: labels.flatten(),
        annotations: annotations.flatten(),
    };
    Some(present.then_some((m, only_annotations)))
}

fn walk_containers<'a>(w: &mut Walk<'a>) -> Option<Option<Vec<ContainerRef<'a>>>> {
    w.array(walk_container)
}

/// A container as serde reads a [`ContainerView`] (any surprise: `None`, for the general
/// path), and its text.
fn walk_container<'a>(w: &mut Walk<'a>) -> Option<ContainerRef<'a>> {
    let start = w.here()?;
    let (mut name, mut command, mut mounts, mut env, mut restart, mut resources) =
        (None, None, None, None, None, None);
    let present = w.object(|w, key| match key {
        "name" => w.once(&mut name, Walk::str),
        "command" => w.once(&mut command, Walk::strings),
        "volumeMounts" => w.once(&mut mounts, |w| w.array(walk_mount)),
        "env" => w.once(&mut env, |w| w.array(walk_env_name)),
        "restartPolicy" => w.once(&mut restart, Walk::opt_str),
        "resources" => w.once(&mut resources, walk_resources),
        _ => w.skip(),
    })?;
    let view = ContainerView {
        name: name.unwrap_or_default(),
        command: command.flatten(),
        volume_mounts: mounts.flatten(),
        env: env.flatten(),
        restart_policy: restart.flatten(),
        resources: resources.flatten(),
    };
    // (a null or unnamed container is the general path's error to word)
    (present && !view.name.is_empty()).then(|| ContainerRef {
        view,
        raw: w.since(start),
    })
}

/// Resources as serde reads an `Option<ResourcesView>`.
fn walk_resources(w: &mut Walk<'_>) -> Option<Option<ResourcesView>> {
    let mut requests = None;
    let present = w.object(|w, key| match key {
        "requests" => w.once(&mut requests, |w| {
            let present = w.object(|w, _| w.skip())?;
            Some(present.then_some(AnyObject))
        }),
        _ => w.skip(),
    })?;
    Some(present.then(|| ResourcesView {
        requests: requests.flatten(),
    }))
}

/// A toleration as serde reads a [`Toleration`].
fn walk_toleration(w: &mut Walk<'_>) -> Option<Toleration> {
    let (mut key, mut operator, mut value, mut effect) = (None, None, None, None);
    let present = w.object(|w, k| match k {
        "key" => w.once(&mut key, Walk::opt_string),
        "operator" => w.once(&mut operator, Walk::opt_string),
        "value" => w.once(&mut value, Walk::opt_string),
        "effect" => w.once(&mut effect, Walk::opt_string),
        _ => w.skip(),
    })?;
    present.then(|| Toleration {
        key: key.flatten(),
        operator: operator.flatten(),
        value: value.flatten(),
        effect: effect.flatten(),
    })
}

/// A volume mount as serde reads a [`MountView`].
fn walk_mount<'a>(w: &mut Walk<'a>) -> Option<MountView<'a>> {
    let (mut name, mut mount_path) = (None, None);
    let present = w.object(|w, key| match key {
        "name" => w.once(&mut name, Walk::str),
        "mountPath" => w.once(&mut mount_path, Walk::str),
        _ => w.skip(),
    })?;
    present.then(|| MountView {
        name: name.unwrap_or_default(),
        mount_path: mount_path.unwrap_or_default(),
    })
}

/// The `name` of an object of which nothing else is read, as serde reads a struct of a
/// defaulted `name: String` (an env var's [`EnvName`], a volume's `VolumeName`).
fn walk_name<'a>(w: &mut Walk<'a>) -> Option<Cow<'a, str>> {
    let mut name = None;
    let present = w.object(|w, key| match key {
        "name" => w.once(&mut name, Walk::str),
        _ => w.skip(),
    })?;
    present.then(|| name.unwrap_or_default())
}

/// An env var as serde reads an [`EnvName`].
fn walk_env_name<'a>(w: &mut Walk<'a>) -> Option<EnvName<'a>> {
    walk_name(w).map(|name| EnvName { name })
}

/// A volume's name, as serde reads a `VolumeName`, and the volume's text.
fn walk_volume<'a>(w: &mut Walk<'a>) -> Option<VolumeRef<'a>> {
    let start = w.here()?;
    let name = walk_name(w)?;
    Some(VolumeRef {
        name,
        raw: w.since(start),
    })
}

fn walk_spec<'a>(w: &mut Walk<'a>) -> Option<Option<SpecParts<'a>>> {
    let (mut containers, mut init, mut volumes) = (None, None, None);
    let (mut restart, mut node, mut selector, mut affinity, mut tolerations, mut os, mut overhead) =
        (None, None, None, None, None, None, None);
    let present = w.object(|w, key| match key {
        "containers" => w.once(&mut containers, walk_containers),
        "initContainers" => w.once(&mut init, walk_containers),
        "volumes" => w.once(&mut volumes, |w| w.array(walk_volume)),
        "restartPolicy" => w.once(&mut restart, Walk::opt_str),
        "nodeName" => w.once(&mut node, Walk::opt_string),
        "nodeSelector" => w.once(&mut selector, Walk::string_map),
        "affinity" => w.read_once(&mut affinity),
        "tolerations" => w.once(&mut tolerations, |w| w.array(walk_toleration)),
        "os" => w.read_once(&mut os),
        "overhead" => w.read_once(&mut overhead),
        _ => w.skip(),
    })?;
    Some(present.then(|| SpecParts {
        containers: containers.flatten(),
        init_containers: init.flatten(),
        volumes: volumes.flatten(),
        restart_policy: restart.flatten(),
        node_name: node.flatten(),
        node_selector: selector.flatten(),
        affinity: affinity.flatten(),
        tolerations: tolerations.flatten(),
        os: os.flatten(),
        overhead: overhead.flatten(),
    }))
}

/// The pod template of a workload's `spec` (a CronJob's through its job template), and its
/// pointer; `None` where there is none.
fn workload_template<'a>(
    spec: &'a RawValue,
    route: &str,
    prefix: &str,
) -> Result<Option<(&'a RawValue, String)>, ViewError> {
    let (template, pointer) = if route == "cronjob" {
        let cj: CronJobSpec = parse(spec.get(), &format!("{prefix}/spec"))?;
        let Some(jt) = cj.job_template else {
            return Ok(None);
        };
        let jt: JobTemplate = parse(jt.get(), &format!("{prefix}/spec/jobTemplate"))?;
        let Some(js) = jt.spec else { return Ok(None) };
        let wt: WithTemplate = parse(js.get(), &format!("{prefix}/spec/jobTemplate/spec"))?;
        (
            wt.template,
            format!("{prefix}/spec/jobTemplate/spec/template"),
        )
    } else {
        let wt: WithTemplate = parse(spec.get(), &format!("{prefix}/spec"))?;
        (wt.template, format!("{prefix}/spec/template"))
    };
    Ok(template.map(|t| (t, pointer)))
}

fn containers<'a>(
    list: Option<Vec<&'a RawValue>>,
    pointer: &str,
) -> Result<Option<Vec<ContainerRef<'a>>>, ViewError> {
    let Some(list) = list else { return Ok(None) };
    list.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let view: ContainerView = parse(raw.get(), &format!("{pointer}/{i}"))?;
            if view.name.is_empty() {
                return Err(ViewError {
                    pointer: format!("{pointer}/{i}/name"),
                    message: "container has no name".into(),
                });
            }
            Ok(ContainerRef {
                view,
                raw: raw.get(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn pod_spec<'a>(raw: &'a str, pointer: &str) -> Result<PodSpecView<'a>, ViewError> {
    let s: SpecRaw<'a> = parse(raw, pointer)?;
    let volumes = match s.volumes {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .enumerate()
                .map(|(i, raw)| {
                    let v: VolumeName = parse(raw.get(), &format!("{pointer}/volumes/{i}"))?;
                    Ok(VolumeRef {
                        name: v.name,
                        raw: raw.get(),
                    })
                })
                .collect::<Result<Vec<_>, ViewError>>()?,
        ),
    };
    let parts = SpecParts {
        containers: containers(s.containers, &format!("{pointer}/containers"))?,
        init_containers: containers(s.init_containers, &format!("{pointer}/initContainers"))?,
        volumes,
        restart_policy: s.restart_policy,
        node_name: s.node_name,
        node_selector: s.node_selector,
        affinity: match s.affinity {
            Some(a) => Some(parse(a.get(), &format!("{pointer}/affinity"))?),
            None => None,
        },
        tolerations: s.tolerations,
        os: s.os,
        overhead: s.overhead,
    };
    finish_spec(parts, pointer)
}

/// The fields of a pod spec the engine reads, each read once.
#[derive(Default)]
struct SpecParts<'a> {
    containers: Option<Vec<ContainerRef<'a>>>,
    init_containers: Option<Vec<ContainerRef<'a>>>,
    volumes: Option<Vec<VolumeRef<'a>>>,
    restart_policy: Option<Cow<'a, str>>,
    node_name: Option<String>,
    node_selector: Option<BTreeMap<String, String>>,
    affinity: Option<Value>,
    tolerations: Option<Vec<Toleration>>,
    os: Option<PodOs>,
    overhead: Option<BTreeMap<String, Value>>,
}

fn finish_spec<'a>(s: SpecParts<'a>, pointer: &str) -> Result<PodSpecView<'a>, ViewError> {
    let containers_present = s.containers.is_some();
    let init_containers_present = s.init_containers.is_some();
    let volumes_present = s.volumes.is_some();
    let affinity = s.affinity;
    let required_terms = match affinity
        .as_ref()
        .and_then(|a| a.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"))
    {
        Some(t) => serde_json::from_value::<Vec<NodeSelectorTerm>>(t.clone()).map_err(|e| ViewError {
            pointer: format!("{pointer}/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"),
            message: e.to_string(),
        })?,
        None => Vec::new(),
    };
    let node_selector = s.node_selector.unwrap_or_default();
    let windows = s.os.and_then(|o| o.name).is_some_and(|n| n == "windows")
        || node_selector
            .get("kubernetes.io/os")
            .is_some_and(|v| v == "windows");
    Ok(PodSpecView {
        containers: s.containers.unwrap_or_default(),
        containers_present,
        init_containers: s.init_containers.unwrap_or_default(),
        init_containers_present,
        volumes: s.volumes.unwrap_or_default(),
        volumes_present,
        restart_policy: s.restart_policy,
        affinity,
        scheduling: Scheduling {
            node_name: s.node_name.filter(|n| !n.is_empty()),
            node_selector,
            required_terms,
            tolerations: s.tolerations.unwrap_or_default(),
        },
        windows,
        overhead: s.overhead.unwrap_or_default(),
    })
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub fn escape_pointer(key: &str) -> Cow<'_, str> {
    if key.contains(['~', '/']) {
        Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass reading of a compact Pod and the general path see the same template.
    /// What the engine reads of a template, as text.
    fn seen(t: &Template<'_>) -> String {
        format!(
            "{} {} {} {:?} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?}",
            t.meta_pointer,
            t.spec_pointer,
            t.kind,
            t.object_name,
            t.object_namespace,
            t.meta,
            t.meta_present,
            t.spec
                .containers
                .iter()
                .map(|c| &c.view)
                .collect::<Vec<_>>(),
            t.spec
                .init_containers
                .iter()
                .map(|c| &c.view)
                .collect::<Vec<_>>(),
            t.spec.volumes.iter().map(|v| &v.name).collect::<Vec<_>>(),
            t.spec.scheduling,
            t.spec.restart_policy
        ) + &format!(
            " {} {:?} {:?} {:?}",
            t.meta_only_annotations,
            t.spec.affinity,
            t.spec
                .containers
                .iter()
                .map(ContainerRef::value)
                .collect::<Vec<_>>(),
            t.spec
                .volumes
                .iter()
                .map(|v| serde_json::from_str::<Value>(v.raw).unwrap())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn the_one_pass_takes_any_whitespace_and_leaves_odd_input_to_the_general_path() {
        // Whitespace anywhere, an escaped key, annotations alone: still one pass, same view.
        for (spaced, only_annotations) in [
            (
                r#"{"kind":"Pod","apiVersion":"v1" , "metadata" : { "annotations" : {"a":"b"} } ,
                  "spec": { "containers" : [ {"name":"a", "im\u0061ge": "x"} ,{"name":"b"}] , "initContainers": null } }"#,
                true,
            ),
            (
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{},"spec":{"containers":[]}} "#,
                true,
            ),
            (
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"uid":"u"},"spec":{"volumes":[{"name":"v"}]}}"#,
                false,
            ),
        ] {
            let fast = one_pass_pod(spaced, "").unwrap().expect("one pass");
            let pretty =
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(spaced).unwrap())
                    .unwrap();
            let general = &templates_general(&pretty).unwrap()[0];
            assert_eq!(seen(&fast), seen(general), "{spaced}");
            assert_eq!(fast.meta_only_annotations, only_annotations, "{spaced}");
        }
        // What serde refuses, the one pass leaves to the general path, which words it.
        for odd in [
            r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"a"}],"containers":[]}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"a"}]}} x"#,
            r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"a"},]}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"labels":{},"labels":{}},"spec":{}}"#,
        ] {
            assert!(one_pass_pod(odd, "").unwrap().is_none(), "{odd}");
            assert!(templates(odd).is_err(), "{odd}");
        }
    }

    #[test]
    fn a_one_pass_pod_reads_as_the_general_path_reads_it() {
        let pod = serde_json::json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"generateName": "web-", "namespace": "shop", "labels": {"app": "web"},
                         "annotations": {"a": "b"}, "name": null,
                         "managedFields": [{"fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {}}}}}]},
            "spec": {"containers": [{"name": "web", "command": ["/web"], "env": [{"name": "X"}],
                                     "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
                     "initContainers": [{"name": "init", "restartPolicy": "Always"}],
                     "volumes": [{"name": "data", "emptyDir": {}}],
                     "nodeSelector": {"pool": "a"},
                     "tolerations": [{"key": "k", "operator": "Exists"}],
                     "futurePodField": {"addedIn": "1.40"}}});
        let compact = serde_json::to_string(&pod).unwrap();
        let pretty = serde_json::to_string_pretty(&pod).unwrap();
        assert!(
            one_pass_pod(&compact, "").unwrap().is_some(),
            "the fast path takes it"
        );
        assert!(
            one_pass_pod(&pretty, "").unwrap().is_some(),
            "so does a pretty one"
        );
        let deployment = r#"{"kind":"Deployment","apiVersion":"apps/v1","spec":{}}"#;
        assert!(one_pass_pod(deployment, "").unwrap().is_none());
        assert!(says_pod(r#"{"apiVersion":"v1", "kind" :"Pod"}"#));
        assert!(!says_pod(r#"{"kind":"PodTemplate"}"#));
        let (a, b) = (
            &templates(&compact).unwrap()[0],
            &templates_general(&pretty).unwrap()[0],
        );
        assert_eq!(seen(a), seen(b));
        assert_eq!(
            a.spec.containers[0].raw,
            serde_json::to_string(&pod["spec"]["containers"][0]).unwrap(),
            "a container's text is exactly its bytes in the object"
        );
        // Bad input gets the general path's error, whichever way it is written.
        for bad in [
            r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":""}]}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"a"}],"tolerations":5}}"#,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"labels":{"a":1}},"spec":{"containers":[{"name":"a"}]}}"#,
        ] {
            let compact_err = templates(bad).unwrap_err();
            let pretty =
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(bad).unwrap()).unwrap();
            assert_eq!(compact_err, templates(&pretty).unwrap_err(), "{bad}");
        }
    }

    #[test]
    fn finds_templates_in_every_workload_kind() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},"spec":{"containers":[{"name":"c"}]}}"#;
        let t = templates(pod).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].spec_pointer, "/spec");
        assert_eq!(t[0].meta_pointer, "/metadata");
        assert_eq!(t[0].meta.label("a"), Some("b"));
        for (kind, api, ptr) in [
            ("Deployment", "apps/v1", "/spec/template/spec"),
            ("StatefulSet", "apps/v1", "/spec/template/spec"),
            ("DaemonSet", "apps/v1", "/spec/template/spec"),
            ("ReplicaSet", "apps/v1", "/spec/template/spec"),
            ("ReplicationController", "v1", "/spec/template/spec"),
            ("Job", "batch/v1", "/spec/template/spec"),
        ] {
            let obj = format!(
                r#"{{"apiVersion":"{api}","kind":"{kind}","metadata":{{"name":"w"}},"spec":{{"template":{{"spec":{{"containers":[{{"name":"c"}}]}}}}}}}}"#
            );
            let t = templates(&obj).unwrap();
            assert_eq!(t[0].spec_pointer, ptr, "{kind}");
            assert!(!t[0].meta_present);
            assert_eq!(t[0].object_name.as_deref(), Some("w"));
        }
        let cj = r#"{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"c"}]}}}}}}"#;
        assert_eq!(
            templates(cj).unwrap()[0].spec_pointer,
            "/spec/jobTemplate/spec/template/spec"
        );
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{pod},{{"apiVersion":"v1","kind":"ConfigMap"}},{pod}]}}"#
        );
        let t = templates(&list).unwrap();
        assert_eq!(
            t.iter()
                .map(|t| t.spec_pointer.as_str())
                .collect::<Vec<_>>(),
            ["/items/0/spec", "/items/2/spec"]
        );
    }

    #[test]
    fn other_kinds_and_groups_pass() {
        assert!(
            templates(r#"{"apiVersion":"v1","kind":"ConfigMap","data":{}}"#)
                .unwrap()
                .is_empty()
        );
        assert!(templates(r#"{"apiVersion":"example.com/v1","kind":"Deployment","spec":{"template":{"spec":{}}}}"#).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_pointer() {
        let e = templates(r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a"},{"name":"b","command":"sh"}]}}"#).unwrap_err();
        assert_eq!(e.pointer, "/spec/containers/1/command");
        let e =
            templates(r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"image":"x"}]}}"#)
                .unwrap_err();
        assert_eq!(e.pointer, "/spec/containers/0/name");
        assert!(templates("[1]").is_err());
    }

    #[test]
    fn reads_scheduling() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","spec":{"nodeSelector":{"kubernetes.io/os":"windows"},
          "tolerations":[{"operator":"Exists"}],
          "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]}}},
          "containers":[{"name":"c"}]}}"#;
        let t = templates(pod).unwrap();
        assert!(t[0].spec.windows);
        assert_eq!(t[0].spec.scheduling.required_terms.len(), 1);
        assert_eq!(t[0].spec.scheduling.tolerations.len(), 1);
    }

    #[test]
    fn escapes_pointers() {
        assert_eq!(
            escape_pointer("sidecar-kit.io/status"),
            "sidecar-kit.io~1status"
        );
        assert_eq!(escape_pointer("a~b"), "a~0b");
    }

    /// Pods one edit away from a typical one (a field of the engine's set to a value of
    /// another type, null, an escaped or odd string; a member given twice): the one pass
    /// reads each as the general path does, or leaves it to the general path; never another
    /// reading, never another error.
    mod one_pass_against_serde {
        use super::*;
        use proptest::prelude::*;

        const PLACES: &[&str] = &[
            "/kind",
            "/apiVersion",
            "/metadata",
            "/metadata/name",
            "/metadata/generateName",
            "/metadata/namespace",
            "/metadata/labels",
            "/metadata/labels/app",
            "/metadata/annotations",
            "/metadata/annotations/a",
            "/spec",
            "/spec/containers",
            "/spec/containers/0",
            "/spec/containers/0/name",
            "/spec/containers/0/command",
            "/spec/containers/0/command/0",
            "/spec/containers/0/volumeMounts",
            "/spec/containers/0/volumeMounts/0",
            "/spec/containers/0/volumeMounts/0/name",
            "/spec/containers/0/volumeMounts/0/mountPath",
            "/spec/containers/0/env",
            "/spec/containers/0/env/0",
            "/spec/containers/0/env/0/name",
            "/spec/containers/0/restartPolicy",
            "/spec/containers/0/resources",
            "/spec/containers/0/resources/requests",
            "/spec/initContainers",
            "/spec/initContainers/0/name",
            "/spec/volumes",
            "/spec/volumes/0",
            "/spec/volumes/0/name",
            "/spec/restartPolicy",
            "/spec/nodeName",
            "/spec/nodeSelector",
            "/spec/nodeSelector/pool",
            "/spec/tolerations",
            "/spec/tolerations/0",
            "/spec/tolerations/0/key",
            "/spec/tolerations/0/operator",
            "/spec/tolerations/1/effect",
            "/spec/tolerations/1/tolerationSeconds",
            "/spec/containers/0/resources/requests/cpu",
        ];

        fn pod() -> Value {
            serde_json::json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"generateName": "web-", "namespace": "shop",
                    "labels": {"app": "web"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "web", "command": ["/web"],
                        "env": [{"name": "X", "value": "1"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/d"}],
                        "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "1"}}}],
                    "initContainers": [{"name": "init"}],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "restartPolicy": "Always", "nodeName": "n1",
                    "nodeSelector": {"pool": "a"},
                    "tolerations": [{"key": "k", "operator": "Exists"},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 300}]}})
        }

        fn values() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(serde_json::json!("")),
                Just(serde_json::json!("plain")),
                Just(serde_json::json!("quote \" and \\ back\nslash")),
                Just(serde_json::json!("\u{e9}t\u{e9} \u{1f600}")),
                Just(serde_json::json!(5)),
                Just(serde_json::json!(true)),
                Just(serde_json::json!([])),
                Just(serde_json::json!({})),
                Just(serde_json::json!(["a", "b"])),
                Just(serde_json::json!([null])),
                Just(serde_json::json!([{}])),
                Just(serde_json::json!([{"name": "n", "mountPath": "/m"}])),
                Just(serde_json::json!([{"name": null}])),
                Just(serde_json::json!({"a": "b", "c": "d"})),
                Just(serde_json::json!({"a": null})),
                Just(serde_json::json!({"a": 1})),
                Just(serde_json::json!({"name": "x"})),
            ]
        }

        fn set(v: &mut Value, place: &str, to: Value) {
            let (parent, last) = place.rsplit_once('/').unwrap();
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.insert(last.to_string(), to);
                }
                Some(Value::Array(a)) => {
                    if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                        *slot = to;
                    }
                }
                _ => {}
            }
        }

        fn outcome(t: Result<Vec<Template<'_>>, ViewError>) -> Result<Vec<String>, ViewError> {
            t.map(|ts| ts.iter().map(seen).collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
            #[test]
            fn reads_as_serde(place in 0..PLACES.len(), to in values(), twice in 0..4usize) {
                let mut v = pod();
                set(&mut v, PLACES[place], to);
                let mut compact = serde_json::to_string(&v).unwrap();
                // A member given twice (serde refuses it in a struct, keeps the last in a map).
                let doubled = ["\"name\":\"web\"", "\"labels\":{", "\"app\":\"web\"", "\"mountPath\":\"/d\""][twice];
                if place % 3 == 0 && compact.contains(doubled) {
                    let again = if doubled.ends_with('{') {
                        format!("\"labels\":{{\"z\":\"1\"}},{doubled}")
                    } else {
                        // (another value first: a map keeps the last)
                        format!("{},{doubled}", doubled.replace("web", "dup").replace("/d", "/dup"))
                    };
                    compact = compact.replacen(doubled, &again, 1);
                }
                let pretty = compact.replace(',', " ,\n  ").replace(':', " : ");
                let fast = outcome(templates(&compact));
                let general = outcome(templates_general(&compact));
                prop_assert_eq!(&fast, &general, "{}", compact);
                // And whitespace does not change the reading (nor the error).
                // (no value here has a comma or a colon for the spacing to change)
                prop_assert_eq!(fast, outcome(templates(&pretty)), "{}", pretty);
            }
        }
    }
}
