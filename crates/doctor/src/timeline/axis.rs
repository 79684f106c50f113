//! The time axis of the charts: where a moment falls on the width (broken when the report
//! comes long after the events), its round ticks, how durations are written, and the
//! caption that says what the axis shows.

use super::Timeline;

/// A duration as the charts write it: `0s`, `0.5s`, `50s`, `2m`, `1m30s`, `3h5m`, `2d4h`.
pub fn dur(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let x = x.abs();
    if x < 60.0 {
        return if (x - x.round()).abs() < 0.05 {
            format!("{sign}{}s", x.round())
        } else {
            format!("{sign}{x:.1}s")
        };
    }
    let total = x.round() as i64;
    let (big, small, unit_big, unit_small) = if total < 3600 {
        (total / 60, total % 60, "m", "s")
    } else if total < 86_400 {
        (total / 3600, (total % 3600) / 60, "h", "m")
    } else {
        (total / 86_400, (total % 86_400) / 3600, "d", "h")
    };
    if small == 0 {
        format!("{sign}{big}{unit_big}")
    } else {
        format!("{sign}{big}{unit_big}{small}{unit_small}")
    }
}

/// The round step (0.5, 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h,
/// 1, 2, 5, 10 d, ...) that cuts `span` into at most `max_ticks` intervals.
pub fn round_step(span: f64, max_ticks: usize) -> f64 {
    const STEPS: [f64; 21] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 432_000.0,
    ];
    let max = max_ticks.max(1) as f64;
    if let Some(s) = STEPS.iter().find(|s| span / **s <= max) {
        return *s;
    }
    // Beyond: 1, 2 and 5 times powers of ten days.
    let mut s = 864_000.0;
    for _ in 0..64 {
        for m in [1.0, 2.0, 5.0] {
            if span / (s * m) <= max {
                return s * m;
            }
        }
        s *= 10.0;
    }
    span.max(1.0)
}

/// The share of the width that a broken axis gives to the events drawn to scale, and the
/// width of the break after them.
pub(super) const DETAIL_SHARE: f64 = 0.72;
const BREAK_SHARE: f64 = 0.05;
const MAX_TICKS: usize = 6;

/// How times map onto the width of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The axis ends here (seconds after t0): the report time.
    pub end: f64,
    /// A broken axis: [0, detail] is drawn to scale on the left, the rest up to `end`
    /// squeezed after the break. None: one scale from 0 to `end`.
    pub detail: Option<f64>,
    /// Round ticks (in the part drawn to scale).
    pub ticks: Vec<f64>,
}

impl Axis {
    /// The axis of a timeline. It breaks when the report comes at least two minutes, and
    /// ten times as long, after t0 as the last recorded event: drawn to one scale, the
    /// events would be squeezed into a few pixels at the left edge.
    pub fn of(t: &Timeline) -> Axis {
        let end = t.span;
        let last = t.last_event.max(0.0);
        let (detail, scaled) = if end >= 120.0 && last * 10.0 <= end {
            // Whole seconds: no finer step than 1 s before the break.
            let step = round_step(last.max(1.0), MAX_TICKS - 1).max(1.0);
            let detail = ((last / step).floor() + 1.0) * step;
            (Some(detail), detail)
        } else {
            (None, end)
        };
        let step = round_step(scaled, MAX_TICKS);
        let ticks = (0..=MAX_TICKS * 2)
            .map(|i| i as f64 * step)
            .take_while(|x| *x <= scaled + 1e-9)
            .collect();
        Axis { end, detail, ticks }
    }

    /// Where `t` falls, from 0 (t0) to 1 (the report time).
    pub fn frac(&self, t: f64) -> f64 {
        let f = match self.detail {
            None => t / self.end,
            Some(d) if t <= d => t / d * DETAIL_SHARE,
            Some(d) => {
                DETAIL_SHARE
                    + BREAK_SHARE
                    + (t - d) / (self.end - d) * (1.0 - DETAIL_SHARE - BREAK_SHARE)
            }
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The break, as shares of the width (from, to).
    pub fn break_at(&self) -> Option<(f64, f64)> {
        self.detail
            .map(|_| (DETAIL_SHARE, DETAIL_SHARE + BREAK_SHARE))
    }
}

/// What every chart says under it: what 0 and the right edge are, and what whole seconds
/// mean.
pub fn caption(t: &Timeline) -> Vec<String> {
    let axis = Axis::of(t);
    let mut lines = vec![if t.report_at < t.last_event {
        format!(
            "0s is the pod's {} ({}); the report time ({}) is before the last recorded event, so the axis ends at that event",
            t.start_from, t.start, t.report_time
        )
    } else {
        format!(
            "0s is the pod's {} ({}); the axis ends at the time the report was taken ({}, {} later): a bar that reaches the right edge was still running then",
            t.start_from,
            t.start,
            t.report_time,
            dur(axis.end)
        )
    }];
    if let Some(d) = axis.detail {
        lines.push(format!(
            "the axis is broken after {}: the events are drawn to scale, the {} after them squeezed",
            dur(d),
            dur(axis.end - d)
        ));
    }
    lines.push(
        "Kubernetes records these times in whole seconds: a run of 0s lasted less than a second, it did run"
            .into(),
    );
    lines
}
