//! What a plan reports: per template, injected, removed or skipped (with the reason), and the
//! warnings and explanations gathered on the way; per object, the templates and the patch.

use crate::facts::{Availability, CandidateSummary};
use crate::patch::PatchOp;
use crate::profile::Mode;
use crate::resources::Requests;
use crate::status::Status;
use crate::version::{FieldKept, GateState, KubeVersion};
use std::fmt;

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

impl Skip {
    #[cold]
    pub(super) fn new(code: SkipCode, message: String) -> Skip {
        Skip { code, message }
    }
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

/// Why a profile was taken for a template or not, for `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectReason {
    /// The pod's `sidecar-kit.io/profiles` annotation names it.
    NamedByAnnotation,
    SelectorMatches,
    /// The selector matches; the namespace's labels are unknown, so its namespaceSelector
    /// was not evaluated (taken, with a warning).
    NamespaceSelectorNotEvaluated,
    NamespaceSelectorMismatch,
    SelectorMismatch,
}

impl SelectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SelectReason::NamedByAnnotation => "NamedByAnnotation",
            SelectReason::SelectorMatches => "SelectorMatches",
            SelectReason::NamespaceSelectorNotEvaluated => "NamespaceSelectorNotEvaluated",
            SelectReason::NamespaceSelectorMismatch => "NamespaceSelectorMismatch",
            SelectReason::SelectorMismatch => "SelectorMismatch",
        }
    }
}

/// A profile considered for a template, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Considered {
    pub profile: String,
    pub matched: bool,
    pub code: SelectReason,
    pub why: String,
}

/// Who asked for a profile's mode (precedence: flag, annotation, profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeSource {
    /// `--mode` of the CLI.
    Flag,
    /// The pod's `sidecar-kit.io/mode` annotation.
    Annotation,
    /// The profile's `spec.mode`.
    Profile,
}

impl ModeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeSource::Flag => "flag",
            ModeSource::Annotation => "annotation",
            ModeSource::Profile => "profile",
        }
    }
}

/// The rule that chose a profile's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeReason {
    /// The mode asked for is not `auto`: taken as asked.
    Requested,
    AutoApiServerDropsRestartPolicy,
    AutoNoFacts,
    AutoFactsUnavailable,
    AutoNoCandidateNodes,
    AutoAllCandidatesCapable,
    AutoNoCandidateCapable,
    /// Mixed (or unavailable) candidates: the profile's fallback.
    AutoFallback,
    /// The fallback (affinity, universal) needs the labeler's fresh Lease: legacy.
    AutoFallbackNeedsLabeler,
}

impl ModeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeReason::Requested => "Requested",
            ModeReason::AutoApiServerDropsRestartPolicy => "AutoApiServerDropsRestartPolicy",
            ModeReason::AutoNoFacts => "AutoNoFacts",
            ModeReason::AutoFactsUnavailable => "AutoFactsUnavailable",
            ModeReason::AutoNoCandidateNodes => "AutoNoCandidateNodes",
            ModeReason::AutoAllCandidatesCapable => "AutoAllCandidatesCapable",
            ModeReason::AutoNoCandidateCapable => "AutoNoCandidateCapable",
            ModeReason::AutoFallback => "AutoFallback",
            ModeReason::AutoFallbackNeedsLabeler => "AutoFallbackNeedsLabeler",
        }
    }
}

/// A rule that changed a mode after it was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeAdjustment {
    /// Native or affinity where the API server drops `restartPolicy`: legacy.
    ApiServerDropsRestartPolicy,
    /// Universal on a Windows pod, which cannot run sidecar-shim: legacy.
    WindowsPod,
    /// Universal where the API server drops `restartPolicy`: no startup probe.
    NoStartupProbe,
    /// Universal where it is unknown whether the API server keeps `restartPolicy`: the
    /// startup probe is added on the assumption that it does.
    StartupProbeAssumed,
}

impl ModeAdjustment {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeAdjustment::ApiServerDropsRestartPolicy => "ApiServerDropsRestartPolicy",
            ModeAdjustment::WindowsPod => "WindowsPod",
            ModeAdjustment::NoStartupProbe => "NoStartupProbe",
            ModeAdjustment::StartupProbeAssumed => "StartupProbeAssumed",
        }
    }
}

/// How one profile's mode was decided for one template, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeDecision {
    pub profile: String,
    /// The mode asked for, and by whom.
    pub requested: Mode,
    pub source: ModeSource,
    /// The profile's fallback (what `auto` takes on mixed nodes).
    pub fallback: Mode,
    /// The mode chosen.
    pub mode: Mode,
    pub code: ModeReason,
    pub adjustments: Vec<ModeAdjustment>,
    /// Universal mode: whether the native copy gets its startup probe.
    pub startup_probe: bool,
    /// The reason in words (as recorded in the status annotation).
    pub reason: String,
}

/// What a template's mode decisions were made from, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grounds {
    pub api_server_version: Option<KubeVersion>,
    pub api_server_gate: GateState,
    /// Whether the API server keeps `restartPolicy`, and why.
    pub kept: FieldKept,
    pub availability: Availability,
    /// The nodes the pod can land on, where the facts are known.
    pub candidates: Option<CandidateSummary>,
    pub labeler_lease_fresh: Option<bool>,
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
    /// The same as data, for `explain`.
    pub grounds: Option<Grounds>,
    /// How each selected profile's mode was decided, for `explain`.
    pub decisions: Vec<ModeDecision>,
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
