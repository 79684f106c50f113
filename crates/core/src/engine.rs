//! The injection engine: raw object JSON → plan (what is added, where, in which mode, and
//! why) → RFC 6902 JSON Patch. One code path for the webhook and the offline CLI.

use crate::facts::{Availability, Facts, Scheduling};
use crate::patch::{PatchOp, edit_list};
use crate::pod::{ContainerRef, Template, ViewError, escape_pointer, templates};
use crate::profile::{
    INSTALL_CONTAINER, JobCompletion, LEGACY_SUFFIX, Mode, Position, Profile, ProfileSet,
    SHIM_VOLUME, first_conflict,
};
use crate::resources::{InitEntry, Requests, effective, parse_quantity};
use crate::status::{
    Added, AppItem, DEFAULT_CONTAINER_ANNOTATION, INJECT_KEY, Injection, MODE_ANNOTATION,
    NODE_LABEL, PROFILES_ANNOTATION, STATUS_ANNOTATION, Status,
};
use crate::version::{FieldKept, api_server_keeps_field};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Where the shim's volume is mounted, and the paths under it (contract: "Universal wiring").
pub const SHIM_MOUNT: &str = "/sidecar-kit";
pub const SHIM_BIN: &str = "/sidecar-kit/bin/sidecar-shim";
pub const TOMBSTONES: &str = "/sidecar-kit/tombstones";
/// Namespaces the webhook never injects into unless told to.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

pub fn state_dir(sidecar: &str) -> String {
    format!("{SHIM_MOUNT}/state/{sidecar}")
}

/// Inputs that come from the caller rather than from the object.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--mode` of the CLI: overrides the pod annotation and the profile.
    pub mode_override: Option<Mode>,
    /// Namespaces never injected into (the webhook's system and own namespaces).
    pub excluded_namespaces: Vec<String>,
    /// The namespace of the request, when the object does not carry one.
    pub namespace: Option<String>,
    /// Compute effective resource requests before and after (for `explain`).
    pub resources: bool,
    /// Record which profiles did not match and why (for `explain`).
    pub explain: bool,
}

/// Why a template was not injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipCode {
    OptedOut,
    NamespaceOptedOut,
    ExcludedNamespace,
    NoProfileMatched,
    UnknownProfile,
    BadAnnotation,
    ProfileConflict,
    PodConflict,
    MissingVolume,
    ProfileUnfitForMode,
    BadStatus,
    /// The pod breaks a rule the API server enforces (two containers of one name): it will
    /// be refused whatever is added.
    InvalidPod,
    /// The status annotation lists something that is not what its profile adds (forged, or
    /// changed since): nothing is removed or added.
    UnverifiedStatus,
}

impl SkipCode {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipCode::OptedOut => "OptedOut",
            SkipCode::NamespaceOptedOut => "NamespaceOptedOut",
            SkipCode::ExcludedNamespace => "ExcludedNamespace",
            SkipCode::NoProfileMatched => "NoProfileMatched",
            SkipCode::UnknownProfile => "UnknownProfile",
            SkipCode::BadAnnotation => "BadAnnotation",
            SkipCode::ProfileConflict => "ProfileConflict",
            SkipCode::PodConflict => "PodConflict",
            SkipCode::MissingVolume => "MissingVolume",
            SkipCode::ProfileUnfitForMode => "ProfileUnfitForMode",
            SkipCode::BadStatus => "BadStatus",
            SkipCode::InvalidPod => "InvalidPod",
            SkipCode::UnverifiedStatus => "UnverifiedStatus",
        }
    }

    /// Skips that are errors for the offline CLI (the user's input is inconsistent);
    /// the webhook only reports them.
    pub fn is_input_error(self) -> bool {
        matches!(
            self,
            SkipCode::UnknownProfile
                | SkipCode::BadAnnotation
                | SkipCode::ProfileConflict
                | SkipCode::PodConflict
                | SkipCode::MissingVolume
                | SkipCode::ProfileUnfitForMode
                | SkipCode::BadStatus
                | SkipCode::InvalidPod
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub code: SkipCode,
    pub message: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateResult {
    /// Profiles applied. `changed` is false when the object already carried exactly this.
    Injected {
        status: Status,
        changed: bool,
    },
    /// An earlier injection was removed (uninject, or no profile applies any more).
    Removed {
        previous: Status,
    },
    Skipped(Skip),
}

/// A profile considered for a template, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Considered {
    pub profile: String,
    pub matched: bool,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub before: Requests,
    pub after: Requests,
}

/// The plan for one pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateOutcome {
    /// JSON pointer of the pod spec in the object.
    pub spec_pointer: String,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub result: TemplateResult,
    pub warnings: Vec<String>,
    pub considered: Vec<Considered>,
    /// What the decision was based on (API server, facts availability), for `explain`.
    pub facts: Vec<String>,
    pub resources: Option<ResourceChange>,
}

/// The plan for one object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    pub templates: Vec<TemplateOutcome>,
    pub patch: Vec<PatchOp>,
}

impl Outcome {
    pub fn changed(&self) -> bool {
        !self.patch.is_empty()
    }
}

/// Plans the injection of `profiles` into every pod template of `object` (raw JSON).
pub fn inject(
    object: &str,
    profiles: &ProfileSet,
    facts: &dyn Facts,
    opts: &Options,
) -> Result<Outcome, ViewError> {
    let mut out = Outcome::default();
    for t in templates(object)? {
        let (o, ops) = plan_template(&t, Some(profiles), facts, opts, false);
        out.templates.push(o);
        out.patch.extend(ops);
    }
    Ok(out)
}

/// Plans the removal of everything sidecar-kit injected (per the status annotation), where
/// it is still exactly what the profiles that made it add (`profiles` must hold them: the
/// annotation alone is never enough to delete anything).
pub fn uninject(object: &str, profiles: &ProfileSet) -> Result<Outcome, ViewError> {
    let mut out = Outcome::default();
    let facts = crate::facts::StaticFacts::none();
    for t in templates(object)? {
        let (o, ops) = plan_template(&t, Some(profiles), &facts, &Options::default(), true);
        out.templates.push(o);
        out.patch.extend(ops);
    }
    Ok(out)
}

// === planning ===

/// A profile with its resolved mode.
struct Chosen {
    profile: Arc<Profile>,
    mode: Mode,
    reason: String,
    probe: bool,
}

/// What the plan adds, before placement.
#[derive(Default)]
struct Additions {
    /// Per profile, the init containers in order (setup steps, then native copies).
    init_blocks: Vec<(Position, Vec<(String, Value)>)>,
    /// Name of the first native copy (the install container goes before it).
    native_first: Option<String>,
    install: Option<Value>,
    containers: Vec<(String, Value)>,
    volumes: Vec<(String, Value)>,
    /// (app container base index, value, mountPath / env name)
    app_mounts: Vec<(usize, String, Value)>,
    app_env: Vec<(usize, String, Value)>,
    app_commands: BTreeMap<usize, Vec<String>>,
    affinity: Vec<Value>,
    default_container: Option<String>,
}

struct AppContainer<'t, 'a> {
    /// Index in the current `containers` list.
    index: usize,
    c: &'t ContainerRef<'a>,
    /// Command without sidecar-kit's wrapping.
    base_command: Option<Vec<String>>,
}

/// The user and group of the install container, whatever `USER` the shim image declares
/// (contract: "Universal wiring", security context).
pub const INSTALL_USER: u32 = 65532;

/// The install container's security context: `restricted`, with an explicit non-root user so
/// that it runs whatever user the shim image declares. Only the install container gets it:
/// the shim-wrapped copies run the profile's own image and keep the profile container's
/// `securityContext` exactly (a root image with `runAsNonRoot` added is refused by the
/// kubelet: `CreateContainerConfigError`).
fn install_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": INSTALL_USER,
        "runAsGroup": INSTALL_USER,
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

fn shim_mount() -> Value {
    json!({"name": SHIM_VOLUME, "mountPath": SHIM_MOUNT})
}

fn push_to(map: &mut Map<String, Value>, key: &str, v: Value) {
    match map.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            map.insert(key.to_string(), Value::Array(vec![v]));
        }
    }
}

fn strings(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| Value::String((*s).to_string())).collect()
}

/// `[shim, app, --tombstones, DIR, --name, NAME, --] + cmd`
fn wrap_app(name: &str, cmd: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        SHIM_BIN,
        "app",
        "--tombstones",
        TOMBSTONES,
        "--name",
        name,
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(cmd.iter().cloned());
    v
}

/// Undoes [`wrap_app`]; `None` when the command is not wrapped.
fn unwrap_app(cmd: &[String]) -> Option<Vec<String>> {
    if cmd.first().map(String::as_str) != Some(SHIM_BIN)
        || cmd.get(1).map(String::as_str) != Some("app")
    {
        return None;
    }
    let sep = cmd.iter().position(|s| s == "--")?;
    Some(cmd[sep + 1..].to_vec())
}

/// Is everything in `want` present in `have`? Extra fields in `have` (defaults set by the
/// API server) are fine; quantities compare by value.
pub fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| covers(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| covers(a, b))
        }
        (Value::String(h), Value::String(w)) => {
            h == w
                || matches!((parse_quantity(h), parse_quantity(w)), (Some(a), Some(b)) if (a - b).abs() <= f64::EPSILON * a.abs().max(1.0))
        }
        (Value::Number(h), Value::String(w)) | (Value::String(w), Value::Number(h)) => h
            .as_f64()
            .zip(parse_quantity(w))
            .is_some_and(|(a, b)| a == b),
        (h, w) => h == w,
    }
}

