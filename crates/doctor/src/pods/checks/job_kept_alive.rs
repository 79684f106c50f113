//! `pods.job-kept-alive`: a pod that does not restart its containers (a Job's) whose app
//! containers finished while a legacy sidecar keeps running, so that it never completes.

use crate::pods::context::Context;
use crate::pods::view::PodView;
use crate::report::{Finding, Severity};

pub fn check(pod: &PodView, _ctx: &Context, out: &mut Vec<Finding>) {
    let restart_policy = pod.restart_policy;
    if restart_policy == "Always" || pod.phase != "Running" {
        return;
    }
    let done = |n: &str| {
        pod.status(n)
            .terminated
            .is_some_and(|t| t.exit_code == Some(0) || restart_policy == "Never")
    };
    let running = |n: &str| pod.status(n).running;
    let legacy: Vec<&str> = pod.legacy_sidecars().map(|c| c.name).collect();
    let sure = !legacy.is_empty();
    let (finished_apps, still): (Vec<&str>, Vec<&str>) = if legacy.is_empty() {
        // Without the status annotation: containers still running next to finished ones.
        let all = || pod.containers.iter().map(|c| c.name);
        (
            all().filter(|n| done(n)).collect(),
            all().filter(|n| running(n)).collect(),
        )
    } else {
        let apps: Vec<&str> = pod.apps().map(|c| c.name).collect();
        let apps_done = apps.iter().all(|n| done(n));
        (
            if apps_done { apps } else { Vec::new() },
            legacy.into_iter().filter(|n| running(n)).collect(),
        )
    };
    if finished_apps.is_empty() || still.is_empty() {
        return;
    }
    out.push(Finding::new(
        "pods.job-kept-alive",
        if sure { Severity::Error } else { Severity::Warning },
        pod.object(),
        message(&finished_apps, &still, sure, restart_policy),
        Some("make the sidecar native (Jobs complete without waiting for native sidecars), or use sidecar-kit's Job-safe legacy wiring (sidecar-shim stops the sidecar when the app containers are done)".into()),
    ));
}

/// The finding's words, fitted to the counts; `sure`: the running ones are sidecar-kit's
/// legacy sidecars (not a guess).
fn message(finished_apps: &[&str], still: &[&str], sure: bool, restart_policy: &str) -> String {
    let (apps_n, still_n) = (finished_apps.len(), still.len());
    format!(
        "{} {} {} finished, but {} {} still running{} (restartPolicy {restart_policy}): the pod never completes, so its Job never finishes or retries",
        if apps_n == 1 {
            "app container"
        } else {
            "app containers"
        },
        finished_apps.join(", "),
        if apps_n == 1 { "has" } else { "have" },
        still.join(", "),
        if still_n == 1 { "is" } else { "are" },
        match (sure, still_n == 1) {
            (true, true) => " as a legacy sidecar",
            (true, false) => " as legacy sidecars",
            (false, true) => ", likely a legacy sidecar",
            (false, false) => ", likely legacy sidecars",
        }
    )
}
