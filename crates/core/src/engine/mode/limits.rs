//! What the API server and the pod allow, whatever mode was asked for: native and affinity
//! need the API server to keep `restartPolicy`, universal needs a pod that can run
//! sidecar-shim (not Windows), and adds its startup probe only where `restartPolicy` stays.

use super::Decision;
use crate::engine::notes::Notes;
use crate::engine::outcome::ModeAdjustment;
use crate::facts::CandidateSummary;
use crate::profile::Mode;
use crate::version::FieldKept;

/// Native asked for where some candidate nodes cannot run native sidecars: a warning.
pub(super) fn native_on_incapable(c: &CandidateSummary, notes: &mut Notes) {
    let not_capable = c.total() - c.capable;
    if not_capable > 0 {
        notes.warn(format!(
            "mode native: {not_capable} of {} candidate nodes cannot run native sidecars ({})",
            c.total(),
            c.describe()
        ));
    }
}

/// Native and affinity are impossible where the API server drops `restartPolicy`: legacy.
pub(super) fn api_server(mut d: Decision, kept: &FieldKept, notes: &mut Notes) -> Decision {
    if kept.is_no() && matches!(d.mode, Mode::Native | Mode::Affinity) {
        let mode = d.mode;
        notes.warn(format!(
            "{mode} is impossible: {}; using legacy",
            kept.reason()
        ));
        d.reason = format!(
            "{}; {mode} impossible ({}): legacy",
            d.reason,
            kept.reason()
        );
        d.mode = Mode::Legacy;
        d.adjustments
            .push(ModeAdjustment::ApiServerDropsRestartPolicy);
    }
    d
}

/// Windows pods cannot run sidecar-shim: legacy instead of universal.
pub(super) fn windows(mut d: Decision, windows: bool, notes: &mut Notes) -> Decision {
    if d.mode == Mode::Universal && windows {
        notes.warn("Windows pods cannot run sidecar-shim: legacy instead of universal");
        d.reason = format!("{}; Windows pod: legacy", d.reason);
        d.mode = Mode::Legacy;
        d.adjustments.push(ModeAdjustment::WindowsPod);
    }
    d
}

/// Universal's native copy gets its startup probe (and `restartPolicy`) unless the API
/// server drops `restartPolicy`.
pub(super) fn startup_probe(mut d: Decision, kept: &FieldKept) -> Decision {
    if d.mode == Mode::Universal {
        match kept {
            FieldKept::No(r) => {
                d.reason = format!(
                    "{}; without startup probe and restartPolicy ({r})",
                    d.reason
                );
                d.adjustments.push(ModeAdjustment::NoStartupProbe);
            }
            FieldKept::Yes(_) => d.probe = true,
            FieldKept::Unknown(r) => {
                d.probe = true;
                d.reason = format!(
                    "{}; startup probe added ({r}: assumed to keep restartPolicy)",
                    d.reason
                );
                d.adjustments.push(ModeAdjustment::StartupProbeAssumed);
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::ModeReason;
    use crate::version::NodeClass;

    fn asked(mode: Mode) -> Decision {
        Decision::new(mode, ModeReason::Requested, "asked".into())
    }

    /// The decision `asked(from)` becomes: `mode`, `reason`, and an adjustment when the
    /// mode or the reason changed.
    fn became(mode: Mode, reason: &str, adjustment: Option<ModeAdjustment>) -> Decision {
        let mut d = Decision::new(mode, ModeReason::Requested, reason.into());
        d.adjustments.extend(adjustment);
        d
    }

    fn yes() -> FieldKept {
        FieldKept::Yes("kept".into())
    }

    fn no() -> FieldKept {
        FieldKept::No("dropped".into())
    }

    fn unknown() -> FieldKept {
        FieldKept::Unknown("unsure".into())
    }

    #[test]
    fn native_on_incapable_table() {
        let table = [
            (vec![NodeClass::Capable, NodeClass::Capable], None),
            (
                vec![NodeClass::Capable, NodeClass::Unaware],
                Some(
                    "mode native: 1 of 2 candidate nodes cannot run native sidecars (1 capable (n0), 1 unaware (n1))",
                ),
            ),
            (vec![], None),
        ];
        for (classes, warning) in table {
            let mut c = CandidateSummary::default();
            for (i, class) in classes.iter().enumerate() {
                c.add(&format!("n{i}"), *class, false, false);
            }
            let mut notes = Notes::default();
            native_on_incapable(&c, &mut notes);
            assert_eq!(notes.warnings.first().map(String::as_str), warning, "{c:?}");
        }
    }

    #[test]
    fn api_server_table() {
        let table = [
            (Mode::Native, yes(), Mode::Native, "asked", None),
            (Mode::Native, unknown(), Mode::Native, "asked", None),
            (
                Mode::Native,
                no(),
                Mode::Legacy,
                "asked; native impossible (dropped): legacy",
                Some("native is impossible: dropped; using legacy"),
            ),
            (
                Mode::Affinity,
                no(),
                Mode::Legacy,
                "asked; affinity impossible (dropped): legacy",
                Some("affinity is impossible: dropped; using legacy"),
            ),
            (Mode::Universal, no(), Mode::Universal, "asked", None),
            (Mode::Legacy, no(), Mode::Legacy, "asked", None),
        ];
        for (asked_mode, kept, mode, reason, warning) in table {
            let mut notes = Notes::default();
            let d = api_server(asked(asked_mode), &kept, &mut notes);
            let adjusted =
                (mode != asked_mode).then_some(ModeAdjustment::ApiServerDropsRestartPolicy);
            assert_eq!(d, became(mode, reason, adjusted), "{asked_mode} {kept:?}");
            assert_eq!(notes.warnings.first().map(String::as_str), warning);
        }
    }

    #[test]
    fn windows_table() {
        let table = [
            (
                Mode::Universal,
                true,
                Mode::Legacy,
                "asked; Windows pod: legacy",
                1,
            ),
            (Mode::Universal, false, Mode::Universal, "asked", 0),
            (Mode::Native, true, Mode::Native, "asked", 0),
            (Mode::Legacy, true, Mode::Legacy, "asked", 0),
        ];
        for (asked_mode, is_windows, mode, reason, warnings) in table {
            let mut notes = Notes::default();
            let d = windows(asked(asked_mode), is_windows, &mut notes);
            let adjusted = (mode != asked_mode).then_some(ModeAdjustment::WindowsPod);
            assert_eq!(d, became(mode, reason, adjusted), "{asked_mode}");
            assert_eq!(notes.warnings.len(), warnings);
        }
    }

    #[test]
    fn startup_probe_table() {
        let table = [
            (Mode::Universal, yes(), true, "asked"),
            (
                Mode::Universal,
                unknown(),
                true,
                "asked; startup probe added (unsure: assumed to keep restartPolicy)",
            ),
            (
                Mode::Universal,
                no(),
                false,
                "asked; without startup probe and restartPolicy (dropped)",
            ),
            (Mode::Native, yes(), false, "asked"),
            (Mode::Legacy, unknown(), false, "asked"),
        ];
        for (mode, kept, probe, reason) in table {
            let d = startup_probe(asked(mode), &kept);
            let adjusted = match (mode, &kept) {
                (Mode::Universal, FieldKept::No(_)) => Some(ModeAdjustment::NoStartupProbe),
                (Mode::Universal, FieldKept::Unknown(_)) => {
                    Some(ModeAdjustment::StartupProbeAssumed)
                }
                _ => None,
            };
            let mut want = became(mode, reason, adjusted);
            want.probe = probe;
            assert_eq!(d, want, "{mode} {kept:?}");
        }
    }
}