/// Turns a readiness probe of the legacy copy into `sidecar-shim ready` around the original
/// check, so that a dormant copy never holds the pod unready.
fn ready_probe(
    orig: &Map<String, Value>,
    container: &Map<String, Value>,
    state: &str,
    warnings: &mut Vec<String>,
) -> Value {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("");
    let mut cmd: Vec<String> = [SHIM_BIN, "ready", "--state", state]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(t) = orig.get("timeoutSeconds").and_then(Value::as_u64) {
        cmd.extend(["--timeout".to_string(), t.to_string()]);
    }
    let resolve_port = |p: Option<&Value>| -> Option<u64> {
        match p? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok().or_else(|| {
                container
                    .get("ports")?
                    .as_array()?
                    .iter()
                    .find(|x| x.get("name").and_then(Value::as_str) == Some(s))?
                    .get("containerPort")?
                    .as_u64()
            }),
            _ => None,
        }
    };
    let host_of = |h: &Map<String, Value>| {
        h.get("host")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("127.0.0.1")
            .to_string()
    };
    if let Some(exec) = orig
        .get("exec")
        .and_then(|e| e.get("command"))
        .and_then(Value::as_array)
    {
        cmd.push("--".into());
        cmd.extend(exec.iter().filter_map(|s| s.as_str().map(str::to_string)));
    } else if let Some(h) = orig.get("httpGet").and_then(Value::as_object) {
        match resolve_port(h.get("port")) {
            Some(port) if h.get("scheme").and_then(Value::as_str) == Some("HTTPS") => {
                warnings.push(format!("{name}{LEGACY_SUFFIX}: its HTTPS readiness check is replaced by a TCP check of port {port} (sidecar-shim speaks no TLS)"));
                cmd.extend(["--tcp-socket".into(), format!("{}:{port}", host_of(h))]);
            }
            Some(port) => {
                let path = h.get("path").and_then(Value::as_str).unwrap_or("/");
                let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
                cmd.extend(["--http-get".into(), format!("http://{}:{port}{path}", host_of(h))]);
                for hd in h.get("httpHeaders").and_then(Value::as_array).into_iter().flatten() {
                    if let (Some(n), Some(v)) = (hd.get("name").and_then(Value::as_str), hd.get("value").and_then(Value::as_str)) {
                        cmd.extend(["--header".into(), format!("{n}:{v}")]);
                    }
                }
            }
            None => warnings.push(format!("{name}{LEGACY_SUFFIX}: readiness port {:?} is not a number or a named port of the container; the check is dropped", h.get("port"))),
        }
    } else if let Some(t) = orig.get("tcpSocket").and_then(Value::as_object) {
        match resolve_port(t.get("port")) {
            Some(port) => cmd.extend(["--tcp-socket".into(), format!("{}:{port}", host_of(t))]),
            None => warnings.push(format!("{name}{LEGACY_SUFFIX}: readiness port {:?} cannot be resolved; the check is dropped", t.get("port"))),
        }
    } else if let Some(g) = orig.get("grpc").and_then(Value::as_object)
        && let Some(port) = resolve_port(g.get("port"))
    {
        warnings.push(format!("{name}{LEGACY_SUFFIX}: its gRPC readiness check is replaced by a TCP check of port {port}"));
        cmd.extend(["--tcp-socket".into(), format!("127.0.0.1:{port}")]);
    }
    let mut probe = orig.clone();
    for k in ["exec", "httpGet", "tcpSocket", "grpc"] {
        probe.remove(k);
    }
    probe.insert("exec".into(), json!({"command": cmd}));
    Value::Object(probe)
}

/// How the shim of a legacy sidecar learns that a Job's apps are done.
#[derive(Clone)]
enum JobSafe {
    None,
    Tombstones(Vec<String>),
    Api(Vec<String>),
}

