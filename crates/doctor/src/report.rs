//! Findings, reports, output formats and exit codes shared by every doctor command.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable identifier of the check, e.g. `cluster.node-rejects-native-sidecars`.
    pub check: String,
    pub severity: Severity,
    /// The object concerned: `Node n1`, `Pod shop/web-1`, `MutatingWebhookConfiguration x`,
    /// `web.yaml, document 2 (Deployment web)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(
        check: &str,
        severity: Severity,
        object: Option<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Finding {
        Finding {
            check: check.to_string(),
            severity,
            object,
            message: message.into(),
            fix,
        }
    }
}

/// Something a check could not see, and the permission that would let it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlindSpot {
    pub what: String,
    /// e.g. `get on nodes/proxy` or `get on the non-resource URL /metrics`.
    pub permission: String,
}

/// What a command found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `doctor cluster`, `lint`, ...
    pub command: String,
    /// A few lines that sum up the result (shown before the findings).
    pub summary: Vec<String>,
    /// Rows of the command's main table (header first), e.g. one row per node.
    pub table: Vec<Vec<String>>,
    pub findings: Vec<Finding>,
    pub blind_spots: Vec<BlindSpot>,
    /// The command's structured data, for `-o json|yaml`.
    pub data: Value,
}

impl Report {
    pub fn new(command: &str) -> Report {
        Report {
            command: command.to_string(),
            summary: Vec::new(),
            table: Vec::new(),
            findings: Vec::new(),
            blind_spots: Vec::new(),
            data: Value::Null,
        }
    }

    /// The highest severity found.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings sorted by severity (highest first), then check, then object.
    pub fn sorted(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.check.cmp(&b.check))
                .then_with(|| a.object.cmp(&b.object))
        });
    }
}

