//! What the report of `doctor cluster` says besides its findings: the summary (the API
//! server, the node counts, what each mode does), the table of nodes and the data.

use super::api_server::ApiServer;
use super::known_bugs::KNOWN_BUGS;
use super::modes::mode_meanings;
use super::nodes::Nodes;
use crate::report::Report;
use serde_json::json;

/// Writes the summary, the table and the data; `lease_fresh` is None when the labeler's
/// Lease was not read.
pub fn write(report: &mut Report, api: &ApiServer, nodes: &Nodes, lease_fresh: Option<bool>) {
    let counts = &nodes.counts;
    report.summary.push(api.summary_line());
    report.summary.push(format!(
        "{} node(s): {} capable, {} unaware (older than 1.28), {} rejecting (field known, gate off), {} unknown",
        counts.total(),
        counts.capable,
        counts.unaware,
        counts.rejecting,
        counts.unknown
    ));
    let meanings = mode_meanings(counts, &api.kept, lease_fresh);
    for (mode, what) in &meanings {
        report.summary.push(format!("mode {mode}: {what}"));
    }
    report.table.push(
        ["NODE", "KUBELET", "GATE", "FROM", "CLASS", "NOTE"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    for r in &nodes.rows {
        report.table.push(vec![
            r.name.clone(),
            r.kubelet_version.clone(),
            r.gate.to_string(),
            r.gate_source.to_string(),
            r.class.to_string(),
            r.note.clone(),
        ]);
    }
    report.data = json!({
        "apiServer": api.data(),
        "labeler": lease_fresh.map(|f| json!({"leaseFresh": f})),
        "counts": counts,
        "modes": meanings.iter().map(|(m, w)| json!({"mode": m, "effect": w})).collect::<Vec<_>>(),
        "nodes": nodes.rows,
        "knownBugs": KNOWN_BUGS,
    });
}
