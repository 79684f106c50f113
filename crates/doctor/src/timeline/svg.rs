//! The SVG chart of a timeline, and its section of the HTML report.

use super::axis::{Axis, caption, dur};
use super::{Event, Row, Segment, Timeline, short};
use crate::report::esc_xml as esc;
use std::fmt::Write;

/// An id for the pod's section of the HTML report.
pub fn anchor(t: &Timeline) -> String {
    let id: String = t
        .pod
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("timeline-{id}")
}

fn num(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// Fixed sizes of the SVG chart, in pixels.
const LABEL_W: f64 = 240.0;
const CHART_W: f64 = 560.0;
const RIGHT: f64 = 90.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 44.0;

/// The SVG chart of one pod. Elements carry stable classes and `data-` attributes for
/// whoever reads the drawing back: `axis` (from t0 to the report time), `tick`,
/// `report-time`, `run` (one container run), `event` (rejection, restart, app finished,
/// pod condition) and `axis-break`.
pub fn svg(t: &Timeline) -> String {
    let c = Canvas::of(t);
    let mut out = String::new();
    c.open(t, &mut out);
    c.ticks(&mut out);
    for (i, r) in t.rows.iter().enumerate() {
        c.lane(r, TOP + ROW_H * i as f64, &mut out);
    }
    c.axis_break(&mut out);
    for (j, e) in t.events.iter().enumerate() {
        c.marker(e, TOP + ROW_H * (t.rows.len() + j) as f64, &mut out);
    }
    c.axis_line(&mut out);
    out.push_str("</svg>\n");
    out
}

/// The axis of one chart and where its rows end.
struct Canvas {
    axis: Axis,
    /// The axis line's y: under the last row.
    bottom: f64,
}

impl Canvas {
    fn of(t: &Timeline) -> Canvas {
        let rows = t.rows.len() + t.events.len();
        Canvas {
            axis: Axis::of(t),
            bottom: TOP + ROW_H * rows as f64 + 4.0,
        }
    }

    /// The x of a moment (seconds after t0).
    fn x(&self, s: f64) -> f64 {
        LABEL_W + self.axis.frac(s) * CHART_W
    }

    /// The `<svg>` element and the legend line of colours.
    fn open(&self, t: &Timeline, out: &mut String) {
        let height = self.bottom + 26.0;
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"container timeline of {}\">",
            num(LABEL_W + CHART_W + RIGHT),
            num(height),
            esc(&t.pod)
        );
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"14\" fill=\"#555\">grey: init container, blue: native sidecar, purple: legacy sidecar, green: app container; red outline: non-zero exit</text>"
        );
    }

    /// A grid line and a label at each round tick.
    fn ticks(&self, out: &mut String) {
        for &at in &self.axis.ticks {
            let _ = writeln!(
                out,
                "<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e4e4e4\"/><text class=\"tick\" data-at=\"{3}\" x=\"{0}\" y=\"{4}\" text-anchor=\"middle\" fill=\"#555\">{5}</text>",
                num(self.x(at)),
                num(TOP - 4.0),
                num(self.bottom),
                num(at),
                num(self.bottom + 16.0),
                dur(at)
            );
        }
    }

    /// A container's lane at `y`: its name and kind, and a bar per run (or "never
    /// started").
    fn lane(&self, r: &Row, y: f64, out: &mut String) {
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{}\">{} ({})</text>",
            num(y + 15.0),
            esc(&r.name),
            esc(&r.kind.replace('-', " "))
        );
        if r.segments.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"#888\" font-style=\"italic\">never started ({})</text>",
                num(LABEL_W + 4.0),
                num(y + 15.0),
                esc(&r.state)
            );
        }
        for s in &r.segments {
            self.run(r, s, y, out);
        }
    }

    /// One run's bar, coloured by the container's kind, outlined red for a failed exit.
    fn run(&self, r: &Row, s: &Segment, y: f64, out: &mut String) {
        let color = match r.kind.as_str() {
            "sidecar" => "#2a7ab9",
            "legacy-sidecar" => "#7b5ab6",
            "init" => "#8a8a8a",
            _ => "#3c9a5f",
        };
        let end = s.end.unwrap_or(self.axis.end);
        let title = match s.end {
            Some(e) => format!(
                "{}: {}-{}, exit {}",
                r.name,
                dur(s.start),
                dur(e),
                s.exit_code.map_or("?".into(), |c| c.to_string())
            ),
            None => format!(
                "{}: started {}, still running at the report time ({})",
                r.name,
                dur(s.start),
                dur(self.axis.end)
            ),
        };
        let _ = writeln!(
            out,
            "<rect class=\"run\" data-container=\"{}\" data-start=\"{}\" data-end=\"{}\" data-running=\"{}\"{} x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"{color}\"{}><title>{}</title></rect>",
            esc(&r.name),
            num(s.start),
            num(end),
            s.end.is_none(),
            s.exit_code
                .map_or(String::new(), |c| format!(" data-exit-code=\"{c}\"")),
            num(self.x(s.start)),
            num(y + 4.0),
            num((self.x(end) - self.x(s.start)).max(3.0)),
            if s.exit_code.is_some_and(|c| c != 0) {
                " stroke=\"#b00\" stroke-width=\"2\""
            } else {
                ""
            },
            esc(&title)
        );
    }

    /// The break of a broken axis: a veil over the lanes and two strokes on the axis.
    fn axis_break(&self, out: &mut String) {
        let Some((a, b)) = self.axis.break_at() else {
            return;
        };
        let (xa, xb) = (LABEL_W + a * CHART_W, LABEL_W + b * CHART_W);
        let _ = writeln!(
            out,
            "<g class=\"axis-break\" data-from=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" opacity=\"0.85\"/><path d=\"M{} {} l6 -10 M{} {} l6 -10\" stroke=\"#555\"/></g>",
            num(self.axis.detail.unwrap_or(0.0)),
            num(xa),
            num(TOP - 4.0),
            num(xb - xa),
            num(self.bottom - TOP + 4.0),
            num(xa + 2.0),
            num(self.bottom + 5.0),
            num(xb - 8.0),
            num(self.bottom + 5.0)
        );
    }

    /// An event's row at `y`: its name, a dashed line from the top with a triangle at its
    /// moment, and what happened beside it.
    fn marker(&self, e: &Event, y: f64, out: &mut String) {
        let color = match e.kind.as_str() {
            "rejected" => "#b00",
            "restart" => "#d07000",
            "app-finished" => "#1d6b3c",
            _ => "#777",
        };
        // The label goes beside the marker, on the side with room.
        let right_of = self.axis.frac(e.at) < 0.6;
        let detail = if e.kind == "condition" {
            format!("at {}", dur(e.at))
        } else {
            format!("{} at {}", e.label, dur(e.at))
        };
        let x = self.x(e.at);
        let _ = writeln!(
            out,
            "<g class=\"event\" data-kind=\"{kind}\" data-at=\"{at}\"{container}{code}><text x=\"4\" y=\"{ty}\">{name}</text><text x=\"{tx}\" y=\"{ty}\" text-anchor=\"{anchor}\" fill=\"{color}\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{detail}</text><line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"{color}\" stroke-dasharray=\"3 3\"/><path d=\"M{x} {y2} l-6 12 h12 z\" fill=\"{color}\"/><title>{label} at {when}</title></g>",
            kind = e.kind,
            at = num(e.at),
            container = e
                .container
                .as_ref()
                .map_or(String::new(), |c| format!(" data-container=\"{}\"", esc(c))),
            code = e
                .exit_code
                .map_or(String::new(), |c| format!(" data-exit-code=\"{c}\"")),
            ty = num(y + 15.0),
            name = esc(&short(e)),
            tx = num(if right_of { x + 10.0 } else { x - 10.0 }),
            anchor = if right_of { "start" } else { "end" },
            detail = esc(&detail),
            label = esc(&e.label),
            x = num(x),
            y1 = num(TOP - 4.0),
            y2 = num(y + 4.0),
            when = dur(e.at)
        );
    }

    /// The axis, from t0 to the report time, and the report time itself.
    fn axis_line(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "<line class=\"axis\" data-start=\"0\" data-end=\"{end}\" x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#555\"/>",
            end = num(self.axis.end),
            x1 = num(self.x(0.0)),
            y = num(self.bottom),
            x2 = num(self.x(self.axis.end))
        );
        let _ = writeln!(
            out,
            "<line class=\"report-time\" data-at=\"{}\" x1=\"{1}\" y1=\"{2}\" x2=\"{1}\" y2=\"{3}\" stroke=\"#222\" stroke-width=\"2\"/><text x=\"{1}\" y=\"{4}\" text-anchor=\"middle\" fill=\"#222\">report time ({5})</text>",
            num(self.axis.end),
            num(self.x(self.axis.end)),
            num(TOP - 12.0),
            num(self.bottom),
            num(TOP - 16.0),
            dur(self.axis.end)
        );
    }
}

/// One pod's section of the HTML report: a heading, the chart and its caption.
pub fn html(t: &Timeline) -> String {
    let mut out = format!(
        "<section class=\"timeline\" id=\"{}\">\n<h3>Timeline of pod {}</h3>\n",
        anchor(t),
        esc(&t.pod)
    );
    out.push_str(&svg(t));
    let _ = writeln!(
        out,
        "<p class=\"caption\">{}</p>\n</section>",
        caption(t)
            .iter()
            .map(|l| {
                let mut c = esc(l);
                c.push('.');
                c
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    out
}
