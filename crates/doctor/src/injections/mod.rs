//! `doctor injections`: the migration view. Per workload, the pods whose injection
//! (`sidecar-kit.io/status`) carries an older profile hash than the profile has now, pods
//! with legacy sidecars whose nodes could run native ones, and pods a profile selects that
//! carry no injection; counts per namespace and the commands that restart what is stale.

use crate::conn::{DoctorError, Session};
use crate::report::Report;
use checks::WorkloadView;
use serde_json::json;
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_core::status::INJECT_KEY;
use std::collections::BTreeMap;

mod checks;
mod gather;
mod state;
mod tally;
mod workload;

pub use state::{Counts, PodState, judge};
pub use workload::Workload;

/// Flags of `doctor injections`.
#[derive(Debug, Clone, Default)]
pub struct InjectionsOptions {
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    pub profiles: ProfileSet,
}

/// Runs `doctor injections`: reads the cluster, counts every workload's pods by the state
/// of their injection, checks each workload and sums up per namespace.
pub async fn run(s: &Session, o: &InjectionsOptions) -> Result<Report, DoctorError> {
    let mut report = Report::new("doctor injections");
    let g = gather::gather(s, &o.namespaces, o.all_namespaces, &mut report).await?;
    let by_workload = tally::tally(&g, &o.profiles);
    let mut per_ns: BTreeMap<String, Counts> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut restarts = Vec::new();
    let mut data = Vec::new();
    for (w, c) in by_workload.iter().filter(|(_, c)| c.touched()) {
        per_ns.entry(w.namespace.clone()).or_default().add(c);
        let view = WorkloadView {
            workload: w,
            counts: c,
            opted_in: g
                .ns_labels
                .get(&w.namespace)
                .map(|l| l.get(INJECT_KEY).map(String::as_str) == Some("enabled")),
        };
        report.findings.extend(checks::run(&view));
        if c.needs_restart() {
            restarts.push(w.restart());
        }
        rows.push(row(w, c));
        data.push(
            json!({"workload": w, "counts": c, "restart": c.needs_restart().then(|| w.restart())}),
        );
    }
    report.summary.push(format!(
        "{} pod(s) in {} workload(s) looked at against {} profile(s)",
        g.pods.len(),
        by_workload.len(),
        o.profiles.len()
    ));
    restarts.dedup();
    summary(&per_ns, &restarts, &mut report);
    if !rows.is_empty() {
        report.table.push(crate::report::header(&[
            "NAMESPACE",
            "WORKLOAD",
            "PODS",
            "CURRENT",
            "STALE",
            "PROFILE GONE",
            "LEGACY ON CAPABLE",
            "NOT INJECTED",
        ]));
        report.table.extend(rows);
    }
    report.data = json!({
        "workloads": data,
        "namespaces": per_ns,
        "restart": restarts,
    });
    report.sorted();
    Ok(report)
}

/// A workload's row of the table.
fn row(w: &Workload, c: &Counts) -> Vec<String> {
    vec![
        w.namespace.clone(),
        format!("{}/{}", w.kind, w.name),
        c.pods.to_string(),
        c.current.to_string(),
        c.stale.to_string(),
        c.profile_gone.to_string(),
        c.legacy_on_capable.to_string(),
        c.not_injected.to_string(),
    ]
}

/// The counts per namespace and the commands that bring the stale pods up to date.
fn summary(per_ns: &BTreeMap<String, Counts>, restarts: &[String], report: &mut Report) {
    for (ns, t) in per_ns {
        report.summary.push(format!(
            "namespace {ns}: {} current, {} stale, {} of removed profiles, {} legacy on capable nodes, {} not injected",
            t.current, t.stale, t.profile_gone, t.legacy_on_capable, t.not_injected
        ));
    }
    if !restarts.is_empty() {
        report.summary.push("to bring them up to date:".into());
        for r in restarts {
            report.summary.push(format!("  {r}"));
        }
    }
}
