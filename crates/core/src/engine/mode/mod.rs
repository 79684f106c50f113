//! The mode decision: the mode asked for (by `--mode`, the pod's annotation or the profile),
//! passed through small rules to the mode a profile gets, with the reason. `auto` is decided
//! from the cluster facts ([`auto`]); then what the API server and the pod allow may change
//! it ([`limits`]).

mod auto;
mod limits;

use super::notes::Notes;
use super::outcome::{ModeAdjustment, ModeReason, Skip, SkipCode};
use crate::facts::{Availability, Facts, Scheduling};
use crate::pod::Template;
use crate::profile::Mode;
use crate::status::MODE_ANNOTATION;
use crate::version::FieldKept;

/// A mode decision: the mode, why, and whether universal mode adds its startup probe
/// (the API server keeps `restartPolicy`, or is assumed to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision {
    pub mode: Mode,
    /// The rule that chose the mode, and the rules that changed it since.
    pub code: ModeReason,
    pub adjustments: Vec<ModeAdjustment>,
    pub reason: String,
    pub probe: bool,
}

impl Decision {
    fn new(mode: Mode, code: ModeReason, reason: String) -> Decision {
        Decision {
            mode,
            code,
            adjustments: Vec::new(),
            reason,
            probe: false,
        }
    }
}

/// What the rules read: whether the API server keeps `restartPolicy`, the cluster facts,
/// where the pod can land, and whether it is a Windows pod.
pub(super) struct Ground<'g> {
    pub kept: &'g FieldKept,
    pub facts: &'g dyn Facts,
    pub sched: &'g Scheduling,
    pub windows: bool,
}

/// Decides the mode of one profile for one template: `requested` (by `source`), with the
/// profile's `fallback` for `auto`.
pub(super) fn decide(
    requested: Mode,
    source: &str,
    fallback: Mode,
    g: &Ground<'_>,
    notes: &mut Notes,
) -> Decision {
    let d = if requested == Mode::Auto {
        auto::decide(fallback, g, notes)
    } else {
        if requested == Mode::Native && g.facts.availability() == Availability::Known {
            limits::native_on_incapable(&g.facts.candidates(g.sched), notes);
        }
        Decision::new(
            requested,
            ModeReason::Requested,
            crate::text::cat!(requested.as_str(), " requested by ", source),
        )
    };
    let d = limits::api_server(d, g.kept, notes);
    let d = limits::windows(d, g.windows, notes);
    limits::startup_probe(d, g.kept)
}

/// The mode the pod's annotation asks for, if any.
pub(super) fn annotated(t: &Template<'_>) -> Result<Option<Mode>, Skip> {
    let Some(s) = t.meta.annotation(MODE_ANNOTATION) else {
        return Ok(None);
    };
    match Mode::parse(s.trim()) {
        Some(m) => Ok(Some(m)),
        None => Err(Skip::new(
            SkipCode::BadAnnotation,
            format!(
                "annotation {MODE_ANNOTATION}={s:?} is not a mode; use native, legacy, affinity, universal or auto"
            ),
        )),
    }
}

/// What the decisions are based on, for `explain`: the API server, the candidate nodes,
/// the labeler's Lease.
pub(super) fn grounds(kept: &FieldKept, facts: &dyn Facts, sched: &Scheduling) -> [String; 3] {
    [
        format!(
            "API server: {} (restartPolicy {})",
            kept.reason(),
            match kept {
                FieldKept::Yes(_) => "kept",
                FieldKept::No(_) => "dropped",
                FieldKept::Unknown(_) => "unknown",
            }
        ),
        match facts.availability() {
            Availability::Known => {
                format!("candidate nodes: {}", facts.candidates(sched).describe())
            }
            Availability::Absent => crate::facts::NO_FACTS.to_string(),
            Availability::Unsynced(w) => format!("cluster facts unavailable: {w}"),
        },
        format!(
            "labeler lease: {}",
            match facts.labeler_lease_fresh() {
                Some(true) => "fresh",
                Some(false) => "stale",
                None => "unknown",
            }
        ),
    ]
}
