//! The checks of `doctor injections`, one per file, each from a workload's counts to at
//! most one finding.

use super::state::Counts;
use super::workload::Workload;
use crate::report::{Finding, Severity};

mod legacy_on_capable;
mod not_injected;
mod profile_gone;
mod stale;

/// One workload's pods, as the checks read them.
pub(super) struct WorkloadView<'a> {
    pub workload: &'a Workload,
    pub counts: &'a Counts,
    /// Whether its namespace carries the webhook's opt-in label; None: its labels are
    /// unknown.
    pub opted_in: Option<bool>,
}

impl WorkloadView<'_> {
    /// The object the findings name: `Deployment shop/web`.
    fn object(&self) -> Option<String> {
        let w = self.workload;
        Some(format!("{} {}/{}", w.kind, w.namespace, w.name))
    }

    /// A finding about this workload whose fix is to restart it.
    fn restart_finding(&self, check: &str, severity: Severity, message: String) -> Finding {
        Finding::new(
            check,
            severity,
            self.object(),
            message,
            Some(self.workload.restart()),
        )
    }
}

/// A check of one workload.
type Check = fn(&WorkloadView<'_>) -> Option<Finding>;

/// Every check, in the order they report.
const ALL: [Check; 4] = [
    stale::check,
    profile_gone::check,
    legacy_on_capable::check,
    not_injected::check,
];

/// The findings of every check on one workload.
pub(super) fn run(view: &WorkloadView<'_>) -> impl Iterator<Item = Finding> {
    ALL.iter().filter_map(move |check| check(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::injections::PodState;
    use sidecar_kit_core::status::INJECT_KEY;

    /// The findings on Deployment shop/web with pods in `states`.
    fn findings(states: Vec<PodState>, opted_in: Option<bool>) -> Vec<Finding> {
        let workload = Workload {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        };
        let mut counts = Counts::default();
        for s in states {
            counts.count(s);
        }
        let view = WorkloadView {
            workload: &workload,
            counts: &counts,
            opted_in,
        };
        run(&view).collect()
    }

    /// One case: the finding's check, severity, words in its message and fix; None: no
    /// finding.
    type Want<'a> = Option<(&'a str, Severity, &'a str, &'a str)>;

    fn assert_finding(found: &[Finding], want: Want<'_>) {
        let Some((check, severity, words, fix)) = want else {
            assert!(found.is_empty(), "{found:?}");
            return;
        };
        let [f] = found else {
            panic!("one finding: {found:?}")
        };
        assert_eq!((f.check.as_str(), f.severity), (check, severity));
        assert!(f.message.contains(words), "{}", f.message);
        assert_eq!(f.object.as_deref(), Some("Deployment shop/web"));
        assert_eq!(f.fix.as_deref(), Some(fix));
    }

    const RESTART: &str = "kubectl rollout restart deployment/web -n shop";

    #[test]
    fn stale_gone_and_legacy_pods_each_have_their_finding() {
        use PodState::*;
        let stale = Stale(vec![("log".into(), "sha256:0".into(), "sha256:1".into())]);
        let gone = ProfileGone(vec!["old".into(), "older".into()]);
        let (warning, info) = (Severity::Warning, Severity::Info);
        let cases: [(Vec<PodState>, Want<'_>); 4] = [
            (vec![Current, Untouched], None),
            (
                vec![stale, Current],
                Some((
                    "injections.stale",
                    warning,
                    "1 of 2 pod(s) carry an older injection: log sha256:0 (now sha256:1)",
                    RESTART,
                )),
            ),
            (
                vec![gone],
                Some((
                    "injections.profile-gone",
                    warning,
                    "no longer exist: old, older",
                    RESTART,
                )),
            ),
            (
                vec![LegacyOnCapable],
                Some((
                    "injections.legacy-on-capable-node",
                    info,
                    "1 of 1 pod(s) run legacy sidecars",
                    RESTART,
                )),
            ),
        ];
        for (states, want) in cases {
            assert_finding(&findings(states, Some(true)), want);
        }
    }

    #[test]
    fn pods_not_injected_and_the_namespace_label() {
        let label_first =
            format!("kubectl label namespace shop {INJECT_KEY}=enabled, then {RESTART}");
        let check = "injections.not-injected";
        let (warning, skipped) = (
            Severity::Warning,
            "profile(s) log select them (created before the profile, or the webhook was skipped)",
        );
        // (namespace opted in, the finding)
        let cases: [(Option<bool>, Want<'_>); 3] = [
            (
                Some(false),
                Some((
                    check,
                    warning,
                    "skipped); namespace shop lacks the label",
                    &label_first,
                )),
            ),
            (Some(true), Some((check, warning, skipped, RESTART))),
            (None, Some((check, warning, skipped, RESTART))),
        ];
        for (opted_in, want) in cases {
            let found = findings(vec![PodState::NotInjected(vec!["log".into()])], opted_in);
            assert_finding(&found, want);
            assert_eq!(
                opted_in == Some(false),
                found[0].message.contains("lacks the label")
            );
        }
    }
}