/// Exit code: 0 when nothing reaches `fail_on`; otherwise 10, 11 or 12 for the highest
/// finding (info, warning, error).
pub fn exit_code(report: &Report, fail_on: Severity) -> u8 {
    match report.worst() {
        Some(s) if s >= fail_on => match s {
            Severity::Info => 10,
            Severity::Warning => 11,
            Severity::Error => 12,
        },
        _ => 0,
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Junit,
    Markdown,
    /// An HTML page; [`render`]'s `picture` adds what a command draws (HTML with SVG
    /// charts), after the findings.
    Html,
}

fn text_table(rows: &[Vec<String>], out: &mut String) {
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

fn esc_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn esc_md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Writes a report. `picture` is HTML (with SVG charts) that HTML output puts after the
/// findings (ignored elsewhere).
pub fn render(report: &Report, format: Format, picture: Option<&str>) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            out = serde_json::to_string_pretty(report).unwrap_or_default();
            out.push('\n');
        }
        Format::Yaml => out = serde_saphyr::to_string(report).unwrap_or_default(),
        Format::Table => {
            for s in &report.summary {
                let _ = writeln!(out, "{s}");
            }
            if !report.table.is_empty() {
                out.push('\n');
                text_table(&report.table, &mut out);
            }
            if !report.findings.is_empty() {
                out.push('\n');
                let mut rows = vec![vec![
                    "SEVERITY".to_string(),
                    "CHECK".into(),
                    "OBJECT".into(),
                    "FINDING".into(),
                ]];
                for f in &report.findings {
                    let mut msg = f.message.clone();
                    if let Some(fix) = &f.fix {
                        msg.push_str(&format!(" (fix: {fix})"));
                    }
                    rows.push(vec![
                        f.severity.as_str().into(),
                        f.check.clone(),
                        f.object.clone().unwrap_or_else(|| "-".into()),
                        msg,
                    ]);
                }
                text_table(&rows, &mut out);
            } else {
                let _ = writeln!(out, "\nno findings");
            }
            for b in &report.blind_spots {
                let _ = writeln!(out, "not seen: {} (needs {})", b.what, b.permission);
            }
        }
        Format::Markdown => {
            let _ = writeln!(out, "# sidecar-kit {}\n", report.command);
            for s in &report.summary {
                let _ = writeln!(out, "- {}", esc_md(s));
            }
            if let Some((header, rows)) = report.table.split_first() {
                let _ = writeln!(
                    out,
                    "\n| {} |",
                    header
                        .iter()
                        .map(|h| esc_md(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let _ = writeln!(out, "|{}|", vec!["---"; header.len()].join("|"));
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        r.iter().map(|c| esc_md(c)).collect::<Vec<_>>().join(" | ")
                    );
                }
            }
            let _ = writeln!(out, "\n## Findings\n");
            if report.findings.is_empty() {
                let _ = writeln!(out, "No findings.");
            } else {
                let _ = writeln!(
                    out,
                    "| severity | check | object | finding | fix |\n|---|---|---|---|---|"
                );
                for f in &report.findings {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} |",
                        f.severity.as_str(),
                        esc_md(&f.check),
                        esc_md(f.object.as_deref().unwrap_or("-")),
                        esc_md(&f.message),
                        esc_md(f.fix.as_deref().unwrap_or(""))
                    );
                }
            }
            if !report.blind_spots.is_empty() {
                let _ = writeln!(out, "\n## Not seen\n");
                for b in &report.blind_spots {
                    let _ = writeln!(
                        out,
                        "- {} (needs {})",
                        esc_md(&b.what),
                        esc_md(&b.permission)
                    );
                }
            }
        }
        Format::Junit => {
            let failures = report
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            let _ = writeln!(
                out,
                "<testsuite name=\"sidecar-kit {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{}\">",
                esc_xml(&report.command),
                report.findings.len().max(1),
                report.blind_spots.len()
            );
            if report.findings.is_empty() {
                let _ = writeln!(
                    out,
                    "  <testcase classname=\"sidecar-kit.{}\" name=\"no findings\"/>",
                    esc_xml(&report.command.replace(' ', "."))
                );
            }
            for f in &report.findings {
                let name = format!("{} {}", f.check, f.object.as_deref().unwrap_or(""));
                let _ = write!(
                    out,
                    "  <testcase classname=\"sidecar-kit.{}\" name=\"{}\"",
                    esc_xml(&f.check),
                    esc_xml(name.trim())
                );
                let body = format!(
                    "{}{}",
                    f.message,
                    f.fix
                        .as_ref()
                        .map(|x| format!(" (fix: {x})"))
                        .unwrap_or_default()
                );
                match f.severity {
                    Severity::Error => {
                        let _ = writeln!(
                            out,
                            ">\n    <failure message=\"{}\" type=\"error\"/>\n  </testcase>",
                            esc_xml(&body)
                        );
                    }
                    s => {
                        let _ = writeln!(
                            out,
                            ">\n    <system-out>{}: {}</system-out>\n  </testcase>",
                            s.as_str(),
                            esc_xml(&body)
                        );
                    }
                }
            }
            for b in &report.blind_spots {
                let _ = writeln!(
                    out,
                    "  <testcase classname=\"sidecar-kit.not-seen\" name=\"{}\">\n    <skipped message=\"needs {}\"/>\n  </testcase>",
                    esc_xml(&b.what),
                    esc_xml(&b.permission)
                );
            }
            let _ = writeln!(out, "</testsuite>");
        }
        Format::Html => {
            let _ = writeln!(
                out,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sidecar-kit {}</title>",
                esc_xml(&report.command)
            );
            let _ = writeln!(
                out,
                "<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}.error{{color:#b00}}.warning{{color:#a60}}.info{{color:#06a}}{}</style></head><body>",
                if picture.is_some() {
                    "section.timeline{margin:1.5em 0}.caption{color:#555;font-size:.9em;max-width:60em}summary h2{display:inline}"
                } else {
                    ""
                }
            );
            let _ = writeln!(out, "<h1>sidecar-kit {}</h1>", esc_xml(&report.command));
            for s in &report.summary {
                let _ = writeln!(out, "<p>{}</p>", esc_xml(s));
            }
            if let Some((header, rows)) = report.table.split_first() {
                let _ = writeln!(
                    out,
                    "<table><tr>{}</tr>",
                    header
                        .iter()
                        .map(|h| format!("<th>{}</th>", esc_xml(h)))
                        .collect::<String>()
                );
                for r in rows {
                    let _ = writeln!(
                        out,
                        "<tr>{}</tr>",
                        r.iter()
                            .map(|c| format!("<td>{}</td>", esc_xml(c)))
                            .collect::<String>()
                    );
                }
                let _ = writeln!(out, "</table>");
            }
            let _ = writeln!(out, "<h2>Findings</h2>");
            if report.findings.is_empty() {
                let _ = writeln!(out, "<p>No findings.</p>");
            } else {
                let _ = writeln!(
                    out,
                    "<table><tr><th>severity</th><th>check</th><th>object</th><th>finding</th><th>fix</th></tr>"
                );
                for f in &report.findings {
                    let _ = writeln!(
                        out,
                        "<tr><td class=\"{0}\">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
                        f.severity.as_str(),
                        esc_xml(&f.check),
                        esc_xml(f.object.as_deref().unwrap_or("-")),
                        esc_xml(&f.message),
                        esc_xml(f.fix.as_deref().unwrap_or(""))
                    );
                }
                let _ = writeln!(out, "</table>");
            }
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
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("doctor cluster");
        r.summary.push("3 nodes".into());
        r.table = vec![
            vec!["NODE".into(), "CLASS".into()],
            vec!["n1".into(), "capable".into()],
        ];
        r.findings.push(Finding::new(
            "a.warn",
            Severity::Warning,
            Some("Node n2".into()),
            "gate <off> & \"odd\"",
            Some("turn it on".into()),
        ));
        r.findings.push(Finding::new(
            "b.err",
            Severity::Error,
            None,
            "broken | piped",
            None,
        ));
        r.blind_spots.push(BlindSpot {
            what: "kubelet metrics of 3 nodes".into(),
            permission: "get on nodes/proxy".into(),
        });
        r.sorted();
        r
    }

    #[test]
    fn exit_codes_follow_fail_on() {
        let r = sample();
        assert_eq!(exit_code(&r, Severity::Error), 12);
        assert_eq!(exit_code(&r, Severity::Warning), 12);
        let mut only_warn = r.clone();
        only_warn.findings.retain(|f| f.severity != Severity::Error);
        assert_eq!(exit_code(&only_warn, Severity::Error), 0);
        assert_eq!(exit_code(&only_warn, Severity::Warning), 11);
        assert_eq!(exit_code(&only_warn, Severity::Info), 11);
        assert_eq!(exit_code(&Report::new("x"), Severity::Info), 0);
    }

    #[test]
    fn every_format_escapes_and_carries_the_findings() {
        let r = sample();
        assert_eq!(
            r.findings[0].severity,
            Severity::Error,
            "sorted by severity"
        );
        let json: Value = serde_json::from_str(&render(&r, Format::Json, None)).unwrap();
        assert_eq!(json["findings"][1]["fix"], "turn it on");
        assert!(render(&r, Format::Yaml, None).contains("check: a.warn"));
        let junit = render(&r, Format::Junit, None);
        assert!(
            junit.contains("failures=\"1\"")
                && junit.contains("&lt;off&gt;")
                && junit.contains("<skipped message=\"needs get on nodes/proxy\"/>"),
            "{junit}"
        );
        let md = render(&r, Format::Markdown, None);
        assert!(md.contains("broken \\| piped"), "{md}");
        let html = render(&r, Format::Html, Some("<svg id=\"t\"></svg>"));
        assert!(html.contains("<svg id=\"t\"></svg>") && html.contains("&quot;odd&quot;"));
        let (findings, picture) = (
            html.find("<h2>Findings</h2>").unwrap(),
            html.find("<svg").unwrap(),
        );
        assert!(findings < picture, "the findings come first: {html}");
        let table = render(&r, Format::Table, None);
        assert!(
            table.contains("not seen: kubelet metrics of 3 nodes (needs get on nodes/proxy)"),
            "{table}"
        );
    }
}
