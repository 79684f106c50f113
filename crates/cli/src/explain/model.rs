//! The `Explanation` document of `explain -o json|yaml` (schema in docs/output-schema.md):
//! what each decision was made from, what was decided, and why, as data. Field names are
//! camelCase; optional values are `null`, never left out, so that every field has one type.

use serde::Serialize;
use serde_json::Value;
use sidecar_kit_core::engine::{
    Grounds, ModeDecision, TemplateOutcome, TemplateResult, node_affinity_expression,
};
use sidecar_kit_core::facts::{Availability, CandidateSummary};
use sidecar_kit_core::profile::{Mode, ProfileSet};
use sidecar_kit_core::resources::{Requests, format_bytes, format_cpu};
use sidecar_kit_core::status::{Added, DEFAULT_CONTAINER_ANNOTATION, Injection, STATUS_ANNOTATION};
use sidecar_kit_core::version::FieldKept;
use sidecar_kit_manifests::Document;

/// `kind` of the document.
pub const KIND: &str = "Explanation";

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub request: Request,
    pub counts: Counts,
    pub templates: Vec<TemplateReport>,
}

/// What was asked: the inputs and the options that steer every decision.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub files: Vec<String>,
    pub mode_override: Option<&'static str>,
    pub facts_file: Option<String>,
    pub namespace: Option<String>,
    pub profiles: Vec<ProfileInfo>,
}

/// A profile loaded, as the decisions read it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ProfileInfo {
    pub name: String,
    pub hash: String,
    pub mode: &'static str,
    pub fallback: &'static str,
    pub priority: i64,
}

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub documents: usize,
    pub templates: usize,
    pub injected: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
}

/// A reason: a stable code, and the same in words.
#[derive(Serialize, Debug, Clone)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct TemplateReport {
    /// The document, as errors and warnings name it.
    pub source: String,
    /// The document and the template's place in it.
    pub place: String,
    pub file: String,
    pub document: usize,
    pub spec_pointer: String,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// injected, unchanged (already injected exactly so), removed, skipped.
    pub result: &'static str,
    pub skip: Option<Reason>,
    pub profiles: Vec<ProfileMatch>,
    pub facts: Option<Facts>,
    pub decisions: Vec<Decision>,
    pub injections: Vec<InjectionReport>,
    /// Annotations the injection writes on the template.
    pub annotations: Vec<&'static str>,
    pub warnings: Vec<Warning>,
    pub resources: Option<ResourcesReport>,
}

