//! What `auto` picks: native where every candidate node runs native sidecars, legacy where
//! none does or the API server drops `restartPolicy`, and the profile's fallback where the
//! nodes are mixed or unknown, or no facts are given (affinity and universal only while
//! label-nodes keeps the node labels fresh, which without facts is not known).

use super::{Decision, Ground};
use crate::engine::notes::Notes;
use crate::engine::outcome::ModeReason;
use crate::facts::{Availability, CandidateSummary};
use crate::profile::Mode;
use crate::text::cat;

pub(super) fn decide(fallback: Mode, g: &Ground<'_>, notes: &mut Notes) -> Decision {
    if g.kept.is_no() {
        return Decision::new(
            Mode::Legacy,
            ModeReason::AutoApiServerDropsRestartPolicy,
            format!("auto: {}: legacy", g.kept.reason()),
        );
    }
    match g.facts.availability() {
        // Without facts the labeler's Lease is not known to be fresh either: a fallback that
        // steers by its node labels could land on a node that refuses the pod.
        Availability::Absent => lease_gate(
            fallback,
            ModeReason::AutoNoFacts,
            "auto: no cluster facts (pass --facts FILE from `sidecar-kit doctor cluster -o facts`)"
                .to_string(),
            None,
        ),
        Availability::Unsynced(why) => lease_gate(
            fallback,
            ModeReason::AutoFactsUnavailable,
            format!("auto: cluster facts unavailable ({why})"),
            g.facts.labeler_lease_fresh(),
        ),
        Availability::Known => by_candidates(
            &g.facts.candidates(g.sched),
            fallback,
            || g.facts.labeler_lease_fresh(),
            notes,
        ),
    }
}

/// The decision from the nodes the pod can land on. `lease` is read only where the nodes
/// are mixed.
fn by_candidates(
    c: &CandidateSummary,
    fallback: Mode,
    lease: impl FnOnce() -> Option<bool>,
    notes: &mut Notes,
) -> Decision {
    let total = c.total();
    if total == 0 {
        Decision::new(
            Mode::Legacy,
            ModeReason::AutoNoCandidateNodes,
            "auto: no known node matches the pod's scheduling constraints: legacy".to_string(),
        )
    } else if c.capable == total {
        if c.capable_1_28 > 0 {
            notes.warn(format!("{} candidate nodes are 1.28 kubelets with the gate on: sidecars start in order, but their termination order differs from 1.29+", c.capable_1_28));
        }
        Decision::new(
            Mode::Native,
            ModeReason::AutoAllCandidatesCapable,
            cat!("auto: all ", total, " candidate nodes are capable: native"),
        )
    } else if c.capable == 0 {
        Decision::new(
            Mode::Legacy,
            ModeReason::AutoNoCandidateCapable,
            format!(
                "auto: no candidate node is capable ({}): legacy",
                c.describe()
            ),
        )
    } else {
        lease_gate(
            fallback,
            ModeReason::AutoFallback,
            format!("auto: candidate nodes are mixed ({})", c.describe()),
            lease(),
        )
    }
}

/// The fallback, where it can work: affinity and universal steer by the node labels of
/// label-nodes, which are trusted only while its Lease is fresh; else legacy. `code` is the
/// reason the fallback is taken at all.
fn lease_gate(mode: Mode, code: ModeReason, why: String, lease: Option<bool>) -> Decision {
    if matches!(mode, Mode::Affinity | Mode::Universal) && lease != Some(true) {
        let state = if lease == Some(false) {
            "not fresh"
        } else {
            "unknown"
        };
        Decision::new(
            Mode::Legacy,
            ModeReason::AutoFallbackNeedsLabeler,
            format!(
                "{why}; fallback {mode} needs the node labels of label-nodes, whose Lease is {state}: legacy"
            ),
        )
    } else {
        Decision::new(mode, code, cat!(why, ": fallback ", mode.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::NodeClass;

    #[test]
    fn lease_gate_table() {
        let table = [
            (
                Mode::Affinity,
                Some(true),
                Mode::Affinity,
                "why: fallback affinity",
            ),
            (
                Mode::Universal,
                Some(true),
                Mode::Universal,
                "why: fallback universal",
            ),
            (Mode::Legacy, None, Mode::Legacy, "why: fallback legacy"),
            (
                Mode::Affinity,
                Some(false),
                Mode::Legacy,
                "why; fallback affinity needs the node labels of label-nodes, whose Lease is not fresh: legacy",
            ),
            (
                Mode::Universal,
                None,
                Mode::Legacy,
                "why; fallback universal needs the node labels of label-nodes, whose Lease is unknown: legacy",
            ),
        ];
        for (fallback, lease, mode, reason) in table {
            let d = lease_gate(fallback, ModeReason::AutoFallback, "why".into(), lease);
            let code = if mode == fallback {
                ModeReason::AutoFallback
            } else {
                ModeReason::AutoFallbackNeedsLabeler
            };
            assert_eq!(
                d,
                Decision::new(mode, code, reason.into()),
                "{fallback} lease {lease:?}"
            );
        }
    }

    fn nodes(capable: usize, unaware: usize, capable_1_28: usize) -> CandidateSummary {
        let mut c = CandidateSummary::default();
        for i in 0..capable {
            c.add(
                &format!("c{i}"),
                NodeClass::Capable,
                i < capable_1_28,
                false,
            );
        }
        for i in 0..unaware {
            c.add(&format!("u{i}"), NodeClass::Unaware, false, false);
        }
        c
    }

    #[test]
    fn by_candidates_table() {
        let table = [
            (
                nodes(0, 0, 0),
                Some(true),
                Mode::Legacy,
                "auto: no known node matches the pod's scheduling constraints: legacy",
                0,
            ),
            (
                nodes(3, 0, 0),
                None,
                Mode::Native,
                "auto: all 3 candidate nodes are capable: native",
                0,
            ),
            (
                nodes(2, 0, 1),
                None,
                Mode::Native,
                "auto: all 2 candidate nodes are capable: native",
                1,
            ),
            (
                nodes(0, 2, 0),
                Some(true),
                Mode::Legacy,
                "auto: no candidate node is capable (2 unaware (u0, u1)): legacy",
                0,
            ),
            (
                nodes(1, 1, 0),
                Some(true),
                Mode::Universal,
                "auto: candidate nodes are mixed (1 capable (c0), 1 unaware (u0)): fallback universal",
                0,
            ),
            (
                nodes(1, 1, 0),
                Some(false),
                Mode::Legacy,
                "auto: candidate nodes are mixed (1 capable (c0), 1 unaware (u0)); fallback universal needs the node labels of label-nodes, whose Lease is not fresh: legacy",
                0,
            ),
        ];
        let codes = [
            ModeReason::AutoNoCandidateNodes,
            ModeReason::AutoAllCandidatesCapable,
            ModeReason::AutoAllCandidatesCapable,
            ModeReason::AutoNoCandidateCapable,
            ModeReason::AutoFallback,
            ModeReason::AutoFallbackNeedsLabeler,
        ];
        for ((c, lease, mode, reason, warnings), code) in table.into_iter().zip(codes) {
            let mut notes = Notes::default();
            let d = by_candidates(&c, Mode::Universal, || lease, &mut notes);
            assert_eq!(d, Decision::new(mode, code, reason.into()), "{c:?}");
            assert_eq!(notes.warnings.len(), warnings, "{c:?}");
        }
    }
}
