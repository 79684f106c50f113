//! What `doctor pods` hands back ([`PodsResult`]: the report and the timelines drawn) and
//! its text and HTML pages.

use crate::report::{Format, Report, render};
use crate::timeline::{self, Timeline, Timestamp};

/// The report and the timelines drawn.
pub struct PodsResult {
    pub report: Report,
    /// Pods with a finding first (in the order of the sorted findings), then the others
    /// (by name); at most [`MAX_TIMELINES`](super::MAX_TIMELINES).
    pub timelines: Vec<Timeline>,
    /// How many of `timelines`, from the start, are of pods with a finding.
    pub with_findings: usize,
    /// The time the report was taken at, to the second.
    pub report_time: Timestamp,
}

/// The report as text: the summary, the table and the findings, then the timelines.
pub fn text(r: &PodsResult) -> String {
    let mut t = render(&r.report, Format::Table, None);
    for tl in &r.timelines {
        t.push('\n');
        t.push_str(&timeline::text(tl));
    }
    t
}

/// The report as an HTML page: the summary, the table and the findings first, then the
/// timeline of each pod with a finding, then (in a section the reader can fold) the
/// timelines of the other pods.
pub fn html(r: &PodsResult) -> String {
    let (flagged, others) = r.timelines.split_at(r.with_findings.min(r.timelines.len()));
    let mut extra = String::new();
    if !flagged.is_empty() {
        extra.push_str("<h2>Timelines of the pods with findings</h2>\n");
        for t in flagged {
            extra.push_str(&timeline::html(t));
        }
    }
    if !others.is_empty() {
        extra.push_str(&format!(
            "<details class=\"other-timelines\" open>\n<summary><h2>Timelines of {} other pod(s)</h2></summary>\n",
            others.len()
        ));
        for t in others {
            extra.push_str(&timeline::html(t));
        }
        extra.push_str("</details>\n");
    }
    render(
        &r.report,
        Format::Html,
        (!extra.is_empty()).then_some(extra.as_str()),
    )
}
