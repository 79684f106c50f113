//! Each container's runs, exits and restarts over a pod's life, from its status, up to the
//! moment the report was taken: a text chart for the terminal and an SVG chart for
//! `-o html`. Times are seconds after the pod's `startTime`; the axis ends at the report
//! time, so a container that still runs reaches the right edge and a stall is drawn as long
//! as it has lasted. Where the report comes long after the last recorded event, the axis is
//! broken: the events are drawn to scale, the wait after them squeezed.

pub use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};
use std::fmt::Write;

/// One run of a container.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Seconds after t0.
    pub start: f64,
    /// Seconds after t0; None while it runs.
    pub end: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// One container's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub name: String,
    /// `init`, `sidecar` (native), `legacy-sidecar` (a regular container that sidecar-kit's
    /// status annotation records as added) or `container` (an app container).
    pub kind: String,
    pub segments: Vec<Segment>,
    pub ready: bool,
    pub restarts: i64,
    /// `running`, `waiting: REASON`, `terminated: REASON (exit N)`.
    pub state: String,
}

/// Something that happened at one moment of the pod's life.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `rejected` (the node refused the pod), `restart` (a container's last restart),
    /// `app-finished` (every app container has finished) or `condition` (a pod condition
    /// turned True).
    pub kind: String,
    /// Seconds after t0.
    pub at: f64,
    /// What the chart says, e.g. `log-shipper restarted (exit 0)` or `pod Ready`.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// A pod's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub pod: String,
    /// t0, RFC 3339.
    pub start: String,
    /// Where t0 comes from: `startTime`, or `creationTimestamp` for a pod not yet started.
    pub start_from: String,
    /// When the report was taken, RFC 3339.
    pub report_time: String,
    /// The report time in seconds after t0.
    pub report_at: f64,
    pub rows: Vec<Row>,
    /// Rejection, restarts, the app's finish and pod conditions, in time order.
    pub events: Vec<Event>,
    /// The last moment the status mentions, in seconds after t0.
    pub last_event: f64,
    /// Where the axis ends, in seconds after t0: the report time (or the last event, when
    /// the report time is earlier).
    pub span: f64,
}

fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let t: Timestamp = s.parse().ok()?;
    Some(t.as_millisecond())
}

/// The regular containers that sidecar-kit's status annotation records as added (its
/// legacy sidecars), or None when the pod carries no readable annotation.
fn added_containers(pod: &Value) -> Option<Vec<String>> {
    let st = pod["metadata"]["annotations"][STATUS_ANNOTATION]
        .as_str()
        .and_then(|s| Status::parse(s).ok())?;
    Some(st.all_added().containers)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { one.into() } else { many.into() }
}