#[derive(Serialize, Debug)]
pub struct ProfileMatch {
    pub name: String,
    pub matched: bool,
    pub reason: Reason,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub api_server: ApiServer,
    pub cluster_facts: ClusterFactsState,
    pub candidate_nodes: Option<CandidateNodes>,
    /// fresh, stale or unknown.
    pub labeler_lease: &'static str,
    /// The same facts in words.
    pub messages: Vec<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ApiServer {
    pub version: Option<String>,
    pub sidecar_containers: String,
    /// kept, dropped or unknown.
    pub restart_policy: &'static str,
    pub message: String,
}

#[derive(Serialize, Debug)]
pub struct ClusterFactsState {
    /// known, absent or unsynced.
    pub state: &'static str,
    pub message: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CandidateNodes {
    pub total: usize,
    pub capable: usize,
    pub unaware: usize,
    pub rejecting: usize,
    pub unknown: usize,
    pub capable_1_28: usize,
    pub windows: usize,
    pub samples: Vec<NodeSample>,
    pub message: String,
}

#[derive(Serialize, Debug)]
pub struct NodeSample {
    pub name: String,
    pub class: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub profile: String,
    pub requested_mode: &'static str,
    /// flag, annotation or profile.
    pub requested_by: &'static str,
    pub fallback: &'static str,
    pub mode: &'static str,
    pub startup_probe: bool,
    pub reason: Reason,
    pub adjustments: Vec<&'static str>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct InjectionReport {
    pub profile: String,
    pub mode: &'static str,
    pub hash: String,
    pub reason: Reason,
    pub added: AddedReport,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AddedReport {
    pub init_containers: Vec<String>,
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub app_mounts: Vec<AppMount>,
    pub app_env: Vec<AppEnv>,
    pub app_commands: Vec<String>,
    pub node_affinity: Option<Value>,
    pub affinity_created: bool,
    pub default_container: bool,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct AppMount {
    pub container: String,
    /// The volume's name; `null` only where the result holds no mount at that path.
    pub name: Option<String>,
    pub mount_path: String,
}

#[derive(Serialize, Debug)]
pub struct AppEnv {
    pub container: String,
    pub name: String,
}

#[derive(Serialize, Debug)]
pub struct Warning {
    pub message: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesReport {
    pub before: Quantity,
    pub after: Quantity,
    pub counts_both_copies: bool,
    pub note: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    pub cpu: String,
    pub memory: String,
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
}

// === impl Request ===

pub fn profile_infos(set: &ProfileSet) -> Vec<ProfileInfo> {
    set.iter()
        .map(|p| ProfileInfo {
            name: p.name.clone(),
            hash: p.hash.clone(),
            mode: p.spec.mode.as_str(),
            fallback: p.spec.fallback.mode().as_str(),
            priority: i64::from(p.spec.priority),
        })
        .collect()
}

// === impl Counts ===

impl Counts {
    pub fn count(&mut self, result: &str) {
        self.templates += 1;
        match result {
            "injected" => self.injected += 1,
            "unchanged" => self.unchanged += 1,
            "removed" => self.removed += 1,
            _ => self.skipped += 1,
        }
    }
}

// === impl TemplateReport ===

/// A template's report. `result_doc` is the document as the plan leaves it (patch applied),
/// where the names of the app mounts are read.
pub fn template(
    doc: &Document,
    place: String,
    t: &TemplateOutcome,
    result_doc: &Value,
) -> TemplateReport {
    let (result, skip, injections) = match &t.result {
        TemplateResult::Injected { status, changed } => (
            if *changed { "injected" } else { "unchanged" },
            None,
            status.injections.as_slice(),
        ),
        TemplateResult::Removed { .. } => ("removed", None, [].as_slice()),
        TemplateResult::Skipped(s) => (
            "skipped",
            Some(Reason {
                code: s.code.as_str().into(),
                message: s.message.clone(),
            }),
            [].as_slice(),
        ),
    };
    let pod = result_doc.pointer(&t.spec_pointer);
    let universal = injections.iter().any(|i| i.mode == Mode::Universal);
    TemplateReport {
        source: doc.describe(),
        place,
        file: doc.source.clone(),
        document: doc.index,
        spec_pointer: t.spec_pointer.clone(),
        kind: t.kind.clone(),
        name: t.name.clone(),
        namespace: t.namespace.clone(),
        result,
        skip,
        profiles: t.considered.iter().map(|c| ProfileMatch {
            name: c.profile.clone(),
            matched: c.matched,
            reason: Reason { code: c.code.as_str().into(), message: c.why.clone() },
        }).collect(),
        facts: t.grounds.as_ref().map(|g| facts(g, &t.facts)),
        decisions: t.decisions.iter().map(decision).collect(),
        injections: injections.iter().map(|i| injection(i, &t.decisions, pod)).collect(),
        annotations: annotations(injections),
        warnings: t.warnings.iter().map(|w| Warning { message: w.clone() }).collect(),
        resources: t.resources.as_ref().map(|r| ResourcesReport {
            before: quantity(&r.before),
            after: quantity(&r.after),
            counts_both_copies: universal,
            note: if universal {
                "universal mode counts both copies of each sidecar: requests are fixed at admission, before anyone knows which copy will sleep".into()
            } else {
                "effective requests: max(init phase, regular containers + all native sidecars) + overhead".into()
            },
        }),
    }
}

fn facts(g: &Grounds, messages: &[String]) -> Facts {
    let (restart_policy, kept_message) = match &g.kept {
        FieldKept::Yes(m) => ("kept", m),
        FieldKept::No(m) => ("dropped", m),
        FieldKept::Unknown(m) => ("unknown", m),
    };
    let cluster_facts = match &g.availability {
        Availability::Known => ClusterFactsState {
            state: "known",
            message: "cluster facts known".into(),
        },
        Availability::Absent => ClusterFactsState {
            state: "absent",
            message: sidecar_kit_core::facts::NO_FACTS.into(),
        },
        Availability::Unsynced(why) => ClusterFactsState {
            state: "unsynced",
            message: why.clone(),
        },
    };
    Facts {
        api_server: ApiServer {
            version: g.api_server_version.as_ref().map(ToString::to_string),
            sidecar_containers: g.api_server_gate.to_string(),
            restart_policy,
            message: kept_message.clone(),
        },
        cluster_facts,
        candidate_nodes: g.candidates.as_ref().map(candidates),
        labeler_lease: match g.labeler_lease_fresh {
            Some(true) => "fresh",
            Some(false) => "stale",
            None => "unknown",
        },
        messages: messages.to_vec(),
    }
}

fn candidates(c: &CandidateSummary) -> CandidateNodes {
    CandidateNodes {
        total: c.total(),
        capable: c.capable,
        unaware: c.unaware,
        rejecting: c.rejecting,
        unknown: c.unknown,
        capable_1_28: c.capable_1_28,
        windows: c.windows,
        samples: c
            .samples
            .iter()
            .map(|(name, class)| NodeSample {
                name: name.clone(),
                class: class.to_string(),
            })
            .collect(),
        message: c.describe(),
    }
}

fn decision(d: &ModeDecision) -> Decision {
    Decision {
        profile: d.profile.clone(),
        requested_mode: d.requested.as_str(),
        requested_by: d.source.as_str(),
        fallback: d.fallback.as_str(),
        mode: d.mode.as_str(),
        startup_probe: d.startup_probe,
        reason: Reason {
            code: d.code.as_str().into(),
            message: d.reason.clone(),
        },
        adjustments: d.adjustments.iter().map(|a| a.as_str()).collect(),
    }
}

/// An injection; its reason's code is its decision's.
fn injection(i: &Injection, decisions: &[ModeDecision], pod: Option<&Value>) -> InjectionReport {
    let code = decisions
        .iter()
        .find(|d| d.profile == i.profile)
        .map_or("Recorded", |d| d.code.as_str());
    InjectionReport {
        profile: i.profile.clone(),
        mode: i.mode.as_str(),
        hash: i.hash.clone(),
        reason: Reason {
            code: code.into(),
            message: i.reason.clone(),
        },
        added: added(&i.added, i.mode, pod),
    }
}

fn added(a: &Added, mode: Mode, pod: Option<&Value>) -> AddedReport {
    AddedReport {
        init_containers: a.init_containers.clone(),
        containers: a.containers.clone(),
        volumes: a.volumes.clone(),
        app_mounts: a
            .app_mounts
            .iter()
            .map(|m| AppMount {
                container: m.container.clone(),
                name: mount_name(pod, &m.container, &m.name),
                mount_path: m.name.clone(),
            })
            .collect(),
        app_env: a
            .app_env
            .iter()
            .map(|e| AppEnv {
                container: e.container.clone(),
                name: e.name.clone(),
            })
            .collect(),
        app_commands: a.app_commands.clone(),
        node_affinity: if a.affinity {
            node_affinity_expression(mode)
        } else {
            None
        },
        affinity_created: a.affinity_created.is_some(),
        default_container: a.default_container,
    }
}

/// The volume name of the mount at `path` in container `container` of the pod spec.
fn mount_name(pod: Option<&Value>, container: &str, path: &str) -> Option<String> {
    let pod = pod?;
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod.get(list).and_then(Value::as_array))
        .flatten()
        .filter(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .filter_map(|c| c.get("volumeMounts").and_then(Value::as_array))
        .flatten()
        .find(|m| m.get("mountPath").and_then(Value::as_str) == Some(path))
        .and_then(|m| m.get("name").and_then(Value::as_str))
        .map(str::to_string)
}

/// The annotations written: the status, and the default container where it was added.
fn annotations(injections: &[Injection]) -> Vec<&'static str> {
    if injections.is_empty() {
        return Vec::new();
    }
    let mut out = vec![STATUS_ANNOTATION];
    if injections.iter().any(|i| i.added.default_container) {
        out.push(DEFAULT_CONTAINER_ANNOTATION);
    }
    out
}

fn quantity(r: &Requests) -> Quantity {
    Quantity {
        cpu: format_cpu(r.cpu),
        memory: format_bytes(r.memory),
        cpu_millicores: whole(r.cpu * 1000.0),
        memory_bytes: whole(r.memory),
    }
}

/// A non-negative quantity, rounded to a whole number.
fn whole(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        // Requests are far below 2^53: the conversion is exact after rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = x.round() as u64;
        n
    } else {
        0
    }
}