fn legacy_shim_command(
    name: &str,
    restart_policy: &str,
    job: &JobSafe,
    cmd: &[String],
) -> Vec<String> {
    let state = state_dir(name);
    let mut v: Vec<String> = [
        SHIM_BIN,
        "legacy",
        "--state",
        &state,
        "--pod-restart-policy",
        restart_policy,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match job {
        JobSafe::None => {}
        JobSafe::Tombstones(apps) => v.extend([
            "--tombstones".into(),
            TOMBSTONES.into(),
            "--wait-for".into(),
            apps.join(","),
        ]),
        JobSafe::Api(apps) => v.extend([
            "--job-completion".into(),
            "api".into(),
            "--wait-for".into(),
            apps.join(","),
        ]),
    }
    v.push("--".into());
    v.extend(cmd.iter().cloned());
    v
}

fn set_command(c: &mut Map<String, Value>, cmd: Vec<String>) {
    c.insert(
        "command".into(),
        Value::Array(cmd.into_iter().map(Value::String).collect()),
    );
}

fn pod_downward_env(c: &mut Map<String, Value>) {
    for (n, f) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        push_to(
            c,
            "env",
            json!({"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}}),
        );
    }
}

fn install_container(image: &str) -> Value {
    json!({
        "name": INSTALL_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sidecar-shim", "install", format!("{SHIM_MOUNT}/bin")],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "securityContext": install_security(),
        "volumeMounts": [shim_mount()]
    })
}

fn shim_volume() -> Value {
    json!({"name": SHIM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
}

fn affinity_expr(mode: Mode) -> Option<Value> {
    match mode {
        Mode::Affinity => Some(json!({"key": NODE_LABEL, "operator": "In", "values": ["true"]})),
        Mode::Universal => {
            Some(json!({"key": NODE_LABEL, "operator": "NotIn", "values": ["rejected"]}))
        }
        _ => None,
    }
}

/// Decides the mode of one profile for one template.
#[allow(clippy::too_many_arguments)]
fn resolve_mode(
    requested: Mode,
    source: &str,
    profile: &Profile,
    kept: &FieldKept,
    facts: &dyn Facts,
    t: &Template<'_>,
    sched: &Scheduling,
    warnings: &mut Vec<String>,
) -> (Mode, String, bool) {
    let fallback = profile.spec.fallback.mode();
    let lease = facts.labeler_lease_fresh();
    let lease_gate = |mode: Mode, why: String| -> (Mode, String) {
        if matches!(mode, Mode::Affinity | Mode::Universal) && lease != Some(true) {
            let state = if lease == Some(false) {
                "not fresh"
            } else {
                "unknown"
            };
            (
                Mode::Legacy,
                format!(
                    "{why}; fallback {mode} needs the node labels of label-nodes, whose Lease is {state}: legacy"
                ),
            )
        } else {
            (mode, format!("{why}: fallback {mode}"))
        }
    };
    let (mut mode, mut reason) = if requested == Mode::Auto {
        if kept.is_no() {
            (Mode::Legacy, format!("auto: {}: legacy", kept.reason()))
        } else {
            match facts.availability() {
                Availability::Absent => (
                    fallback,
                    format!(
                        "auto: no cluster facts (pass --facts FILE from `sidecar-kit doctor cluster -o facts`): profile fallback {fallback}"
                    ),
                ),
                Availability::Unsynced(why) => {
                    lease_gate(fallback, format!("auto: cluster facts unavailable ({why})"))
                }
                Availability::Known => {
                    let c = facts.candidates(sched);
                    let total = c.total();
                    if total == 0 {
                        (
                            Mode::Legacy,
                            "auto: no known node matches the pod's scheduling constraints: legacy"
                                .to_string(),
                        )
                    } else if c.capable == total {
                        if c.capable_1_28 > 0 {
                            warnings.push(format!("{} candidate nodes are 1.28 kubelets with the gate on: sidecars start in order, but their termination order differs from 1.29+", c.capable_1_28));
                        }
                        (
                            Mode::Native,
                            format!("auto: all {total} candidate nodes are capable: native"),
                        )
                    } else if c.capable == 0 {
                        (
                            Mode::Legacy,
                            format!(
                                "auto: no candidate node is capable ({}): legacy",
                                c.describe()
                            ),
                        )
                    } else {
                        lease_gate(
                            fallback,
                            format!("auto: candidate nodes are mixed ({})", c.describe()),
                        )
                    }
                }
            }
        }
    } else {
        (requested, format!("{requested} requested by {source}"))
    };
    if requested != Mode::Auto
        && matches!(mode, Mode::Native | Mode::Affinity)
        && facts.availability() == Availability::Known
    {
        let c = facts.candidates(sched);
        let not_capable = c.total() - c.capable;
        if mode == Mode::Native && not_capable > 0 {
            warnings.push(format!(
                "mode native: {not_capable} of {} candidate nodes cannot run native sidecars ({})",
                c.total(),
                c.describe()
            ));
        }
    }
    if kept.is_no() && matches!(mode, Mode::Native | Mode::Affinity) {
        warnings.push(format!(
            "{mode} is impossible: {}; using legacy",
            kept.reason()
        ));
        reason = format!("{reason}; {mode} impossible ({}): legacy", kept.reason());
        mode = Mode::Legacy;
    }
    if mode == Mode::Universal && t.spec.windows {
        warnings.push("Windows pods cannot run sidecar-shim: legacy instead of universal".into());
        reason = format!("{reason}; Windows pod: legacy");
        mode = Mode::Legacy;
    }
    let mut probe = false;
    if mode == Mode::Universal {
        match kept {
            FieldKept::No(r) => {
                reason = format!("{reason}; without startup probe and restartPolicy ({r})")
            }
            FieldKept::Yes(_) => probe = true,
            FieldKept::Unknown(r) => {
                probe = true;
                reason =
                    format!("{reason}; startup probe added ({r}: assumed to keep restartPolicy)");
            }
        }
    }
    (mode, reason, probe)
}

fn skip(
    t: &Template<'_>,
    ns: Option<String>,
    code: SkipCode,
    message: String,
    warnings: Vec<String>,
    considered: Vec<Considered>,
    facts: Vec<String>,
) -> (TemplateOutcome, Vec<PatchOp>) {
    (
        TemplateOutcome {
            spec_pointer: t.spec_pointer.clone(),
            kind: t.kind.clone(),
            name: t.object_name.clone(),
            namespace: ns,
            result: TemplateResult::Skipped(Skip { code, message }),
            warnings,
            considered,
            facts,
            resources: None,
        },
        Vec::new(),
    )
}

fn plan_template(
    t: &Template<'_>,
    profiles: Option<&ProfileSet>,
    facts: &dyn Facts,
    opts: &Options,
    remove_only: bool,
) -> (TemplateOutcome, Vec<PatchOp>) {
    let ns = opts
        .namespace
        .clone()
        .or_else(|| t.object_namespace.clone())
        .or_else(|| t.meta.namespace.clone());
    let mut warnings = Vec::new();
    let mut considered = Vec::new();
    let mut fact_lines = Vec::new();
    if let Some(message) = duplicate_container(t) {
        return skip(
            t,
            ns,
            SkipCode::InvalidPod,
            message,
            warnings,
            considered,
            fact_lines,
        );
    }
    let prev = match t.meta.annotation(STATUS_ANNOTATION).map(Status::parse) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            return skip(
                t,
                ns,
                SkipCode::BadStatus,
                format!(
                    "annotation {STATUS_ANNOTATION} cannot be read ({e}); remove it (and what it describes) to inject again"
                ),
                warnings,
                considered,
                fact_lines,
            );
        }
    };
    if let (Some(p), Some(set)) = (&prev, profiles)
        && let Err(why) = verify_status(t, p, set)
    {
        let message = format!(
            "annotation {STATUS_ANNOTATION} does not match what its profiles add: {why}; nothing is removed or added (remove the annotation, and by hand what it wrongly lists, to inject again)"
        );
        warnings.push(message.clone());
        return skip(
            t,
            ns,
            SkipCode::UnverifiedStatus,
            message,
            warnings,
            considered,
            fact_lines,
        );
    }
    let profiles = profiles.filter(|_| !remove_only);
    let Some(profiles) = profiles else {
        // uninject
        return match prev {
            Some(p) => finish(
                t,
                ns,
                prev_added(&p),
                Some(p),
                Vec::new(),
                Additions::default(),
                warnings,
                considered,
                fact_lines,
                opts,
            ),
            None => skip(
                t,
                ns,
                SkipCode::NoProfileMatched,
                "nothing was injected by sidecar-kit".into(),
                warnings,
                considered,
                fact_lines,
            ),
        };
    };

    // Opt-outs and exclusions.
    if let Some(n) = ns
        .as_deref()
        .filter(|n| opts.excluded_namespaces.iter().any(|x| x == n))
    {
        return skip(
            t,
            ns.clone(),
            SkipCode::ExcludedNamespace,
            format!("namespace {n} is excluded from injection"),
            warnings,
            considered,
            fact_lines,
        );
    }
    for (what, v) in [
        ("label", t.meta.label(INJECT_KEY)),
        ("annotation", t.meta.annotation(INJECT_KEY)),
    ] {
        if v == Some("disabled") {
            return skip(
                t,
                ns,
                SkipCode::OptedOut,
                format!("pod {what} {INJECT_KEY}=disabled"),
                warnings,
                considered,
                fact_lines,
            );
        }
    }
    let ns_labels = ns.as_deref().and_then(|n| facts.namespace_labels(n));
    if let Some(l) = &ns_labels
        && l.get(INJECT_KEY).map(String::as_str) == Some("disabled")
    {
        return skip(
            t,
            ns.clone(),
            SkipCode::NamespaceOptedOut,
            format!(
                "namespace {} is labelled {INJECT_KEY}=disabled",
                ns.as_deref().unwrap_or("")
            ),
            warnings,
            considered,
            fact_lines,
        );
    }

    // Profile selection.
    let mut chosen_profiles: Vec<Arc<Profile>> = Vec::new();
    if let Some(list) = t.meta.annotation(PROFILES_ANNOTATION) {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match profiles.get(name) {
                Some(p) => {
                    if !chosen_profiles.iter().any(|c| c.name == p.name) {
                        chosen_profiles.push(p.clone());
                    }
                }
                None => {
                    return skip(
                        t,
                        ns,
                        SkipCode::UnknownProfile,
                        format!(
                            "annotation {PROFILES_ANNOTATION} names profile {name:?}, which is not loaded"
                        ),
                        warnings,
                        considered,
                        fact_lines,
                    );
                }
            }
        }
        chosen_profiles.sort_by(|a, b| {
            b.spec
                .priority
                .cmp(&a.spec.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        if opts.explain {
            considered.extend(chosen_profiles.iter().map(|p| Considered {
                profile: p.name.clone(),
                matched: true,
                why: format!("named by annotation {PROFILES_ANNOTATION}"),
            }));
        }
    } else {
        let labels = t.meta.labels.clone().unwrap_or_default();
        for p in profiles.iter() {
            let sel_ok = p.spec.selector.matches(&labels);
            let ns_ok = match (&p.spec.namespace_selector, &ns_labels) {
                (None, _) => Some(true),
                (Some(s), Some(l)) => Some(s.matches(l.as_ref())),
                (Some(_), None) => None,
            };
            let matched = sel_ok && ns_ok != Some(false);
            if matched {
                chosen_profiles.push(p.clone());
                if ns_ok.is_none() {
                    warnings.push(format!("profile {}: namespaceSelector not evaluated: labels of namespace {} unknown (give them in the facts file)", p.name, ns.as_deref().unwrap_or("(none)")));
                }
            }
            if opts.explain {
                let why = match (sel_ok, ns_ok) {
                    (true, Some(true)) => "selector matches".to_string(),
                    (true, None) => "selector matches; namespaceSelector not evaluated".to_string(),
                    (true, Some(false)) => format!(
                        "namespaceSelector does not match namespace {}",
                        ns.as_deref().unwrap_or("")
                    ),
                    (false, _) => "selector does not match the pod's labels".to_string(),
                };
                considered.push(Considered {
                    profile: p.name.clone(),
                    matched,
                    why,
                });
            }
        }
    }

    // Where the pod can land, judged on its own constraints: without the node-affinity
    // expressions an earlier injection added (they would narrow the candidates to what
    // that decision chose, and turn it into another one on re-invocation).
    let prev_added = prev.as_ref().map(prev_added).unwrap_or_default();
    let sched = own_scheduling(&t.spec.scheduling, &prev_added);

    // Modes.
    let (api_version, gate) = facts.api_server();
    let kept = api_server_keeps_field(api_version.as_ref(), gate);
    if opts.explain {
        fact_lines.push(format!(
            "API server: {} (restartPolicy {})",
            kept.reason(),
            match kept {
                FieldKept::Yes(_) => "kept",
                FieldKept::No(_) => "dropped",
                FieldKept::Unknown(_) => "unknown",
            }
        ));
        fact_lines.push(match facts.availability() {
            Availability::Known => {
                format!("candidate nodes: {}", facts.candidates(&sched).describe())
            }
            Availability::Absent => {
                "no cluster facts: auto uses each profile's fallback".to_string()
            }
            Availability::Unsynced(w) => format!("cluster facts unavailable: {w}"),
        });
        fact_lines.push(format!(
            "labeler lease: {}",
            match facts.labeler_lease_fresh() {
                Some(true) => "fresh",
                Some(false) => "stale",
                None => "unknown",
            }
        ));
    }
    let annotation_mode = match t.meta.annotation(MODE_ANNOTATION) {
        None => None,
        Some(s) => match Mode::parse(s.trim()) {
            Some(m) => Some(m),
            None => {
                return skip(
                    t,
                    ns,
                    SkipCode::BadAnnotation,
                    format!(
                        "annotation {MODE_ANNOTATION}={s:?} is not a mode; use native, legacy, affinity, universal or auto"
                    ),
                    warnings,
                    considered,
                    fact_lines,
                );
            }
        },
    };
    let mut chosen = Vec::new();
    for p in &chosen_profiles {
        let (requested, source) = match (opts.mode_override, annotation_mode) {
            (Some(m), _) => (m, "--mode".to_string()),
            (None, Some(m)) => (m, format!("annotation {MODE_ANNOTATION}")),
            (None, None) => (p.spec.mode, format!("profile {} spec.mode", p.name)),
        };
        let (mode, reason, probe) = resolve_mode(
            requested,
            &source,
            p,
            &kept,
            facts,
            t,
            &sched,
            &mut warnings,
        );
        if mode == Mode::Universal
            && let Some(c) = p.spec.containers.iter().find(|c| c.command.is_none())
        {
            return skip(
                t,
                ns,
                SkipCode::ProfileUnfitForMode,
                format!(
                    "profile {} cannot be injected in universal mode: container {:?} has no command to wrap; give its command in the profile",
                    p.name, c.name
                ),
                warnings,
                considered,
                fact_lines,
            );
        }
        chosen.push(Chosen {
            profile: p.clone(),
            mode,
            reason,
            probe,
        });
    }

    // Profiles must not collide in one pod.
    for (i, a) in chosen.iter().enumerate() {
        for b in &chosen[i + 1..] {
            if let Some((what, name)) = first_conflict(&a.profile, &b.profile) {
                return skip(
                    t,
                    ns,
                    SkipCode::ProfileConflict,
                    format!(
                        "profiles {} and {} both add {what} {name:?} to this pod",
                        a.profile.name, b.profile.name
                    ),
                    warnings,
                    considered,
                    fact_lines,
                );
            }
        }
    }

    if chosen.is_empty() {
        return match prev {
            Some(p) => {
                warnings
                    .push("no profile applies any more: the earlier injection is removed".into());
                finish(
                    t,
                    ns,
                    prev_added,
                    Some(p),
                    Vec::new(),
                    Additions::default(),
                    warnings,
                    considered,
                    fact_lines,
                    opts,
                )
            }
            None => {
                let msg = if profiles.is_empty() {
                    "no profiles are loaded".to_string()
                } else {
                    "no profile selects this pod".to_string()
                };
                skip(
                    t,
                    ns,
                    SkipCode::NoProfileMatched,
                    msg,
                    warnings,
                    considered,
                    fact_lines,
                )
            }
        };
    }

    match build_additions(t, &chosen, &prev_added, &mut warnings) {
        Ok((adds, records)) => finish(
            t, ns, prev_added, prev, records, adds, warnings, considered, fact_lines, opts,
        ),
        Err((code, msg)) => skip(t, ns, code, msg, warnings, considered, fact_lines),
    }
}

/// Two containers of one name (init and regular containers share one name space): the API
/// server refuses such a pod, and names would no longer say which container is which.
fn duplicate_container(t: &Template<'_>) -> Option<String> {
    let all = t
        .spec
        .init_containers
        .iter()
        .enumerate()
        .map(|(i, c)| ("initContainers", i, c))
        .chain(
            t.spec
                .containers
                .iter()
                .enumerate()
                .map(|(i, c)| ("containers", i, c)),
        );
    let mut seen: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for (list, i, c) in all {
        if let Some((first_list, first)) = seen.insert(&c.view.name, (list, i)) {
            return Some(format!(
                "container name {:?} is used twice ({first_list}[{first}] and {list}[{i}]); the API server refuses such a pod: rename one of them",
                c.view.name
            ));
        }
    }
    None
}

/// The repository of an image reference, without tag or digest.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// Does the pod still hold exactly what the injections recorded in `prev` add? Every item
/// the annotation lists is compared, by content, with what the loaded profile adds to this
/// pod in the recorded mode: exactly (everything the profile sets is there with the same
/// values; defaults added by the API server are fine) where the loaded profile is the
/// version that injected, and by identity (name, image repository, volume source, mount
/// volume) where the profile changed since. A pod author can write the annotation: a name in
/// it is never enough to remove a container, volume, mount or variable.
fn verify_status(t: &Template<'_>, prev: &Status, profiles: &ProfileSet) -> Result<(), String> {
    let mut chosen = Vec::new();
    let mut exact = true;
    for i in &prev.injections {
        let Some(p) = profiles.get(&i.profile) else {
            return Err(format!(
                "it names profile {:?}, which is not loaded, so what it lists cannot be checked (load that profile, e.g. with -p)",
                i.profile
            ));
        };
        exact &= p.hash == i.hash;
        let probe = i.mode == Mode::Universal
            && p.spec.containers.iter().any(|c| {
                t.spec
                    .init_containers
                    .iter()
                    .any(|x| x.view.name == c.name && x.value().get("startupProbe").is_some())
            });
        chosen.push(Chosen {
            profile: p.clone(),
            mode: i.mode,
            reason: String::new(),
            probe,
        });
    }
    let prev_added = prev.all_added();
    let (adds, _) = build_additions(t, &chosen, &prev_added, &mut Vec::new())
        .map_err(|(_, m)| format!("its profiles cannot be planned for this pod again ({m})"))?;
    let what = if exact {
        "what that profile version adds"
    } else {
        "what the loaded (changed) profile adds under that name"
    };
    let matches = |have: &Value, want: &Value| -> bool {
        if exact {
            let mut want = want.clone();
            // A later webhook may strip restartPolicy: re-invocation puts it back.
            if let Some(m) = want.as_object_mut() {
                m.remove("restartPolicy");
            }
            covers(have, &want)
        } else {
            let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let keys = |v: &Value| -> BTreeSet<String> {
                v.as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            match (s(have, "image"), s(want, "image")) {
                (Some(a), Some(b)) => image_repository(&a) == image_repository(&b),
                (None, None) => {
                    // Volumes: the same source; mounts: the same volume.
                    let (mut a, mut b) = (keys(have), keys(want));
                    if want.get("mountPath").is_some() {
                        return s(have, "name") == s(want, "name");
                    }
                    a.retain(|k| k != "name");
                    b.retain(|k| k != "name");
                    a.is_subset(&b) || b.is_subset(&a)
                }
                _ => false,
            }
        }
    };
    let mut init_want: BTreeMap<&str, &Value> = adds
        .init_blocks
        .iter()
        .flat_map(|(_, b)| b.iter().map(|(n, v)| (n.as_str(), v)))
        .collect();
    if let Some(install) = &adds.install {
        init_want.insert(INSTALL_CONTAINER, install);
    }
    let containers_want: BTreeMap<&str, &Value> = adds
        .containers
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    for (list, listed, want, kind) in [
        (
            &t.spec.init_containers,
            &prev_added.init_containers,
            &init_want,
            "init container",
        ),
        (
            &t.spec.containers,
            &prev_added.containers,
            &containers_want,
            "container",
        ),
    ] {
        for name in listed {
            let Some(have) = list.iter().find(|c| &c.view.name == name) else {
                continue;
            };
            match want.get(name.as_str()) {
                Some(w) if matches(&have.value(), w) => {}
                _ => return Err(format!("{kind} {name:?} is listed, but it is not {what}")),
            }
        }
    }
    let volumes_want: BTreeMap<&str, &Value> =
        adds.volumes.iter().map(|(n, v)| (n.as_str(), v)).collect();
    for name in &prev_added.volumes {
        let Some(have) = t.spec.volumes.iter().find(|v| &v.name == name) else {
            continue;
        };
        let have: Value = serde_json::from_str(have.raw.get()).unwrap_or(Value::Null);
        match volumes_want.get(name.as_str()) {
            Some(w) if matches(&have, w) => {}
            _ => return Err(format!("volume {name:?} is listed, but it is not {what}")),
        }
    }
    let app_name = |i: usize| t.spec.containers.get(i).map(|c| c.view.name.as_str());
    for (items, added, field, key, kind) in [
        (
            &prev_added.app_mounts,
            &adds.app_mounts,
            "volumeMounts",
            "mountPath",
            "mount",
        ),
        (
            &prev_added.app_env,
            &adds.app_env,
            "env",
            "name",
            "variable",
        ),
    ] {
        for item in items {
            let Some(c) = t
                .spec
                .containers
                .iter()
                .find(|c| c.view.name == item.container)
            else {
                continue;
            };
            let value = c.value();
            let Some(have) = value.get(field).and_then(Value::as_array).and_then(|l| {
                l.iter()
                    .find(|x| x.get(key).and_then(Value::as_str) == Some(&item.name))
            }) else {
                continue;
            };
            let want = added
                .iter()
                .find(|(i, n, _)| app_name(*i) == Some(item.container.as_str()) && *n == item.name);
            match want {
                Some((_, _, w)) if matches(have, w) || (exact && covers(have, w)) => {}
                _ => {
                    return Err(format!(
                        "{kind} {:?} of container {:?} is listed, but it is not {what}",
                        item.name, item.container
                    ));
                }
            }
        }
    }
    for name in &prev_added.app_commands {
        if let Some(c) = t.spec.containers.iter().find(|c| &c.view.name == name)
            && c.view.command.as_deref().and_then(unwrap_app).is_none()
        {
            return Err(format!(
                "the command of container {name:?} is listed as wrapped, but it is not sidecar-shim's app wrapper"
            ));
        }
    }
    if prev_added.default_container
        && let Some(v) = t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION)
        && adds.default_container.as_deref() != Some(v)
    {
        return Err(format!(
            "annotation {DEFAULT_CONTAINER_ANNOTATION}={v:?} is listed as added, but sidecar-kit would name {:?}",
            adds.default_container.as_deref().unwrap_or("no container")
        ));
    }
    Ok(())
}

fn prev_added(s: &Status) -> Added {
    s.all_added()
}

/// The scheduling constraints without sidecar-kit's own node-affinity expressions.
fn own_scheduling<'s>(s: &'s Scheduling, prev: &Added) -> std::borrow::Cow<'s, Scheduling> {
    if !prev.affinity {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut own = s.clone();
    for term in &mut own.required_terms {
        term.match_expressions.retain(|r| r.key != NODE_LABEL);
    }
    // A term with nothing left was sidecar-kit's alone (Kubernetes rejects empty terms).
    own.required_terms
        .retain(|t| !t.match_expressions.is_empty() || !t.match_fields.is_empty());
    std::borrow::Cow::Owned(own)
}

/// The app containers: regular containers sidecar-kit did not add.
fn app_containers<'t, 'a>(t: &'t Template<'a>, prev: &Added) -> Vec<AppContainer<'t, 'a>> {
    t.spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !prev.containers.contains(&c.view.name))
        .map(|(index, c)| {
            let mut base_command = c.view.command.clone();
            if prev.app_commands.contains(&c.view.name)
                && let Some(cmd) = &c.view.command
                && let Some(un) = unwrap_app(cmd)
            {
                base_command = Some(un);
            }
            AppContainer {
                index,
                c,
                base_command,
            }
        })
        .collect()
}

type Planned = (Additions, Vec<Injection>);

fn build_additions(
    t: &Template<'_>,
    chosen: &[Chosen],
    prev: &Added,
    warnings: &mut Vec<String>,
) -> Result<Planned, (SkipCode, String)> {
    let apps = app_containers(t, prev);
    let restart_policy = t
        .spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let job_pod = restart_policy != "Always";
    let base_names: BTreeSet<&str> = t
        .spec
        .init_containers
        .iter()
        .filter(|c| !prev.init_containers.contains(&c.view.name))
        .chain(
            t.spec
                .containers
                .iter()
                .filter(|c| !prev.containers.contains(&c.view.name)),
        )
        .map(|c| c.view.name.as_str())
        .collect();
    let base_volumes: BTreeSet<&str> = t
        .spec
        .volumes
        .iter()
        .filter(|v| !prev.volumes.contains(&v.name))
        .map(|v| v.name.as_str())
        .collect();

    let mut adds = Additions::default();
    let mut records = Vec::new();
    let mut shim_needed_by: Option<usize> = None; // index into records
    let mut wrapped_apps = false;
    let mut first_image: Option<String> = None;

    for (pi, ch) in chosen.iter().enumerate() {
        let p = &ch.profile;
        let mut added = Added::default();
        let mut block: Vec<(String, Value)> = Vec::new();
        for c in &p.spec.init_containers {
            block.push((c.name.clone(), Value::Object(c.raw.clone())));
            added.init_containers.push(c.name.clone());
        }
        // Job-safe wiring for legacy sidecars (and universal's legacy copy).
        let legacy_runs = matches!(ch.mode, Mode::Legacy | Mode::Universal);
        let job = if job_pod && legacy_runs {
            if t.spec.windows {
                warnings.push(format!("profile {}: Job-safe wiring skipped: Windows pods cannot run sidecar-shim; the Job will not complete while the sidecar runs", p.name));
                JobSafe::None
            } else if let Some(c) = p.spec.containers.iter().find(|c| c.command.is_none()) {
                warnings.push(format!("profile {}: Job-safe wiring skipped: sidecar {:?} has no command to wrap; the Job will not complete while it runs", p.name, c.name));
                JobSafe::None
            } else {
                let names: Vec<String> = apps.iter().map(|a| a.c.view.name.clone()).collect();
                match p.spec.job_completion {
                    JobCompletion::Api => JobSafe::Api(names),
                    JobCompletion::Tombstone => {
                        match apps.iter().find(|a| a.base_command.is_none()) {
                            Some(a) => {
                                warnings.push(format!("profile {}: Job-safe wiring skipped: app container {:?} has no explicit command, so it cannot be wrapped to record its exit (the webhook cannot read image entrypoints); give it a command, or use jobCompletion: api", p.name, a.c.view.name));
                                JobSafe::None
                            }
                            None => JobSafe::Tombstones(names),
                        }
                    }
                }
            }
        } else {
            JobSafe::None
        };
        let uses_shim = ch.mode == Mode::Universal || !matches!(job, JobSafe::None);
        for c in &p.spec.containers {
            let cmd = c.command.clone().unwrap_or_default();
            match ch.mode {
                Mode::Native | Mode::Affinity => {
                    let mut v = c.raw.clone();
                    v.insert("restartPolicy".into(), json!("Always"));
                    block.push((c.name.clone(), Value::Object(v)));
                    added.init_containers.push(c.name.clone());
                    adds.native_first.get_or_insert_with(|| c.name.clone());
                }
                Mode::Legacy | Mode::Auto => {
                    let mut v = c.raw.clone();
                    if !matches!(job, JobSafe::None) {
                        set_command(
                            &mut v,
                            legacy_shim_command(&c.name, &restart_policy, &job, &cmd),
                        );
                        push_to(&mut v, "volumeMounts", shim_mount());
                        if matches!(job, JobSafe::Api(_)) {
                            pod_downward_env(&mut v);
                        }
                    }
                    adds.containers.push((c.name.clone(), Value::Object(v)));
                    added.containers.push(c.name.clone());
                }
                Mode::Universal => {
                    let state = state_dir(&c.name);
                    let mut native = c.raw.clone();
                    let mut n_cmd: Vec<String> = [SHIM_BIN, "native", "--state", &state, "--"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    n_cmd.extend(cmd.iter().cloned());
                    set_command(&mut native, n_cmd);
                    push_to(&mut native, "volumeMounts", shim_mount());
                    if ch.probe {
                        native.insert("restartPolicy".into(), json!("Always"));
                        if native.contains_key("startupProbe") {
                            warnings.push(format!("{}: its startupProbe is replaced by sidecar-shim's detection probe", c.name));
                        }
                        native.insert("startupProbe".into(), json!({
                            "exec": {"command": strings(&[SHIM_BIN, "probe", "--state", &state])},
                            "periodSeconds": 1,
                            "failureThreshold": 60
                        }));
                    } else {
                        for k in [
                            "startupProbe",
                            "livenessProbe",
                            "readinessProbe",
                            "lifecycle",
                        ] {
                            if native.remove(k).is_some() {
                                warnings.push(format!("{}: {k} removed from the native copy: the API server drops restartPolicy, and a plain init container may not have it", c.name));
                            }
                        }
                    }
                    block.push((c.name.clone(), Value::Object(native)));
                    added.init_containers.push(c.name.clone());
                    adds.native_first.get_or_insert_with(|| c.name.clone());

                    let legacy_name = format!("{}{LEGACY_SUFFIX}", c.name);
                    let mut legacy = c.raw.clone();
                    legacy.insert("name".into(), json!(legacy_name));
                    set_command(
                        &mut legacy,
                        legacy_shim_command(&c.name, &restart_policy, &job, &cmd),
                    );
                    legacy.remove("livenessProbe");
                    legacy.remove("startupProbe");
                    if let Some(Value::Array(ports)) = legacy.get_mut("ports") {
                        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                            port.remove("hostPort");
                        }
                    }
                    if let Some(Value::Object(rp)) = c.raw.get("readinessProbe") {
                        let probe = ready_probe(rp, &c.raw, &state, warnings);
                        legacy.insert("readinessProbe".into(), probe);
                    }
                    push_to(&mut legacy, "volumeMounts", shim_mount());
                    if matches!(job, JobSafe::Api(_)) {
                        pod_downward_env(&mut legacy);
                    }
                    adds.containers
                        .push((legacy_name.clone(), Value::Object(legacy)));
                    added.containers.push(legacy_name);
                }
            }
        }
        for v in &p.spec.volumes {
            adds.volumes.push((v.name.clone(), v.raw.clone()));
            added.volumes.push(v.name.clone());
        }
        for a in &apps {
            let mounts: BTreeSet<&str> =
                a.c.view
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| {
                        !prev
                            .app_mounts
                            .iter()
                            .any(|x| x.container == a.c.view.name && x.name == m.mount_path)
                    })
                    .map(|m| m.mount_path.as_str())
                    .collect();
            for m in &p.spec.app_volume_mounts {
                if mounts.contains(m.mount_path.as_str()) {
                    warnings.push(format!(
                        "app container {}: already mounts {}; the profile's mount is not added",
                        a.c.view.name, m.mount_path
                    ));
                    continue;
                }
                adds.app_mounts
                    .push((a.index, m.mount_path.clone(), m.raw.clone()));
                added.app_mounts.push(AppItem {
                    container: a.c.view.name.clone(),
                    name: m.mount_path.clone(),
                });
            }
            let env: BTreeSet<&str> =
                a.c.view
                    .env
                    .iter()
                    .flatten()
                    .filter(|e| {
                        !prev
                            .app_env
                            .iter()
                            .any(|x| x.container == a.c.view.name && x.name == e.name)
                    })
                    .map(|e| e.name.as_str())
                    .collect();
            for e in &p.spec.app_env {
                if env.contains(e.name.as_str()) {
                    warnings.push(format!(
                        "app container {}: already sets {}; its own value is kept",
                        a.c.view.name, e.name
                    ));
                    continue;
                }
                adds.app_env.push((a.index, e.name.clone(), e.raw.clone()));
                added.app_env.push(AppItem {
                    container: a.c.view.name.clone(),
                    name: e.name.clone(),
                });
            }
        }
        if let Some(expr) = affinity_expr(ch.mode) {
            if !adds.affinity.contains(&expr) {
                adds.affinity.push(expr);
            }
            added.affinity = true;
        }
        if uses_shim {
            first_image.get_or_insert_with(|| p.shim_image.clone());
            shim_needed_by.get_or_insert(pi);
        }
        if let JobSafe::Tombstones(_) = &job
            && !wrapped_apps
        {
            wrapped_apps = true;
            for a in &apps {
                if let Some(cmd) = &a.base_command {
                    adds.app_commands
                        .insert(a.index, wrap_app(&a.c.view.name, cmd));
                    added.app_commands.push(a.c.view.name.clone());
                    if !a.c.view.volume_mounts.iter().flatten().any(|m| {
                        m.mount_path == SHIM_MOUNT
                            && !prev
                                .app_mounts
                                .iter()
                                .any(|x| x.container == a.c.view.name && x.name == SHIM_MOUNT)
                    }) {
                        adds.app_mounts
                            .push((a.index, SHIM_MOUNT.to_string(), shim_mount()));
                        added.app_mounts.push(AppItem {
                            container: a.c.view.name.clone(),
                            name: SHIM_MOUNT.to_string(),
                        });
                    }
                }
            }
        }
        adds.init_blocks.push((p.spec.position.clone(), block));
        records.push(Injection {
            profile: p.name.clone(),
            hash: p.hash.clone(),
            mode: ch.mode,
            reason: ch.reason.clone(),
            added,
        });
    }

    if let (Some(ri), Some(image)) = (shim_needed_by, first_image) {
        adds.install = Some(install_container(&image));
        adds.volumes.push((SHIM_VOLUME.to_string(), shim_volume()));
        let r = &mut records[ri].added;
        r.init_containers.push(INSTALL_CONTAINER.to_string());
        r.volumes.push(SHIM_VOLUME.to_string());
    }

    // Collisions with what the pod already has.
    let mut new_names: Vec<&str> = adds
        .init_blocks
        .iter()
        .flat_map(|(_, b)| b.iter().map(|(n, _)| n.as_str()))
        .chain(adds.containers.iter().map(|(n, _)| n.as_str()))
        .collect();
    if adds.install.is_some() {
        new_names.push(INSTALL_CONTAINER);
    }
    for n in new_names {
        if base_names.contains(n) {
            return Err((
                SkipCode::PodConflict,
                format!(
                    "the pod already has a container named {n:?} that sidecar-kit did not inject; rename it, or remove it from the profile"
                ),
            ));
        }
    }
    for (n, _) in &adds.volumes {
        if base_volumes.contains(n.as_str()) {
            return Err((
                SkipCode::PodConflict,
                format!(
                    "the pod already has a volume named {n:?} that sidecar-kit did not inject; rename one of them"
                ),
            ));
        }
    }
    // Every mount of an added container must have its volume.
    let all_volumes: BTreeSet<&str> = base_volumes
        .iter()
        .copied()
        .chain(adds.volumes.iter().map(|(n, _)| n.as_str()))
        .collect();
    let added_values = adds
        .init_blocks
        .iter()
        .flat_map(|(_, b)| b.iter())
        .chain(adds.containers.iter());
    for (name, v) in added_values {
        for m in v
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let vol = m.get("name").and_then(Value::as_str).unwrap_or("");
            if !all_volumes.contains(vol) {
                return Err((
                    SkipCode::MissingVolume,
                    format!(
                        "container {name:?} mounts volume {vol:?}, which neither its profile nor the pod defines; add it to the profile's volumes"
                    ),
                ));
            }
        }
    }
    for (_, path, m) in &adds.app_mounts {
        let vol = m.get("name").and_then(Value::as_str).unwrap_or("");
        if !all_volumes.contains(vol) {
            return Err((
                SkipCode::MissingVolume,
                format!(
                    "appContainers mount {path:?} uses volume {vol:?}, which neither the profile nor the pod defines; add it to the profile's volumes"
                ),
            ));
        }
    }
    if let Some(first) = apps.first() {
        adds.default_container = Some(first.c.view.name.clone());
    }
    Ok((adds, records))
}