/// Builds the timeline of a pod (raw JSON) as of `report_time`, or None when it has
/// neither a `startTime` nor a `creationTimestamp`.
pub fn of(pod: &Value, report_time: Timestamp) -> Option<Timeline> {
    let status = &pod["status"];
    let (start_from, t0_value, t0) = [
        ("startTime", &status["startTime"]),
        ("creationTimestamp", &pod["metadata"]["creationTimestamp"]),
    ]
    .into_iter()
    .find_map(|(from, v)| ts(v).map(|t| (from, v, t)))?;
    let rel = |v: &Value| ts(v).map(|t| (t - t0) as f64 / 1000.0);
    let mut last: f64 = 0.0;
    let mut rows = Vec::new();
    let mut events = Vec::new();
    let added = added_containers(pod);
    let spec_inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (list, spec_list) in [
        ("initContainerStatuses", "initContainers"),
        ("containerStatuses", "containers"),
    ] {
        for name in pod["spec"][spec_list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
        {
            let cs = status[list]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["name"] == name))
                .unwrap_or(&Value::Null);
            let kind = if spec_list == "containers" {
                if added.iter().flatten().any(|a| a == name) {
                    "legacy-sidecar"
                } else {
                    "container"
                }
            } else if spec_inits
                .iter()
                .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
            {
                "sidecar"
            } else {
                "init"
            };
            let restarts = cs["restartCount"].as_i64().unwrap_or(0);
            let mut segments = Vec::new();
            for (which, st) in [("lastState", &cs["lastState"]), ("state", &cs["state"])] {
                if let Some(t) = st.get("terminated") {
                    if let Some(start) = rel(&t["startedAt"]) {
                        let end = rel(&t["finishedAt"]);
                        let code = t["exitCode"].as_i64();
                        last = last.max(start).max(end.unwrap_or(start));
                        segments.push(Segment {
                            start,
                            end,
                            exit_code: code,
                        });
                        if which == "lastState" {
                            let n = restarts.max(1);
                            events.push(Event {
                                kind: "restart".into(),
                                at: end.unwrap_or(start),
                                label: format!(
                                    "{name} restarted (exit {}){}",
                                    code.map_or("?".into(), |c| c.to_string()),
                                    if n > 1 {
                                        format!(", the last of {n} restarts")
                                    } else {
                                        String::new()
                                    }
                                ),
                                container: Some(name.to_string()),
                                exit_code: code,
                            });
                        }
                    }
                } else if let Some(r) = st.get("running")
                    && let Some(start) = rel(&r["startedAt"])
                {
                    last = last.max(start);
                    segments.push(Segment {
                        start,
                        end: None,
                        exit_code: None,
                    });
                }
            }
            let state = &cs["state"];
            let state_text = if state.get("running").is_some() {
                "running".to_string()
            } else if let Some(w) = state.get("waiting") {
                format!("waiting: {}", w["reason"].as_str().unwrap_or("-"))
            } else if let Some(t) = state.get("terminated") {
                format!(
                    "terminated: {} (exit {})",
                    t["reason"].as_str().unwrap_or("-"),
                    t["exitCode"].as_i64().unwrap_or(-1)
                )
            } else {
                "no status".to_string()
            };
            rows.push(Row {
                name: name.to_string(),
                kind: kind.into(),
                segments,
                ready: cs["ready"].as_bool().unwrap_or(false),
                restarts,
                state: state_text,
            });
        }
    }

    // Refused by the node: the kubelet fails the pod at admission, before any container.
    let reason = status["reason"].as_str().unwrap_or_default();
    if status["phase"] == "Failed"
        && !reason.is_empty()
        && rows.iter().all(|r| r.segments.is_empty())
    {
        events.push(Event {
            kind: "rejected".into(),
            at: 0.0,
            label: format!("rejected by the node ({reason})"),
            container: None,
            exit_code: None,
        });
    }

    // The app finished: every app container has terminated. Without sidecar-kit's status
    // annotation, in a pod that does not restart its containers, the finished containers
    // next to running ones are taken for the app (as the job-kept-alive check does).
    let finished = |r: &Row| r.state.starts_with("terminated") && r.segments.last().is_some();
    let mut apps: Vec<&Row> = rows.iter().filter(|r| r.kind == "container").collect();
    if added.is_none()
        && pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") != "Always"
        && apps.iter().any(|r| r.state == "running")
    {
        apps.retain(|r| finished(r));
    }
    if !apps.is_empty()
        && apps.iter().all(|r| finished(r))
        && let Some(at) = apps
            .iter()
            .filter_map(|r| r.segments.last().and_then(|s| s.end))
            .max_by(f64::total_cmp)
    {
        let names: Vec<&str> = apps.iter().map(|r| r.name.as_str()).collect();
        let code = match apps.as_slice() {
            [one] => one.segments.last().and_then(|s| s.exit_code),
            _ => None,
        };
        events.push(Event {
            kind: "app-finished".into(),
            at,
            label: format!(
                "{} finished ({}{})",
                plural(names.len(), "app", "apps"),
                names.join(", "),
                code.map_or(String::new(), |c| format!(", exit {c}"))
            ),
            container: None,
            exit_code: code,
        });
    }

    for c in status["conditions"].as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or_default();
        if c["status"] == "True"
            && ["Initialized", "ContainersReady", "Ready"].contains(&kind)
            && let Some(t) = rel(&c["lastTransitionTime"])
        {
            events.push(Event {
                kind: "condition".into(),
                at: t,
                label: format!("pod {kind}"),
                container: None,
                exit_code: None,
            });
        }
    }
    for e in &events {
        last = last.max(e.at);
    }
    events.sort_by(|a, b| a.at.total_cmp(&b.at).then_with(|| a.label.cmp(&b.label)));
    let now = (report_time.as_millisecond() - t0) as f64 / 1000.0;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let span = now.max(last);
    Some(Timeline {
        pod: format!("{ns}/{name}"),
        start: t0_value.as_str().unwrap_or_default().to_string(),
        start_from: start_from.into(),
        report_time: report_time.to_string(),
        report_at: now,
        rows,
        events,
        last_event: last,
        span: if span <= 0.0 { 1.0 } else { span },
    })
}

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
const DETAIL_SHARE: f64 = 0.72;
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

