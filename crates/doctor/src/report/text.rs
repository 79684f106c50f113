//! The `table` output: the summary, the command's table, the findings as a table and what
//! was not seen, aligned for a terminal.

use super::{Report, message_with_fix};
use std::fmt::Write;

/// Writes a report as text.
pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.summary {
        let _ = writeln!(out, "{s}");
    }
    if !report.table.is_empty() {
        out.push('\n');
        table(&report.table, &mut out);
    }
    findings(report, &mut out);
    for b in &report.blind_spots {
        let _ = writeln!(out, "not seen: {} (needs {})", b.what, b.permission);
    }
    out
}

/// The findings as a table, or `no findings`.
fn findings(report: &Report, out: &mut String) {
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nno findings");
        return;
    }
    out.push('\n');
    let mut rows = vec![vec![
        "SEVERITY".to_string(),
        "CHECK".into(),
        "OBJECT".into(),
        "FINDING".into(),
    ]];
    for f in &report.findings {
        rows.push(vec![
            f.severity.as_str().into(),
            f.check.clone(),
            f.object.clone().unwrap_or_else(|| "-".into()),
            message_with_fix(f),
        ]);
    }
    table(&rows, out);
}

/// Rows (header first) in columns as wide as their widest cell, two spaces apart.
fn table(rows: &[Vec<String>], out: &mut String) {
    let Some(header) = rows.first() else { return };
    let mut widths = vec![0usize; header.len()];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}
