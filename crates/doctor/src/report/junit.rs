//! The `junit` output: one test suite per report, a test case per finding (errors fail,
//! the rest print), and a skipped case per thing not seen.

use super::{Finding, Report, Severity, esc_xml, message_with_fix};
use std::fmt::Write;

/// Writes a report as JUnit XML.
pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
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
        test_case(f, &mut out);
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
    out
}

/// One finding's test case: a failure for an error, printed output otherwise.
fn test_case(f: &Finding, out: &mut String) {
    let name = format!("{} {}", f.check, f.object.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        "  <testcase classname=\"sidecar-kit.{}\" name=\"{}\"",
        esc_xml(&f.check),
        esc_xml(name.trim())
    );
    let body = message_with_fix(f);
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
