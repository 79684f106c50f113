//! The pods as the report lists them: one table row, one data entry and one timeline per
//! pod with sidecars or findings; then the summary, and the timelines ordered (pods with a
//! finding first) and bounded.

use super::analysis::analyse;
use super::context::Context;
use super::output::PodsResult;
use super::{MAX_TIMELINES, PodsOptions};
use crate::report::{BlindSpot, Finding, Report};
use crate::timeline::{self, Timeline, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What the pods add to the report, pod by pod.
#[derive(Default)]
pub struct Collected {
    rows: Vec<Vec<String>>,
    data: Vec<Value>,
    timelines: Vec<Timeline>,
    findings: Vec<Finding>,
}

/// `-` for an empty list.
fn list_or_dash(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

impl Collected {
    /// Analyses one pod; one named on the command line is listed even with nothing to say.
    pub fn add(&mut self, pod: &Pod, ctx: &Context, taken: Timestamp, named: bool) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let raw = serde_json::to_value(pod).unwrap_or(Value::Null);
        let a = analyse(&raw, ctx);
        let interesting =
            !a.sidecars.is_empty() || !a.injected.is_empty() || !a.findings.is_empty();
        if !interesting && !named {
            return;
        }
        let phase = raw["status"]["phase"].as_str().unwrap_or("-").to_string();
        self.rows.push(vec![
            format!("{ns}/{name}"),
            phase.clone(),
            if node.is_empty() {
                "-".into()
            } else {
                match ctx.node_class {
                    Some(c) => format!("{node} ({c})"),
                    None => node.clone(),
                }
            },
            list_or_dash(&a.sidecars),
            list_or_dash(&a.injected),
        ]);
        let tl = timeline::of(&raw, taken);
        self.data.push(json!({
            "pod": format!("{ns}/{name}"),
            "phase": phase,
            "node": node,
            "nodeClass": ctx.node_class,
            "sidecars": a.sidecars,
            "injected": a.injected,
            "universal": a.universal,
            "timeline": tl,
        }));
        if let Some(t) = tl {
            self.timelines.push(t);
        }
        self.findings.extend(a.findings);
    }

    /// The report of `total` pods read in `namespace` (the session's, when none were
    /// named), with the owners' templates that could not be read for want of each
    /// permission.
    pub fn finish(
        self,
        mut report: Report,
        o: &PodsOptions,
        namespace: &str,
        total: usize,
        missing_perms: BTreeMap<String, usize>,
        taken: Timestamp,
    ) -> PodsResult {
        let Collected {
            rows,
            data,
            mut timelines,
            findings,
        } = self;
        report.findings.extend(findings);
        for (perm, n) in missing_perms {
            report.blind_spots.push(BlindSpot {
                what: format!("the owners' templates of {n} workload(s) (whether restartPolicy was lost between template and pod)"),
                permission: perm,
            });
        }
        report.summary.push(format!(
            "{total} pod(s) in {}; {} with sidecars or findings",
            scope(o, namespace),
            rows.len()
        ));
        report
            .summary
            .push(format!("report taken at {taken}; the timelines end there"));
        report.sorted();
        let with_findings = order_timelines(&mut report, &mut timelines);
        if !rows.is_empty() {
            report.table.push(
                ["POD", "PHASE", "NODE", "SIDECARS", "INJECTED"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
            report.table.extend(rows);
        }
        report.data = json!({ "reportTime": taken.to_string(), "pods": data });
        PodsResult {
            report,
            timelines,
            with_findings,
            report_time: taken,
        }
    }
}

/// The pods' scope as the summary says it.
fn scope(o: &PodsOptions, namespace: &str) -> String {
    if o.all_namespaces {
        "all namespaces".to_string()
    } else if o.namespaces.is_empty() {
        format!("namespace {namespace}")
    } else {
        format!("namespace(s) {}", o.namespaces.join(", "))
    }
}

/// Puts the timelines of the pods with a finding first, in the order of the (sorted)
/// findings, and keeps at most [`MAX_TIMELINES`] (saying so in the summary). Returns how
/// many of those kept, from the start, are of pods with a finding.
fn order_timelines(report: &mut Report, timelines: &mut Vec<Timeline>) -> usize {
    let mut order: Vec<String> = Vec::new();
    for f in &report.findings {
        if let Some(p) = f.object.as_deref().and_then(|o| o.strip_prefix("Pod "))
            && !order.iter().any(|x| x == p)
        {
            order.push(p.to_string());
        }
    }
    let rank = |t: &Timeline| {
        order
            .iter()
            .position(|p| *p == t.pod)
            .unwrap_or(order.len())
    };
    timelines.sort_by_key(|t| rank(t));
    let with_findings = timelines
        .iter()
        .filter(|t| rank(t) < order.len())
        .count()
        .min(MAX_TIMELINES);
    if timelines.len() > MAX_TIMELINES {
        report.summary.push(format!(
            "timelines drawn for {MAX_TIMELINES} pods (those with findings first); {} more in -o json (or name one pod)",
            timelines.len() - MAX_TIMELINES
        ));
        timelines.truncate(MAX_TIMELINES);
    }
    with_findings
}