/// Places the init blocks among the base init containers (see `Position`).
/// Places the init blocks among the base init containers, moving the planned values.
fn place_init(
    base: &[(usize, String)],
    adds: &mut Additions,
    warnings: &mut Vec<String>,
) -> Vec<(String, Result<usize, Value>)> {
    #[derive(Clone, PartialEq)]
    enum Anchor {
        Existing,
        First,
        Last,
        Before(String),
        After(String),
    }
    let mut work: Vec<(String, Result<usize, Value>, Anchor)> = base
        .iter()
        .map(|(i, n)| (n.clone(), Ok(*i), Anchor::Existing))
        .collect();
    for (pos, block) in std::mem::take(&mut adds.init_blocks) {
        let find = |work: &Vec<(String, Result<usize, Value>, Anchor)>, n: &str| {
            work.iter().position(|(x, _, _)| x == n)
        };
        let (mut at, anchor) = match &pos {
            Position::First => (
                work.iter()
                    .rposition(|(_, _, a)| *a == Anchor::First)
                    .map_or(0, |i| i + 1),
                Anchor::First,
            ),
            Position::Last => (work.len(), Anchor::Last),
            Position::Before(n) => {
                match find(&work, n) {
                    Some(i) => (i, Anchor::Before(n.clone())),
                    None => {
                        warnings.push(format!("position before {n:?}: the pod has no init container {n:?}; placed first"));
                        (
                            work.iter()
                                .rposition(|(_, _, a)| *a == Anchor::First)
                                .map_or(0, |i| i + 1),
                            Anchor::First,
                        )
                    }
                }
            }
            Position::After(n) => match find(&work, n) {
                Some(i) => {
                    let a = Anchor::After(n.clone());
                    let mut j = i + 1;
                    while j < work.len() && work[j].2 == a {
                        j += 1;
                    }
                    (j, a)
                }
                None => {
                    warnings.push(format!(
                        "position after {n:?}: the pod has no init container {n:?}; placed last"
                    ));
                    (work.len(), Anchor::Last)
                }
            },
        };
        for (name, v) in block {
            work.insert(at, (name, Err(v), anchor.clone()));
            at += 1;
        }
    }
    if let Some(install) = adds.install.take() {
        let at = adds
            .native_first
            .as_ref()
            .and_then(|n| work.iter().position(|(x, _, _)| x == n))
            .unwrap_or(0);
        work.insert(
            at,
            (INSTALL_CONTAINER.to_string(), Err(install), Anchor::First),
        );
    }
    work.into_iter().map(|(n, v, _)| (n, v)).collect()
}

