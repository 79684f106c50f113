//! The checks of `doctor injections`, one per file, each from a workload's counts to at
//! most one finding.

use super::state::Counts;
use super::workload::Workload;
use crate::report::Finding;

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
    use crate::report::Severity;
    use sidecar_kit_core::status::INJECT_KEY;

    #[test]
    fn each_state_of_a_workloads_pods_has_its_finding() {
        let restart = "kubectl rollout restart deployment/web -n shop";
        let label_first =
            format!("kubectl label namespace shop {INJECT_KEY}=enabled, then {restart}");
        let stale = PodState::Stale(vec![("log".into(), "sha256:0".into(), "sha256:1".into())]);
        let not_injected = || PodState::NotInjected(vec!["log".into()]);
        // (the pods' states, namespace opted in, check, severity, in the message, fix)
        let cases = [
            (
                vec![PodState::Current, PodState::Untouched],
                Some(true),
                None,
            ),
            (
                vec![stale, PodState::Current],
                Some(true),
                Some((
                    "injections.stale",
                    Severity::Warning,
                    "1 of 2 pod(s) carry an older injection: log sha256:0 (now sha256:1)",
                    restart.to_string(),
                )),
            ),
            (
                vec![PodState::ProfileGone(vec!["old".into(), "older".into()])],
                None,
                Some((
                    "injections.profile-gone",
                    Severity::Warning,
                    "no longer exist: old, older",
                    restart.to_string(),
                )),
            ),
            (
                vec![PodState::LegacyOnCapable],
                Some(true),
                Some((
                    "injections.legacy-on-capable-node",
                    Severity::Info,
                    "1 of 1 pod(s) run legacy sidecars",
                    restart.to_string(),
                )),
            ),
            (
                vec![not_injected()],
                Some(false),
                Some((
                    "injections.not-injected",
                    Severity::Warning,
                    "lacks the label",
                    label_first,
                )),
            ),
            (
                vec![not_injected()],
                Some(true),
                Some((
                    "injections.not-injected",
                    Severity::Warning,
                    "profile(s) log select them (created before the profile, or the webhook was skipped)",
                    restart.to_string(),
                )),
            ),
            (
                vec![not_injected()],
                None,
                Some((
                    "injections.not-injected",
                    Severity::Warning,
                    "webhook was skipped)",
                    restart.to_string(),
                )),
            ),
        ];
        let workload = Workload {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        };
        for (states, opted_in, want) in cases {
            let mut counts = Counts::default();
            for s in states {
                counts.count(s);
            }
            let view = WorkloadView {
                workload: &workload,
                counts: &counts,
                opted_in,
            };
            let found: Vec<Finding> = run(&view).collect();
            match want {
                None => assert!(found.is_empty(), "{found:?}"),
                Some((check, severity, message, fix)) => {
                    let [f] = found.as_slice() else {
                        panic!("one finding: {found:?}")
                    };
                    assert_eq!((f.check.as_str(), f.severity), (check, severity));
                    assert!(f.message.contains(message), "{}", f.message);
                    assert!(
                        opted_in == Some(false) || !f.message.contains("lacks the label"),
                        "{}",
                        f.message
                    );
                    assert_eq!(f.object.as_deref(), Some("Deployment shop/web"));
                    assert_eq!(f.fix.as_ref(), Some(&fix));
                }
            }
        }
    }
}