/// Columns of the text chart: 50 steps from t0 to the report time.
const WIDTH: usize = 51;

fn col(axis: &Axis, t: f64) -> usize {
    ((axis.frac(t) * (WIDTH - 1) as f64).round() as usize).min(WIDTH - 1)
}

/// An event's name in the text chart's first column; its label follows the row.
fn short(e: &Event) -> String {
    match e.kind.as_str() {
        "rejected" => "rejected".into(),
        "restart" => "restart".into(),
        "app-finished" => "app finished".into(),
        _ => e.label.clone(),
    }
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

/// The text chart.
pub fn text(t: &Timeline) -> String {
    let axis = Axis::of(t);
    let mut out = String::new();
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
    let _ = writeln!(out, "Timeline of pod {}", t.pod);
    let blank = |out: &mut String, label: &str, cells: &[char], tail: &str| {
        let _ = writeln!(
            out,
            "  {label:name_w$}  {:kind_w$}  |{}| {tail}",
            "",
            cells.iter().collect::<String>()
        );
    };
    for r in &t.rows {
        let mut cells = [' '; WIDTH];
        for s in &r.segments {
            let a = col(&axis, s.start);
            let b = s.end.map_or(WIDTH - 1, |e| col(&axis, e));
            for c in cells.iter_mut().take(b + 1).skip(a) {
                *c = '=';
            }
        }
        // Ends over runs: an exit stays visible where the next run starts.
        for s in &r.segments {
            match (s.end, s.exit_code) {
                (None, _) => cells[WIDTH - 1] = '>',
                (Some(e), Some(code)) => {
                    cells[col(&axis, e)] = if code == 0 { '|' } else { 'x' };
                }
                (Some(_), None) => {}
            }
        }
        for &c in &break_cols {
            cells[c] = if cells[c] == ' ' { ':' } else { '~' };
        }
        let runs: Vec<String> = r.segments.iter().map(run_text).collect();
        let _ = writeln!(
            out,
            "  {:name_w$}  {:kind_w$}  |{}| {}{}{}",
            r.name,
            r.kind,
            cells.iter().collect::<String>(),
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
    }
    for e in &t.events {
        let mut cells = [' '; WIDTH];
        for &c in &break_cols {
            cells[c] = ':';
        }
        cells[col(&axis, e.at)] = '^';
        let tail = if e.kind == "condition" {
            dur(e.at)
        } else {
            format!("{}: {}", dur(e.at), e.label)
        };
        blank(&mut out, &short(e), &cells, &tail);
    }
    // The axis: '+' at each round tick, '|' at the report time, the labels under it.
    let mut rule = ['-'; WIDTH];
    for &x in &axis.ticks {
        rule[col(&axis, x)] = '+';
    }
    for &c in &break_cols {
        rule[c] = '~';
    }
    rule[WIDTH - 1] = '|';
    let _ = writeln!(
        out,
        "  {:name_w$}  {:kind_w$}   {}",
        "",
        "",
        rule.iter().collect::<String>()
    );
    // Tick labels start at their tick; the report time's ends at the right edge, and a
    // tick label in its way is left out.
    let end_label = dur(axis.end);
    let end_at = (WIDTH + 1).saturating_sub(end_label.chars().count());
    let mut placed: Vec<(usize, String)> = Vec::new();
    for &x in &axis.ticks {
        let label = dur(x);
        let start = col(&axis, x) + 1;
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
    let _ = writeln!(out, "  {:name_w$}  {:kind_w$}  {labels}", "", "");
    for line in caption(t) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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

/// The SVG chart of one pod. Elements carry stable classes and `data-` attributes for
/// whoever reads the drawing back: `axis` (from t0 to the report time), `tick`,
/// `report-time`, `run` (one container run), `event` (rejection, restart, app finished,
/// pod condition) and `axis-break`.
pub fn svg(t: &Timeline) -> String {
    let axis = Axis::of(t);
    let label_w = 240.0;
    let chart_w = 560.0;
    let right = 90.0;
    let row_h = 22.0;
    let top = 44.0;
    let rows = t.rows.len() + t.events.len();
    let bottom = top + row_h * rows as f64 + 4.0;
    let height = bottom + 26.0;
    let x = |s: f64| label_w + axis.frac(s) * chart_w;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"container timeline of {}\">",
        num(label_w + chart_w + right),
        num(height),
        esc(&t.pod)
    );
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"14\" fill=\"#555\">grey: init container, blue: native sidecar, purple: legacy sidecar, green: app container; red outline: non-zero exit</text>"
    );
    for &at in &axis.ticks {
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e4e4e4\"/><text class=\"tick\" data-at=\"{3}\" x=\"{0}\" y=\"{4}\" text-anchor=\"middle\" fill=\"#555\">{5}</text>",
            num(x(at)),
            num(top - 4.0),
            num(bottom),
            num(at),
            num(bottom + 16.0),
            dur(at)
        );
    }
    for (i, r) in t.rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let color = match r.kind.as_str() {
            "sidecar" => "#2a7ab9",
            "legacy-sidecar" => "#7b5ab6",
            "init" => "#8a8a8a",
            _ => "#3c9a5f",
        };
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
                num(label_w + 4.0),
                num(y + 15.0),
                esc(&r.state)
            );
        }
        for s in &r.segments {
            let end = s.end.unwrap_or(axis.end);
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
                    dur(axis.end)
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
                num(x(s.start)),
                num(y + 4.0),
                num((x(end) - x(s.start)).max(3.0)),
                if s.exit_code.is_some_and(|c| c != 0) {
                    " stroke=\"#b00\" stroke-width=\"2\""
                } else {
                    ""
                },
                esc(&title)
            );
        }
    }
    if let Some((a, b)) = axis.break_at() {
        let (xa, xb) = (label_w + a * chart_w, label_w + b * chart_w);
        let _ = writeln!(
            out,
            "<g class=\"axis-break\" data-from=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" opacity=\"0.85\"/><path d=\"M{} {} l6 -10 M{} {} l6 -10\" stroke=\"#555\"/></g>",
            num(axis.detail.unwrap_or(0.0)),
            num(xa),
            num(top - 4.0),
            num(xb - xa),
            num(bottom - top + 4.0),
            num(xa + 2.0),
            num(bottom + 5.0),
            num(xb - 8.0),
            num(bottom + 5.0)
        );
    }
    for (j, e) in t.events.iter().enumerate() {
        let y = top + row_h * (t.rows.len() + j) as f64;
        let color = match e.kind.as_str() {
            "rejected" => "#b00",
            "restart" => "#d07000",
            "app-finished" => "#1d6b3c",
            _ => "#777",
        };
        // The label goes beside the marker, on the side with room.
        let right_of = axis.frac(e.at) < 0.6;
        let detail = if e.kind == "condition" {
            format!("at {}", dur(e.at))
        } else {
            format!("{} at {}", e.label, dur(e.at))
        };
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
            tx = num(if right_of {
                x(e.at) + 10.0
            } else {
                x(e.at) - 10.0
            }),
            anchor = if right_of { "start" } else { "end" },
            detail = esc(&detail),
            label = esc(&e.label),
            x = num(x(e.at)),
            y1 = num(top - 4.0),
            y2 = num(y + 4.0),
            when = dur(e.at)
        );
    }
    // The axis, from t0 to the report time, and the report time itself.
    let _ = writeln!(
        out,
        "<line class=\"axis\" data-start=\"0\" data-end=\"{end}\" x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#555\"/>",
        end = num(axis.end),
        x1 = num(x(0.0)),
        y = num(bottom),
        x2 = num(x(axis.end))
    );
    let _ = writeln!(
        out,
        "<line class=\"report-time\" data-at=\"{}\" x1=\"{1}\" y1=\"{2}\" x2=\"{1}\" y2=\"{3}\" stroke=\"#222\" stroke-width=\"2\"/><text x=\"{1}\" y=\"{4}\" text-anchor=\"middle\" fill=\"#222\">report time ({5})</text>",
        num(axis.end),
        num(x(axis.end)),
        num(top - 12.0),
        num(bottom),
        num(top - 16.0),
        dur(axis.end)
    );
    out.push_str("</svg>\n");
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {
                "startTime": "2026-01-01T10:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T10:00:04Z"}],
                "initContainerStatuses": [{"name": "proxy", "ready": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 0, "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:00:01Z"}},
                    "state": {"running": {"startedAt": "2026-01-01T10:00:01Z"}}}],
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 143, "reason": "Error", "startedAt": "2026-01-01T10:00:03Z", "finishedAt": "2026-01-01T10:00:10Z"}}}]
            }
        })
    }

    #[test]
    fn rows_segments_and_events() {
        let t = of(&pod(), at("2026-01-01T10:00:30Z")).unwrap();
        assert_eq!((t.last_event, t.span), (10.0, 30.0));
        assert_eq!(t.report_time, "2026-01-01T10:00:30Z");
        assert_eq!(t.rows[0].kind, "sidecar");
        assert_eq!(t.rows[0].segments.len(), 2);
        assert_eq!(t.rows[1].segments[0].exit_code, Some(143));
        let events: Vec<(&str, f64, &str)> = t
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.at, e.label.as_str()))
            .collect();
        assert_eq!(
            events,
            vec![
                ("restart", 1.0, "proxy restarted (exit 0)"),
                ("condition", 4.0, "pod Ready"),
                ("app-finished", 10.0, "app finished (app, exit 143)"),
            ]
        );
        let text = text(&t);
        assert!(
            text.contains("0s-1s exit 0, started 1s, running, ready, 1 restart(s)"),
            "{text}"
        );
        assert!(text.contains("3s-10s exit 143"), "{text}");
        assert!(text.contains("pod Ready"), "{text}");
        assert!(text.contains("whole seconds"), "{text}");
        let svg = svg(&t);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("stroke=\"#b00\""), "a failed exit is outlined");
        assert!(html(&t).contains("<h3>Timeline of pod shop/web-1</h3>"));
        assert!(
            of(
                &json!({"metadata": {}, "status": {}}),
                at("2026-01-01T10:00:30Z")
            )
            .is_none()
        );
    }

    #[test]
    fn a_report_taken_before_the_last_event_ends_the_axis_there() {
        let t = of(&pod(), at("2026-01-01T10:00:05Z")).unwrap();
        assert_eq!(t.span, 10.0);
        assert!(
            caption(&t)[0].contains("before the last recorded event"),
            "{:?}",
            caption(&t)
        );
    }

    #[test]
    fn round_steps() {
        let cases = [
            (1.0, 0.5),
            (2.0, 0.5),
            (4.0, 1.0),
            (9.0, 2.0),
            (13.0, 5.0),
            (50.0, 10.0),
            (61.0, 15.0),
            (600.0, 120.0),
            (3.0 * 86_400.0, 43_200.0),
            (400.0 * 86_400.0, 8_640_000.0),
        ];
        for (span, step) in cases {
            assert_eq!(round_step(span, 6), step, "span {span}");
        }
    }

    #[test]
    fn durations() {
        for (x, s) in [
            (0.0, "0s"),
            (0.5, "0.5s"),
            (50.0, "50s"),
            (60.0, "1m"),
            (90.0, "1m30s"),
            (3.0 * 3600.0 + 300.0, "3h5m"),
            (2.0 * 86_400.0 + 4.0 * 3600.0, "2d4h"),
            (-2.0, "-2s"),
            (f64::NAN, "?"),
        ] {
            assert_eq!(dur(x), s);
        }
    }

    #[test]
    fn the_ticks_of_a_fifty_second_stall_are_round() {
        let t = of(&pod(), at("2026-01-01T10:00:50Z")).unwrap();
        let axis = Axis::of(&t);
        assert_eq!(axis.detail, None);
        assert_eq!(axis.ticks, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(axis.frac(25.0), 0.5);
    }

    #[test]
    fn a_report_days_later_breaks_the_axis_and_still_ends_at_it() {
        let t = of(&pod(), at("2026-01-04T10:00:00Z")).unwrap();
        let axis = Axis::of(&t);
        assert_eq!(axis.end, 3.0 * 86_400.0);
        // The events (up to 10 s) to scale, in round steps, then the break.
        assert_eq!(axis.detail, Some(12.0));
        assert_eq!(axis.ticks, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        assert_eq!(axis.frac(12.0), DETAIL_SHARE);
        assert_eq!(axis.frac(axis.end), 1.0);
        let svg = svg(&t);
        assert!(svg.contains("class=\"axis-break\""), "{svg}");
        // The proxy, still running, reaches the right edge across the break.
        let text = text(&t);
        let proxy = text.lines().find(|l| l.contains("  proxy ")).unwrap();
        assert!(
            proxy.contains("=~~=") && proxy.contains("=>| 0s-1s exit 0"),
            "{text}"
        );
        assert!(text.contains("3d"), "{text}");
        assert!(text.contains("the axis is broken after 12s"), "{text}");
    }
}
