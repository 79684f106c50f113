//! The text chart of a timeline, for the terminal.

use super::axis::{Axis, caption, dur};
use super::{Event, Row, Segment, Timeline, short};
use std::fmt::Write;

/// Columns of the text chart: 50 steps from t0 to the report time.
const WIDTH: usize = 51;

fn col(axis: &Axis, t: f64) -> usize {
    ((axis.frac(t) * (WIDTH - 1) as f64).round() as usize).min(WIDTH - 1)
}

fn run_text(s: &Segment) -> String {
    match s.end {
        None => format!("started {}", dur(s.start)),
        Some(e) => format!(
            "{}-{} exit {}",
            dur(s.start),
            dur(e),
            s.exit_code.map_or("?".into(), |c| c.to_string())
        ),
    }
}

/// The text chart: a lane per container, a line per event, the axis and its labels, then
/// the caption.
pub fn text(t: &Timeline) -> String {
    let chart = Chart::of(t);
    let mut out = String::new();
    let _ = writeln!(out, "Timeline of pod {}", t.pod);
    for r in &t.rows {
        chart.lane(r, &mut out);
    }
    for e in &t.events {
        chart.marker(e, &mut out);
    }
    chart.rule(&mut out);
    chart.tick_labels(&mut out);
    for line in caption(t) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The axis of one chart and the widths of its first two columns.
struct Chart {
    axis: Axis,
    /// Width of the name column (container or event).
    name_w: usize,
    /// Width of the kind column.
    kind_w: usize,
    /// Columns inside the axis break.
    break_cols: Vec<usize>,
}

impl Chart {
    fn of(t: &Timeline) -> Chart {
        let axis = Axis::of(t);
        let name_w = t
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .chain(t.events.iter().map(|e| short(e).chars().count()))
            .max()
            .unwrap_or(4)
            .max(4);
        let kind_w = t
            .rows
            .iter()
            .map(|r| r.kind.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let break_cols: Vec<usize> = axis
            .break_at()
            .map(|(a, b)| {
                let (a, b) = (
                    (a * (WIDTH - 1) as f64).round() as usize,
                    (b * (WIDTH - 1) as f64).round() as usize,
                );
                (a + 1..b).collect()
            })
            .unwrap_or_default();
        Chart {
            axis,
            name_w,
            kind_w,
            break_cols,
        }
    }

    fn col(&self, t: f64) -> usize {
        col(&self.axis, t)
    }

    /// One line of the chart: name, kind, the cells between bars, and what follows.
    fn line(&self, out: &mut String, name: &str, kind: &str, cells: &[char], tail: &str) {
        let (name_w, kind_w) = (self.name_w, self.kind_w);
        let _ = writeln!(
            out,
            "  {name:name_w$}  {kind:kind_w$}  |{}| {tail}",
            cells.iter().collect::<String>()
        );
    }

    /// A container's lane: `=` while it runs, `|` where it exits with 0, `x` where it
    /// fails, `>` when it still runs at the report time; then its runs in words.
    fn lane(&self, r: &Row, out: &mut String) {
        let mut cells = [' '; WIDTH];
        for s in &r.segments {
            let a = self.col(s.start);
            let b = s.end.map_or(WIDTH - 1, |e| self.col(e));
            for c in cells.iter_mut().take(b + 1).skip(a) {
                *c = '=';
            }
        }
        // Ends over runs: an exit stays visible where the next run starts.
        for s in &r.segments {
            match (s.end, s.exit_code) {
                (None, _) => cells[WIDTH - 1] = '>',
                (Some(e), Some(code)) => {
                    cells[self.col(e)] = if code == 0 { '|' } else { 'x' };
                }
                (Some(_), None) => {}
            }
        }
        for &c in &self.break_cols {
            cells[c] = if cells[c] == ' ' { ':' } else { '~' };
        }
        let runs: Vec<String> = r.segments.iter().map(run_text).collect();
        let tail = format!(
            "{}{}{}",
            if runs.is_empty() {
                format!("never started ({})", r.state)
            } else if r.segments.last().is_some_and(|s| s.end.is_none()) {
                format!("{}, running", runs.join(", "))
            } else {
                runs.join(", ")
            },
            if r.ready { ", ready" } else { "" },
            if r.restarts > 0 {
                format!(", {} restart(s)", r.restarts)
            } else {
                String::new()
            }
        );
        self.line(out, &r.name, &r.kind, &cells, &tail);
    }

    /// An event's line: `^` at its moment, then when and what.
    fn marker(&self, e: &Event, out: &mut String) {
        let mut cells = [' '; WIDTH];
        for &c in &self.break_cols {
            cells[c] = ':';
        }
        cells[self.col(e.at)] = '^';
        let tail = if e.kind == "condition" {
            dur(e.at)
        } else {
            format!("{}: {}", dur(e.at), e.label)
        };
        self.line(out, &short(e), "", &cells, &tail);
    }

    /// The axis: '+' at each round tick, '~' in the break, '|' at the report time.
    fn rule(&self, out: &mut String) {
        let mut rule = ['-'; WIDTH];
        for &x in &self.axis.ticks {
            rule[self.col(x)] = '+';
        }
        for &c in &self.break_cols {
            rule[c] = '~';
        }
        rule[WIDTH - 1] = '|';
        let (name_w, kind_w) = (self.name_w, self.kind_w);
        let _ = writeln!(
            out,
            "  {:name_w$}  {:kind_w$}   {}",
            "",
            "",
            rule.iter().collect::<String>()
        );
    }

    /// Tick labels start at their tick; the report time's ends at the right edge, and a
    /// tick label in its way is left out.
    fn tick_labels(&self, out: &mut String) {
        let end_label = dur(self.axis.end);
        let end_at = (WIDTH + 1).saturating_sub(end_label.chars().count());
        let mut placed: Vec<(usize, String)> = Vec::new();
        for &x in &self.axis.ticks {
            let label = dur(x);
            let start = self.col(x) + 1;
            let free = placed
                .last()
                .is_none_or(|(s, l)| start > s + l.chars().count());
            if free && start + label.chars().count() < end_at {
                placed.push((start, label));
            }
        }
        placed.push((end_at, end_label));
        let mut labels = String::new();
        for (start, label) in placed {
            let pad = start.saturating_sub(labels.chars().count());
            labels.push_str(&" ".repeat(pad));
            labels.push_str(&label);
        }
        let (name_w, kind_w) = (self.name_w, self.kind_w);
        let _ = writeln!(out, "  {:name_w$}  {:kind_w$}  {labels}", "", "");
    }
}
