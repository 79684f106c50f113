//! How sidecars exit: `pods.sidecar-crash-looping` (a sidecar in CrashLoopBackOff) and
//! `pods.sidecar-teardown-exit` (a sidecar stopped by SIGTERM or SIGKILL as its pod ends:
//! expected, not a failure). Native sidecars first, then legacy ones.

use crate::pods::context::Context;
use crate::pods::view::{ContainerStatus, PodView};
use crate::report::{Finding, Severity};

pub fn check(pod: &PodView, _ctx: &Context, out: &mut Vec<Finding>) {
    let native = pod
        .native_sidecars()
        .map(|c| (c.name, pod.init_status(c.name)));
    let legacy = pod.legacy_sidecars().map(|c| (c.name, pod.status(c.name)));
    for (name, cs) in native.chain(legacy) {
        out.extend(crash_loop(pod, name, cs));
        out.extend(teardown_exit(pod, name, cs));
    }
}

/// `pods.sidecar-crash-looping`.
fn crash_loop(pod: &PodView, n: &str, cs: &ContainerStatus) -> Option<Finding> {
    if cs.waiting_reason != Some("CrashLoopBackOff") {
        return None;
    }
    let last = cs
        .last_terminated
        .and_then(|t| t.exit_code)
        .map_or(String::new(), |c| format!(", last exit {c}"));
    Some(Finding::new(
        "pods.sidecar-crash-looping",
        Severity::Warning,
        pod.object(),
        format!(
            "sidecar {n} is in CrashLoopBackOff ({} restarts{last})",
            cs.restart_count
        ),
        Some(format!(
            "kubectl logs {} -n {} -c {n} --previous",
            pod.name, pod.namespace
        )),
    ))
}

/// `pods.sidecar-teardown-exit`.
fn teardown_exit(pod: &PodView, n: &str, cs: &ContainerStatus) -> Option<Finding> {
    let code = cs.terminated.and_then(|t| t.exit_code)?;
    if !(code == 137 || code == 143) || !pod.ending() {
        return None;
    }
    Some(Finding::new(
        "pods.sidecar-teardown-exit",
        Severity::Info,
        pod.object(),
        if code == 143 {
            format!("sidecar {n} exited 143 (SIGTERM) at teardown: expected, not a failure")
        } else {
            format!(
                "sidecar {n} exited 137 (SIGKILL) at teardown: expected, though it means it did not stop on SIGTERM within the grace period"
            )
        },
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One native sidecar `proxy` whose state is `state`, in a pod in `phase`.
    fn found(phase: &str, deleting: bool, state: serde_json::Value) -> Vec<(String, Severity)> {
        let mut pod = json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {"phase": phase, "initContainerStatuses": [{"name": "proxy", "restartCount": 3, "state": state,
                "lastState": {"terminated": {"exitCode": 2}}}]}});
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        let mut out = Vec::new();
        check(&PodView::of(&pod), &Context::default(), &mut out);
        out.into_iter().map(|f| (f.message, f.severity)).collect()
    }

    /// Phase, deleting, the sidecar's state, and the finding expected.
    type Case<'a> = (
        &'a str,
        bool,
        serde_json::Value,
        Option<(&'a str, Severity)>,
    );

    #[test]
    fn crash_loops_and_teardown_exits() {
        let crash = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        let exited = |code: i64| json!({"terminated": {"exitCode": code}});
        let cases: Vec<Case> = vec![
            (
                "Running",
                false,
                crash.clone(),
                Some((
                    "sidecar proxy is in CrashLoopBackOff (3 restarts, last exit 2)",
                    Severity::Warning,
                )),
            ),
            (
                "Running",
                false,
                json!({"waiting": {"reason": "ContainerCreating"}}),
                None,
            ),
            (
                "Succeeded",
                false,
                exited(143),
                Some((
                    "sidecar proxy exited 143 (SIGTERM) at teardown: expected, not a failure",
                    Severity::Info,
                )),
            ),
            (
                "Failed",
                false,
                exited(137),
                Some((
                    "sidecar proxy exited 137 (SIGKILL) at teardown: expected, though it means it did not stop on SIGTERM within the grace period",
                    Severity::Info,
                )),
            ),
            (
                "Running",
                true,
                exited(143),
                Some((
                    "sidecar proxy exited 143 (SIGTERM) at teardown: expected, not a failure",
                    Severity::Info,
                )),
            ),
            // Not ending: a sidecar killed while its pod runs is no teardown.
            ("Running", false, exited(143), None),
            // Other exit codes are not teardown signals.
            ("Succeeded", false, exited(1), None),
            ("Succeeded", false, exited(0), None),
        ];
        for (phase, deleting, state, want) in cases {
            let want: Vec<(String, Severity)> =
                want.into_iter().map(|(m, s)| (m.to_string(), s)).collect();
            assert_eq!(
                found(phase, deleting, state.clone()),
                want,
                "{phase} {deleting} {state}"
            );
        }
    }
}
