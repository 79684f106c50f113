//! The injection engine: raw object JSON → plan (what is added, where, in which mode, and
//! why) → RFC 6902 JSON Patch. One code path for the webhook and the offline CLI.
//!
//! One template is planned in steps (`plan`): the pod's own checks and the earlier injection
//! (`verify`), opt-outs (`optout`), profile selection (`select`), the mode of each profile
//! (`mode`), what each mode adds (`wiring`), then where it goes (`placement`, `affinity`),
//! whether the pod already holds it (`drift`) and the patch (`finish`, `render`). Every step
//! returns its result or a skip with its reason, and writes its warnings and explanations to
//! one `Notes`.

mod affinity;
mod applists;
mod drift;
mod empty;
mod finish;
mod json;
mod mode;
mod notes;
mod optout;
mod outcome;
mod placement;
mod plan;
mod render;
mod requests;
mod select;
mod verify;
mod wiring;

use crate::facts::Facts;
use crate::pod::{PodRead, Template, ViewError, templates};
use crate::profile::{Mode, ProfileSet};

pub use drift::covers;
pub use outcome::{
    Considered, Grounds, ModeAdjustment, ModeDecision, ModeReason, ModeSource, Outcome,
    ResourceChange, SelectReason, Skip, SkipCode, TemplateOutcome, TemplateResult,
};
/// The node-affinity expression a mode adds to every required term, if any.
pub fn node_affinity_expression(mode: Mode) -> Option<serde_json::Value> {
    affinity::expr(mode)
}

pub use wiring::shim::{INSTALL_USER, SHIM_BIN, SHIM_MOUNT, TOMBSTONES, state_dir};

/// Namespaces the webhook never injects into unless told to.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

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

/// Plans the injection of `profiles` into every pod template of `object` (raw JSON).
pub fn inject(
    object: &str,
    profiles: &ProfileSet,
    facts: &dyn Facts,
    opts: &Options,
) -> Result<Outcome, ViewError> {
    Ok(plan_all(&templates(object)?, profiles, facts, opts))
}

/// [`inject`], for a caller that already read the object: a Pod the webhook read in the
/// review's own pass ([`crate::pod::walk_object`]), so that the text is not read twice. The
/// same outcome as [`inject`] of the text, or the same error; `None` reads `object`.
pub fn inject_read(
    object: &str,
    read: Option<PodRead<'_>>,
    profiles: &ProfileSet,
    facts: &dyn Facts,
    opts: &Options,
) -> Result<Outcome, ViewError> {
    if let Some(read) = read
        && let Some(t) = read.template()?
    {
        return Ok(plan_all(std::slice::from_ref(&t), profiles, facts, opts));
    }
    inject(object, profiles, facts, opts)
}

fn plan_all(
    templates: &[Template<'_>],
    profiles: &ProfileSet,
    facts: &dyn Facts,
    opts: &Options,
) -> Outcome {
    let mut out = Outcome::default();
    for t in templates {
        let (o, ops) = plan::plan_template(t, profiles, facts, opts, false);
        out.templates.push(o);
        out.patch.extend(ops);
    }
    out
}

/// Plans the removal of everything sidecar-kit injected (per the status annotation), where
/// it is still exactly what the profiles that made it add (`profiles` must hold them: the
/// annotation alone is never enough to delete anything).
pub fn uninject(object: &str, profiles: &ProfileSet) -> Result<Outcome, ViewError> {
    let mut out = Outcome::default();
    let facts = crate::facts::StaticFacts::none();
    for t in templates(object)? {
        let (o, ops) = plan::plan_template(&t, profiles, &facts, &Options::default(), true);
        out.templates.push(o);
        out.patch.extend(ops);
    }
    Ok(out)
}
