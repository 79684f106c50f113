//! What a plan reports: per template, injected, removed or skipped (with the reason), and the
//! warnings and explanations gathered on the way; per object, the templates and the patch.

use crate::patch::PatchOp;
use crate::resources::Requests;
use crate::status::Status;
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