/// Whether a value is only empty objects and arrays.
fn hollow(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().all(hollow),
        Value::Array(a) => a.iter().all(hollow),
        _ => false,
    }
}

const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";

/// The affinity with sidecar-kit's expressions removed.
fn affinity_without_ours(cur: Option<&Value>, prev: &Added) -> Option<Value> {
    let mut a = cur?.clone();
    if !prev.affinity {
        return Some(a);
    }
    if let Some(Value::Array(terms)) =
        a.pointer_mut(&format!("/nodeAffinity/{REQUIRED}/nodeSelectorTerms"))
    {
        for term in terms.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Array(exprs)) = term.get_mut("matchExpressions") {
                exprs.retain(|e| {
                    ![Mode::Affinity, Mode::Universal]
                        .iter()
                        .any(|m| affinity_expr(*m).as_ref() == Some(e))
                });
                if exprs.is_empty() {
                    term.remove("matchExpressions");
                }
            }
        }
    }
    if let Some(created) = prev.affinity_created.as_deref() {
        let rel = created.strip_prefix("/affinity").unwrap_or(created);
        if rel.is_empty() {
            if hollow(&a) {
                return None;
            }
        } else if a.pointer(rel).is_some_and(hollow)
            && let Some((parent, key)) = rel.rsplit_once('/')
            && let Some(Value::Object(m)) = if parent.is_empty() {
                Some(&mut a)
            } else {
                a.pointer_mut(parent)
            }
        {
            m.remove(key);
        }
    }
    Some(a)
}

