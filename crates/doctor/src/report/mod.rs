//! Findings, reports, output formats and exit codes shared by every doctor command; each
//! output format but JSON and YAML is written by its own module.

use serde::Serialize;
use serde_json::Value;

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

/// A table's header row.
pub fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
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

mod html;
mod junit;
mod markdown;
mod text;

/// Escapes text for XML and HTML, attribute values included.
pub(crate) fn esc_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A finding's message, followed by ` (fix: ...)` when it has a fix.
fn message_with_fix(f: &Finding) -> String {
    match &f.fix {
        Some(fix) => format!("{} (fix: {fix})", f.message),
        None => f.message.clone(),
    }
}

/// A finding as the cells of a findings table: severity, check, object (`-` without one),
/// message, fix (empty without one).
fn finding_cells(f: &Finding) -> [&str; 5] {
    [
        f.severity.as_str(),
        &f.check,
        f.object.as_deref().unwrap_or("-"),
        &f.message,
        f.fix.as_deref().unwrap_or(""),
    ]
}

/// Writes a report. `picture` is HTML (with SVG charts) that HTML output puts after the
/// findings (ignored elsewhere).
pub fn render(report: &Report, format: Format, picture: Option<&str>) -> String {
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Yaml => serde_saphyr::to_string(report).unwrap_or_default(),
        Format::Table => text::render(report),
        Format::Markdown => markdown::render(report),
        Format::Junit => junit::render(report),
        Format::Html => html::render(report, picture),
    }
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
