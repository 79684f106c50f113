//! The `html` output: a page with the summary, the command's table, the findings and what
//! was not seen, then the pictures a command draws.

use super::{Report, esc_xml, finding_cells};
use std::fmt::Write;

/// Writes a report as an HTML page; `picture` comes after the findings.
pub(super) fn render(report: &Report, picture: Option<&str>) -> String {
    let mut out = String::new();
    head(report, picture.is_some(), &mut out);
    let _ = writeln!(out, "<h1>sidecar-kit {}</h1>", esc_xml(&report.command));
    for s in &report.summary {
        let _ = writeln!(out, "<p>{}</p>", esc_xml(s));
    }
    if let Some((header, rows)) = report.table.split_first() {
        let _ = writeln!(out, "<table>{}", row("th", header));
        for r in rows {
            let _ = writeln!(out, "{}", row("td", r));
        }
        let _ = writeln!(out, "</table>");
    }
    findings(report, &mut out);
    for b in &report.blind_spots {
        let _ = writeln!(
            out,
            "<p>Not seen: {} (needs {})</p>",
            esc_xml(&b.what),
            esc_xml(&b.permission)
        );
    }
    // Pictures come after the findings, which are what the reader came for.
    if let Some(extra) = picture {
        let _ = write!(out, "{extra}");
    }
    let _ = writeln!(out, "</body></html>");
    out
}

/// The document's head (title and style) and the opening of its body.
fn head(report: &Report, pictures: bool, out: &mut String) {
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sidecar-kit {}</title>",
        esc_xml(&report.command)
    );
    let _ = writeln!(
        out,
        "<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}.error{{color:#b00}}.warning{{color:#a60}}.info{{color:#06a}}{}</style></head><body>",
        if pictures {
            "section.timeline{margin:1.5em 0}.caption{color:#555;font-size:.9em;max-width:60em}summary h2{display:inline}"
        } else {
            ""
        }
    );
}

/// The findings section: a table whose severity cells carry their severity as a class.
fn findings(report: &Report, out: &mut String) {
    let _ = writeln!(out, "<h2>Findings</h2>");
    if report.findings.is_empty() {
        let _ = writeln!(out, "<p>No findings.</p>");
        return;
    }
    let _ = writeln!(
        out,
        "<table><tr><th>severity</th><th>check</th><th>object</th><th>finding</th><th>fix</th></tr>"
    );
    for f in &report.findings {
        let [severity, rest @ ..] = finding_cells(f);
        let _ = writeln!(
            out,
            "<tr><td class=\"{severity}\">{severity}</td>{}</tr>",
            cells("td", &rest)
        );
    }
    let _ = writeln!(out, "</table>");
}

/// `<tr>` with one `tag` cell per item, escaped.
fn row(tag: &str, items: &[impl AsRef<str>]) -> String {
    format!("<tr>{}</tr>", cells(tag, items))
}

fn cells(tag: &str, items: &[impl AsRef<str>]) -> String {
    items
        .iter()
        .map(|c| format!("<{tag}>{}</{tag}>", esc_xml(c.as_ref())))
        .collect()
}