/// Adds expressions to every required term, creating the structure where missing.
/// Returns the new affinity and the pointer of what was created whole.
fn affinity_with(base: Option<Value>, exprs: &[Value]) -> (Value, Option<String>) {
    let term = || json!({"matchExpressions": exprs});
    let required = || json!({"nodeSelectorTerms": [term()]});
    let Some(mut a) = base else {
        return (
            json!({"nodeAffinity": {REQUIRED: required()}}),
            Some("/affinity".into()),
        );
    };
    let Some(obj) = a.as_object_mut() else {
        return (
            json!({"nodeAffinity": {REQUIRED: required()}}),
            Some("/affinity".into()),
        );
    };
    let na = obj.entry("nodeAffinity").or_insert(Value::Null);
    if !na.is_object() {
        *na = json!({REQUIRED: required()});
        return (a, Some("/affinity/nodeAffinity".into()));
    }
    let Some(na_obj) = na.as_object_mut() else {
        return (a, None);
    };
    let req = na_obj.entry(REQUIRED).or_insert(Value::Null);
    if !req.is_object() {
        *req = required();
        return (a, Some(format!("/affinity/nodeAffinity/{REQUIRED}")));
    }
    let Some(req_obj) = req.as_object_mut() else {
        return (a, None);
    };
    match req_obj.get_mut("nodeSelectorTerms") {
        Some(Value::Array(terms)) if !terms.is_empty() => {
            for t in terms.iter_mut().filter_map(Value::as_object_mut) {
                for e in exprs {
                    push_to(t, "matchExpressions", e.clone());
                }
            }
        }
        _ => {
            req_obj.insert("nodeSelectorTerms".into(), json!([term()]));
        }
    }
    (a, None)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    t: &Template<'_>,
    ns: Option<String>,
    prev_added: Added,
    prev: Option<Status>,
    mut records: Vec<Injection>,
    mut adds: Additions,
    mut warnings: Vec<String>,
    considered: Vec<Considered>,
    facts: Vec<String>,
    opts: &Options,
) -> (TemplateOutcome, Vec<PatchOp>) {
    let sp = &t.spec_pointer;
    let removing = records.is_empty();

    // Final lists.
    let base_init: Vec<(usize, String)> = t
        .spec
        .init_containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !prev_added.init_containers.contains(&c.view.name))
        .map(|(i, c)| (i, c.view.name.clone()))
        .collect();
    let init_target = place_init(&base_init, &mut adds, &mut warnings);
    let mut containers_target: Vec<(String, Result<usize, Value>)> = t
        .spec
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| !prev_added.containers.contains(&c.view.name))
        .map(|(i, c)| (c.view.name.clone(), Ok(i)))
        .collect();
    containers_target.extend(
        std::mem::take(&mut adds.containers)
            .into_iter()
            .map(|(n, v)| (n, Err(v))),
    );
    let mut volumes_target: Vec<(String, Result<usize, Value>)> = t
        .spec
        .volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| !prev_added.volumes.contains(&v.name))
        .map(|(i, v)| (v.name.clone(), Ok(i)))
        .collect();
    volumes_target.extend(
        std::mem::take(&mut adds.volumes)
            .into_iter()
            .map(|(n, v)| (n, Err(v))),
    );
    let base_aff = affinity_without_ours(t.spec.affinity.as_ref(), &prev_added);
    let (aff_target, aff_created) = if adds.affinity.is_empty() {
        (base_aff.clone(), None)
    } else {
        let (a, c) = affinity_with(base_aff.clone(), &adds.affinity);
        (Some(a), c)
    };
    if let Some(c) = aff_created
        && let Some(r) = records.iter_mut().find(|r| r.added.affinity)
    {
        r.added.affinity_created = Some(c);
    }
    let default_container_set =
        t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION).is_some() && !prev_added.default_container;
    let default_container = if default_container_set || removing {
        None
    } else {
        adds.default_container.clone()
    };
    if let (Some(_), Some(r)) = (&default_container, records.first_mut()) {
        r.added.default_container = true;
    }
    // What was present but empty before any injection stays so when emptied again.
    let app_edits = app_list_edits(t, &prev_added, &adds);
    let empty_before = |key: &str, present: bool, len: usize, base_len: usize| {
        present && base_len == 0 && (len == 0 || prev_added.was_empty.iter().any(|k| k == key))
    };
    let init_was_empty = empty_before(
        "initContainers",
        t.spec.init_containers_present,
        t.spec.init_containers.len(),
        base_init.len(),
    );
    let base_volumes = t
        .spec
        .volumes
        .iter()
        .filter(|v| !prev_added.volumes.contains(&v.name))
        .count();
    let volumes_was_empty = empty_before(
        "volumes",
        t.spec.volumes_present,
        t.spec.volumes.len(),
        base_volumes,
    );
    let ours_annotation = |k: &str| {
        k == STATUS_ANNOTATION
            || (k == DEFAULT_CONTAINER_ANNOTATION && prev_added.default_container)
    };
    let annotations = t.meta.annotations.as_ref();
    let annotations_was_empty = empty_before(
        "annotations",
        annotations.is_some(),
        annotations.map_or(0, BTreeMap::len),
        annotations.map_or(0, |a| a.keys().filter(|k| !ours_annotation(k)).count()),
    );
    // metadata: {} (a template's) that held nothing but what sidecar-kit annotated.
    let metadata_was_empty = t.meta_present
        && (annotations.is_none() || prev_added.was_empty.iter().any(|k| k == "metadata"))
        && meta_holds_only_annotations(t);
    if let Some(r) = records.first_mut() {
        let mut keys: Vec<String> = app_edits
            .iter()
            .filter(|e| e.was_empty(&prev_added))
            .map(|e| e.key.clone())
            .collect();
        for (key, yes) in [
            ("initContainers", init_was_empty),
            ("volumes", volumes_was_empty),
            ("annotations", annotations_was_empty),
            ("metadata", metadata_was_empty),
        ] {
            if yes {
                keys.push(key.to_string());
            }
        }
        r.added.was_empty = keys;
    }
    let status = (!removing).then_some(Status {
        v: 1,
        injections: records,
    });

    // Is the object already exactly this?
    let unchanged = match (&prev, &status) {
        (Some(p), Some(s)) if p == s => satisfied(
            t,
            &adds,
            [&init_target, &containers_target, &volumes_target],
            &aff_target,
            &default_container,
            &mut warnings,
        ),
        _ => false,
    };

    let resources = opts.resources.then(|| {
        let before = requests_of(
            t,
            &t.spec
                .init_containers
                .iter()
                .map(|c| {
                    (
                        c.value(),
                        c.view.restart_policy.as_deref() == Some("Always"),
                    )
                })
                .collect::<Vec<_>>(),
            &t.spec
                .containers
                .iter()
                .map(ContainerRef::value)
                .collect::<Vec<_>>(),
        );
        let resolve =
            |list: &[(String, Result<usize, Value>)], cur: &[ContainerRef<'_>]| -> Vec<Value> {
                list.iter()
                    .map(|(_, v)| match v {
                        Ok(i) => cur[*i].value(),
                        Err(v) => v.clone(),
                    })
                    .collect()
            };
        let init_after: Vec<(Value, bool)> = resolve(&init_target, &t.spec.init_containers)
            .into_iter()
            .map(|v| {
                let sidecar = v.get("restartPolicy").and_then(Value::as_str) == Some("Always");
                (v, sidecar)
            })
            .collect();
        let after = requests_of(
            t,
            &init_after,
            &resolve(&containers_target, &t.spec.containers),
        );
        ResourceChange { before, after }
    });

    let mut ops = Vec::new();
    if !unchanged {
        // 1. Inside app containers (current indices; nothing before this shifts them).
        for e in app_edits {
            let keep_empty = e.was_empty(&prev_added);
            edit_list(&mut ops, &e.pointer, e.present, e.len, e.target, keep_empty);
        }
        for (ci, c) in t.spec.containers.iter().enumerate() {
            if prev_added.containers.contains(&c.view.name) {
                continue;
            }
            let name = &c.view.name;
            let cp = format!("{sp}/containers/{ci}");
            let base_cmd = if prev_added.app_commands.contains(name) {
                c.view.command.as_deref().and_then(unwrap_app)
            } else {
                None
            };
            let want = adds.app_commands.get(&ci).cloned().or(base_cmd);
            if let Some(want) = want
                && c.view.command.as_ref() != Some(&want)
            {
                ops.push(PatchOp::Replace {
                    path: format!("{cp}/command"),
                    value: json!(want),
                });
            }
        }
        // 2. Lists.
        let as_edit = |l: Vec<(String, Result<usize, Value>)>| {
            l.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
        };
        edit_list(
            &mut ops,
            &format!("{sp}/containers"),
            t.spec.containers_present,
            t.spec.containers.len(),
            as_edit(containers_target),
            false,
        );
        edit_list(
            &mut ops,
            &format!("{sp}/initContainers"),
            t.spec.init_containers_present,
            t.spec.init_containers.len(),
            as_edit(init_target),
            init_was_empty,
        );
        edit_list(
            &mut ops,
            &format!("{sp}/volumes"),
            t.spec.volumes_present,
            t.spec.volumes.len(),
            as_edit(volumes_target),
            volumes_was_empty,
        );
        // 3. Affinity, replaced as one small object so that unknown fields in it survive.
        match (&t.spec.affinity, aff_target) {
            (Some(cur), Some(new)) if *cur != new => ops.push(PatchOp::Replace {
                path: format!("{sp}/affinity"),
                value: new,
            }),
            (Some(_), None) => ops.push(PatchOp::Remove {
                path: format!("{sp}/affinity"),
            }),
            (None, Some(new)) => ops.push(PatchOp::Add {
                path: format!("{sp}/affinity"),
                value: new,
            }),
            _ => {}
        }
        // 4. Annotations.
        let mut set: Vec<(&str, Option<String>)> = Vec::new();
        set.push((STATUS_ANNOTATION, status.as_ref().map(Status::to_json)));
        if prev_added.default_container || default_container.is_some() {
            set.push((DEFAULT_CONTAINER_ANNOTATION, default_container.clone()));
        }
        annotation_ops(&mut ops, t, &set, annotations_was_empty, metadata_was_empty);
    }

    let result = match status {
        Some(status) => TemplateResult::Injected {
            status,
            changed: !ops.is_empty(),
        },
        None => TemplateResult::Removed {
            previous: prev.unwrap_or(Status {
                v: 1,
                injections: vec![],
            }),
        },
    };
    (
        TemplateOutcome {
            spec_pointer: sp.clone(),
            kind: t.kind.clone(),
            name: t.object_name.clone(),
            namespace: ns,
            result,
            warnings,
            considered,
            facts,
            resources,
        },
        ops,
    )
}

