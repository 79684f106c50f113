//! The `markdown` output: a heading, the summary as a list, the command's table, the
//! findings table and what was not seen.

use super::{Report, finding_cells};
use std::fmt::Write;

/// Writes a report as Markdown.
pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# sidecar-kit {}\n", report.command);
    for s in &report.summary {
        let _ = writeln!(out, "- {}", esc(s));
    }
    if let Some((header, rows)) = report.table.split_first() {
        out.push('\n');
        row(&mut out, header);
        let _ = writeln!(out, "|{}|", vec!["---"; header.len()].join("|"));
        for r in rows {
            row(&mut out, r);
        }
    }
    findings(report, &mut out);
    if !report.blind_spots.is_empty() {
        let _ = writeln!(out, "\n## Not seen\n");
        for b in &report.blind_spots {
            let _ = writeln!(out, "- {} (needs {})", esc(&b.what), esc(&b.permission));
        }
    }
    out
}

/// The findings section.
fn findings(report: &Report, out: &mut String) {
    let _ = writeln!(out, "\n## Findings\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
        return;
    }
    let _ = writeln!(
        out,
        "| severity | check | object | finding | fix |\n|---|---|---|---|---|"
    );
    for f in &report.findings {
        row(out, &finding_cells(f));
    }
}

/// One table row, its cells escaped.
fn row(out: &mut String, cells: &[impl AsRef<str>]) {
    let cells: Vec<String> = cells.iter().map(|c| esc(c.as_ref())).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
