//! The mode decision: the mode asked for (by `--mode`, the pod's annotation or the profile),
//! passed through small rules to the mode a profile gets, with the reason. `auto` is decided
//! from the cluster facts ([`auto`]); then what the API server and the pod allow may change
//! it ([`limits`]).

mod auto;
mod limits;

use super::notes::Notes;
use super::outcome::{ModeAdjustment, ModeReason, ModeSource, Skip, SkipCode};
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

/// Where the requested mode comes from, named in the reason where it is requested.
#[derive(Clone, Copy)]
pub(super) struct Source<'p> {
    pub by: ModeSource,
    /// The profile's name (of its `spec.mode`).
    pub profile: &'p str,
}

/// Decides the mode of one profile for one template: `requested` (by `source`), with the
/// profile's `fallback` for `auto`.
pub(super) fn decide(
    requested: Mode,
    source: Source<'_>,
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
        let reason = match source.by {
            ModeSource::Flag => crate::text::cat!(requested.as_str(), " requested by --mode"),
            ModeSource::Annotation => crate::text::cat!(
                requested.as_str(),
                " requested by annotation ",
                MODE_ANNOTATION
            ),
            ModeSource::Profile => crate::text::cat!(
                requested.as_str(),
                " requested by profile ",
                source.profile,
                " spec.mode"
            ),
        };
        Decision::new(requested, ModeReason::Requested, reason)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::StaticFacts;

    #[test]
    fn a_requested_mode_names_where_it_was_asked_for() {
        let kept = FieldKept::Yes("kept".into());
        let facts = StaticFacts::none();
        let sched = Scheduling::default();
        let g = Ground {
            kept: &kept,
            facts: &facts,
            sched: &sched,
            windows: false,
        };
        let table = [
            (ModeSource::Flag, "native requested by --mode"),
            (
                ModeSource::Annotation,
                "native requested by annotation sidecar-kit.io/mode",
            ),
            (
                ModeSource::Profile,
                "native requested by profile log-shipper spec.mode",
            ),
        ];
        for (by, reason) in table {
            let source = Source {
                by,
                profile: "log-shipper",
            };
            let d = decide(
                Mode::Native,
                source,
                Mode::Legacy,
                &g,
                &mut Notes::default(),
            );
            assert_eq!(d.mode, Mode::Native);
            assert_eq!(d.code, ModeReason::Requested);
            assert_eq!(d.reason, reason, "{by:?}");
        }
    }
}