/// A list inside an app container (`env`, `volumeMounts`) as the plan leaves it.
struct ListEdit {
    pointer: String,
    /// `containers/NAME/FIELD`, as [`Added::was_empty`] names it.
    key: String,
    present: bool,
    len: usize,
    /// Items that are not sidecar-kit's.
    base_len: usize,
    target: Vec<Result<usize, Value>>,
}

impl ListEdit {
    /// Was the list present but empty before any injection?
    fn was_empty(&self, prev: &Added) -> bool {
        self.present && self.base_len == 0 && (self.len == 0 || prev.was_empty.contains(&self.key))
    }
}

/// The `volumeMounts` and `env` of every app container: what is kept (what is not
/// sidecar-kit's), then what this plan adds to that container.
fn app_list_edits(t: &Template<'_>, prev: &Added, adds: &Additions) -> Vec<ListEdit> {
    let sp = &t.spec_pointer;
    let mut out = Vec::new();
    for (ci, c) in t.spec.containers.iter().enumerate() {
        if prev.containers.contains(&c.view.name) {
            continue;
        }
        let name = &c.view.name;
        let mount_keys: Vec<&str> = c
            .view
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        let env_keys: Vec<&str> = c
            .view
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        for (field, present, keys, ours, new) in [
            (
                "volumeMounts",
                c.view.volume_mounts.is_some(),
                &mount_keys,
                &prev.app_mounts,
                &adds.app_mounts,
            ),
            (
                "env",
                c.view.env.is_some(),
                &env_keys,
                &prev.app_env,
                &adds.app_env,
            ),
        ] {
            // Keep what is not ours, append what this plan adds to this container.
            let mut target: Vec<Result<usize, Value>> = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| !ours.iter().any(|x| &x.container == name && x.name == **k))
                .map(|(i, _)| Ok(i))
                .collect();
            let base_len = target.len();
            target.extend(
                new.iter()
                    .filter(|(i, _, _)| *i == ci)
                    .map(|(_, _, v)| Err(v.clone())),
            );
            out.push(ListEdit {
                pointer: format!("{sp}/containers/{ci}/{field}"),
                key: format!("containers/{name}/{field}"),
                present,
                len: keys.len(),
                base_len,
                target,
            });
        }
    }
    out
}

/// Whether a template's metadata, as written, has no field besides `annotations`. Read from
/// the view where it can tell (a name, namespace or labels), else from the raw text, which
/// is parsed only then: a pod's metadata (managedFields and all) never is.
fn meta_holds_only_annotations(t: &Template<'_>) -> bool {
    let m = &t.meta;
    if m.name.is_some() || m.generate_name.is_some() || m.namespace.is_some() || m.labels.is_some()
    {
        return false;
    }
    t.meta_raw
        .and_then(|raw| {
            serde_json::from_str::<BTreeMap<String, serde::de::IgnoredAny>>(raw.get()).ok()
        })
        .is_some_and(|m| m.keys().all(|k| k == "annotations"))
}

/// Sets or removes sidecar-kit's annotations. Where removing them leaves none, the map goes
/// too (and a template's metadata that held nothing else), unless it was there, empty,
/// before (`keep_empty`, `metadata_was_empty`).
fn annotation_ops(
    ops: &mut Vec<PatchOp>,
    t: &Template<'_>,
    set: &[(&str, Option<String>)],
    keep_empty: bool,
    metadata_was_empty: bool,
) {
    let mp = &t.meta_pointer;
    match &t.meta.annotations {
        Some(cur)
            if !keep_empty
                && !cur.is_empty()
                && cur
                    .keys()
                    .all(|k| set.iter().any(|(s, v)| s == k && v.is_none())) =>
        {
            if !metadata_was_empty && meta_holds_only_annotations(t) {
                ops.push(PatchOp::Remove { path: mp.clone() });
            } else {
                ops.push(PatchOp::Remove {
                    path: format!("{mp}/annotations"),
                });
            }
        }
        Some(cur) => {
            for (k, v) in set {
                let path = format!("{mp}/annotations/{}", escape_pointer(k));
                match v {
                    Some(v) if cur.get(*k) != Some(v) => ops.push(PatchOp::Add {
                        path,
                        value: json!(v),
                    }),
                    None if cur.contains_key(*k) => ops.push(PatchOp::Remove { path }),
                    _ => {}
                }
            }
        }
        None => {
            let map: Map<String, Value> = set
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), json!(v))))
                .collect();
            if map.is_empty() {
                return;
            }
            if t.meta_present {
                ops.push(PatchOp::Add {
                    path: format!("{mp}/annotations"),
                    value: Value::Object(map),
                });
            } else {
                ops.push(PatchOp::Add {
                    path: mp.clone(),
                    value: json!({"annotations": map}),
                });
            }
        }
    }
}

/// Whether the object already carries every planned addition (position aside: another
/// webhook may have moved them, and fighting over order helps nobody).
fn satisfied(
    t: &Template<'_>,
    adds: &Additions,
    [init_target, containers_target, volumes_target]: [&[(String, Result<usize, Value>)]; 3],
    aff: &Option<Value>,
    default_container: &Option<String>,
    warnings: &mut Vec<String>,
) -> bool {
    let mut ok = true;
    let find = |list: &[ContainerRef<'_>], n: &str| {
        list.iter()
            .find(|c| c.view.name == n)
            .map(ContainerRef::value)
    };
    for (name, v) in init_target
        .iter()
        .filter_map(|(n, v)| v.as_ref().err().map(|v| (n, v)))
    {
        match find(&t.spec.init_containers, name) {
            Some(have) if covers(&have, v) => {}
            Some(have) => {
                ok = false;
                if v.get("restartPolicy").is_some() && have.get("restartPolicy").is_none() {
                    warnings.push(format!("init container {name}: restartPolicy: Always was removed after sidecar-kit injected it (a later mutating webhook that re-serialises pods?); put back"));
                } else {
                    warnings.push(format!(
                        "init container {name} was changed after injection; put back"
                    ));
                }
            }
            None => {
                ok = false;
                warnings.push(format!(
                    "init container {name} was removed after injection; put back"
                ));
            }
        }
    }
    let planned = |l: &'_ [(String, Result<usize, Value>)]| {
        l.iter()
            .filter_map(|(n, v)| v.as_ref().err().map(|v| (n.clone(), v.clone())))
            .collect::<Vec<_>>()
    };
    for (name, v) in &planned(containers_target) {
        if !find(&t.spec.containers, name).is_some_and(|have| covers(&have, v)) {
            ok = false;
            warnings.push(format!(
                "container {name} was changed or removed after injection; put back"
            ));
        }
    }
    for (name, v) in &planned(volumes_target) {
        let have = t
            .spec
            .volumes
            .iter()
            .find(|x| &x.name == name)
            .and_then(|x| serde_json::from_str::<Value>(x.raw.get()).ok());
        if !have.is_some_and(|h| covers(&h, v)) {
            ok = false;
        }
    }
    for (ci, path, v) in &adds.app_mounts {
        let c = &t.spec.containers[*ci];
        let present = c
            .value()
            .get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|ms| {
                ms.iter().any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(path) && covers(m, v)
                })
            });
        ok &= present;
    }
    for (ci, name, v) in &adds.app_env {
        let c = &t.spec.containers[*ci];
        let present = c
            .value()
            .get("env")
            .and_then(Value::as_array)
            .is_some_and(|es| {
                es.iter()
                    .any(|e| e.get("name").and_then(Value::as_str) == Some(name) && covers(e, v))
            });
        ok &= present;
    }
    for (ci, cmd) in &adds.app_commands {
        ok &= t.spec.containers[*ci].view.command.as_ref() == Some(cmd);
    }
    if !adds.affinity.is_empty() {
        let terms = aff
            .as_ref()
            .and_then(|a| a.pointer(&format!("/nodeAffinity/{REQUIRED}/nodeSelectorTerms")))
            .and_then(Value::as_array);
        let cur_terms = t
            .spec
            .affinity
            .as_ref()
            .and_then(|a| a.pointer(&format!("/nodeAffinity/{REQUIRED}/nodeSelectorTerms")))
            .and_then(Value::as_array);
        let has_all = |terms: Option<&Vec<Value>>| {
            terms.is_some_and(|ts| {
                !ts.is_empty()
                    && ts.iter().all(|t| {
                        adds.affinity.iter().all(|e| {
                            t.get("matchExpressions")
                                .and_then(Value::as_array)
                                .is_some_and(|es| es.iter().any(|x| covers(x, e)))
                        })
                    })
            })
        };
        if !has_all(cur_terms) || terms.map(Vec::len) != cur_terms.map(Vec::len) {
            ok = false;
            warnings.push(
                "the node affinity sidecar-kit added was changed after injection; put back".into(),
            );
        }
    }
    if let Some(d) = default_container {
        ok &= t.meta.annotation(DEFAULT_CONTAINER_ANNOTATION) == Some(d.as_str());
    }
    ok
}

fn requests_of(t: &Template<'_>, init: &[(Value, bool)], regular: &[Value]) -> Requests {
    let init: Vec<InitEntry> = init
        .iter()
        .map(|(v, sidecar)| InitEntry {
            requests: Requests::of_container(v),
            sidecar: *sidecar,
        })
        .collect();
    let regular: Vec<Requests> = regular.iter().map(Requests::of_container).collect();
    effective(&init, &regular, &t.spec.overhead)
}
